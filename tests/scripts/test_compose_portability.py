"""The compose files mean the same to Docker Compose v2 and to podman-compose (issue 16).

podman-compose (what ``make image-test`` runs) merges ``-f`` overlays with its own rule: list
values are appended, only ``command``/``entrypoint`` are replaced and ``volumes`` de-duplicated by
container path, where Docker Compose replaces e.g. ``healthcheck.test``. An overlay repeating such
a list gives podman users a broken service (seen: the paper bot's healthcheck became
``python -m ethbtc.monitoring.healthcheck CMD python -m ethbtc.monitoring.healthcheck --url ...``). This runs
podman-compose's own merge (``normalize`` + ``rec_merge``, no engine needed) beside the Docker
merge of tests/support/compose_model.py and compares what each service gets.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.support.compose_model import ROOT, merged_services

podman_compose = pytest.importorskip("podman_compose", reason="podman-compose not installed (requirements-dev.txt)")

OVERLAYS = [("docker-compose.yml", "docker-compose.paper.yml")]
# keys whose merged value the container gets as is (build/depends_on/logging are normalised differently
# by the two tools but mean the same)
COMPARED = ("command", "entrypoint", "healthcheck", "user", "environment", "read_only", "tmpfs",
            "stop_grace_period", "restart", "image", "init", "profiles", "ports")


def podman_merge(*names: str) -> dict[str, dict[str, Any]]:
    merged: dict[str, Any] = {}
    for name in names:
        doc = podman_compose.normalize(yaml.safe_load((ROOT / name).read_text()))
        podman_compose.rec_merge(merged, doc)
    return merged["services"]


def volume_targets(spec: dict[str, Any]) -> set[str]:
    return {v.split(":")[1] + "=" + v.split(":")[0] for v in spec.get("volumes", [])}


@pytest.mark.parametrize("files", OVERLAYS, ids=["+".join(f) for f in OVERLAYS])
def test_overlay_merges_alike_in_docker_compose_and_podman_compose(files: tuple[str, ...]) -> None:
    docker, podman = merged_services(*files), podman_merge(*files)
    assert docker.keys() == podman.keys()
    differ = []
    for svc, spec in docker.items():
        for key in COMPARED:
            if key in spec or key in podman[svc]:
                ours = spec.get(key)
                theirs = podman[svc].get(key)
                if isinstance(ours, dict) and isinstance(theirs, dict) and key == "environment":
                    theirs = {k: v for k, v in theirs.items()}
                if ours != theirs:
                    differ.append(f"{svc}.{key}: docker compose {ours!r}, podman-compose {theirs!r}")
        if volume_targets(spec) != volume_targets(podman[svc]):
            differ.append(f"{svc}.volumes: {sorted(volume_targets(spec))} vs {sorted(volume_targets(podman[svc]))}")
    assert differ == [], "an overlay repeats a list podman-compose appends:\n" + "\n".join(differ)


def test_the_comparison_catches_a_repeated_healthcheck_test(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trap itself: an overlay that sets healthcheck.test again is concatenated by podman-compose."""
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    overlay = {"services": {"bot": {"healthcheck": {"test": copy.deepcopy(base["services"]["bot"]["healthcheck"]["test"])}}}}
    merged: dict[str, Any] = {}
    for doc in (base, overlay):
        podman_compose.rec_merge(merged, podman_compose.normalize(copy.deepcopy(doc)))
    test = merged["services"]["bot"]["healthcheck"]["test"]
    assert test == base["services"]["bot"]["healthcheck"]["test"] * 2
