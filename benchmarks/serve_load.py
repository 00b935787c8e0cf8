"""How the served generator (rollgen.tracking.generator_model) answers under load: a 16-step request alone and
while N maximal requests (2 rows x 4096 steps) are being answered, sent at once; a request over the budget;
bad temperatures. It logs MODEL.keras as the generator to a temporary store and serves it with `mlflow models
serve` (one worker, 127.0.0.1), as the README says to.

    python benchmarks/serve_load.py models/model.keras [--counts 1 2 4 8] [--json out.json]

2026-12-06, a 2-core machine shared with other work, the tiny project's transformernade (1 epoch; ~1 note a
frame at temperature 0.5), MLflow 3.17, seconds from sending to the answer (with the bounds: two runs):

                                  before the bounds          with them
    16 steps alone                0.02                       0.02
    ... beside 1 maximal          0.04                       0.12, 0.18
    ... beside 2 maximal          0.05                       0.04, 0.92
    ... beside 4 maximal          0.08                       0.08, 0.67  (2 of the 4 answered 429 at once)
    ... beside 8 maximal          39.6 (behind 3 of them)    0.05, 1.35  (6 of the 8 answered 429 at once)
    a maximal request alone       4.5                        4.1-4.4; two at once 8-10 each
    30 rows x 4096 steps          504 after 60 s             400 in 0.01 s
    temperature Infinity / null   200 (noise / 0.85)         400 naming the row

Before, past the scoring server's threads (min(32, CPUs + 4): 6 here) a request queued behind whole long
ones; within them requests share the CPU, which is what keeps a short one fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

SHORT = [["", 16, 0.5, 1]]
MAXIMAL = [["", 4096, 0.5, 2], ["", 4096, 0.5, 3]]


def post(port: int, rows: list, timeout: float = 150) -> dict:
    """Status, seconds and the end of the answer's text for one request of `rows`."""
    body = {"dataframe_split": {"columns": ["primer", "steps", "temperature", "seed"], "data": rows}}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http://127.0.0.1 only
            answer.read()
            status, text = answer.status, ""
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode(errors="replace")[-200:]
    except OSError as error:
        status, text = 0, repr(error)
    return {"status": status, "seconds": round(time.monotonic() - start, 2), "text": text}


def answers_ping(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):  # noqa: S310 - 127.0.0.1 only
            return True
    except OSError:
        return False


@contextlib.contextmanager
def serving(model_uri: str, env: dict, log: Path):
    """`mlflow models serve` of `model_uri` on a free port of 127.0.0.1 for the block, once it answers /ping."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        *(sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    with log.open("wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)  # noqa: S603 - a list
    try:
        deadline = time.monotonic() + 300
        while not answers_ping(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow models serve did not start; see {log}")
            time.sleep(1)
        yield port
    finally:
        server.terminate()
        server.wait(30)


def beside(port: int, count: int) -> dict:
    """A short request sent a second after `count` maximal ones, all at once; what each was answered."""
    answers: list[dict] = [{}] * count

    def send(number: int) -> None:
        answers[number] = post(port, MAXIMAL)

    threads = [threading.Thread(target=send, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    short = post(port, SHORT)
    for thread in threads:
        thread.join(200)
    return {"short": short, "maximal": [(answer.get("status"), answer.get("seconds")) for answer in answers]}


def main() -> None:
    import mlflow

    from rollgen.tracking import generator_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = args.model.resolve()
    folder = Path(tempfile.mkdtemp(prefix="serve-load-"))
    os.chdir(folder)  # the store's artifacts go here
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        info = generator_model.log(model)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # this venv's uvicorn
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PATH=path)
    results: dict = {"cpus": os.cpu_count()}
    with serving(info.model_uri, env, folder / "serve.log") as port:
        post(port, SHORT)  # the first request compiles the model's step
        results["short alone"] = post(port, SHORT)
        results["maximal alone"] = post(port, MAXIMAL)
        for count in args.counts:
            results[f"short beside {count} maximal"] = beside(port, count)
            print(count, results[f"short beside {count} maximal"], flush=True)
            time.sleep(2)
        results["30 rows x 4096 steps"] = post(port, [["", 4096, 0.5, seed] for seed in range(30)])
        results["short right after"] = post(port, SHORT)
        results["temperature Infinity"] = post(port, [["", 16, float("inf"), 1]])
        results["temperature null"] = post(port, [["", 16, 0.5, 1], ["", 16, None, 1]])
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
