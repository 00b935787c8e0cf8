"""Real servers for tests: started on 127.0.0.1 on a free port, waited for, always stopped."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def serving(
    command: list[str],
    log: Path,
    ready: str | int,
    timeout: float = 120,
    env: dict | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Runs a server process until the block ends, after it is ready: `ready` is a URL that answers (any HTTP
    status) or a port that accepts connections. Fails with the server's log if it exits or times out first."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        while not is_ready(ready):
            if process.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {process.returncode}" if process.poll() is not None else f"not ready in {timeout} s"
                raise AssertionError(f"{command[0]} {why}:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
        yield process
    finally:
        stop(process)


def is_ready(ready: str | int) -> bool:
    if isinstance(ready, int):
        return port_open(ready)
    try:
        with urllib.request.urlopen(ready, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answers
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    """Terminates a process (SIGTERM, then SIGKILL after 10 s) and reaps it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
