"""Issue 21, the compose side without a container engine: who can reach the monitoring, and
Grafana's admin password. (The real Alertmanager routing is proven in test_alert_routing.py.)"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.support.compose_model import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_published_port_is_on_loopback_only() -> None:
    published = {name: svc["ports"] for name, svc in SERVICES.items() if svc.get("ports")}
    assert {"bot", "prometheus", "grafana", "alertmanager"} <= set(published)
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host"


def test_alertmanager_runs_the_rendered_config_in_the_monitoring_profile() -> None:
    am, render = SERVICES["alertmanager"], SERVICES["alertmanager-config"]
    assert am["profiles"] == ["monitoring"] and render["profiles"] == ["monitoring"]
    assert am["depends_on"]["alertmanager-config"]["condition"] == "service_completed_successfully"
    out = render["command"][render["command"].index("--out") + 1]
    (volume, mount, _ro), = [v.split(":") for v in am["volumes"] if v.startswith("alertmanager-config:")]
    assert f"--config.file={mount}/{out.rsplit('/', 1)[1]}" in am["command"]
    assert any(v == f"{volume}:{out.rsplit('/', 1)[0]}" for v in render["volumes"])
    assert render["env_file"] == ".env"  # the channels' secrets come from .env only
    assert SERVICES["bot"]["environment"]["ALERTMANAGER_URL"] == "http://alertmanager:9093"


def test_bot_metrics_reachable_by_prometheus_inside_compose_only() -> None:
    """Bare metal defaults to 127.0.0.1; the container listens on 0.0.0.0 whatever .env says, and the
    host publishes it on 127.0.0.1 (test above)."""
    from ethbtc.monitoring.metrics_server import DEFAULT_ADDR

    assert DEFAULT_ADDR == "127.0.0.1"
    assert SERVICES["bot"]["environment"]["METRICS_ADDR"] == "0.0.0.0"
    assert "METRICS_ADDR=0.0.0.0" in (ROOT / "Dockerfile").read_text()


def _grafana_guard() -> list[str]:
    entry = SERVICES["grafana"]["entrypoint"]
    assert entry[:2] == ["sh", "-c"]
    return ["sh", "-c", entry[2].replace("$$", "$").replace("/run.sh", "echo started"), *entry[3:]]


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_grafana_refuses_to_start_without_an_admin_password() -> None:
    env = SERVICES["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}", "no default password (admin)"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer" and env["GF_USERS_VIEWERS_CAN_EDIT"] == "false"
    refused = subprocess.run(_grafana_guard(), env={"GF_SECURITY_ADMIN_PASSWORD": ""}, capture_output=True,
                             text=True, timeout=10)
    assert refused.returncode == 1 and "set GRAFANA_ADMIN_PASSWORD in .env" in refused.stderr
    assert "started" not in refused.stdout
    ok = subprocess.run(_grafana_guard(), env={"GF_SECURITY_ADMIN_PASSWORD": "s3cret"}, capture_output=True,
                        text=True, timeout=10)
    assert ok.returncode == 0 and ok.stdout.strip() == "started", ok.stderr


def test_env_example_configures_no_channel() -> None:
    """.env.example: no channel = no notifications; no default Grafana password."""
    values = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "ALERT_EMAIL_TO", "SMTP_PASSWORD", "ALERT_WEBHOOK_URL",
                 "GRAFANA_ADMIN_PASSWORD"):
        assert values[name] == "", name
