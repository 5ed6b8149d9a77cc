from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoplink.config import ConfigError, Settings
from shoplink.redis import node_url


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.port == 8080 and s.host == "127.0.0.1"
    assert s.public_base_url == "http://127.0.0.1:8080"
    assert s.uses_default_secret


@pytest.mark.parametrize(("var", "value"), [
    ("SHOPLINK_PORT", "eighty"),
    ("SHOPLINK_PORT", "70000"),
    ("SHOPLINK_DATABASE_URL", "mysql://x/y"),
    ("SHOPLINK_REDIS_URL", "http://x"),
    ("SHOPLINK_ACCESS_LOG", "maybe"),
    ("SHOPLINK_PUBLIC_BASE_URL", "ftp://x"),
    ("SHOPLINK_SECRET_KEY", "short"),
    ("SHOPLINK_LOG_LEVEL", "loud"),
    ("SHOPLINK_REDIS_CLUSTER_NODES", "10.0.0.1"),
    ("SHOPLINK_REDIS_CLUSTER_NODES", "10.0.0.1:6379,10.0.0.2:port"),
    ("SHOPLINK_REDIS_CLUSTER_NODES", ":6379"),
    ("SHOPLINK_REDIS_CLUSTER_NODES", "10.0.0.1:70000"),
    ("SHOPLINK_WORKERS", "0"),
    ("SHOPLINK_WORKERS", "257"),
    ("SHOPLINK_WORKERS", "all"),
    ("SHOPLINK_DNS_NAMESERVERS", "dns.example"),
    ("SHOPLINK_DNS_NAMESERVERS", "127.0.0.1:0"),
    ("SHOPLINK_DNS_NAMESERVERS", "[::1"),
    ("SHOPLINK_DOMAIN_PROOF_CA_FILE", "/nonexistent/ca.pem"),
    ("SHOPLINK_DOMAIN_PROOF_HTTPS_PORT", "0"),
])
def test_bad_value_names_the_variable_in_one_line(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: value})
    message = str(info.value)
    assert var in message and "\n" not in message


def test_workers_default_to_one_process_and_auto_means_one_per_core() -> None:
    assert Settings.from_env({}).workers == 1
    assert Settings.from_env({"SHOPLINK_WORKERS": "3"}).workers == 3
    assert Settings.from_env({"SHOPLINK_WORKERS": " AUTO "}).workers == len(os.sched_getaffinity(0))


def test_secret_value_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"SHOPLINK_SECRET_KEY": "tooshort"})
    assert "tooshort" not in str(info.value)


def test_file_variant_for_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("a-very-long-secret-from-a-file\n")
    s = Settings.from_env({"SHOPLINK_SECRET_KEY_FILE": str(secret)})
    assert s.secret_key == "a-very-long-secret-from-a-file"
    with pytest.raises(ConfigError, match="SHOPLINK_SECRET_KEY_FILE"):
        Settings.from_env({"SHOPLINK_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_public_base_url_trailing_slash_removed() -> None:
    assert Settings.from_env({"SHOPLINK_PUBLIC_BASE_URL": "https://s.example/"}).public_base_url == \
        "https://s.example"


def test_redis_cluster_nodes() -> None:
    assert Settings.from_env({}).redis_cluster_nodes == ()
    s = Settings.from_env({"SHOPLINK_REDIS_CLUSTER_NODES": " redis-1:6379, 10.0.0.2:7000 ,[::1]:7001,"})
    assert s.redis_cluster_nodes == ("redis-1:6379", "10.0.0.2:7000", "[::1]:7001")
    with pytest.raises(ConfigError, match="SHOPLINK_REDIS_CLUSTER_NODES"):
        Settings.from_env({"SHOPLINK_REDIS_CLUSTER_NODES": "redis-1:6379",
                           "SHOPLINK_REDIS_URL": "unix://localhost/run/redis.sock"})


def test_dns_nameservers() -> None:
    assert Settings.from_env({}).dns_nameservers == ()
    s = Settings.from_env({"SHOPLINK_DNS_NAMESERVERS": " 127.0.0.1:5353, 10.0.0.2 ,[::1]:53,::1,"})
    assert s.dns_nameservers == ("127.0.0.1:5353", "10.0.0.2:53", "[::1]:53", "[::1]:53")
    with pytest.raises(ConfigError, match="SHOPLINK_DOMAIN_RETRY_MIN_S"):
        Settings.from_env({"SHOPLINK_DOMAIN_RETRY_MIN_S": "100", "SHOPLINK_DOMAIN_RETRY_MAX_S": "10"})


def test_cluster_node_urls_keep_scheme_and_credentials() -> None:
    assert node_url("rediss://app:p%40ss@ignored:6379/3", "10.0.0.7", 7000) == \
        "rediss://app:p%40ss@10.0.0.7:7000/0"
    assert node_url("redis://127.0.0.1:1/0", "::1", 7001) == "redis://[::1]:7001/0"


@pytest.mark.parametrize(("env", "unsafe"), [
    ({}, False),  # 127.0.0.1, public URL empty (http://127.0.0.1:8080)
    ({"SHOPLINK_HOST": "localhost", "SHOPLINK_PUBLIC_BASE_URL": "http://localhost:8080"}, False),
    ({"SHOPLINK_HOST": "::1", "SHOPLINK_PUBLIC_BASE_URL": "http://[::1]:8080"}, False),
    ({"SHOPLINK_PUBLIC_BASE_URL": "http://shop.localhost:8080"}, False),
    ({"SHOPLINK_PUBLIC_BASE_URL": "https://links.example.com"}, True),
    ({"SHOPLINK_HOST": "0.0.0.0"}, True),
    ({"SHOPLINK_HOST": "0.0.0.0", "SHOPLINK_PUBLIC_BASE_URL": "http://127.0.0.1:8080"}, True),
    ({"SHOPLINK_HOST": "10.0.0.5"}, True),
    ({"SHOPLINK_HOST": "0.0.0.0", "SHOPLINK_SECRET_KEY": "0123456789abcdef0123"}, False),
    ({"SHOPLINK_PUBLIC_BASE_URL": "https://links.example.com",
      "SHOPLINK_SECRET_KEY": "0123456789abcdef0123"}, False),
])
def test_the_default_secret_is_only_served_on_loopback(env: dict[str, str], unsafe: bool) -> None:
    reason = Settings.from_env(env).unsafe_to_serve()
    assert (reason is not None) == unsafe, reason
    if reason is not None:
        assert "SHOPLINK_SECRET_KEY" in reason and "\n" not in reason
