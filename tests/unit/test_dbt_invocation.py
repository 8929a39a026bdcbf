"""The rules of a dbt invocation: one project per build, the mapping options as vars (the run config over
the settings over dbt_project.yml), the connection from a URL (TCP or a Unix socket), the password only in
dbt's secret variable, and a manifest parsed again when a file of the project changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from zephyr_qtest.lib.dbt import (
    DBT_PROJECT_DIR,
    build_dbt_args,
    connection_environment,
    dbt_connection_env,
    dbt_vars,
    manifest_is_stale,
    manifest_path,
)
from zephyr_qtest.settings import DBT_VAR_NAMES, MappingSettings


def test_a_build_names_exactly_one_project() -> None:
    args = build_dbt_args("SHOP")
    assert args[0] == "build"
    assert json.loads(args[args.index("--vars") + 1]) == {"project_key": "SHOP"}
    assert "--full-refresh" not in args
    # dbt's unit tests are the suite's (tests/integration/test_transform.py), not each project's build.
    assert args[args.index("--exclude") + 1] == "resource_type:unit_test"
    with pytest.raises(ValueError, match="project key"):
        build_dbt_args("")


def test_the_mapping_options_go_beside_the_project_key() -> None:
    args = build_dbt_args("SHOP", vars={"plans_as": "release", "attachment_max_bytes": 1024})
    assert json.loads(args[args.index("--vars") + 1]) == {
        "plans_as": "release",
        "attachment_max_bytes": 1024,
        "project_key": "SHOP",
    }


def test_the_run_config_wins_over_the_settings_and_unset_options_keep_dbts_defaults() -> None:
    settings = MappingSettings(plans_as="release", attachment_max_bytes=1024)
    run_config = {"plans_as": "test_cycle", "attachment_max_bytes": None, "call_depth_cap": None}
    assert dbt_vars("SHOP", settings.dbt_vars(), run_config) == {
        "plans_as": "test_cycle",
        "attachment_max_bytes": 1024,
        "project_key": "SHOP",
    }
    # Nothing set anywhere: only the project key, so every dbt_project.yml default holds.
    assert dbt_vars("SHOP", MappingSettings().dbt_vars(), {"plans_as": None}) == {"project_key": "SHOP"}
    # No option can move a run to another project.
    assert dbt_vars("SHOP", {"project_key": "OTHER"})["project_key"] == "SHOP"
    with pytest.raises(ValueError, match="project key"):
        dbt_vars("", settings.dbt_vars())


def test_every_mapping_var_has_a_default_in_dbt_project_yml() -> None:
    import yaml

    defaults = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    assert set(DBT_VAR_NAMES) <= set(defaults)
    assert "project_key" not in defaults


def test_the_connection_is_in_the_environment_only_while_dbt_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_PG_HOST", "before")
    monkeypatch.delenv("DBT_ENV_SECRET_PG_PASSWORD", raising=False)
    with connection_environment("postgresql://migrator:s3cret@db.example.com:6543/staging") as variables:
        assert os.environ["DBT_PG_HOST"] == "db.example.com" == variables["DBT_PG_HOST"]
        assert os.environ["DBT_ENV_SECRET_PG_PASSWORD"] == "s3cret"
    assert os.environ["DBT_PG_HOST"] == "before"
    assert "DBT_ENV_SECRET_PG_PASSWORD" not in os.environ


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
