"""Binance Vision archive: URL layout, date ranges, checksum-verified cached zips, zip reading.

The public archive (https://data.binance.vision) publishes one zip per month and per day:
``data/spot/monthly/klines/SYM/INT/SYM-INT-YYYY-MM.zip`` and
``data/spot/daily/klines/SYM/INT/SYM-INT-YYYY-MM-DD.zip``, each with a ``.CHECKSUM`` file
(``<sha256>  <name>``). :class:`ArchiveCache` keeps verified zips under the output folder so
a re-run only fetches what is missing or corrupt. The orchestration (which files, in which
order, in parallel) lives in :mod:`ethbtc.data.vision_download`.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import sys
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Literal

import pandas as pd

from ..endpoints import VISION_ARCHIVE_URL
from ..errors import DataError, UserError
from ..fileio import atomic_path
from .httpfetch import Fetcher
from .klines import Cleanup, read_klines_bytes
from .timeframes import BINANCE_INTERVALS, binance_interval, interval_minutes

DEFAULT_BASE_URL = VISION_ARCHIVE_URL
FETCH_COMMAND = (
    "python download_vision.py --symbol ETHBTC --intervals 1h --start 2020-01 --end 2020-03 --out-dir data/raw"
)
OUTPUT_EXAMPLE = "data/raw/ETHBTC_1h_2020-01_2020-03_vision.csv"
FETCH_HINT = f"""\
Real data: fetch Binance candles from the public archive data.binance.vision (needs internet):
    {FETCH_COMMAND}
  from a local mirror of the archive add --base-url http://127.0.0.1:8000 (or set VISION_BASE_URL)
  then: python ethbtc_accum_bot.py backtest --data {OUTPUT_EXAMPLE}"""

_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def print_fetch_hint(file: IO[str] | None = None) -> None:
    """Print how to fetch real data (used by the offline demo)."""
    print(FETCH_HINT, file=file or sys.stdout)


def check_symbol(text: str) -> str:
    symbol = text.strip().upper()
    if not _SYMBOL.match(symbol):
        raise UserError(f"invalid symbol {text!r}: use a Binance spot pair such as ETHBTC")
    return symbol


def vision_interval(text: str) -> str:
    """'1h', '60min', '15T' -> Binance interval name; error for intervals Vision has no klines for."""
    try:
        return binance_interval(interval_minutes(text))
    except UserError:
        raise UserError(
            f"unsupported interval {text!r}: use one of {', '.join(BINANCE_INTERVALS)}"
        ) from None


@dataclass(frozen=True)
class DateRange:
    """Inclusive UTC day range; ``start_text``/``end_text`` as the user typed them."""

    start: date
    end: date
    start_text: str
    end_text: str

    @property
    def start_ms(self) -> int:
        return _day_ms(self.start)

    @property
    def end_ms_exclusive(self) -> int:
        return _day_ms(self.end + timedelta(days=1))

    def months(self) -> list[tuple[int, int]]:
        out, y, m = [], self.start.year, self.start.month
        while (y, m) <= (self.end.year, self.end.month):
            out.append((y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def days_in(self, year: int, month: int) -> list[date]:
        last = calendar.monthrange(year, month)[1]
        first_day, last_day = max(date(year, month, 1), self.start), min(date(year, month, last), self.end)
        return [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]


def parse_range(start: str, end: str) -> DateRange:
    s, e = _parse_day(start, "--start", end_of_month=False), _parse_day(end, "--end", end_of_month=True)
    if e < s:
        raise UserError(f"--end {end} is before --start {start}")
    return DateRange(s, e, start.strip(), end.strip())


def _parse_day(text: str, flag: str, end_of_month: bool) -> date:
    t = text.strip()
    try:
        if m := _MONTH.match(t):
            y, mo = int(m.group(1)), int(m.group(2))
            return date(y, mo, calendar.monthrange(y, mo)[1] if end_of_month else 1)
        if m := _DAY.match(t):
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except (ValueError, calendar.IllegalMonthError):
        pass
    raise UserError(f"invalid {flag} {text!r}: use YYYY-MM or YYYY-MM-DD")


def _day_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def monthly_key(symbol: str, interval: str, year: int, month: int) -> str:
    return f"data/spot/monthly/klines/{symbol}/{interval}/{symbol}-{interval}-{year:04d}-{month:02d}.zip"


def daily_key(symbol: str, interval: str, day: date) -> str:
    return f"data/spot/daily/klines/{symbol}/{interval}/{symbol}-{interval}-{day:%Y-%m-%d}.zip"


Status = Literal["cached", "downloaded", "missing"]


@dataclass(frozen=True)
class Fetched:
    key: str
    path: Path | None
    status: Status


class ArchiveCache:
    """Fetch archive zips into ``cache_dir`` (same layout as the URL), verified by sha256."""

    def __init__(self, fetcher: Fetcher, base_url: str, cache_dir: Path, verify: bool = True) -> None:
        self.fetcher = fetcher
        self.base_url = base_url.rstrip("/")
        self.cache_dir = cache_dir
        self.verify = verify

    def url(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def get(self, key: str) -> Fetched:
        url, zip_path = self.url(key), self.cache_dir / key
        sum_path = zip_path.with_name(zip_path.name + ".CHECKSUM")
        if zip_path.exists() and self._cached_ok(key, zip_path, sum_path):
            return Fetched(key, zip_path, "cached")
        problem = ""
        for _ in range(2):  # a corrupt download is fetched once more, then it is an error
            body = self.fetcher.get(url)
            if body is None:
                return Fetched(key, None, "missing")
            if not self.verify:
                if _is_zip(body):
                    _save(zip_path, body)
                    return Fetched(key, zip_path, "downloaded")
                problem = "not a valid zip file"
                continue
            checksum = self._fetch_checksum(key)
            actual = hashlib.sha256(body).hexdigest()
            if actual == checksum:
                _save(zip_path, body)
                _save(sum_path, f"{checksum}  {zip_path.name}\n".encode())
                return Fetched(key, zip_path, "downloaded")
            problem = f"sha256 {actual[:16]}... but .CHECKSUM says {checksum[:16]}..."
        raise DataError(f"{url}: corrupt after re-download ({problem})")

    def _cached_ok(self, key: str, zip_path: Path, sum_path: Path) -> bool:
        if not self.verify:
            return zipfile.is_zipfile(zip_path)
        if sum_path.exists():
            expected = parse_checksum(sum_path.read_text(encoding="utf-8", errors="replace"), str(sum_path))
        else:
            expected = self._fetch_checksum(key)
            _save(sum_path, f"{expected}  {zip_path.name}\n".encode())
        return _sha256_file(zip_path) == expected

    def _fetch_checksum(self, key: str) -> str:
        url = self.url(key) + ".CHECKSUM"
        body = self.fetcher.get(url)
        if body is None:
            raise DataError(f"{url} not found: cannot verify the zip (use --no-verify to skip checks)")
        return parse_checksum(body.decode("utf-8", errors="replace"), url)


def parse_checksum(text: str, where: str) -> str:
    """First field of a ``<sha256>  <file>`` line."""
    parts = text.split()
    if not parts or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
        raise DataError(f"{where}: not a sha256 checksum file")
    return parts[0].lower()


def read_zip_klines(path: Path, label: str, cleanup: Cleanup | None = None) -> pd.DataFrame:
    """The one CSV inside an archive zip, as a kline table (times in ms)."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise DataError(f"{label}: expected one CSV inside the zip, found {len(members)}")
            data = zf.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{label}: not a valid zip file ({exc})") from None
    return read_klines_bytes(data, f"{label}/{members[0]}", cleanup)


def _is_zip(body: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            return zf.testzip() is None
    except (zipfile.BadZipFile, zlib.error, EOFError):
        return False


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _save(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
