"""docker-compose.yml stays in step with the settings in shoplink.config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shoplink.config import Settings, documented_variables

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
REQUIRED = ("SHOPLINK_DATABASE_URL", "SHOPLINK_REDIS_URL")

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}, $VAR and $$ (compose syntax).
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def _load() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _service(name: str) -> dict[str, Any]:
    service = _load()["services"][name]
    assert isinstance(service, dict)
    return service


def _app_environment(name: str = "app") -> dict[str, str]:
    """A service's environment as written (list or mapping form), values uninterpolated."""
    raw = _service(name).get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) for item in raw)
        return {key: (rest[0] if rest else "") for key, *rest in pairs}
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def _interpolate(value: str) -> str:
    """Resolve compose interpolation as if no variable were set; required ones get a stand-in."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("op") in ("-", ":-"):
            return match.group("arg")
        if match.group("op") in ("?", ":?"):
            return "required-value-supplied-by-the-operator"
        return ""

    return _INTERPOLATION.sub(replace, value)


def test_services_exist() -> None:
    services = _load()["services"]
    assert {"app", "count", "postgres", "redis"} <= set(services)
    assert _service("postgres")["image"].startswith("postgres:15")
    assert _service("redis")["image"].startswith("redis:7")
    assert _service("app").get("build")


SHOPLINK_SERVICES = ("app", "count")


def _duration_s(value: str) -> float:
    """A compose duration such as 30s, 1m30s or 1m."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, value
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("name", SHOPLINK_SERVICES)
def test_app_variables_are_documented(name: str) -> None:
    documented = set()
    for variable, _default, _doc, has_file_variant in documented_variables():
        documented.add(variable)
        if has_file_variant:
            documented.add(f"{variable}_FILE")
    used = {key for key in _app_environment(name) if key.startswith("SHOPLINK_")}
    assert used, f"{name} sets no SHOPLINK_* variables"
    assert used <= documented, f"not in shoplink.config: {sorted(used - documented)}"


@pytest.mark.parametrize("name", SHOPLINK_SERVICES)
def test_app_sets_required_variables(name: str) -> None:
    env = _app_environment(name)
    for variable in REQUIRED:
        assert env.get(variable) or env.get(f"{variable}_FILE"), f"{name} does not set {variable}"


@pytest.mark.parametrize("name", SHOPLINK_SERVICES)
def test_app_urls_point_at_compose_services(name: str) -> None:
    env = {key: _interpolate(value) for key, value in _app_environment(name).items()}
    assert urlsplit(env["SHOPLINK_DATABASE_URL"]).hostname == "postgres"
    assert urlsplit(env["SHOPLINK_REDIS_URL"]).hostname == "redis"
    assert Settings.from_env(env), "not valid settings"


def test_app_environment_is_valid_settings() -> None:
    env = {key: _interpolate(value) for key, value in _app_environment().items()}
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0"
    assert not settings.uses_default_secret
    mounts = [str(volume).split(":")[1] for volume in _service("app").get("volumes", [])]
    assert str(settings.media_dir) in mounts, "SHOPLINK_MEDIA_DIR is not on a volume"


def test_secret_key_is_not_hardcoded() -> None:
    value = _app_environment().get("SHOPLINK_SECRET_KEY", "${")
    assert value.startswith("${"), "SHOPLINK_SECRET_KEY must come from the operator's environment"


def test_app_migrates_and_waits_for_healthy_dependencies() -> None:
    app = _service("app")
    command = app["command"]
    words = command.split() if isinstance(command, str) else list(command)
    assert words[:2] == ["shoplink", "serve"] and "--migrate" in words
    depends_on = app["depends_on"]
    for name in ("postgres", "redis"):
        assert depends_on[name]["condition"] == "service_healthy"
        assert _service(name).get("healthcheck"), f"{name} has no healthcheck"


def test_app_runs_several_workers_and_keeps_its_spool() -> None:
    env = {key: _interpolate(value) for key, value in _app_environment().items()}
    assert "SHOPLINK_WORKERS" in env, "the app does not choose its number of server processes"
    settings = Settings.from_env(env)
    assert settings.workers >= 1
    mounts = {str(volume).split(":")[1]: str(volume).split(":")[0] for volume in _service("app")["volumes"]}
    # a named volume (not the container's layer): spooled clicks outlive the container
    assert mounts.get(str(settings.spool_dir)) in _load()["volumes"], "SHOPLINK_SPOOL_DIR is not on a volume"


@pytest.mark.parametrize("name", SHOPLINK_SERVICES)
def test_shoplink_processes_get_time_to_drain_and_an_init(name: str) -> None:
    service = _service(name)
    # SIGTERM drains: requests finish, click buffers flush (the server waits up to 10 s for requests)
    assert _duration_s(service["stop_grace_period"]) >= 30
    assert service.get("init") is True, "PID 1 would neither reap nor forward signals"


def test_count_worker_runs_after_the_database_is_migrated() -> None:
    count = _service("count")
    command = count["command"]
    words = command.split() if isinstance(command, str) else list(command)
    assert words == ["shoplink", "count"]
    assert "ports" not in count, "the count worker serves nothing"
    # the app migrates at start; it is healthy (GET /readyz) only once it serves, so after that
    assert count["depends_on"]["app"]["condition"] == "service_healthy"
    assert count["depends_on"]["redis"]["condition"] == "service_healthy"
    test = " ".join(_service("app")["healthcheck"]["test"])
    assert "/readyz" in test and ":8080" in test


def test_redis_keeps_the_streams_across_a_restart() -> None:
    command = _service("redis")["command"]
    words = command.split() if isinstance(command, str) else list(command)
    assert words[words.index("--appendonly") + 1] == "yes"
    assert any(str(v).endswith(":/data") for v in _service("redis")["volumes"])
