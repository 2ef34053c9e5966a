"""Open a page in headless Chromium with no network, through the DevTools protocol on a pipe.

Chromium runs in a network namespace of its own with no interface up
(``unshare -n``), so nothing can be fetched whatever the page asks; the
protocol (``--remote-debugging-pipe``: commands on fd 3, events on fd 4,
each JSON message ended by a NUL) reports every console message,
uncaught exception, log entry and network request, evaluates checks in
the page and takes the screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PageRun", "open_page"]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-default-apps", "--mute-audio", "--remote-debugging-pipe",
         "--window-size=1400,1800"]


@dataclass
class PageRun:
    console: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return ([f"console {level}: {text}" for level, text in self.console if level in ("error", "warning", "assert")]
                + [f"exception: {e}" for e in self.exceptions])


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.w, self.r = write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for m in self.read(deadline):
                if m.get("id") == self.next_id:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                self.events.append(m)

    def read(self, deadline: float) -> list[dict[str, Any]]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("Chromium did not answer")
        if not select.select([self.r], [], [], left)[0]:
            return []
        chunk = os.read(self.r, 1 << 20)
        if not chunk:
            raise RuntimeError("Chromium closed the pipe")
        self.buffer += chunk
        *done, self.buffer = self.buffer.split(b"\0")
        return [json.loads(d) for d in done if d]

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.extend(self.read(deadline))
            except TimeoutError:
                return


def _collect(events: list[dict[str, Any]], run: PageRun) -> None:
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            run.console.append((p.get("type", ""), text))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            run.exceptions.append(str(d.get("exception", {}).get("description") or d.get("text")))
        elif method == "Log.entryAdded":
            entry = p.get("entry", {})
            run.console.append((entry.get("level", ""), f"[{entry.get('source')}] {entry.get('text')}"))
        elif method == "Network.requestWillBeSent":
            run.requests.append(p.get("request", {}).get("url", ""))


def open_page(url: str, checks: dict[str, str], screenshot: str | None = None, settle: float = 1.5) -> PageRun:
    """Load ``url``, evaluate each JavaScript expression of ``checks`` (by value), optionally save a PNG."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (make deps)"
    profile = tempfile.mkdtemp(prefix="leadline-chromium-")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def fds() -> None:  # Chromium reads commands on fd 3 and writes on fd 4
        commands, events = os.dup(to_chrome_r), os.dup(from_chrome_w)  # above 4, so neither dup2 undoes the other
        os.dup2(commands, 3)
        os.dup2(events, 4)

    proc = subprocess.Popen(["unshare", "-n", chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            preexec_fn=fds, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(to_chrome_w, from_chrome_r)
    run = PageRun()
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.events.clear()
        pipe.send("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in pipe.events):
            pipe.events.extend(pipe.read(deadline))
        pipe.drain(settle)
        for name, expression in checks.items():
            result = pipe.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
            run.values[name] = result.get("result", {}).get("value")
        if screenshot:
            shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                             session=session)
            with open(screenshot, "wb") as fh:
                fh.write(base64.b64decode(shot["data"]))
        pipe.drain(0.2)
        _collect(pipe.events, run)
        try:
            pipe.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError):
            pass
    finally:
        os.close(to_chrome_w)
        os.close(from_chrome_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return run
