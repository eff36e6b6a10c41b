"""A local Binance Vision mirror for tests: real files from a folder, extra files, injected faults.

Serves ``root`` (e.g. ../shared/data/vision) on 127.0.0.1 from a background thread. Tests add
files (``extra``: daily zips they build) and one-shot faults per path, consumed in order:
``"404"``, ``"500"``, ``"503:N"`` (Retry-After N), ``"stall"`` (headers sent, body never
comes until the test ends), ``"corrupt"`` (same length, garbled bytes). Every request path
is appended to ``log``.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


class Mirror(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.extra: dict[str, bytes] = {}
        self.faults: dict[str, list[str]] = {}
        self.log: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def hits(self) -> Counter[str]:
        with self._lock:
            return Counter(self.log)

    def add_zip(self, key: str, csv_text: str, checksum: bool = True) -> None:
        """Publish ``csv_text`` as zip ``key`` (plus its .CHECKSUM), like Vision does."""
        name = key.rsplit("/", 1)[-1]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name.replace(".zip", ".csv"), csv_text)
        body = buf.getvalue()
        self.extra[key] = body
        if checksum:
            self.extra[key + ".CHECKSUM"] = f"{hashlib.sha256(body).hexdigest()}  {name}\n".encode()

    def fault(self, key: str, *actions: str) -> None:
        self.faults.setdefault(key, []).extend(actions)

    def _next_fault(self, key: str) -> str | None:
        with self._lock:
            self.log.append(key)
            queue = self.faults.get(key)
            return queue.pop(0) if queue else None

    def _body(self, key: str) -> bytes | None:
        if key in self.extra:
            return self.extra[key]
        path = (self.root / key).resolve()
        if self.root.resolve() in path.parents and path.is_file():
            return path.read_bytes()
        return None


class _Handler(BaseHTTPRequestHandler):
    server: Mirror

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet test output
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        key = urlsplit(self.path).path.lstrip("/")
        fault = self.server._next_fault(key)
        body = self.server._body(key)
        if fault == "404" or body is None:
            return self._reply(404, b"not found")
        if fault == "500":
            return self._reply(500, b"boom")
        if fault and fault.startswith("503:"):
            return self._reply(503, b"slow down", {"Retry-After": fault[4:]})
        if fault == "stall":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            self.server.release.wait(10)
            return
        if fault == "corrupt":
            body = body[:16] + bytes(b ^ 0x5A for b in body[16:])
        self._reply(200, body)

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


@contextmanager
def serve(root: Path) -> Iterator[Mirror]:
    mirror = Mirror(root)
    thread = threading.Thread(target=mirror.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        mirror.release.set()
        mirror.shutdown()
        mirror.server_close()


def csv_rows(rows: Iterable[Iterable[object]]) -> str:
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows)
