"""tests/support/image_env.py without a container runtime: the one-line refusal, IMAGE_TEST=skip, image
names read like Docker does, the base images the compose files need (issue 16)."""

from __future__ import annotations

import pytest

from tests.support import image_env


def test_without_root_it_says_why_in_one_line_and_fails(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(image_env.os, "geteuid", lambda: 1000)
    monkeypatch.delenv("IMAGE_TEST", raising=False)
    assert image_env.run([]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("image-test: not root") and "IMAGE_TEST=skip" in out[0]


def test_image_test_skip_turns_the_refusal_into_a_pass(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(image_env.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("IMAGE_TEST", "skip")
    assert image_env.run([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].endswith("(IMAGE_TEST=skip: not failing)")


@pytest.mark.parametrize(("ref", "full"), [
    ("python:3.11-slim-bookworm", "docker.io/library/python:3.11-slim-bookworm"),
    ("prom/prometheus:v2.53.2", "docker.io/prom/prometheus:v2.53.2"),
    ("quay.io/prometheus/prometheus:v2", "quay.io/prometheus/prometheus:v2"),
    ("localhost/ethbtc:local", "localhost/ethbtc:local"),
    ("registry:5000/x/y:1", "registry:5000/x/y:1"),
])
def test_image_names_qualify_like_docker(ref: str, full: str) -> None:
    assert image_env.qualify(ref) == full


def test_compose_files_name_every_third_party_image_and_the_project_builds_the_rest() -> None:
    images = image_env.compose_images()
    assert "docker.io/prom/prometheus:v2.53.2" in images and images["docker.io/prom/prometheus:v2.53.2"] == ["prometheus"]
    assert not [i for i in images if "ethbtc" in i]
    standins = {ref for ref in images if ref.rsplit(":", 1)[0] in image_env.DEBIAN_STANDINS}
    assert "docker.io/prom/prometheus:v2.53.2" in standins
