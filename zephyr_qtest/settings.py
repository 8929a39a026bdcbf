"""The one settings tree: every option the project reads, typed, from the environment and ``.env``.

``load_settings()`` reads it once per entry point (the ``@dg.definitions`` function that builds the
resources, a command of the CLI) and hands it on; nothing reads the environment at import time. Each field
is named by the variable that sets it (its ``validation_alias``), the same names ``.env.example`` lists;
an empty variable counts as unset, so a copied ``.env.example`` changes nothing.

Secrets are ``SecretStr``: they never show in ``repr`` or ``model_dump`` output. The resources do not take
their values from here either: they get ``dg.EnvVar(<variable>)`` (``variable_name`` says which), so a
secret stays out of run config, the UI and the event log. ``environ()`` renders a tree (say one pointed at
the sandboxes the CLI started) as the variables of a child process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from zephyr_qtest.lib.dbt import DBT_PROJECT_DIR
from zephyr_qtest.lib.postgres import (
    DEFAULT_HOME_DIRNAME,
    DEFAULT_OUTAGE_SECONDS,
    OUTAGE_SETTING,
    url_from_parts,
)
from zephyr_qtest.lib.qtest.exactly_once import QUEUE_WINDOW_S
from zephyr_qtest.lib.qtest.one_writer import WhenBusy

log = logging.getLogger(__name__)

DEFAULT_ENV_FILE = ".env"
# What the qTest client adds to the site URL itself; a QTEST_BASE_URL ending in it (the API base the
# qTest sandbox's banner also prints) is the site.
QTEST_API_SUFFIX = "/api/v3"
DEFAULT_ACCEPTANCE_FILENAME = "acceptance.toml"


class _Group(BaseSettings):
    """One group of the tree: exact, upper-case variable names (the aliases), empty meaning unset."""

    model_config = SettingsConfigDict(
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        case_sensitive=True,
        extra="ignore",
        validate_by_name=True,
        frozen=True,
    )


class PathSettings(_Group):
    """Local state: the project home (embedded PostgreSQL, sandbox state, Dagster home) and the reports."""

    home: Path | None = Field(
        default=None,
        validation_alias="ZEPHYR_QTEST_HOME",
        description="Local state (default ./.zephyr_qtest).",
    )
    reports: Path | None = Field(
        default=None,
        validation_alias="ZEPHYR_QTEST_REPORTS",
        description="Where the reconciliation reports go (default: reports/ beside the home).",
    )
    acceptance: Path | None = Field(
        default=None,
        validation_alias="ZEPHYR_QTEST_ACCEPTANCE",
        description="The reviewed acceptance file (TOML) of ledger lines the verdict accepts "
        "(default: acceptance.toml in the working directory, if there is one).",
    )

    def home_dir(self) -> Path:
        """``ZEPHYR_QTEST_HOME``, else ``.zephyr_qtest`` in the working directory; absolute."""
        return (self.home or Path.cwd() / DEFAULT_HOME_DIRNAME).resolve()

    def reports_dir(self) -> Path:
        """``ZEPHYR_QTEST_REPORTS``, else ``reports/`` beside the project home."""
        return self.reports if self.reports else self.home_dir().parent / "reports"

    def acceptance_file(self) -> Path | None:
        """``ZEPHYR_QTEST_ACCEPTANCE`` (absolute; an error later if it cannot be read, never ignored), else
        ``acceptance.toml`` in the working directory if it exists, else none: nothing accepted."""
        if self.acceptance:
            return self.acceptance.resolve()
        default = Path.cwd() / DEFAULT_ACCEPTANCE_FILENAME
        return default.resolve() if default.is_file() else None


class DagsterSettings(_Group):
    """The Dagster instance: its home and, optionally, its PostgreSQL storage (read by dagster.yaml)."""

    home: Path | None = Field(
        default=None,
        validation_alias="DAGSTER_HOME",
        description="The instance directory (default: <project home>/dagster_home).",
    )
    pg_url: SecretStr | None = Field(
        default=None,
        validation_alias="DAGSTER_PG_URL",
        description="postgresql+psycopg2:// URL of the instance's storage (docs/dagster-postgres.yaml).",
    )


class PostgresSettings(_Group):
    """The staging database: a full URL, or its parts; nothing configured means the embedded server."""

    database_url: SecretStr | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="A full postgresql:// URL (it may hold the password, so it is kept secret).",
    )
    host: str | None = Field(default=None, validation_alias="POSTGRES_HOST")
    port: int = Field(default=5432, validation_alias="POSTGRES_PORT")
    user: str = Field(default="postgres", validation_alias="POSTGRES_USER")
    password: SecretStr | None = Field(default=None, validation_alias="POSTGRES_PASSWORD")
    dbname: str = Field(default="postgres", validation_alias="POSTGRES_DB")

    # Riding out an outage of the staging database within a run (issue 12).
    outage_seconds: float = Field(
        default=DEFAULT_OUTAGE_SECONDS,
        gt=0,
        validation_alias=OUTAGE_SETTING,
        description="How long a publishing stage waits for the staging database to come back after it went "
        "away (reconnecting, then redoing the interrupted id-map write) before the stage fails.",
    )

    @property
    def is_live(self) -> bool:
        """Whether a server is configured (else the project starts the embedded one)."""
        return bool(self.database_url or self.host)

    def live_url(self) -> str | None:
        """The configured server's URL (with its password), or None for the embedded server."""
        if self.database_url:
            return self.database_url.get_secret_value()
        if not self.host:
            return None
        password = self.password.get_secret_value() if self.password else None
        return url_from_parts(self.host, self.port, self.user, password, self.dbname)


class ZephyrSettings(_Group):
    """Zephyr Scale Cloud: base URL (by region) and API token."""

    base_url: str = Field(
        default="",
        validation_alias="ZEPHYR_BASE_URL",
        description="e.g. https://api.zephyrscale.smartbear.com/v2 (EU, AU and DE have their own).",
    )
    api_token: SecretStr | None = Field(default=None, validation_alias="ZEPHYR_API_TOKEN")
    cdn_token: SecretStr | None = Field(
        default=None,
        validation_alias="ZEPHYR_CDN_TOKEN",
        description="The token of a signed-in browser session of the Zephyr app, which reads the inline "
        "images of rich text on SmartBear's CDN (the API token cannot); see docs/runbook.md. Optional: "
        "without it each such picture is a ledger line.",
    )

    @property
    def is_configured(self) -> bool:
        return bool(self.base_url and self.api_token)


class QtestSettings(_Group):
    """qTest Manager: the site and an API token, or a user name and password."""

    base_url: str = Field(
        default="", validation_alias="QTEST_BASE_URL", description="The site, e.g. https://acme.qtestnet.com"
    )
    api_token: SecretStr | None = Field(default=None, validation_alias="QTEST_API_TOKEN")
    username: str = Field(default="", validation_alias="QTEST_USERNAME")
    password: SecretStr | None = Field(default=None, validation_alias="QTEST_PASSWORD")
    when_busy: WhenBusy = Field(
        default=WhenBusy.wait,
        validation_alias="ZEPHYR_QTEST_WHEN_BUSY",
        description="When another run is publishing the same project to the same site: wait for it "
        "(wait, then go on from what it did) or stop with a message naming it (stop).",
    )
    # The default and why: exactly_once.QUEUE_WINDOW_S.
    queue_window_s: float = Field(
        default=QUEUE_WINDOW_S,
        ge=0,
        validation_alias="ZEPHYR_QTEST_QUEUE_WINDOW_S",
        description="How long after a bulk submission whose answer was lost qTest's queue may still make "
        "its logs (seconds): until then a run looks for them and waits, and sends them again only after.",
    )

    @field_validator("base_url", mode="after")
    @classmethod
    def _the_site(cls, value: str) -> str:
        # The client puts /api/v3 after the site: kept, the suffix would make every call
        # /api/v3/api/v3/... and answer 404. The id map names the site the same way (id_map.site_of).
        site = value.strip().rstrip("/")
        if site.lower().endswith(QTEST_API_SUFFIX):
            site = site[: -len(QTEST_API_SUFFIX)].rstrip("/")
            log.warning(
                "QTEST_BASE_URL ends in %s: using the site %s (the client adds %s itself)",
                QTEST_API_SUFFIX,
                site,
                QTEST_API_SUFFIX,
            )
        return site

    @property
    def is_configured(self) -> bool:
        return bool(self.base_url and (self.api_token or (self.username and self.password)))


class JiraSettings(_Group):
    """Jira Cloud, asked who the Atlassian accounts of the tenant are (``zephyr-qtest users``) and which
    issue each linked issue id is (the key and summary its requirement is named after: the
    ``zephyr_raw/jira_issues`` asset), and where the user map that command writes (and the migration
    reads) lives."""

    base_url: str = Field(
        default="",
        validation_alias="JIRA_BASE_URL",
        description="The Jira Cloud site of the Zephyr tenant, e.g. https://acme.atlassian.net",
    )
    email: str = Field(
        default="",
        validation_alias="JIRA_EMAIL",
        description="The Atlassian account the API token belongs to.",
    )
    api_token: SecretStr | None = Field(
        default=None,
        validation_alias="JIRA_API_TOKEN",
        description="An Atlassian API token of that account (id.atlassian.com, Security, API tokens).",
    )
    user_map_dir: Path | None = Field(
        default=None,
        validation_alias="ZEPHYR_QTEST_USER_MAP_DIR",
        description="The directory of user_map.csv (account id -> qTest user name), which `zephyr-qtest "
        "users` writes and dbt reads as a seed: a directory inside dbt_project, relative to it (default: "
        "people).",
    )

    @field_validator("user_map_dir", mode="after")
    @classmethod
    def _inside_the_dbt_project(cls, value: Path | None) -> Path | None:
        # dbt writes each seed's SQL to target/run/<project>/<the seed's path>: a path outside the project
        # would make it write beside (or over) the CSV itself, so the directory must be inside it.
        if value is None:
            return None
        relative = value
        if value.is_absolute():
            resolved = value.resolve()
            relative = (
                resolved.relative_to(DBT_PROJECT_DIR) if resolved.is_relative_to(DBT_PROJECT_DIR) else value
            )
        if (
            relative.is_absolute()
            or ".." in relative.parts
            or relative.parts[:1] in (("seeds",), ("target",))
        ):
            raise ValueError(
                f"{value} is not a directory inside {DBT_PROJECT_DIR} (other than seeds/ and target/): dbt "
                "reads the user map as a seed of that project; give it relative to the project, e.g. people"
            )
        return relative

    @property
    def is_configured(self) -> bool:
        return bool(self.base_url and self.email and self.api_token)

    def user_map_file(self) -> Path:
        """``user_map.csv`` in ``ZEPHYR_QTEST_USER_MAP_DIR`` of the dbt project, else in its ``people/``."""
        return DBT_PROJECT_DIR / (self.user_map_dir or Path("people")) / "user_map.csv"


class SnowflakeSettings(_Group):
    """Snowflake: an account when ``SNOWFLAKE_ACCOUNT`` is set, else the local emulation (fakesnow)."""

    account: str | None = Field(default=None, validation_alias="SNOWFLAKE_ACCOUNT")
    user: str | None = Field(default=None, validation_alias="SNOWFLAKE_USER")
    password: SecretStr | None = Field(default=None, validation_alias="SNOWFLAKE_PASSWORD")
    private_key: SecretStr | None = Field(
        default=None,
        validation_alias="SNOWFLAKE_PRIVATE_KEY",
        description="The PEM text (or base64 of it).",
    )
    private_key_path: str | None = Field(default=None, validation_alias="SNOWFLAKE_PRIVATE_KEY_PATH")
    private_key_password: SecretStr | None = Field(
        default=None, validation_alias="SNOWFLAKE_PRIVATE_KEY_PASSWORD"
    )
    warehouse: str | None = Field(default=None, validation_alias="SNOWFLAKE_WAREHOUSE")
    database: str | None = Field(default=None, validation_alias="SNOWFLAKE_DATABASE")
    # Not `schema`: that name shadows a pydantic BaseModel attribute.
    schema_name: str | None = Field(default=None, validation_alias="SNOWFLAKE_SCHEMA")
    role: str | None = Field(default=None, validation_alias="SNOWFLAKE_ROLE")
    copy_attachment_bytes: bool = Field(
        default=False,
        validation_alias="SNOWFLAKE_COPY_ATTACHMENT_BYTES",
        description="Also copy canonical.attachment's bytes as BINARY.",
    )


class PlansAs(StrEnum):
    """What a Zephyr test plan becomes in qTest (dbt var ``plans_as``)."""

    test_cycle = "test_cycle"
    release = "release"


class MappingSettings(_Group):
    """How Zephyr objects become qTest objects. An unset dbt option keeps dbt_project.yml's default."""

    plans_as: PlansAs | None = Field(
        default=None,
        validation_alias="ZEPHYR_QTEST_PLANS_AS",
        description="Zephyr test plans become qTest releases with their linked cycles under them "
        "(release) or top-level test cycles without them (test_cycle) (dbt var plans_as; default release).",
    )
    attachment_max_bytes: int | None = Field(
        default=None,
        gt=0,
        validation_alias="ZEPHYR_QTEST_ATTACHMENT_MAX_BYTES",
        description="Bigger attachments are listed with a skip reason, not uploaded (dbt var "
        "attachment_max_bytes; default 52428800, qTest SaaS's limit).",
    )
    call_depth_cap: int | None = Field(
        default=None,
        gt=0,
        validation_alias="ZEPHYR_QTEST_CALL_DEPTH_CAP",
        description="Longest call-to-test chain followed when ordering test cases (dbt var; default 20).",
    )
    folder_depth_cap: int | None = Field(
        default=None,
        gt=0,
        validation_alias="ZEPHYR_QTEST_FOLDER_DEPTH_CAP",
        description="Longest folder path followed when ordering modules and cycles (dbt var; default 50).",
    )
    approve_test_cases: bool = Field(
        default=True,
        validation_alias="ZEPHYR_QTEST_APPROVE_TEST_CASES",
        description="Approve each migrated test case (0.1 -> 1.0).",
    )
    create_fields: bool = Field(
        default=True,
        validation_alias="ZEPHYR_QTEST_CREATE_FIELDS",
        description="Create the qTest fields and allowed values the migrated values need (0: report only: "
        "nothing is created but the Zephyr Key fields, and each value that needs a missing field or value "
        "is a ledger line naming it).",
    )
    # Parsed below rather than by pydantic-settings, so that a bad value names its variable.
    project_map: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        validation_alias="ZEPHYR_QTEST_PROJECT_MAP",
        description='JSON: Zephyr project key -> qTest project name or id, e.g. {"SHOP": "Webshop"}; '
        "unmapped projects go to the qTest project named after the key.",
    )

    @field_validator("project_map", mode="before")
    @classmethod
    def _project_map_from_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(
                f'not JSON ({error}); expected an object such as {{"SHOP": "Webshop", "PAY": "12345"}}'
            ) from None

    def dbt_vars(self) -> dict[str, Any]:
        """The dbt vars this tree sets (the unset ones keep dbt_project.yml's defaults)."""
        values = self.model_dump(mode="json", include=set(DBT_VAR_NAMES))
        return {name: value for name, value in values.items() if value is not None}


# The mapping options that are dbt vars (dbt_project.yml holds their defaults).
DBT_VAR_NAMES: tuple[str, ...] = ("plans_as", "attachment_max_bytes", "call_depth_cap", "folder_depth_cap")


class Settings(BaseModel):
    """The whole tree. Build it with ``load_settings()``; derive a changed one with ``model_copy``."""

    model_config = ConfigDict(frozen=True)

    paths: PathSettings
    dagster: DagsterSettings
    postgres: PostgresSettings
    zephyr: ZephyrSettings
    qtest: QtestSettings
    snowflake: SnowflakeSettings
    mapping: MappingSettings
    jira: JiraSettings

    def groups(self) -> Iterator[_Group]:
        for name in type(self).model_fields:
            yield getattr(self, name)

    def environ(self) -> dict[str, str]:
        """The variables that set this tree (secrets revealed), for the environment of a child process.

        Only what is set; values from ``.env`` included, so the child needs no ``.env`` of its own.
        """
        variables: dict[str, str] = {}
        for group in self.groups():
            for name in type(group).model_fields:
                value = getattr(group, name)
                if value is None or name not in group.model_fields_set:
                    continue
                variables[variable_name(group, name)] = _as_variable(value)
        return variables


def _as_variable(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def variable_name(group: BaseModel, field: str) -> str:
    """The environment variable that sets ``field`` of ``group``, e.g. ``ZEPHYR_API_TOKEN``."""
    alias = type(group).model_fields[field].validation_alias
    if not isinstance(alias, str):
        raise ValueError(f"{type(group).__name__}.{field} has no variable name")
    return alias


def load_settings(env_file: Path | str | None = DEFAULT_ENV_FILE) -> Settings:
    """Read the tree from the environment and ``env_file`` (default ``.env`` in the working directory;
    None: the environment only). A variable set in the environment wins over the file."""
    groups: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        group_type = field.annotation
        assert isinstance(group_type, type) and issubclass(group_type, _Group)
        groups[name] = group_type(_env_file=env_file)  # type: ignore[call-arg]
    return Settings(**groups)
