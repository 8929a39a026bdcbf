"""The resources built from the settings tree: values where they are not secret, and every secret only as
``dg.EnvVar`` of its variable, so no secret is in the resources' config (which the UI shows)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from zephyr_qtest.defs.resources import resources_from_settings
from zephyr_qtest.settings import load_settings

SECRET = "s3cret-value-0f-the-test"


def _config_text(resources: dict[str, object]) -> str:
    return " ".join(repr(resource) for resource in resources.values())


def test_secrets_are_env_vars_and_the_rest_are_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "SNOWFLAKE_ACCOUNT", "QTEST_USERNAME", "QTEST_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZEPHYR_QTEST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("POSTGRES_HOST", "db.example.com")
    monkeypatch.setenv("POSTGRES_PASSWORD", SECRET)
    monkeypatch.setenv("ZEPHYR_BASE_URL", "https://api.zephyrscale.smartbear.com/v2")
    monkeypatch.setenv("ZEPHYR_API_TOKEN", SECRET)
    monkeypatch.setenv("QTEST_BASE_URL", "https://acme.qtestnet.com")
    monkeypatch.setenv("QTEST_API_TOKEN", SECRET)
    monkeypatch.setenv("ZEPHYR_QTEST_PROJECT_MAP", '{"SHOP": "Webshop"}')
    monkeypatch.setenv("ZEPHYR_QTEST_APPROVE_TEST_CASES", "false")
    resources = resources_from_settings(load_settings(None))

    postgres, zephyr, qtest = resources["postgres"], resources["zephyr"], resources["qtest"]
    assert postgres.host == "db.example.com" and postgres.embedded_home == str(tmp_path / "home")
    assert isinstance(postgres.password, dg.EnvVar) and postgres.password == "POSTGRES_PASSWORD"
    assert zephyr.base_url == "https://api.zephyrscale.smartbear.com/v2"
    assert isinstance(zephyr.api_token, dg.EnvVar) and zephyr.api_token == "ZEPHYR_API_TOKEN"
    assert isinstance(qtest.api_token, dg.EnvVar) and qtest.api_token == "QTEST_API_TOKEN"
    assert qtest.project_map == {"SHOP": "Webshop"} and qtest.approve_test_cases is False
    assert resources["snowflake"].embedded and resources["snowflake"].embedded_dir == str(
        tmp_path / "home" / "snowflake"
    )
    assert SECRET not in _config_text(resources)
    # At run time the variable gives the value, and the URL is built from the parts.
    with dg.build_resources({"postgres": postgres}) as built:
        assert built.postgres.url() == f"postgresql://postgres:{SECRET}@db.example.com:5432/postgres"


def test_a_database_url_goes_in_by_its_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{SECRET}@h:5432/d")
    resources = resources_from_settings(load_settings(None))
    assert resources["postgres"].database_url == "DATABASE_URL"
    assert SECRET not in _config_text(resources)
