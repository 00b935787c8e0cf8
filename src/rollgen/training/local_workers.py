"""Several multi_worker training workers on this one machine, in a network of their own.

Every worker of `MultiWorkerMirroredStrategy` starts TensorFlow's gRPC server, which listens on every
interface (`0.0.0.0:PORT`: grpc_server_lib.cc hard-codes it; neither TF_CONFIG, the ServerDef nor gRPC's
environment chooses another address) and asks no one who they are. Workers that all live on this machine
need loopback alone, so they run in a private network namespace whose only interface is `lo`: there "every
interface" reaches nothing outside. Linux's `unshare` makes it (as root, or with user namespaces); where the
machine allows none (a container without them), the workers run in the machine's network and say so.

Run as a module, this is the supervisor inside that namespace: `python -m rollgen.training.local_workers
COUNT FIRST_PORT -- COMMAND...`.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import BinaryIO, NoReturn

from rollgen.errors import RollgenError

FIRST_PORT = 12345  # in a private network every port is free; the workers take this one and the next ones
DOCS = "docs/operations.md#training-across-machines"
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1  # <linux/sockios.h>, <net/if.h>


def private_network() -> bool:
    """Whether this process's network has no interface but loopback: a server on 0.0.0.0 reaches no one else."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def is_loopback(address: str) -> bool:
    """Whether a TF_CONFIG address (`host:port`, `[::1]:port`) names this machine's loopback."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(tf_config: str) -> str | None:
    """The line a worker prints where its gRPC server is reachable from other machines; None in a private network."""
    if private_network():
        return None
    try:
        config = json.loads(tf_config)
        cluster, task = config["cluster"], config["task"]
        address = cluster[task["type"]][task["index"]]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise RollgenError(f"TF_CONFIG names no address for this worker's task ({error!r}): {tf_config}") from None
    everyone = [address for addresses in cluster.values() for address in addresses]
    advice = (
        "`rollgen workers` runs local workers in a private network"
        if all(is_loopback(each) for each in everyone)
        else "keep the port to a private network or behind a firewall"
    )
    port = address.rsplit(":", 1)[-1]
    return (
        f"train: TensorFlow's gRPC server listens on every interface (0.0.0.0:{port}), unauthenticated and "
        f"unencrypted: {advice} ({DOCS})"
    )


def namespace_command() -> tuple[list[str], str]:
    """(`unshare` command line, '') to run a command in new network and PID namespaces; ([], why) where this
    machine allows none (no `unshare`, no permission).

    The PID namespace makes the supervisor its process 1: when it ends, however it ends, the kernel ends every
    worker; --kill-child ends the supervisor when `unshare` is killed. Root needs no user namespace (and would
    lose access to files of users it does not map), anyone else maps themselves to root in one.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return [], "no `unshare` command (util-linux)"
    base = [unshare, "--net", "--pid", "--fork", "--kill-child"]
    tries = [base, [*base, "--map-root-user"]] if os.geteuid() == 0 else [[*base, "--map-root-user"]]
    reason = ""
    for command in tries:
        # `unshare` found by shutil.which, an argument list, no shell: try it on `true` before the workers
        probe = subprocess.run([*command, "true"], capture_output=True, text=True, timeout=60)  # noqa: S603 - see above
        if probe.returncode == 0:
            return command, ""
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit status {probe.returncode}"
    return [], reason


def launch(count: int, command: Sequence[str], first_port: int) -> NoReturn:
    """Replaces this process with the supervisor of `count` workers that each run `command`, on 127.0.0.1 ports
    `first_port`..., in a private network where this machine allows one (else in its own, saying so)."""
    if count < 1 or not command:
        raise RollgenError("rollgen workers needs a count of at least 1 and a command: rollgen workers 2 -- CMD")
    namespace, reason = namespace_command()
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    if namespace and tracking.startswith(("http:", "https:")):
        raise RollgenError(
            f"rollgen workers: the workers' private network reaches no server, so not MLFLOW_TRACKING_URI={tracking}:"
            f" unset it (the project's sqlite:///mlflow.db), or start each worker with its TF_CONFIG ({DOCS})"
        )
    if not namespace:
        print(
            f"workers: no private network here ({reason}), so the workers' gRPC servers listen on every interface "
            f"of this machine ({DOCS})",
            file=sys.stderr,
            flush=True,
        )
    supervisor = [sys.executable, "-m", "rollgen.training.local_workers", str(count), str(first_port), "--"]
    argv = [*namespace, *supervisor, *command]
    sys.stdout.flush()
    os.execv(argv[0], argv)  # noqa: S606 - an argument list, no shell; unshare's --kill-child needs it to be us


def bring_loopback_up() -> None:
    """Sets `lo` up (a new network namespace starts with it down): the SIOCSIFFLAGS ioctl, as `ip link set lo
    up` does, so that no iproute2 is needed."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)  # struct ifreq: a name, then a union of 24 bytes
        flags = struct.unpack_from("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def tf_configs(count: int, first_port: int) -> list[str]:
    """Each worker's TF_CONFIG: the same cluster on 127.0.0.1, its own index in it (worker 0 is the chief)."""
    cluster = {"worker": [f"127.0.0.1:{first_port + index}" for index in range(count)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}) for index in range(count)]


def stop(workers: Sequence[subprocess.Popen]) -> None:
    """Ends the workers still running: the others would wait for a failed one's all-reduce for ever."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    deadline = time.monotonic() + 10
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def relay(source: BinaryIO, prefix: bytes, target: BinaryIO, lock: threading.Lock) -> None:
    """Copies a worker's output to `target` a whole line at a time, each line after `prefix`: the workers'
    lines would otherwise be cut into one another mid-line, with nothing to tell whose they are."""
    for line in iter(source.readline, b""):
        with lock:
            target.write(prefix + line.removesuffix(b"\n") + b"\n")
            target.flush()
    source.close()


def supervise(count: int, first_port: int, command: Sequence[str]) -> int:
    """Runs the workers and gives the first failure's exit status (stopping the rest), or 0 when all succeed.
    Each line a worker prints comes out whole, after `worker N: `, on the stream it was printed to."""
    where = "a private network (loopback only)" if private_network() else "this machine's network"
    ports = f"{first_port}" if count == 1 else f"{first_port}-{first_port + count - 1}"
    print(f"workers: {count} on 127.0.0.1:{ports}, in {where}", file=sys.stderr, flush=True)
    # The user's own command line, as given to `rollgen workers`: an argument list, no shell.
    workers = [subprocess.Popen(list(command), env=dict(os.environ, TF_CONFIG=config),  # noqa: S603 - see above
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for config in tf_configs(count, first_port)]  # fmt: skip
    lock = threading.Lock()
    relays = [
        threading.Thread(target=relay, args=(stream, f"worker {index}: ".encode(), target, lock), daemon=True)
        for index, worker in enumerate(workers)
        for stream, target in ((worker.stdout, sys.stdout.buffer), (worker.stderr, sys.stderr.buffer))
    ]
    for thread in relays:
        thread.start()
    try:
        while True:
            codes = [worker.poll() for worker in workers]
            failed = [code for code in codes if code not in (None, 0)]
            if failed:
                return failed[0] if failed[0] > 0 else 128 - failed[0]  # killed by a signal: 128 + its number
            if all(code == 0 for code in codes):
                return 0
            time.sleep(0.2)
    finally:
        stop(workers)
        for thread in relays:
            thread.join(timeout=10)


def main(argv: Sequence[str]) -> int:
    """The supervisor's entry: COUNT FIRST_PORT -- COMMAND..."""
    count, first_port, separator, *command = argv
    if separator != "--" or not command:
        raise RollgenError(f"usage: python -m rollgen.training.local_workers COUNT FIRST_PORT -- COMMAND, not {argv}")
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))  # stop the workers too
    if private_network():
        bring_loopback_up()
    return supervise(int(count), int(first_port), command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
