"""The settings tree: today's variable names, the .env file under the environment, defaults, the project map
as JSON, and secrets that never show in repr or model_dump output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from zephyr_qtest.settings import (
    DBT_VAR_NAMES,
    MappingSettings,
    PlansAs,
    Settings,
    load_settings,
    variable_name,
)

SECRET = "s3cret-t0ken-value"

# Every variable the tree reads; each one is named in .env.example.
VARIABLES = {
    "ZEPHYR_CDN_TOKEN",
    "ZEPHYR_QTEST_HOME",
    "ZEPHYR_QTEST_REPORTS",
    "ZEPHYR_QTEST_ACCEPTANCE",
    "DAGSTER_HOME",
    "DAGSTER_PG_URL",
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "ZEPHYR_QTEST_DATABASE_OUTAGE_S",
    "ZEPHYR_BASE_URL",
    "ZEPHYR_API_TOKEN",
    "QTEST_BASE_URL",
    "QTEST_API_TOKEN",
    "QTEST_USERNAME",
    "QTEST_PASSWORD",
    "ZEPHYR_QTEST_WHEN_BUSY",
    "ZEPHYR_QTEST_QUEUE_WINDOW_S",
    "SNOWFLAKE_ACCOUNT",
    "SNOWFLAKE_USER",
    "SNOWFLAKE_PASSWORD",
    "SNOWFLAKE_PRIVATE_KEY",
    "SNOWFLAKE_PRIVATE_KEY_PATH",
    "SNOWFLAKE_PRIVATE_KEY_PASSWORD",
    "SNOWFLAKE_WAREHOUSE",
    "SNOWFLAKE_DATABASE",
    "SNOWFLAKE_SCHEMA",
    "SNOWFLAKE_ROLE",
    "SNOWFLAKE_COPY_ATTACHMENT_BYTES",
    "ZEPHYR_QTEST_PLANS_AS",
    "ZEPHYR_QTEST_ATTACHMENT_MAX_BYTES",
    "ZEPHYR_QTEST_CALL_DEPTH_CAP",
    "ZEPHYR_QTEST_FOLDER_DEPTH_CAP",
    "ZEPHYR_QTEST_APPROVE_TEST_CASES",
    "ZEPHYR_QTEST_CREATE_FIELDS",
    "ZEPHYR_QTEST_PROJECT_MAP",
    "JIRA_BASE_URL",
    "JIRA_EMAIL",
    "JIRA_API_TOKEN",
    "ZEPHYR_QTEST_USER_MAP_DIR",
}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No variable of the tree set, and a working directory without a .env."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _all_variable_names(settings: Settings) -> set[str]:
    return {variable_name(group, name) for group in settings.groups() for name in type(group).model_fields}


def test_every_variable_has_its_field_and_is_named_in_env_example(environment: pytest.MonkeyPatch) -> None:
    names = _all_variable_names(load_settings())
    assert names == VARIABLES
    example = (REPO / ".env.example").read_text()
    listed = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert names <= listed, names - listed


def test_nothing_set_gives_the_embedded_and_sandbox_defaults(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.paths.home_dir() == (Path.cwd() / ".zephyr_qtest").resolve()
    assert settings.paths.reports_dir() == Path.cwd().resolve() / "reports"
    # No acceptance file in the working directory: nothing accepted.
    assert settings.paths.acceptance_file() is None
    assert settings.postgres.live_url() is None and not settings.postgres.is_live
    assert settings.zephyr.base_url == "" and settings.zephyr.api_token is None
    assert not settings.qtest.is_configured
    assert settings.snowflake.account is None and settings.snowflake.copy_attachment_bytes is False
    assert settings.mapping.approve_test_cases is True and settings.mapping.project_map == {}
    # dbt_project.yml keeps its defaults: the tree sets no var.
    assert settings.mapping.dbt_vars() == {}
    assert settings.environ() == {}


def test_todays_variable_names_set_the_tree(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment.setenv("ZEPHYR_QTEST_HOME", str(tmp_path / "home"))
    environment.setenv("ZEPHYR_QTEST_REPORTS", str(tmp_path / "out"))
    environment.setenv("POSTGRES_HOST", "db.example.com")
    environment.setenv("POSTGRES_PORT", "6543")
    environment.setenv("POSTGRES_USER", "migrator")
    environment.setenv("POSTGRES_PASSWORD", "p@ss word")
    environment.setenv("POSTGRES_DB", "staging")
    environment.setenv("ZEPHYR_BASE_URL", "https://eu.api.zephyrscale.smartbear.com/v2")
    environment.setenv("ZEPHYR_API_TOKEN", SECRET)
    environment.setenv("QTEST_BASE_URL", "https://acme.qtestnet.com")
    environment.setenv("QTEST_USERNAME", "me")
    environment.setenv("QTEST_PASSWORD", "pw")
    environment.setenv("SNOWFLAKE_SCHEMA", "MIG")
    environment.setenv("SNOWFLAKE_COPY_ATTACHMENT_BYTES", "true")
    settings = load_settings()
    assert settings.paths.home_dir() == tmp_path / "home"
    assert settings.paths.reports_dir() == tmp_path / "out"
    assert settings.postgres.live_url() == "postgresql://migrator:p%40ss%20word@db.example.com:6543/staging"
    assert settings.zephyr.is_configured and settings.zephyr.api_token == SecretStr(SECRET)
    assert settings.qtest.is_configured and settings.qtest.username == "me"
    assert settings.snowflake.schema_name == "MIG" and settings.snowflake.copy_attachment_bytes is True


def test_database_url_wins_over_the_parts(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("DATABASE_URL", "postgresql://u:pw@h:5433/d")
    environment.setenv("POSTGRES_HOST", "other")
    assert load_settings().postgres.live_url() == "postgresql://u:pw@h:5433/d"


def test_an_empty_variable_counts_as_unset(environment: pytest.MonkeyPatch) -> None:
    # A .env copied from .env.example sets every name to the empty string.
    environment.setenv("ZEPHYR_BASE_URL", "")
    environment.setenv("POSTGRES_PORT", "")
    environment.setenv("ZEPHYR_QTEST_APPROVE_TEST_CASES", "")
    settings = load_settings()
    assert settings.zephyr.base_url == ""
    assert settings.postgres.port == 5432
    assert settings.mapping.approve_test_cases is True


def test_the_env_file_is_read_and_the_environment_wins(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "# a comment\n"
        "ZEPHYR_BASE_URL=https://api.zephyrscale.smartbear.com/v2\n"
        f"ZEPHYR_API_TOKEN={SECRET}\n"
        "QTEST_BASE_URL=https://from-file.qtestnet.com\n"
        "ZEPHYR_QTEST_PLANS_AS=release\n"
        "POSTGRES_HOST=\n"
    )
    environment.setenv("QTEST_BASE_URL", "https://from-env.qtestnet.com")
    settings = load_settings()
    assert settings.zephyr.base_url == "https://api.zephyrscale.smartbear.com/v2"
    assert settings.zephyr.api_token == SecretStr(SECRET)
    assert settings.qtest.base_url == "https://from-env.qtestnet.com"
    assert settings.mapping.plans_as is PlansAs.release
    assert settings.postgres.host is None
    # Another file, or none at all.
    other = tmp_path / "other.env"
    other.write_text("ZEPHYR_BASE_URL=https://other/v2\n")
    assert load_settings(other).zephyr.base_url == "https://other/v2"
    assert load_settings(None).zephyr.base_url == ""


def test_the_mapping_options_and_the_project_map_as_json(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("ZEPHYR_QTEST_PROJECT_MAP", json.dumps({"SHOP": "Webshop", "PAY": "12345"}))
    environment.setenv("ZEPHYR_QTEST_APPROVE_TEST_CASES", "false")
    environment.setenv("ZEPHYR_QTEST_PLANS_AS", "release")
    environment.setenv("ZEPHYR_QTEST_ATTACHMENT_MAX_BYTES", "1048576")
    mapping = load_settings().mapping
    assert mapping.project_map == {"SHOP": "Webshop", "PAY": "12345"}
    assert mapping.approve_test_cases is False
    assert mapping.dbt_vars() == {"plans_as": "release", "attachment_max_bytes": 1048576}
    assert set(mapping.dbt_vars()) <= set(DBT_VAR_NAMES)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ZEPHYR_QTEST_PROJECT_MAP", "SHOP=Webshop"),
        ("ZEPHYR_QTEST_PLANS_AS", "folder"),
        ("ZEPHYR_QTEST_ATTACHMENT_MAX_BYTES", "0"),
        ("POSTGRES_PORT", "five"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(
    environment: pytest.MonkeyPatch, name: str, value: str
) -> None:
    environment.setenv(name, value)
    with pytest.raises(ValidationError, match=name):
        load_settings()


def test_secrets_never_show_in_repr_or_dumps(environment: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "POSTGRES_PASSWORD",
        "ZEPHYR_API_TOKEN",
        "QTEST_API_TOKEN",
        "QTEST_PASSWORD",
        "SNOWFLAKE_PASSWORD",
        "SNOWFLAKE_PRIVATE_KEY",
        "SNOWFLAKE_PRIVATE_KEY_PASSWORD",
        "DAGSTER_PG_URL",
    ):
        environment.setenv(name, f"{SECRET}-{name}")
    settings = load_settings()
    for text in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        json.dumps(settings.model_dump(mode="json")),
    ):
        assert SECRET not in text


def test_environ_renders_a_changed_tree_for_a_child_process(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("ZEPHYR_QTEST_PROJECT_MAP", '{"SHOP": "Webshop"}')
    settings = load_settings()
    sandbox = settings.zephyr.model_copy(
        update={"base_url": "http://127.0.0.1:8090/v2", "api_token": SecretStr(SECRET)}
    )
    changed = settings.model_copy(update={"zephyr": sandbox})
    assert changed.environ() == {
        "ZEPHYR_BASE_URL": "http://127.0.0.1:8090/v2",
        "ZEPHYR_API_TOKEN": SECRET,
        "ZEPHYR_QTEST_PROJECT_MAP": '{"SHOP": "Webshop"}',
    }
    # The original is unchanged (the tree is frozen) and the child reads back the same tree.
    assert settings.zephyr.base_url == ""
    for name, value in changed.environ().items():
        environment.setenv(name, value)
    assert load_settings() == changed


def test_the_tree_is_frozen(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.zephyr.base_url = "x"  # type: ignore[misc]
    assert MappingSettings().approve_test_cases is True


def test_the_queue_window_defaults_to_an_hour_and_reaches_the_qtest_resource(
    environment: pytest.MonkeyPatch,
) -> None:
    from zephyr_qtest.defs.resources import qtest_resource

    assert load_settings().qtest.queue_window_s == 3600.0
    environment.setenv("ZEPHYR_QTEST_QUEUE_WINDOW_S", "30")
    settings = load_settings()
    assert settings.qtest.queue_window_s == 30.0
    assert settings.environ()["ZEPHYR_QTEST_QUEUE_WINDOW_S"] == "30.0"
    assert qtest_resource(settings).queue_window_s == 30.0
    environment.setenv("ZEPHYR_QTEST_QUEUE_WINDOW_S", "-1")
    with pytest.raises(ValidationError, match="ZEPHYR_QTEST_QUEUE_WINDOW_S"):
        load_settings()
