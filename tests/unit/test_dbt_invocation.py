"""The rules of a dbt invocation: one project per build, the connection from a URL (TCP or a Unix socket),
the password only in dbt's secret variable, and a manifest parsed again when a file of the project changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from zephyr_qtest.lib.dbt import build_dbt_args, dbt_connection_env, manifest_is_stale, manifest_path


def test_a_build_names_exactly_one_project() -> None:
    args = build_dbt_args("SHOP")
    assert args[0] == "build"
    assert json.loads(args[args.index("--vars") + 1]) == {"project_key": "SHOP"}
    assert "--full-refresh" not in args
    with pytest.raises(ValueError, match="project key"):
        build_dbt_args("")


def test_a_tcp_url_becomes_the_profile_variables_with_the_password_kept_secret() -> None:
    env = dbt_connection_env("postgresql://migrator:s3cret@db.example.com:6543/staging")
    assert env == {
        "DBT_PG_HOST": "db.example.com",
        "DBT_PG_PORT": "6543",
        "DBT_PG_USER": "migrator",
        "DBT_ENV_SECRET_PG_PASSWORD": "s3cret",
        "DBT_PG_DBNAME": "staging",
    }
    # dbt scrubs the values of DBT_ENV_SECRET_* variables from its logs; no other variable holds it.
    assert [name for name, value in env.items() if value == "s3cret"] == ["DBT_ENV_SECRET_PG_PASSWORD"]


def test_the_embedded_servers_socket_directory_is_the_host() -> None:
    env = dbt_connection_env("postgresql://postgres:@/zq_demo?host=/tmp/zq/pgdata")
    assert env["DBT_PG_HOST"] == "/tmp/zq/pgdata"
    assert env["DBT_PG_DBNAME"] == "zq_demo"
    assert env["DBT_ENV_SECRET_PG_PASSWORD"] == ""


def test_the_manifest_is_stale_when_missing_or_older_than_a_project_file(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "a.sql"
    model.write_text("select 1")
    (tmp_path / "dbt_project.yml").write_text("name: x")
    assert manifest_is_stale(tmp_path)
    manifest = manifest_path(tmp_path)
    manifest.parent.mkdir()
    manifest.write_text("{}")
    os.utime(model, (1_000_000, 1_000_000))
    os.utime(tmp_path / "dbt_project.yml", (1_000_000, 1_000_000))
    assert not manifest_is_stale(tmp_path)
    model.write_text("select 2")  # edited after the parse
    assert manifest_is_stale(tmp_path)
