"""Resources: thin configuration holders that hand out the plain clients of ``lib/``.

Nothing here reads the environment at import time. The ``@dg.definitions`` function below runs when the
code location loads: it wires each setting that is present through ``dg.EnvVar`` (so secrets never
appear in the UI or in run config) and leaves the rest to the embedded and sandbox defaults.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_snowflake import SnowflakeResource
from pydantic import Field, model_validator

from zephyr_qtest.lib import postgres
from zephyr_qtest.lib import snowflake as warehouse
from zephyr_qtest.lib.dbt import DBT_PROJECT_DIR, dbt_executable
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.zephyr.client import ZephyrClient


class PostgresResource(dg.ConfigurableResource):
    """The staging database: a live server when a URL or host is configured, else the embedded one."""

    database_url: str | None = Field(default=None, description="A full postgresql:// URL (DATABASE_URL).")
    host: str | None = Field(default=None, description="POSTGRES_HOST; with port, user, password, dbname.")
    port: int = 5432
    user: str = "postgres"
    password: str | None = None
    dbname: str = "postgres"
    embedded_home: str | None = Field(
        default=None,
        description="Where the embedded server keeps its data (default: ZEPHYR_QTEST_HOME or ./.zephyr_qtest).",
    )

    def url(self) -> str:
        """The URL to connect to; starts (or joins) the embedded server when nothing live is configured."""
        if self.database_url:
            return self.database_url
        if self.host:
            environ = {
                "POSTGRES_HOST": self.host,
                "POSTGRES_PORT": str(self.port),
                "POSTGRES_USER": self.user,
                "POSTGRES_DB": self.dbname,
            }
            if self.password:
                environ["POSTGRES_PASSWORD"] = self.password
            url = postgres.live_url_from_env(environ)
            assert url is not None
            return url
        home = Path(self.embedded_home) if self.embedded_home else postgres.project_home()
        return postgres.embedded_url(home)


class ZephyrResource(dg.ConfigurableResource):
    """Zephyr Scale Cloud (or the project's sandbox): base URL and API token."""

    base_url: str = Field(
        default="", description="ZEPHYR_BASE_URL, e.g. https://api.zephyrscale.smartbear.com/v2"
    )
    api_token: str = Field(
        default="", description="ZEPHYR_API_TOKEN (secret: set it through the environment)."
    )
    max_in_flight: int = Field(default=16, description="Requests in flight at once.")
    page_size: int = Field(default=1000, description="maxResults/limit asked for (the server may lower it).")
    concurrency: int = Field(default=32, description="Objects fetched at once by the per-object extractors.")
    max_retries: int = Field(
        default=8,
        description="Retries of a failed or unreadable answer before it counts as lost (exponential backoff "
        "from 0.5 s, at most 8 s apart).",
    )
    attachment_owners: list[str] = Field(
        default=[
            "testcases",
            "teststeps",
            "testcycles",
            "testplans",
            "testexecutions",
            "testexecution_steps",
        ],
        description="Which objects' attachments to extract.",
    )

    def client(self) -> ZephyrClient:
        if not self.base_url or not self.api_token:
            raise dg.Failure(
                "Zephyr is not configured: set ZEPHYR_BASE_URL and ZEPHYR_API_TOKEN, or run the sandbox "
                "(`zephyr-qtest sandbox serve`, or `make demo` / `make ui`, which start it for you)."
            )
        return ZephyrClient(
            self.base_url,
            self.api_token,
            max_in_flight=self.max_in_flight,
            page_size=self.page_size,
            max_retries=self.max_retries,
        )


class QtestResource(dg.ConfigurableResource):
    """qTest Manager (or the project's sandbox): site URL and an API token, or a user name and password."""

    base_url: str = Field(default="", description="QTEST_BASE_URL, the site, e.g. https://acme.qtestnet.com")
    api_token: str = Field(
        default="", description="QTEST_API_TOKEN (secret: set it through the environment)."
    )
    username: str = Field(default="", description="QTEST_USERNAME, when logging in instead of a token.")
    password: str = Field(default="", description="QTEST_PASSWORD (secret).")
    project_map: dict[str, str] = Field(
        default={},
        description="Zephyr project key -> qTest project name or id; unmapped projects go to the qTest "
        "project named after the Zephyr key, created when missing.",
    )
    approve_test_cases: bool = Field(
        default=True, description="Approve each migrated test case (0.1 -> 1.0)."
    )
    max_in_flight: int = Field(default=8, description="Requests in flight at once.")

    def client(self) -> QtestClient:
        if not self.base_url or not (self.api_token or (self.username and self.password)):
            raise dg.Failure(
                "qTest is not configured: set QTEST_BASE_URL and QTEST_API_TOKEN (or QTEST_USERNAME and "
                "QTEST_PASSWORD), or run the sandbox (`make demo` / `make ui` start it for you)."
            )
        return QtestClient(
            self.base_url,
            self.api_token or None,
            username=self.username or None,
            password=self.password or None,
            max_in_flight=self.max_in_flight,
        )


class SnowflakeWarehouse(SnowflakeResource):
    """Snowflake through dagster-snowflake's ``SnowflakeResource``, or, with ``embedded`` (the default when no
    ``SNOWFLAKE_ACCOUNT`` is configured), its local emulation: fakesnow keeps each database in a DuckDB file
    under ``<project home>/snowflake``. The fakesnow patch is applied here, in the process that connects
    (each Dagster step process applies its own), and removed when its last connection closes, which
    releases the DuckDB file for the next process."""

    embedded: bool = Field(
        default=False, description="Use the local emulation (fakesnow on DuckDB) instead of an account."
    )
    embedded_dir: str | None = Field(
        default=None,
        description="Where the emulation keeps its DuckDB files (default: <project home>/snowflake).",
    )
    copy_attachment_bytes: bool = Field(
        default=False,
        description="Copy canonical.attachment's bytes as BINARY (SNOWFLAKE_COPY_ATTACHMENT_BYTES); by "
        "default only their name, size, type and sha256 are copied.",
    )
    chunk_rows: int = Field(
        default=warehouse.DEFAULT_CHUNK_ROWS,
        description="Rows read from PostgreSQL and bulk-loaded at a time.",
    )

    @model_validator(mode="before")
    @classmethod
    def validate_authentication(cls, values: Any) -> Any:
        # Overrides SnowflakeResource's check of the same name: the emulation needs no credentials.
        if not isinstance(values, dict) or values.get("embedded"):
            return values
        methods = [
            name for name in ("password", "private_key", "private_key_path") if values.get(name) is not None
        ]
        if not methods and values.get("authenticator") is None:
            raise ValueError(
                "Snowflake needs SNOWFLAKE_PASSWORD, SNOWFLAKE_PRIVATE_KEY or SNOWFLAKE_PRIVATE_KEY_PATH "
                "(or an authenticator) with SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER."
            )
        if len(methods) > 1:
            raise ValueError(f"Snowflake takes one of password or private key, not {' and '.join(methods)}.")
        return values

    def embedded_directory(self) -> Path:
        return Path(self.embedded_dir) if self.embedded_dir else postgres.project_home() / "snowflake"

    def describe(self) -> str:
        """Where the copies go, fit for metadata (no account secrets)."""
        location = f"{self.database}.{self.schema_}"
        if self.embedded:
            return f"embedded (fakesnow) {self.embedded_directory() / (str(self.database).upper() + '.db')}: {location}"
        return f"Snowflake {location}"

    @contextmanager
    def get_connection(self, raw_conn: bool = True) -> Iterator[Any]:
        if not self.embedded:
            with super().get_connection(raw_conn=raw_conn) as conn:
                yield conn
            return
        import snowflake.connector

        with warehouse.embedded_snowflake(self.embedded_directory()):
            # Looked up at call time: under the patch this is fakesnow's connect.
            conn = warehouse.connect_waiting_for_lock(
                lambda: snowflake.connector.connect(**self._connection_args)
            )
            try:
                yield conn
                conn.commit()
            finally:
                conn.close()


def _env_or_default(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def postgres_resource_from_env() -> PostgresResource:
    if os.environ.get("DATABASE_URL"):
        return PostgresResource(database_url=dg.EnvVar("DATABASE_URL"))
    if os.environ.get("POSTGRES_HOST"):
        settings: dict[str, object] = {"host": dg.EnvVar("POSTGRES_HOST")}
        for name, setting in (
            ("POSTGRES_USER", "user"),
            ("POSTGRES_PASSWORD", "password"),
            ("POSTGRES_DB", "dbname"),
        ):
            if os.environ.get(name):
                settings[setting] = dg.EnvVar(name)
        if os.environ.get("POSTGRES_PORT"):
            settings["port"] = dg.EnvVar.int("POSTGRES_PORT")
        return PostgresResource(**settings)  # type: ignore[arg-type]
    return PostgresResource()


def zephyr_resource_from_env() -> ZephyrResource:
    settings = {
        "base_url": _env_or_default("ZEPHYR_BASE_URL"),
        "api_token": _env_or_default("ZEPHYR_API_TOKEN"),
    }
    return ZephyrResource(**{name: value for name, value in settings.items() if value is not None})  # type: ignore[arg-type]


def qtest_resource_from_env() -> QtestResource:
    settings = {
        "base_url": _env_or_default("QTEST_BASE_URL"),
        "api_token": _env_or_default("QTEST_API_TOKEN"),
        "username": _env_or_default("QTEST_USERNAME"),
        "password": _env_or_default("QTEST_PASSWORD"),
    }
    return QtestResource(**{name: value for name, value in settings.items() if value is not None})  # type: ignore[arg-type]


def snowflake_resource_from_env() -> SnowflakeWarehouse:
    """A Snowflake account when ``SNOWFLAKE_ACCOUNT`` is set (every setting through ``dg.EnvVar``), else the
    embedded emulation."""
    copy_bytes = os.environ.get("SNOWFLAKE_COPY_ATTACHMENT_BYTES", "").strip().lower() in ("1", "true", "yes")
    if not os.environ.get("SNOWFLAKE_ACCOUNT"):
        return SnowflakeWarehouse(
            embedded=True,
            user="zephyr_qtest",
            database=warehouse.EMBEDDED_DATABASE,
            schema=warehouse.EMBEDDED_SCHEMA,
            copy_attachment_bytes=copy_bytes,
        )
    settings: dict[str, object] = {
        "account": dg.EnvVar("SNOWFLAKE_ACCOUNT"),
        "user": dg.EnvVar("SNOWFLAKE_USER"),
        "database": _env_or_default("SNOWFLAKE_DATABASE") or warehouse.EMBEDDED_DATABASE,
        "schema": _env_or_default("SNOWFLAKE_SCHEMA") or warehouse.EMBEDDED_SCHEMA,
        "copy_attachment_bytes": copy_bytes,
    }
    for name, setting in (
        ("SNOWFLAKE_PASSWORD", "password"),
        ("SNOWFLAKE_PRIVATE_KEY", "private_key"),
        ("SNOWFLAKE_PRIVATE_KEY_PATH", "private_key_path"),
        ("SNOWFLAKE_PRIVATE_KEY_PASSWORD", "private_key_password"),
        ("SNOWFLAKE_WAREHOUSE", "warehouse"),
        ("SNOWFLAKE_ROLE", "role"),
    ):
        if os.environ.get(name):
            settings[setting] = dg.EnvVar(name)
    return SnowflakeWarehouse(**settings)  # type: ignore[arg-type]


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "postgres": postgres_resource_from_env(),
            "zephyr": zephyr_resource_from_env(),
            "qtest": qtest_resource_from_env(),
            "dbt": DbtCliResource(project_dir=DBT_PROJECT_DIR, dbt_executable=dbt_executable()),
            "snowflake": snowflake_resource_from_env(),
        }
    )
