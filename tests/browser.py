"""Headless Chromium driven over the Chrome DevTools protocol: open a page, wait for what a script sees on it,
take a screenshot. Only a websocket client is needed, no Selenium or Playwright."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.servers import stop

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


class Page:
    """One browser tab."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.last_id = 0

    def send(self, method: str, **params) -> dict:
        """Calls a DevTools method and returns its result, skipping the events that arrive meanwhile."""
        self.last_id += 1
        self.websocket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.websocket.recv())
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def open(self, url: str, timeout: float = 60) -> None:
        """Loads a page and waits until it has loaded (a single-page app may still be rendering)."""
        self.send("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'", timeout)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}…: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        """Evaluates `expression` until it gives something truthy (a single-page app renders late); returns it.

        An error counts as not yet: while a page loads, `document.body` may still be null."""
        deadline, last_error = time.monotonic() + timeout, None
        while True:
            try:
                if value := self.evaluate(expression):
                    return value
            except RuntimeError as error:
                last_error = error
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''") or ""
                raise AssertionError(f"not true after {timeout} s: {expression} ({last_error})\npage: {text[:2000]}")
            time.sleep(0.5)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        return path


@contextlib.contextmanager
def chromium(profile: Path, width: int = 1400, height: int = 1000) -> Iterator[Page]:
    """A headless Chromium with a fresh profile, debugging on a free port of 127.0.0.1; gives its first tab."""
    import websocket

    binary = find_chromium()
    assert binary, "no Chromium found (Debian: apt-get install chromium)"
    command = [
        binary,
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-dev-shm-usage",
        "--mute-audio",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",  # Chromium picks a free one and writes it to DevToolsActivePort
        f"--window-size={width},{height}",
        "about:blank",
    ]
    log = profile.with_suffix(".log")
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    socket = None
    try:
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Chromium did not start:\n{log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            tab = next(target for target in json.load(answer) if target["type"] == "page")
        socket = websocket.create_connection(tab["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        page = Page(socket)
        page.send("Page.enable")
        yield page
    finally:
        if socket is not None:
            socket.close()
        stop(process)
