"""The container runtime behind ``make image-test`` (issue 16): podman (runc) + podman-compose.

``python -m tests.support.image_env`` is ``make image-test``: it installs what is missing (podman, runc,
debootstrap from Debian; podman-compose comes with requirements-dev.txt), makes the base images
the Dockerfile and the compose files name -- pulled when a registry answers, else built as
stand-ins from Debian packages (one line says so) --, runs ``tests/scripts/test_image_stacks.py``
(``ETHBTC_IMAGE_TEST=1``) and removes every container, volume, network and image tag it created,
then prints its timings. ``python -m tests.support.image_env cleanup`` removes what an interrupted run left.

Where containers cannot run (not root, no runtime) it prints why in one line and exits 1, or 0
when ``IMAGE_TEST=skip`` is set.

Stand-ins (only when the real image cannot be pulled):

- ``python:3.11-slim-bookworm``: ``debootstrap --variant=minbase`` of bookworm with python3, pip
  and venv, ``python``/``pip`` linked in /usr/local/bin like the real image, pip allowed to install
  system-wide, the host's CA bundle (so pip in the build reaches the package index through the
  same proxy as the host). The root file system tar is cached in ``IMAGE_TEST_CACHE`` (default
  ``~/.cache/ethbtc-image-test``) for 7 days, keyed by this recipe and the CA bundle, written
  atomically; it holds only Debian packages and public certificates.
- ``prom/prometheus``, ``prom/alertmanager``: that base plus Debian's ``prometheus`` /
  ``prometheus-alertmanager`` package, run as ``nobody`` like the real images.
- ``grafana/grafana-oss``: no Debian package; not started (its provisioning stays checked
  statically by tests/scripts/test_packaging.py).

The compose stacks run in a copy of the checkout (tracked and untracked-but-not-ignored files)
under ``IMAGE_TEST_WORK``, so the user's ``.env`` and ``run_state/`` are never touched and the
build context can hold a canary ``.env``; the compose project is ``ethbtc-imagetest``, never the
user's ``ethbtc``.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / ".ci" / "containers.conf"
PROJECT = "ethbtc-imagetest"
PROJECT_IMAGE = "localhost/ethbtc:local"
BASE = "docker.io/library/python:3.11-slim-bookworm"
MAIN = "docker-compose.yml"
PAPER = "docker-compose.paper.yml"
WORK = Path(os.environ.get("IMAGE_TEST_WORK", "/var/tmp/ethbtc-image-test"))
CACHE = Path(os.environ.get("IMAGE_TEST_CACHE", Path.home() / ".cache" / "ethbtc-image-test"))
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CACHE_DAYS = 7
STANDIN_LABEL = "org.ethbtc.image-test.standin"
APT_TOOLS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
# Debian package, program, data folder, default flags: the real image's ENTRYPOINT/CMD/VOLUME.
DEBIAN_STANDINS = {
    "docker.io/prom/prometheus": ("prometheus", "/usr/bin/prometheus", "/prometheus",
                                  ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]),
    "docker.io/prom/alertmanager": ("prometheus-alertmanager", "/usr/bin/prometheus-alertmanager", "/alertmanager",
                                    ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]),
}
# Bump when the base recipe below changes: the cached root file system is then rebuilt.
BASE_RECIPE = "debootstrap minbase bookworm python3,python3-pip,python3-venv; v1"


class CannotRun(Exception):
    """Containers cannot run here; the message is the one line that says why."""


def say(line: str) -> None:
    print(f"image-test: {line}", flush=True)


# --------------------------------------------------------------------------- podman, compose

def env() -> dict[str, str]:
    """The environment for podman and podman-compose: our containers.conf, Docker image format
    (an OCI image drops the Dockerfile's HEALTHCHECK)."""
    return {**os.environ, "CONTAINERS_CONF": str(CONF), "BUILDAH_FORMAT": "docker"}


def podman(*args: str, check: bool = True, timeout: float = 600, **kw: Any) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["podman", *args], env=env(), capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} -> {res.returncode}: {res.stderr.strip()[-2000:]}")
    return res


def compose_argv(files: Sequence[str], *args: str, profile: str | None = None) -> list[str]:
    """``podman-compose -p ethbtc-imagetest -f a -f b [--profile p] args`` (as ``docker compose``)."""
    argv = [sys.executable, "-m", "podman_compose", "-p", PROJECT]
    for f in files:
        argv += ["-f", f]
    if profile:
        argv += ["--profile", profile]
    return [*argv, *args]


def compose(files: Sequence[str], *args: str, profile: str | None = None, check: bool = True,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(compose_argv(files, *args, profile=profile), cwd=WORK / "checkout", env=env(),
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(f"podman-compose {' '.join(args)} -> {res.returncode}:\n{res.stdout[-3000:]}\n"
                           f"{res.stderr[-3000:]}")
    return res


def containers(service: str | None = None, all_: bool = True) -> list[str]:
    """Names of this project's containers (optionally of one compose service)."""
    args = ["ps", "--format", "{{.Names}}", "--filter", f"label=io.podman.compose.project={PROJECT}"]
    if service:
        args += ["--filter", f"label=com.docker.compose.service={service}"]
    if all_:
        args.append("-a")
    return podman(*args).stdout.split()


def container(service: str) -> str:
    names = containers(service)
    if len(names) != 1:
        raise RuntimeError(f"expected one container of service {service!r}, found {names}")
    return names[0]


def inspect(name: str) -> dict[str, Any]:
    return json.loads(podman("inspect", name).stdout)[0]


def volume_path(volume: str) -> Path:
    return Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", f"{PROJECT}_{volume}").stdout.strip())


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref, check=False).returncode == 0


# --------------------------------------------------------------------------- records

def _records_file() -> Path:
    return WORK / "records.json"


def records() -> dict[str, Any]:
    try:
        return json.loads(_records_file().read_text())
    except (OSError, ValueError):
        return {"images": [], "timings": [], "notes": []}


def _save(rec: dict[str, Any]) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = _records_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    tmp.replace(_records_file())


def created_image(ref: str) -> None:
    rec = records()
    if ref not in rec["images"]:
        rec["images"].append(ref)
    _save(rec)


def timing(what: str, seconds: float, note: str = "") -> None:
    rec = records()
    rec["timings"].append({"what": what, "seconds": round(seconds, 1), "note": note})
    _save(rec)


def note(text: str) -> None:
    rec = records()
    rec["notes"].append(text)
    _save(rec)


# --------------------------------------------------------------------------- tools and preflight

def install_tools() -> None:
    """podman, runc, debootstrap from Debian and podman-compose from PyPI, when missing."""
    if os.geteuid() != 0:
        raise CannotRun("not root: podman runs rootful here (rootless needs subuid/subgid ranges and user "
                        "namespaces); run as root, or set IMAGE_TEST=skip")
    missing = [pkg for prog, pkg in APT_TOOLS.items() if shutil.which(prog) is None]
    if missing:
        say(f"installing {' '.join(missing)} (apt-get)")
        res = subprocess.run(["sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                              + " ".join(missing)], capture_output=True, text=True)
        if res.returncode != 0:
            raise CannotRun(f"could not install {' '.join(missing)} with apt-get: "
                            f"{(res.stderr.strip().splitlines() or ['?'])[-1]}")
    if importlib.util.find_spec("podman_compose") is None:
        say("installing podman-compose (pip, requirements-dev.txt)")
        res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "podman-compose>=1.2,<2"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise CannotRun(f"could not install podman-compose: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    res = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False)
    if res.returncode != 0:
        raise CannotRun(f"podman cannot start: {(res.stderr.strip().splitlines() or ['?'])[-1]}")


def probe_runtime() -> None:
    """Run one container from the base image: the runtime, cgroups, rlimits and storage work."""
    res = podman("run", "--rm", "--network", "none", BASE, "python3", "-c", "print('ok')", check=False, timeout=120)
    if res.returncode != 0 or "ok" not in res.stdout:
        raise CannotRun(f"containers cannot run here: {(res.stderr.strip().splitlines() or ['?'])[-1]}")


# --------------------------------------------------------------------------- base images

def qualify(ref: str) -> str:
    """Docker's reading of an image name: ``prom/prometheus:v2`` = ``docker.io/prom/prometheus:v2``."""
    name = ref.split("@")[0]
    first = name.split("/")[0]
    if "/" not in name:
        return f"docker.io/library/{ref}"
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"


def compose_images(files: Iterable[str] = (MAIN, PAPER)) -> dict[str, list[str]]:
    """Image -> services using it, for every service that does not build the project image."""
    out: dict[str, list[str]] = {}
    for name in files:
        doc = yaml.safe_load((ROOT / name).read_text())
        for svc, spec in (doc.get("services") or {}).items():
            if spec.get("image") and "build" not in spec and not spec["image"].startswith("ethbtc:"):
                out.setdefault(qualify(spec["image"]), []).append(svc)
    return out


def try_pull(ref: str) -> str | None:
    """None when pulled, else the registry's one-line reason."""
    try:
        res = podman("pull", "-q", ref, check=False, timeout=120)
    except subprocess.TimeoutExpired:
        return "no answer from the registry in 120 s"
    if res.returncode == 0:
        return None
    line = (res.stderr.strip().splitlines() or ["?"])[-1]
    return line if len(line) <= 140 else "..." + line[-120:]  # the end names the cause


def _base_tar() -> Path:
    key = hashlib.sha256(BASE_RECIPE.encode() + MIRROR.encode() + CA_BUNDLE.read_bytes()).hexdigest()[:16]
    return CACHE / f"python-3.11-slim-bookworm-{key}.tar"


def build_python_base() -> str:
    """The debootstrap stand-in for python:3.11-slim-bookworm; returns how it was made."""
    tar = _base_tar()
    fresh = tar.is_file() and time.time() - tar.stat().st_mtime < CACHE_DAYS * 86400
    how = f"root file system cached {time.strftime('%Y-%m-%d %H:%M', time.gmtime(tar.stat().st_mtime))}" \
        if fresh else "debootstrap"
    if not fresh:
        CACHE.mkdir(parents=True, exist_ok=True)
        for old in CACHE.glob("python-3.11-slim-bookworm-*.tar*"):
            old.unlink()
        tmp = Path(tempfile.mkdtemp(prefix="ethbtc-debootstrap-", dir="/var/tmp"))
        try:
            root = tmp / "root"
            res = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,python3-venv",
                                  "bookworm", str(root), MIRROR], capture_output=True, text=True, timeout=1200)
            if res.returncode != 0:
                raise CannotRun(f"debootstrap failed: {(res.stdout + res.stderr).strip().splitlines()[-1]}")
            (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
            for name, target in (("python", "/usr/bin/python3"), ("pip", "/usr/bin/pip3")):
                (root / "usr/local/bin" / name).unlink(missing_ok=True)
                (root / "usr/local/bin" / name).symlink_to(target)
            shutil.copyfile(CA_BUNDLE, root / "etc/ssl/certs/ca-certificates.crt")
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for p in (root / junk).glob("*"):
                    if p.is_file():
                        p.unlink()
            part = tar.with_suffix(".tar.part")
            subprocess.run(["tar", "-C", str(root), "-cf", str(part), "."], check=True, timeout=600)
            part.replace(tar)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    podman("import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]',
           "--change", f"LABEL {STANDIN_LABEL}=debootstrap", str(tar), BASE)
    return how


def build_debian_standin(ref: str) -> None:
    repo = ref.rsplit(":", 1)[0]
    package, program, data, flags = DEBIAN_STANDINS[repo]
    with tempfile.TemporaryDirectory(prefix="ethbtc-standin-") as tmp:
        (Path(tmp) / "Containerfile").write_text(
            f"FROM {BASE}\n"
            f"RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
            f"{package} >/dev/null && rm -rf /var/lib/apt/lists/* && mkdir -p {data} && chown nobody:nogroup {data}\n"
            f"LABEL {STANDIN_LABEL}=debian-{package}\n"
            f"USER nobody\nWORKDIR {data}\nVOLUME [\"{data}\"]\n"
            f"ENTRYPOINT [\"{program}\"]\nCMD {json.dumps(flags)}\n")
        podman("build", "-q", "-t", ref, tmp, timeout=900)


def ensure_images() -> list[str]:
    """Every base image the Dockerfile and compose files need; returns the ones that cannot be had."""
    unavailable = []
    wanted = [BASE, *compose_images()]
    for ref in wanted:
        if image_exists(ref):
            continue
        t0 = time.monotonic()
        reason = try_pull(ref)
        if reason is None:
            created_image(ref)
            timing(f"pull {ref}", time.monotonic() - t0)
            continue
        repo = ref.rsplit(":", 1)[0]
        if ref == BASE:
            say(f"{ref} cannot be pulled ({reason}); building a stand-in from Debian packages (debootstrap)")
            how = build_python_base()
        elif repo in DEBIAN_STANDINS:
            if not image_exists(BASE):
                raise CannotRun(f"no base image {BASE} for the {ref} stand-in")
            say(f"{ref} cannot be pulled ({reason}); building a stand-in from Debian's "
                f"{DEBIAN_STANDINS[repo][0]} package")
            build_debian_standin(ref)
            how = f"Debian {DEBIAN_STANDINS[repo][0]}"
        else:
            say(f"{ref} cannot be pulled ({reason}) and has no Debian package: its services "
                f"({', '.join(compose_images()[ref])}) are not started")
            note(f"{ref}: not available, services not started")
            unavailable.append(ref)
            continue
        created_image(ref)
        timing(f"stand-in {ref}", time.monotonic() - t0, how)
    return unavailable


def startable(files: Sequence[str], profile: str | None) -> list[str]:
    """Services of the merged files (with the profile) whose images are here: all but Grafana today."""
    services: dict[str, dict[str, Any]] = {}
    for name in files:
        for svc, spec in (yaml.safe_load((ROOT / name).read_text()).get("services") or {}).items():
            services.setdefault(svc, {}).update(spec)
    out = []
    for svc, spec in services.items():
        if spec.get("profiles") and profile not in spec["profiles"]:
            continue
        image = spec.get("image", "")
        if "build" in spec or image.startswith("ethbtc:") or image_exists(qualify(image)):
            out.append(svc)
    return out


# --------------------------------------------------------------------------- work copy, cleanup

def make_checkout(env_text: str) -> Path:
    """A copy of the checkout (what git would commit, uncommitted edits included) with ``.env``."""
    dest = WORK / "checkout"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode == 0:
        files = [f for f in listed.stdout.split("\0") if f and (ROOT / f).is_file()]
        for f in files:
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    else:
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", ".venv", "data", "out", "__pycache__", ".*cache"))
    (dest / ".env").write_text(env_text)
    (dest / ".env").chmod(0o600)
    run_state = dest / "run_state"
    run_state.mkdir(exist_ok=True)
    os.chown(run_state, 1000, 1000)  # BOT_UID:BOT_GID of .env.example, as the README asks
    return dest


def cleanup() -> list[str]:
    """Remove this project's containers, volumes and networks and the image tags this tool created."""
    done = []
    for _ in range(3):  # --depend: compose's depends_on made containers that require others
        names = containers()
        if not names:
            break
        podman("rm", "-f", "--depend", "-t", "5", *names, check=False)
        done += [f"container {n}" for n in names if n not in containers()]
    vols = podman("volume", "ls", "-q", "--filter", f"label=io.podman.compose.project={PROJECT}", check=False)
    for vol in vols.stdout.split():
        podman("volume", "rm", "-f", vol, check=False)
        done.append(f"volume {vol}")
    nets = podman("network", "ls", "--format", "{{.Name}}", check=False).stdout.split()
    for net in nets:
        if net.startswith(f"{PROJECT}_"):
            podman("network", "rm", "-f", net, check=False)
            done.append(f"network {net}")
    rec = records()
    # stand-ins carry our label: also those of an interrupted run that had not recorded them yet
    labelled = podman("images", "--filter", f"label={STANDIN_LABEL}", "--format", "{{.Repository}}:{{.Tag}}",
                      check=False).stdout.split()
    for ref in dict.fromkeys([PROJECT_IMAGE, *rec.get("extra_images", []), *reversed(rec["images"]),
                              *sorted(labelled, key=lambda r: r == BASE)]):
        if image_exists(ref) and podman("rmi", "-f", ref, check=False).returncode == 0:
            done.append(f"image {ref}")
    removed = []
    while True:  # untagged build-cache images this run made; parents turn dangling once children go
        round_ = [i for i in dangling_images() if i not in set(rec.get("dangling_before", []))
                  and podman("rmi", i, check=False).returncode == 0]
        removed += round_
        if not round_:
            break
    if removed:
        done.append(f"{len(removed)} untagged build-cache images")
    rec["images"], rec["extra_images"] = [], []
    _save(rec)
    return done


def dangling_images() -> list[str]:
    return podman("images", "-a", "-q", "--no-trunc", "--filter", "dangling=true", check=False).stdout.split()


def extra_image(ref: str) -> None:
    """An image tag a test made (besides ethbtc:local); removed by cleanup."""
    rec = records()
    rec.setdefault("extra_images", []).append(ref)
    _save(rec)


# --------------------------------------------------------------------------- make image-test

def run(argv: Sequence[str]) -> int:
    skip_ok = os.environ.get("IMAGE_TEST", "") == "skip"
    t_start = time.monotonic()
    try:
        install_tools()
    except CannotRun as exc:
        say(f"{exc}{' (IMAGE_TEST=skip: not failing)' if skip_ok else ''}")
        return 0 if skip_ok else 1
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            say(f"another make image-test is running on this machine ({WORK / 'lock'})")
            return 1
        return _locked_run(argv, skip_ok, t_start)


def _locked_run(argv: Sequence[str], skip_ok: bool, t_start: float) -> int:
    try:
        cleanup()  # what an interrupted run left
        rec = records()
        rec.update(timings=[], notes=[], dangling_before=dangling_images())
        _save(rec)
        ensure_images()
        probe_runtime()
    except CannotRun as exc:
        say(f"{exc}{' (IMAGE_TEST=skip: not failing)' if skip_ok else ''}")
        cleanup_quietly()
        return 0 if skip_ok else 1
    pytest_env = {**os.environ, "ETHBTC_IMAGE_TEST": "1"}
    try:
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", "--tb=short",
                              str(ROOT / "tests" / "scripts" / "test_image_stacks.py"), *argv], cwd=ROOT, env=pytest_env)
    finally:
        t0 = time.monotonic()
        removed = cleanup()
        shutil.rmtree(WORK / "checkout", ignore_errors=True)  # the copy with the canary .env
        timing("cleanup", time.monotonic() - t0, f"{len(removed)} removed")
    rec = records()
    say("timings:")
    for t in rec["timings"]:
        print(f"  {t['seconds']:7.1f} s  {t['what']}{'  (' + t['note'] + ')' if t['note'] else ''}")
    print(f"  {time.monotonic() - t_start:7.1f} s  total")
    for n in rec["notes"]:
        print(f"  note: {n}")
    left = containers() + [v for v in podman("volume", "ls", "-q").stdout.split() if v.startswith(PROJECT)]
    if left:
        say(f"left behind: {left}")
        return 1
    return res.returncode


def cleanup_quietly() -> None:
    try:
        cleanup()
    except (RuntimeError, OSError, subprocess.SubprocessError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["cleanup"]:
        for line in cleanup():
            print(f"removed {line}")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
