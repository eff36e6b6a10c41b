"""The image and both compose stacks in a real container runtime (issue 16; ``make image-test``).

podman (runc) builds the Dockerfile and podman-compose runs the project's own compose files in
a copy of the checkout (tests/support/image_env.py says how, and which base images are stand-ins):

1. the paper stack (paper-data -> sim -> bot, monitoring profile) comes up, the bot's container
   turns healthy by its own HEALTHCHECK, a fill lands in both ledgers, /metrics and /health
   answer on the host, Prometheus scrapes ``bot:9109`` and every dashboard query has data;
2. the bot keeps running as uid 1000 on a read-only root file system, writing /data and /tmp only;
3. ``stop``/``down`` (SIGTERM, the compose grace period) leaves no order open and the state
   saved; ``up`` again resumes the same session, no bar is decided twice, ledger = fills (SPEC R30-R32);
4. no secret of a canary ``.env`` in the build context reaches any layer; a code-only change
   rebuilds from the cached dependency layer;
5. the main stack in dry mode without internet fails with one clear line and restarts, no traceback.

Only ``make image-test`` runs these (it sets ``ETHBTC_IMAGE_TEST=1``); ``make test`` skips them.
podman 4.3 runs HEALTHCHECK timers through systemd, which is not PID 1 on CI machines, so the
tests trigger the container's own healthcheck with ``podman healthcheck run`` (the same command,
in the container, updating its health status) where Docker's daemon would run it on its interval.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import image_env as ie
from tests.support.compose_model import merged_services
from tests.support.prom_fixtures import evaluate_dashboard
from tests.support.secret_scan import variants

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(os.environ.get("ETHBTC_IMAGE_TEST") != "1",
                       reason="container test: run with make image-test (podman, root)"),
]
PAPER_FILES = (ie.MAIN, ie.PAPER)
PROFILE = "monitoring"
CANARIES = {
    "BINANCE_KEY": "CANARYKEY" + secrets.token_hex(24),
    "BINANCE_SECRET": "CANARYSECRET" + secrets.token_hex(24),
    "GRAFANA_ADMIN_PASSWORD": "canary-grafana-" + secrets.token_hex(8),
}


def wait_for(what: str, timeout: float, probe: Any, every: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def sim_get(path: str, post: dict[str, Any] | None = None) -> Any:
    """An unsigned /sim control endpoint; the simulator answers those only to its own localhost."""
    data = "None" if post is None else repr(json.dumps(post).encode())
    code = ("import urllib.request;print(urllib.request.urlopen(urllib.request.Request("
            f"'http://127.0.0.1:8765{path}',data={data},headers={{'Content-Type':'application/json'}}),"
            "timeout=10).read().decode())")
    return json.loads(ie.podman("exec", ie.container("sim"), "python", "-c", code).stdout)


def csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def http(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class HostPrometheus:
    """The compose Prometheus through its published port (the query API evaluate_dashboard uses)."""

    url = "http://127.0.0.1:9090"

    def api(self, endpoint: str, **params: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}",
                                    timeout=10) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(str(body))
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]


def timed(what: str, t0: float, note: str = "") -> None:
    ie.timing(what, time.monotonic() - t0, note)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def checkout() -> Path:
    env_text = (ie.ROOT / ".env.example").read_text()
    env_text += "\n# image-test canaries: must never reach an image layer\n"
    env_text += "".join(f"{k}={v}\n" for k, v in CANARIES.items())
    return ie.make_checkout(env_text)


@pytest.fixture(scope="session")
def image(checkout: Path) -> dict[str, Any]:
    """ethbtc:local built by ``compose build bot`` (the compose file's build section)."""
    t0 = time.monotonic()
    res = ie.compose([ie.MAIN], "build", "bot", timeout=1800)
    seconds = time.monotonic() - t0
    ie.timing("image build (compose build bot, cold)", seconds)
    info = json.loads(ie.podman("image", "inspect", ie.PROJECT_IMAGE).stdout)[0]
    return {"log": res.stdout + res.stderr, "seconds": seconds, "info": info}


# --------------------------------------------------------------------------- check 4: the image

def scan_image_archive(archive: Path, needles: dict[str, set[bytes]]) -> tuple[list[str], int]:
    """Every file in every layer of a ``podman save`` archive (and its JSON) searched for needles."""
    hits, files = [], 0
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()  # type: ignore[union-attr]
            blobs: list[tuple[str, bytes]] = [(member.name, data)]
            if tarfile.is_tarfile(io.BytesIO(data)):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    blobs += [(f"{member.name}:{m.name}", layer.extractfile(m).read())  # type: ignore[union-attr]
                              for m in layer.getmembers() if m.isfile()]
                    blobs += [(f"{member.name}:{m.name}", m.name.encode()) for m in layer.getmembers()]
            for where, blob in blobs:
                files += 1
                for name, forms in needles.items():
                    if any(f in blob for f in forms):
                        hits.append(f"{name} in {where}")
    return hits, files


def test_image_holds_no_secrets_from_the_build_context(image: dict[str, Any], checkout: Path) -> None:
    """Check 4: a canary .env sits in the build context; no layer, file name or config has it."""
    assert CANARIES["BINANCE_SECRET"] in (checkout / ".env").read_text()
    needles = {k: {v.encode() for v in variants(s)} for k, s in CANARIES.items()}
    needles[".env file"] = {b"CANARYKEY", b"image-test canaries"}
    archive = ie.WORK / "image.tar"
    t0 = time.monotonic()
    ie.podman("save", "--format", "docker-archive", "-o", str(archive), ie.PROJECT_IMAGE)
    try:
        hits, files = scan_image_archive(archive, needles)
        size = image["info"]["Size"]
        timed("secret scan of every layer", t0, f"{files} files, image {size / 1e6:.0f} MB")
        assert files > 1000, "the scan saw too little of the image"
        assert hits == []
        # the scanner finds a canary when one is there: the same scan over a layer holding the .env
        probe = ie.WORK / "probe.tar"
        with tarfile.open(probe, "w") as tar:
            tar.add(checkout / ".env", arcname="app/.env")
        assert scan_image_archive(probe, needles)[0], "the layer scan cannot find a planted secret"
        probe.unlink()
    finally:
        archive.unlink(missing_ok=True)


def test_image_metadata_user_healthcheck_and_size(image: dict[str, Any]) -> None:
    info = image["info"]
    assert info["Config"]["User"] == "1000:1000"
    health = info.get("Healthcheck") or info["Config"].get("Healthcheck") or {}
    assert health.get("Test") == ["CMD", "python", "-m", "ethbtc.monitoring.healthcheck"], \
        "HEALTHCHECK lost: build in Docker format (BUILDAH_FORMAT=docker)"
    assert "STEP" in image["log"] and "selftest" in image["log"]
    assert image["info"]["Size"] < 1_500_000_000


def test_code_only_change_rebuilds_from_the_cached_dependency_layer(image: dict[str, Any], checkout: Path) -> None:
    """Check 4: dependencies are their own layer; a code edit does not reinstall them."""
    module = checkout / "ethbtc" / "__init__.py"
    original = module.read_text()
    module.write_text(original + "\n# image-test: a code-only change\n")
    tag = "localhost/ethbtc-imagetest:codechange"
    ie.extra_image(tag)
    t0 = time.monotonic()
    try:
        res = ie.podman("build", "-t", tag, str(checkout), cwd=checkout, timeout=1800)
    finally:
        module.write_text(original)
    timed("image rebuild after a code-only change", t0)
    log = res.stdout + res.stderr
    steps = re.split(r"\nSTEP \d+/\d+: ", "\n" + log)
    pip = [s for s in steps if s.startswith("RUN pip install")]
    code = [s for s in steps if s.startswith("COPY ethbtc/")]
    assert pip and "Using cache" in pip[0], f"dependencies were reinstalled:\n{pip[:1]}"
    assert code and "Using cache" not in code[0], "the code change did not reach the image"
    new = json.loads(ie.podman("image", "inspect", tag).stdout)[0]["RootFS"]["Layers"]
    old = image["info"]["RootFS"]["Layers"]
    shared = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), len(old))
    assert 0 < shared < len(old), "the rebuild shares no dependency layer with the first build"


# --------------------------------------------------------------------------- checks 1-3: paper stack

@pytest.fixture(scope="class")
def paper(image: dict[str, Any]) -> Any:
    """The paper stack, up with every service of the monitoring profile whose image is here."""
    services = ie.startable(PAPER_FILES, PROFILE)
    t0 = time.monotonic()
    ie.compose(PAPER_FILES, "up", "-d", *services, profile=PROFILE)
    timed("paper stack up -d", t0, " ".join(services))
    try:
        yield {"services": services, "up": t0, "up_wall": time.time() - (time.monotonic() - t0)}
    finally:
        ie.compose(PAPER_FILES, "down", "-v", profile=PROFILE, check=False)


def stack_logs(since: float, until: float) -> str:
    """Every service's log lines between two wall-clock times, prefixed like ``compose logs``."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    out = []
    for name in ie.containers():
        res = ie.podman("logs", "--since", time.strftime(fmt, time.gmtime(since)),
                        "--until", time.strftime(fmt, time.gmtime(until)), name, check=False)
        svc = name.removeprefix(f"{ie.PROJECT}_").rsplit("_", 1)[0]
        out += [f"{svc} | {ln}" for ln in (res.stdout + res.stderr).splitlines()]
    return "\n".join(out) + "\n"


class TestPaperStack:
    def test_1a_bot_turns_healthy_by_its_own_healthcheck(self, paper: dict[str, Any]) -> None:
        bot, spec = ie.container("bot"), merged_services(*PAPER_FILES)["bot"]
        test = ie.inspect(bot)["Config"]["Healthcheck"]["Test"]
        assert test == spec["healthcheck"]["test"], (
            "the runtime got another healthcheck than `docker compose` gives the bot (podman-compose "
            f"appends list values of -f overlays, healthcheck.test among them): {test}")
        wait_for("the bot's HEALTHCHECK passing",
                 300, lambda: ie.podman("healthcheck", "run", bot, check=False).returncode == 0, every=5)
        healthy_at = time.time()
        timed("paper: up -> bot healthy", paper["up"])
        assert ie.inspect(bot)["State"]["Health"]["Status"] == "healthy"
        paper["healthy_at"] = healthy_at  # test_1b saves the stack's first healthy minute

    def test_1b_trades_answers_on_the_host_and_is_scraped(self, paper: dict[str, Any]) -> None:
        def metrics() -> tuple[int, str] | None:
            try:
                return http("http://127.0.0.1:9109/metrics")
            except OSError:
                return None  # the bot is still loading its history

        status, body = wait_for("/metrics answering on 127.0.0.1:9109", 180, metrics)
        timed("paper: up -> /metrics answers on the host", paper["up"])
        assert status == 200 and 'mode="testnet"' in body
        status, body = http("http://127.0.0.1:9109/health")
        assert status in (200, 503) and "status" in json.loads(body)

        wait_for("a fill on the simulator", 300, lambda: sim_get("/sim/state")["fills"] >= 1, every=5)
        state_dir = ie.volume_path("paper-state")
        wait_for("a fill in the bot's trade ledger", 120, lambda: csv_rows(state_dir / "trades_log.csv"), every=5)
        timed("paper: up -> first fill in both ledgers", paper["up"])

        # three 503s from the exchange, so the dashboard's error panels have something to show
        # (a clean run has no ethbtc_api_errors_total series at all)
        sim_get("/sim/faults", post={"error_5xx": 1.0, "max_faults": 3})
        prom = HostPrometheus()

        def bot_target_up() -> bool:
            targets = prom.api("targets")["activeTargets"]
            return any(t["labels"].get("instance") == "bot:9109" and t["health"] == "up" for t in targets)

        wait_for("Prometheus (in its container) scraping bot:9109", 120, bot_target_up, every=5)
        t1 = time.monotonic()
        problems: list[str] = []

        def dashboard_has_data() -> bool:
            problems[:] = evaluate_dashboard(prom, "bot:9109", rate_interval="1m")  # type: ignore[arg-type]
            return not problems

        try:
            wait_for("every dashboard query returning data", 180, dashboard_has_data, every=10)
        except AssertionError:
            raise AssertionError("\n".join(problems)) from None
        timed("paper: Prometheus scrape -> every dashboard query has data", t1)
        bot = ie.container("bot")
        assert "Traceback" not in ie.podman("logs", bot).stdout + ie.podman("logs", bot).stderr
        if "healthy_at" in paper:
            time.sleep(max(0.0, paper["healthy_at"] + 61 - time.time()))
            log = ie.WORK / "paper_first_healthy_minute.log"
            log.write_text(stack_logs(paper["healthy_at"], paper["healthy_at"] + 60))
            ie.note(f"the paper stack's first healthy minute: {log}")
            assert ie.podman("healthcheck", "run", bot, check=False).returncode == 0, "healthy no more"

    def test_2_bot_runs_as_uid_1000_on_a_read_only_root(self, paper: dict[str, Any]) -> None:
        bot = ie.container("bot")
        info = ie.inspect(bot)
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        status = ie.podman("exec", bot, "cat", "/proc/1/status").stdout
        pid1 = ie.podman("exec", bot, "cat", "/proc/1/cmdline").stdout
        uids = {ln.split(":")[0]: ln.split()[1:] for ln in status.splitlines() if ln.startswith(("Uid", "Gid"))}
        assert uids["Uid"] == ["1000"] * 4 and uids["Gid"] == ["1000"] * 4, status
        assert "python" in pid1  # the executor itself is PID 1 (or init's child: its uid is checked too)
        procs = ie.podman("top", bot, "user", "args").stdout.splitlines()[1:]
        assert procs and all(p.split()[0] in ("1000", "bot") for p in procs), procs
        write = "import sys\nfor p in sys.argv[1:]:\n  try:\n    open(p, 'w').write('x'); print('wrote', p)\n" \
                "  except OSError as e: print('refused', p, e.strerror)"
        out = ie.podman("exec", bot, "python", "-c", write, "/app/x", "/etc/x", "/x", "/tmp/x", "/data/x").stdout
        assert [ln.split()[:2] for ln in out.splitlines()] == [
            ["refused", "/app/x"], ["refused", "/etc/x"], ["refused", "/x"], ["wrote", "/tmp/x"], ["wrote", "/data/x"]]
        ie.podman("exec", bot, "rm", "-f", "/tmp/x", "/data/x")
        # podman itself adds mount points for /etc/hosts, /etc/hostname, /etc/resolv.conf ("C /etc")
        changed = [ln for ln in ie.podman("diff", bot).stdout.splitlines()
                   if not re.match(r"^[ACD] /(data|tmp)(/|$)", ln)
                   and not re.match(r"^([AC] /etc/(hosts|hostname|resolv\.conf)|C /etc|[AC] /run(/\.containerenv)?)$", ln)]
        assert changed == [], f"the bot changed its root file system: {changed}"

    def test_3_down_then_up_resumes_the_session(self, paper: dict[str, Any]) -> None:
        state_dir = ie.volume_path("paper-state")
        bot = ie.container("bot")
        grace = merged_services(*PAPER_FILES)["bot"]["stop_grace_period"]
        wait_for("an order to rest or fill", 240, lambda: sim_get("/sim/state")["openOrders"] or
                 len(csv_rows(state_dir / "trades_log.csv")) >= 2, every=2)
        before = json.loads((state_dir / "state.json").read_text())
        decided = len(csv_rows(state_dir / "decisions_log.csv"))

        t0 = time.monotonic()
        # = the first half of `down` (podman stop -t <stop_grace_period>, SIGTERM); --verbose shows the call
        res = ie.compose(PAPER_FILES, "--verbose", "stop", "bot", profile=PROFILE)
        timed("paper: stop bot (SIGTERM)", t0)
        assert re.search(rf"'stop', '-t', '{int(grace.rstrip('s'))}'|stop -t {int(grace.rstrip('s'))}\b",
                         res.stdout + res.stderr), (res.stdout + res.stderr)[-2000:]
        info = ie.inspect(bot)
        assert info["State"]["ExitCode"] == 0, ie.podman("logs", "--tail", "20", bot).stderr
        assert sim_get("/sim/state")["openOrders"] == 0, "an order was left open on the exchange"
        saved = json.loads((state_dir / "state.json").read_text())
        assert saved["session_start_W"] == before["session_start_W"]
        assert saved["last_bar_open_ms"] >= before["last_bar_open_ms"]
        ie.compose(PAPER_FILES, "down", "bot", profile=PROFILE)
        assert ie.containers("bot") == []

        t0 = time.monotonic()
        ie.compose(PAPER_FILES, "up", "-d", "--no-deps", "bot", profile=PROFILE)
        wait_for("three more bars decided after up", 180,
                 lambda: len(csv_rows(state_dir / "decisions_log.csv")) >= decided + 3, every=3)
        timed("paper: up bot again -> 3 bars decided", t0)
        logs = ie.podman("logs", ie.container("bot")).stdout + ie.podman("logs", ie.container("bot")).stderr
        assert "new session" not in logs, "up started a new session instead of resuming"
        ie.compose(PAPER_FILES, "stop", "bot", profile=PROFILE)
        after = json.loads((state_dir / "state.json").read_text())
        assert (after["session_start_W"], after["session_start_time"]) == \
            (before["session_start_W"], before["session_start_time"])
        bars = [r["bar_open_ms"] for r in csv_rows(state_dir / "decisions_log.csv")]
        assert len(bars) == len(set(bars)), "a bar was decided twice across the restart"
        assert bars == sorted(bars, key=int)
        ours = [int(r["trade_id"]) for r in csv_rows(state_dir / "trades_log.csv")]
        theirs = [f["tradeId"] for f in sim_get("/sim/ledger")]
        assert ours and ours == theirs, "trade ledger != the simulator's fills"
        assert sim_get("/sim/state")["openOrders"] == 0


# --------------------------------------------------------------------------- check 5: main stack

@pytest.fixture(scope="class")
def main_stack(image: dict[str, Any]) -> Any:
    """docker-compose.yml (MODE=dry from .env.example) with the containers' resolver pointing
    at an address nothing answers on: what a machine with its uplink down sees."""
    t0 = time.monotonic()
    ie.compose([ie.MAIN], "--podman-run-args=--dns=127.0.0.1", "up", "-d", "bot")
    timed("main stack up -d (dry, offline)", t0)
    try:
        yield t0
    finally:
        ie.compose([ie.MAIN], "down", "-v", check=False)


class TestMainStackOffline:
    def test_5_dry_mode_without_internet_fails_cleanly_and_restarts(self, main_stack: float) -> None:
        bot = ie.container("bot")
        assert ie.inspect(bot)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        wait_for("the bot's container restarting after a failed start", 180,
                 lambda: ie.inspect(bot)["RestartCount"] >= 1, every=3)
        timed("main: up -> first restart", main_stack)
        res = ie.podman("logs", bot)
        lines = (res.stdout + res.stderr).splitlines()
        assert not [ln for ln in lines if "Traceback" in ln or ln.startswith("  File ")], lines[-30:]
        errors = [ln for ln in lines if ln.startswith("error:")]
        # one error line per failed start, naming the endpoint it could not reach
        assert errors and len(errors) >= ie.inspect(bot)["RestartCount"] - 1, lines[-30:]
        assert "api.binance.com" in errors[0], errors[0]
        ie.note(f"main stack offline, logs bot: {errors[0][:300]}")
