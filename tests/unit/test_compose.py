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
    assert {"app", "count", "domains", "postgres", "redis"} <= set(services)
    assert _service("postgres")["image"].startswith("postgres:15")
    assert _service("redis")["image"].startswith("redis:7")
    assert _service("app").get("build")


SHOPLINK_SERVICES = ("app", "count", "domains")


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


def test_domain_watcher_runs_after_the_database_is_migrated() -> None:
    domains = _service("domains")
    assert _words(domains["command"]) == ["shoplink", "domains", "watch"]
    assert "ports" not in domains
    assert domains["depends_on"]["app"]["condition"] == "service_healthy"


def test_redis_keeps_the_streams_across_a_restart() -> None:
    command = _service("redis")["command"]
    words = command.split() if isinstance(command, str) else list(command)
    assert words[words.index("--appendonly") + 1] == "yes"
    assert any(str(v).endswith(":/data") for v in _service("redis")["volumes"])


# ---- profile "cluster" -----------------------------------------------------------------------

CLUSTER_NODES = ("redis-node-1", "redis-node-2", "redis-node-3")
CLUSTER_SERVICES = (*CLUSTER_NODES, "redis-cluster-init", "app-cluster", "count-cluster")


def _environment(name: str) -> dict[str, str]:
    return {key: _interpolate(value) for key, value in _app_environment(name).items()}


def _words(command: Any) -> list[str]:
    return command.split() if isinstance(command, str) else [str(w) for w in command]


def test_cluster_profile_services_are_only_in_the_cluster_profile() -> None:
    services = _load()["services"]
    for name in CLUSTER_SERVICES:
        assert services[name].get("profiles") == ["cluster"], name
    for name, service in services.items():
        if name not in CLUSTER_SERVICES:  # the default stack never needs the cluster
            assert "cluster" not in (service.get("profiles") or []), name
            assert not set(service.get("depends_on") or {}) & set(CLUSTER_SERVICES), name


def test_cluster_nodes_are_cluster_enabled_redis_7_with_their_own_data() -> None:
    volumes: set[str] = set()
    for name in CLUSTER_NODES:
        node = _service(name)
        assert node["image"].startswith("redis:7")  # sharded pub/sub needs Redis 7
        words = _words(node["command"])
        assert words[0] == "redis-server"
        assert words[words.index("--cluster-enabled") + 1] == "yes"
        assert words[words.index("--cluster-announce-hostname") + 1] == name
        # one node down must not stop the others' shards
        assert words[words.index("--cluster-require-full-coverage") + 1] == "no"
        assert node.get("healthcheck")
        volumes.update(str(v).split(":")[0] for v in node["volumes"])
    assert len(volumes) == 3 and volumes <= set(_load()["volumes"])


def test_cluster_init_creates_the_cluster_from_the_three_nodes() -> None:
    init = _service("redis-cluster-init")
    script = " ".join(_words(init["command"]))
    assert "--cluster create" in script and "--cluster-replicas 0" in script
    for name in CLUSTER_NODES:
        assert name in script
        assert init["depends_on"][name]["condition"] == "service_healthy"


def test_cluster_app_and_worker_are_configured_for_the_cluster() -> None:
    for name, first_words in (("app-cluster", ["shoplink", "serve"]), ("count-cluster", ["shoplink", "count"])):
        service = _service(name)
        assert _words(service["command"])[:2] == first_words
        assert service.get("build")
        env = _environment(name)
        settings = Settings.from_env(env)
        assert {node.split(":")[0] for node in settings.redis_cluster_nodes} == set(CLUSTER_NODES)
        assert name != "app-cluster" or not settings.uses_default_secret
        assert service["depends_on"]["redis-cluster-init"]["condition"] == "service_completed_successfully"
        documented = {variable for variable, *_ in documented_variables()}
        assert {v for v in env if v.startswith("SHOPLINK_")} <= documented
        assert _duration_s(service["stop_grace_period"]) >= 30 and service.get("init") is True
    app = _service("app-cluster")
    assert "--migrate" in _words(app["command"])
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert _service("count-cluster")["depends_on"]["app-cluster"]["condition"] == "service_healthy"
    # Its own spool volume: clicks spooled for the cluster are never replayed into the single Redis.
    settings = Settings.from_env(_environment("app-cluster"))
    volumes = {str(v).split(":")[1]: str(v).split(":")[0] for v in app["volumes"]}
    single = {str(v).split(":")[1]: str(v).split(":")[0] for v in _service("app")["volumes"]}
    assert volumes[str(settings.spool_dir)] in _load()["volumes"]
    assert volumes[str(settings.spool_dir)] not in single.values()
