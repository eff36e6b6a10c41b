"""Real-Prometheus test harness, reusable by any test that has a bot serving /metrics.

- ``running_prometheus(target, workdir)``: starts the Debian ``prometheus`` binary with the
  project's ``grafana/prometheus.yml`` rewritten to scrape ``target`` every second (temp storage,
  free port) and stops it afterwards; ``PrometheusServer.query`` runs PromQL over the HTTP API.
- ``dashboard_queries`` / ``expand_grafana_vars`` / ``evaluate_dashboard``: every PromQL
  expression of the Grafana dashboard, with Grafana's variables filled in, evaluated.
- ``BotDriver``: what a scraped bot must offer. ``tests/support/synthetic_bot.py`` implements it today;
  the live executor's tests implement it with the real executor against the exchange simulator
  and reuse ``evaluate_dashboard`` unchanged.

Tests skip with a clear message when the ``prometheus``/``promtool`` binaries are absent.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = ROOT / "grafana" / "prometheus.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "ethbtc.json"
JOB = "ethbtc"
INSTALL_HINT = "install it with `apt-get install -y prometheus` (.ci/run does this when it is missing)"


class BotDriver(Protocol):
    """A running bot that Prometheus can scrape."""

    @property
    def target(self) -> str: ...  # host:port of /metrics and /health

    @property
    def url(self) -> str: ...  # http://host:port

    def stall(self) -> None: ...  # freeze the bar loop (process and HTTP server stay up)

    def resume(self) -> None: ...

    def stop(self) -> None: ...


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"`{name}` binary not found: {INSTALL_HINT}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (requests.RequestException, RuntimeError) as exc:
            last_exc = exc
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def render_config(target: str, dest: Path, scrape_interval: str = "1s") -> Path:
    """The shipped prometheus.yml with the bot job pointed at ``target`` and a short interval."""
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    config["global"]["scrape_interval"] = scrape_interval
    config["global"]["evaluation_interval"] = scrape_interval
    config["rule_files"] = [str((SHIPPED_CONFIG.parent / f).resolve()) for f in config.get("rule_files", [])]
    jobs = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    assert len(jobs) == 1, f"shipped prometheus.yml must have exactly one job named {JOB!r}"
    jobs[0]["static_configs"] = [{"targets": [target]}]
    jobs[0]["scrape_timeout"] = scrape_interval  # must not exceed the interval
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


class ServerProcess:
    """A real server binary (Prometheus, Alertmanager) on 127.0.0.1 with its own work folder and
    log; ``launch`` starts it and waits for ``/-/ready``, ``stop`` ends it."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self, argv: list[str], timeout: float) -> None:
        (self.workdir / "data").mkdir(exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        wait_for(ready, timeout, f"{self.name} to become ready")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


class PrometheusServer(ServerProcess):
    """A real ``prometheus`` process on 127.0.0.1 with temporary storage."""

    name = "prometheus"

    def __init__(self, config: Path, workdir: Path) -> None:
        self.binary = require_binary("prometheus")
        self.config = config
        super().__init__(workdir)

    def start(self, timeout: float = 60) -> PrometheusServer:
        self.launch([self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", "--web.enable-lifecycle"],
                    timeout)
        return self

    def api(self, path: str, **params: Any) -> Any:
        r = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query at the current time; the result vector (scalars become one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        if data["resultType"] == "matrix":
            return [{"metric": s["metric"], "value": s["values"][-1]} for s in data["result"] if s["values"]]
        return data["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

@contextlib.contextmanager
def running_prometheus(target: str, workdir: Path, scrape_interval: str = "1s") -> Iterator[PrometheusServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = render_config(target, workdir / "prometheus.yml", scrape_interval)
    server = PrometheusServer(config, workdir)
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def warmed_prometheus(target: str, workdir: Path, checks: list[tuple[str, str]],
                      alive: Callable[[], str | None] | None = None,
                      on_up: Callable[[], None] | None = None) -> Iterator[PrometheusServer]:
    """A Prometheus scraping ``target`` once it is up and each (description, PromQL) in
    ``checks`` returns data, i.e. enough history for rate()/increase() panels. ``alive``
    returns a reason when the bot under test has died (checked between the waits); ``on_up``
    runs once the target is scraped (e.g. let the bot start trading only now, so counters
    rise while Prometheus watches and increase() panels are not 0/0)."""
    with running_prometheus(target, workdir) as server:
        wait_for(lambda: server.query('up{job="ethbtc"} == 1'), 60, f"{target} to be scraped (up == 1)")
        if on_up is not None:
            on_up()
        for what, expr in checks:
            if alive is not None and (dead := alive()):
                pytest.fail(dead)
            wait_for(lambda e=expr: server.query(e), 90, what, every=0.5)
        yield server


# ---------------------------------------------------------------------------- dashboard queries
@dataclass(frozen=True)
class DashboardQuery:
    panel: str
    ref: str
    expr: str


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _walk_panels(p.get("panels", []))


def dashboard_queries(path: Path = DASHBOARD) -> list[DashboardQuery]:
    """Every PromQL expression of the dashboard: panel targets and query-variable definitions."""
    dash = json.loads(path.read_text())
    out = [DashboardQuery(p.get("title", "?"), t.get("refId", "?"), t["expr"])
           for p in _walk_panels(dash.get("panels", [])) for t in p.get("targets", []) if t.get("expr")]
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            out.append(DashboardQuery(f"variable {var['name']}", "var", q["query"] if isinstance(q, dict) else q))
    return out


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<metric>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")


def expand_grafana_vars(expr: str, values: dict[str, str]) -> str:
    """Substitute ``$name`` / ``${name}`` (longest names first); unknown variables are an error."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no test value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, expr)


def grafana_values(instance: str, rate_interval: str = "15s", range_: str = "5m") -> dict[str, str]:
    return {"instance": instance, "__rate_interval": rate_interval, "__interval": "5s",
            "__range": range_, "__range_s": "300", "datasource": "prometheus"}


def evaluate_dashboard(prom: PrometheusServer, instance: str, path: Path = DASHBOARD,
                       rate_interval: str = "15s", range_: str = "5m") -> list[str]:
    """Evaluate every dashboard expression; return one problem line per query that errors,
    returns no series, or returns only NaN/inf (empty list = all good)."""
    values = grafana_values(instance, rate_interval, range_)
    problems = []
    for q in dashboard_queries(path):
        expr = expand_grafana_vars(q.expr, values)
        label_values = _LABEL_VALUES.match(expr)
        try:
            if label_values:
                result = prom.query(label_values["metric"])
                found = {s["metric"].get(label_values["label"]) for s in result}
                if instance not in found:
                    problems.append(f"{q.panel} [{q.ref}]: {expr} -> {sorted(v for v in found if v)}")
                continue
            result = prom.query(expr)
        except RuntimeError as exc:
            problems.append(f"{q.panel} [{q.ref}]: {expr} -> error {exc}")
            continue
        finite = [s for s in result if math.isfinite(float(s["value"][1]))]
        if not finite:
            problems.append(f"{q.panel} [{q.ref}]: {expr} -> {'only NaN' if result else 'no data'}")
    return problems
