"""Find API keys, secrets and request signatures wherever the bot writes (issue 9, secret hygiene).

``scan(sources, secrets)`` looks through files and folders (logs, rotated ``.gz`` logs, state
JSON, ledger/report CSV, Excel workbooks) and in-memory text (metrics exposition, a ``/health``
body) for each secret -- verbatim, percent-encoded, or JSON-escaped -- and for any
``signature=<value>`` (a signed Binance request URL or query). It returns every hit with its
place; the executor's tests assert ``scan(...) == []``.

Excel files are read twice: cell by cell with openpyxl (for a readable place, "Trades!C7") and
as the raw XML inside the zip (comments, chart titles, sheet names, anything openpyxl skips).
"""

from __future__ import annotations

import gzip
import json
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

MIN_SECRET = 8  # shorter "secrets" would match by chance; tests must use realistic fake keys
# signature=... in a URL/query/log, or "signature": "..." in JSON; a redacted value is fine
SIGNATURE = re.compile(r"""signature["']?\s*[=:]\s*["']?([A-Za-z0-9%+/_-]{16,})""", re.IGNORECASE)


@dataclass(frozen=True)
class Text:
    """In-memory content to scan, e.g. ``Text("/metrics", body)`` or ``Text("/health", raw_bytes)``."""

    label: str
    content: str | bytes


@dataclass(frozen=True)
class Hit:
    where: str  # file (and sheet!cell / zip member) or Text label
    what: str  # "secret #i" or "signature"
    excerpt: str  # the text around the hit, the found value masked

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: ...{self.excerpt}..."


Source = str | Path | Text


def variants(secret: str) -> set[str]:
    """The forms a secret takes when written by common code: as is, in a URL, inside JSON."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def scan(sources: Iterable[Source], secrets: Sequence[str], signatures: bool = True) -> list[Hit]:
    """Every place in ``sources`` holding one of ``secrets`` or (``signatures``) a signature value."""
    for s in secrets:
        if len(s) < MIN_SECRET:
            raise ValueError(f"secret {s[:2]!r}... is shorter than {MIN_SECRET} characters: use a realistic fake")
    forms = [(f"secret #{i}", v) for i, s in enumerate(secrets) for v in sorted(variants(s))]
    hits: list[Hit] = []
    for where, text in _texts(sources):
        for what, form in forms:
            start = 0
            while (i := text.find(form, start)) >= 0:
                hits.append(Hit(where, what, _excerpt(text, i, len(form))))
                start = i + len(form)
        if signatures:
            for m in SIGNATURE.finditer(text):
                hits.append(Hit(where, "signature", _excerpt(text, m.start(1), len(m.group(1)))))
    return hits


def _excerpt(text: str, at: int, n: int) -> str:
    before, after = text[max(0, at - 30): at], text[at + n: at + n + 30]
    return (before + "<FOUND>" + after).replace("\n", "\\n")


def _texts(sources: Iterable[Source]) -> Iterator[tuple[str, str]]:
    for src in sources:
        if isinstance(src, Text):
            content = src.content
            yield src.label, content.decode("utf-8", "replace") if isinstance(content, bytes) else content
            continue
        path = Path(src)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from _file(child)
        elif path.is_file():
            yield from _file(path)
        else:
            raise FileNotFoundError(f"nothing to scan at {path}")


def _file(path: Path) -> Iterator[tuple[str, str]]:
    raw = path.read_bytes()
    yield str(path), raw.decode("utf-8", "replace")
    if raw[:2] == b"\x1f\x8b":  # gzip: a rotated log
        try:
            yield f"{path} (gunzipped)", gzip.decompress(raw).decode("utf-8", "replace")
        except (OSError, EOFError):
            pass
    if raw[:4] == b"PK\x03\x04":  # zip container: xlsx and friends
        yield from _zip_members(path)
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            yield from _excel_cells(path)
    if path.suffix.lower() == ".json":
        yield from _json_strings(path, raw)


def _zip_members(path: Path) -> Iterator[tuple[str, str]]:
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                yield f"{path}::{name}", zf.read(name).decode("utf-8", "replace")
    except zipfile.BadZipFile:
        return


def _excel_cells(path: Path) -> Iterator[tuple[str, str]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=False)
    try:
        for ws in wb.worksheets:
            yield f"{path}!{ws.title} (sheet name)", ws.title
            for row in ws.iter_rows():
                for cell in row:
                    if cell.value is not None:
                        yield f"{path}!{ws.title}!{cell.coordinate}", str(cell.value)
    finally:
        wb.close()


def _json_strings(path: Path, raw: bytes) -> Iterator[tuple[str, str]]:
    """Decoded strings of a JSON (or JSON-lines) file: catches \\u-escaped secrets."""
    docs = []
    try:
        docs.append(json.loads(raw))
    except ValueError:  # JSON lines (a --log-json log), one document per line
        for line in raw.splitlines():
            try:
                docs.append(json.loads(line))
            except ValueError:
                continue
    for doc in docs:
        yield f"{path} (decoded JSON)", " ".join(_strings(doc))


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
