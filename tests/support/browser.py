"""A real headless Chromium (Debian ``chromium``) driven over the DevTools protocol (CDP).

Used by the HTML report tests and ``bench/html_report_libs.py``: load a file, collect every
console error and uncaught exception, run a JavaScript probe in the page, time how long the
page takes until a readiness expression holds, and take a full-page screenshot. The protocol
is spoken over one WebSocket with ``websocket-client`` (already installed: binance-connector
depends on it); no driver binary, no browser download.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    console_errors: list[str] = field(default_factory=list)
    ready_ms: float = float("nan")  # navigation start -> readiness expression true (wall clock)
    cpu_ms: float = float("nan")  # main-thread CPU time of the page until ready (robust on a busy machine)
    probe: Any = None
    screenshot: bytes = b""


class Chromium:
    """``with Chromium() as b: b.load(path, ready_js, probe_js)``; ``evaluate`` runs in the last loaded page."""

    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 120.0):
        self.width, self.height, self.timeout = width, height, timeout
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium not found (apt-get install -y chromium)")
        self._profile = tempfile.mkdtemp(prefix="ethbtc-chromium-")
        argv = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}", f"--window-size={self.width},{self.height}", "about:blank"]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.05)
        self._port = int(port_file.read_text().split()[0])
        return self

    def _http(self, what: str, method: str = "GET") -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self._port}/json/{what}", method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body.strip().startswith((b"{", b"[")) else body

    def _new_tab(self) -> None:
        """Each load gets a fresh tab (and renderer): nothing of the previous page can hold it up."""
        self._close_tab()
        tab = self._http("new?about:blank", "PUT")
        self._tab_id = tab["id"]
        self._ws = websocket.create_connection(tab["webSocketDebuggerUrl"], timeout=self.timeout, suppress_origin=True)
        for domain in ("Page", "Runtime", "Log", "Performance"):
            self.call(f"{domain}.enable")

    def _close_tab(self) -> None:
        ws, tab = getattr(self, "_ws", None), getattr(self, "_tab_id", None)
        self._ws = self._tab_id = None
        if ws is not None:
            ws.close()
        if tab is not None:
            try:
                self._http(f"close/{tab}")
            except OSError:
                pass

    def __exit__(self, *exc: object) -> None:
        if getattr(self, "_port", None):
            self._close_tab()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        mid = self._next_id
        self._ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._events.append(msg)

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"probe failed: {_exception_text(res['exceptionDetails'])}")
        return res["result"].get("value")

    def _drain(self) -> None:
        """Read events that arrived without a call (console messages after the load)."""
        self._ws.settimeout(0.05)
        try:
            while True:
                msg = json.loads(self._ws.recv())
                if "method" in msg:
                    self._events.append(msg)
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self._ws.settimeout(self.timeout)

    def _thread_time(self) -> float:
        metrics = self.call("Performance.getMetrics")["metrics"]
        return float(next(m["value"] for m in metrics if m["name"] == "ThreadTime"))

    def errors(self) -> list[str]:
        """Console errors and exceptions of the current page so far (since its load began)."""
        self._drain()
        return _errors(self._events)

    def load(self, path: str | os.PathLike[str], ready_js: str, probe_js: str | None = None,
             screenshot: bool = True) -> PageLoad:
        """Open ``path`` (file://) in a fresh tab, wait until ``ready_js`` is true, run ``probe_js``
        (its value is returned), screenshot the whole page, and collect console errors/exceptions
        seen so far. A load that hangs (seen on a heavily loaded machine: the browser never answers
        the navigation) is retried once in a new tab."""
        try:
            return self._load(path, ready_js, probe_js, screenshot)
        except (TimeoutError, websocket.WebSocketTimeoutException):
            return self._load(path, ready_js, probe_js, screenshot)

    def _load(self, path: str | os.PathLike[str], ready_js: str, probe_js: str | None, screenshot: bool) -> PageLoad:
        self._new_tab()
        self._events.clear()
        cpu0 = self._thread_time()
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        while True:
            if self.evaluate(f"(() => {{ try {{ return !!({ready_js}) }} catch (e) {{ return false }} }})()"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: not ready after {self.timeout:.0f} s ({ready_js})")
            time.sleep(0.02)
        out = PageLoad()
        # the page's own clock: navigation start -> now (the readiness poll adds at most ~20 ms)
        out.ready_ms = float(self.evaluate("performance.now()"))
        out.cpu_ms = (self._thread_time() - cpu0) * 1000.0
        if probe_js is not None:
            out.probe = self.evaluate(probe_js)
        if screenshot:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                             clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
            out.screenshot = base64.b64decode(shot["data"])
        out.console_errors = self.errors()
        return out


def _exception_text(d: dict[str, Any]) -> str:
    exc = d.get("exception") or {}
    return str(exc.get("description") or d.get("text") or d)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.exceptionThrown":
            out.append("exception: " + _exception_text(p["exceptionDetails"]))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
    return out
