"""Resources: thin configuration holders that hand out the plain clients of ``lib/``.

Nothing here reads the environment at import time. The ``@dg.definitions`` function below runs when the
code location loads: it reads the settings tree once (``zephyr_qtest.settings``) and builds each resource
from it. A secret that is set goes in as ``dg.EnvVar(<its variable>)``, never as its value, so it does not
appear in the UI or in run config; what is not set is left to the embedded and sandbox defaults.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource
from pydantic import BaseModel, Field, PrivateAttr, model_validator

from zephyr_qtest.lib import postgres
from zephyr_qtest.lib import snowflake as warehouse
from zephyr_qtest.lib.dbt import DBT_PROJECT_DIR, dbt_executable
from zephyr_qtest.lib.jira import JiraClient
from zephyr_qtest.lib.qtest import one_writer
from zephyr_qtest.lib.qtest.client import QtestClient, rate_limit_key
from zephyr_qtest.lib.qtest.exactly_once import QUEUE_WINDOW_S
from zephyr_qtest.lib.store import Store
from zephyr_qtest.lib.zephyr.client import ZephyrClient
from zephyr_qtest.settings import Settings, load_settings, variable_name


class PostgresResource(dg.ConfigurableResource):
    """The staging database: a live server when a URL or host is configured, else the embedded one.

    Assets talk to it through ``store()`` (``lib/store.py``: one connection pool per process, closed when
    the resource is torn down); dbt gets ``url()``, and the Snowflake copy opens its own read-only
    repeatable-read connection from it (it changes the session's settings, which a pooled one must not).
    """

    database_url: str | None = Field(default=None, description="A full postgresql:// URL (DATABASE_URL).")
    host: str | None = Field(default=None, description="POSTGRES_HOST; with port, user, password, dbname.")
    port: int = 5432
    user: str = "postgres"
    password: str | None = None
    dbname: str = "postgres"
    embedded_home: str | None = Field(
        default=None,
        description="Where the embedded server keeps its data (the settings' home: ZEPHYR_QTEST_HOME or "
        "./.zephyr_qtest).",
    )
    outage_seconds: float = Field(
        default=postgres.DEFAULT_OUTAGE_SECONDS,
        description="How long a stage waits for the database to come back after an outage "
        "(ZEPHYR_QTEST_DATABASE_OUTAGE_S).",
    )
    _store: Store | None = PrivateAttr(default=None)

    def url(self) -> str:
        """The URL to connect to; starts (or joins) the embedded server when nothing live is configured."""
        if self.database_url:
            return self.database_url
        if self.host:
            return postgres.url_from_parts(self.host, self.port, self.user, self.password, self.dbname)
        home = Path(self.embedded_home) if self.embedded_home else load_settings().paths.home_dir()
        return postgres.embedded_url(home)

    def store(self) -> Store:
        """The store of this process (one connection pool, opened on first use), closed at teardown."""
        if self._store is None:
            self._store = Store(self.url(), outage_seconds=self.outage_seconds)
        return self._store

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


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
    delta_overlap_seconds: float = Field(
        default=300.0,
        description="How far before the last complete extraction a delta starts reading again (changes saved "
        "while it ran, or a server clock behind ours).",
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


class JiraResource(dg.ConfigurableResource):
    """Jira Cloud (or the Jira sandbox), asked which issue each linked issue id is: the site, and the e-mail
    and API token of an account that may browse the linked issues' projects. Optional: without them the
    migration asks Jira nothing."""

    base_url: str = Field(default="", description="JIRA_BASE_URL, e.g. https://acme.atlassian.net")
    email: str = Field(default="", description="JIRA_EMAIL, the account the API token belongs to.")
    api_token: str = Field(default="", description="JIRA_API_TOKEN (secret: set it through the environment).")
    max_in_flight: int = Field(default=4, description="Requests in flight at once.")

    @property
    def is_configured(self) -> bool:
        return bool(self.base_url and self.email and self.api_token)

    def client(self) -> JiraClient | None:
        """A client of the configured site; None when Jira is not configured."""
        if not self.is_configured:
            return None
        return JiraClient(self.base_url, self.email, self.api_token, max_in_flight=self.max_in_flight)


class QtestResource(dg.ConfigurableResource):
    """qTest Manager (or the project's sandbox): site URL and an API token, or a user name and password."""

    base_url: str = Field(default="", description="QTEST_BASE_URL, the site, e.g. https://acme.qtestnet.com")
    api_token: str = Field(
        default="", description="QTEST_API_TOKEN (secret: set it through the environment)."
    )
    username: str = Field(default="", description="QTEST_USERNAME, when logging in instead of a token.")
    password: str = Field(default="", description="QTEST_PASSWORD (secret).")
    cdn_token: str = Field(
        default="",
        description="ZEPHYR_CDN_TOKEN (secret): a browser session's token that reads Zephyr's inline images "
        "from SmartBear's CDN, for their upload as attachments and for the proof.",
    )
    project_map: dict[str, str] = Field(
        default={},
        description="Zephyr project key -> qTest project name or id; unmapped projects go to the qTest "
        "project named after the Zephyr key, created when missing.",
    )
    approve_test_cases: bool = Field(
        default=True, description="Approve each migrated test case (0.1 -> 1.0)."
    )
    create_fields: bool = Field(
        default=True,
        description="ZEPHYR_QTEST_CREATE_FIELDS: create the fields and allowed values the migration needs "
        "(False: report only).",
    )
    max_in_flight: int = Field(default=8, description="Requests in flight at once.")
    when_busy: str = Field(
        default="wait",
        description="ZEPHYR_QTEST_WHEN_BUSY: when another run is publishing the same project to the same "
        "site, wait for it (wait) or stop, naming it (stop).",
    )
    queue_window_s: float = Field(
        default=QUEUE_WINDOW_S,
        description="ZEPHYR_QTEST_QUEUE_WINDOW_S: how long after a bulk submission whose answer was lost "
        "qTest's queue may still make its logs; they are looked for, never sent again, until then.",
    )

    _turn: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """A publishing run started while its project was still being transformed (the tenant's sensor,
        defs/tenant.py) waits here, before any step reads the marts, until that transform succeeded."""
        from zephyr_qtest.defs.tenant import wait_for_transform

        if context.dagster_run is not None and context.instance is not None:
            wait_for_transform(
                context.instance, context.dagster_run.tags, context.log or dg.get_dagster_logger()
            )

    def take_turn(self, context: dg.AssetExecutionContext, database_url: str) -> None:
        """Before this run's first request to qTest, when the instance enforces pools per run (the tenant's
        configuration, docs/dagster-tenant.yaml): waits until no other run talks to qTest with this token,
        and keeps the turn until the run ends (``lib/qtest/one_writer.take_turn``). With pools enforced
        per step (dagster.yaml) Dagster's slots already let one step at a time talk to qTest, and a turn
        held from step to step could wait for a slot held by a step that waits for the turn."""
        if self._turn is not None or not pools_per_run(context.instance):
            return
        key = rate_limit_key(self.base_url, self.api_token or None, self.username, self.password)
        self._turn = one_writer.take_turn(database_url, key, context.run.run_id, context.log.info)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._turn is not None:
            self._turn.close()
            self._turn = None

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


def pools_per_run(instance: dg.DagsterInstance) -> bool:
    """Whether the instance enforces its pools per run (``concurrency: pools: granularity: run``): the queue
    counts runs, and no step claims a slot."""
    granularity = instance.get_concurrency_config().pool_config.pool_granularity
    return getattr(granularity, "value", None) == "run"


class SnowflakeWarehouse(dg.ConfigurableResource):
    """Snowflake through dagster-snowflake's ``SnowflakeResource``, or, with ``embedded`` (the default when no
    ``SNOWFLAKE_ACCOUNT`` is configured), its local emulation: fakesnow keeps each database in a DuckDB file
    under ``<project home>/snowflake``. The fakesnow patch is applied here, in the process that connects
    (each Dagster step process applies its own), and removed when its last connection closes, which
    releases the DuckDB file for the next process.

    It holds the account's settings itself and builds dagster-snowflake's resource only when it connects to
    an account: importing dagster-snowflake (snowpark, snowflake.core) takes half of loading the
    definitions, and every run's process loads them (README, "A whole tenant")."""

    account: str | None = Field(default=None, description="SNOWFLAKE_ACCOUNT, the account identifier.")
    user: str = Field(description="SNOWFLAKE_USER, the login name (the emulation takes any).")
    password: str | None = Field(default=None, description="SNOWFLAKE_PASSWORD (secret).")
    private_key: str | None = Field(default=None, description="SNOWFLAKE_PRIVATE_KEY (secret).")
    private_key_path: str | None = Field(default=None, description="SNOWFLAKE_PRIVATE_KEY_PATH.")
    private_key_password: str | None = Field(
        default=None, description="SNOWFLAKE_PRIVATE_KEY_PASSWORD (secret)."
    )
    authenticator: str | None = Field(default=None, description="Snowflake's authenticator, if not a key.")
    role: str | None = Field(default=None, description="SNOWFLAKE_ROLE.")
    database: str | None = Field(default=None, description="SNOWFLAKE_DATABASE.")
    # `schema` is a name pydantic keeps for itself, as in dagster-snowflake's resource.
    schema_: str | None = Field(default=None, alias="schema", description="SNOWFLAKE_SCHEMA.")
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
    # After the fields above: in the class body this name hides the module `warehouse` (lib/snowflake.py).
    warehouse: str | None = Field(default=None, description="SNOWFLAKE_WAREHOUSE.")

    @model_validator(mode="before")
    @classmethod
    def validate_authentication(cls, values: Any) -> Any:
        # dagster-snowflake's own check, but the emulation needs no credentials.
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
        if self.embedded_dir:
            return Path(self.embedded_dir)
        return load_settings().paths.home_dir() / "snowflake"

    def describe(self) -> str:
        """Where the copies go, fit for metadata (no account secrets)."""
        location = f"{self.database}.{self.schema_}"
        if self.embedded:
            return f"embedded (fakesnow) {self.embedded_directory() / (str(self.database).upper() + '.db')}: {location}"
        return f"Snowflake {location}"

    def account_resource(self) -> Any:
        """dagster-snowflake's ``SnowflakeResource`` for the account (imported here, when one is used)."""
        from dagster_snowflake import SnowflakeResource

        settings = {
            name: getattr(self, name)
            for name in (
                "account",
                "user",
                "password",
                "private_key",
                "private_key_path",
                "private_key_password",
                "authenticator",
                "warehouse",
                "role",
                "database",
            )
        }
        return SnowflakeResource(schema=self.schema_, **_present(**settings))  # type: ignore[arg-type]

    @contextmanager
    def get_connection(self, raw_conn: bool = True) -> Iterator[Any]:
        if not self.embedded:
            with self.account_resource().get_connection(raw_conn=raw_conn) as conn:
                yield conn
            return
        import snowflake.connector

        arguments = _present(user=self.user, database=self.database, schema=self.schema_)
        with warehouse.embedded_snowflake(self.embedded_directory()):
            # Looked up at call time: under the patch this is fakesnow's connect.
            conn = warehouse.connect_waiting_for_lock(lambda: snowflake.connector.connect(**arguments))
            try:
                yield conn
                conn.commit()
            finally:
                conn.close()


def _secret(group: BaseModel, field: str) -> dg.EnvVar | None:
    """A secret that is set, as ``dg.EnvVar`` of the variable that set it (read when a run starts)."""
    return dg.EnvVar(variable_name(group, field)) if getattr(group, field) is not None else None


def _present(**values: object) -> dict[str, object]:
    """The values that are set; the others keep the resource's defaults."""
    return {name: value for name, value in values.items() if value is not None}


def postgres_resource(settings: Settings) -> PostgresResource:
    """The configured server (a URL, or its parts), else the embedded one under the project home."""
    config = settings.postgres
    home = str(settings.paths.home_dir())
    outage = config.outage_seconds
    if config.database_url is not None:
        # The URL may hold the password: it goes in by its variable's name, like every secret.
        return PostgresResource(
            database_url=_secret(config, "database_url"),  # type: ignore[arg-type]
            embedded_home=home,
            outage_seconds=outage,
        )
    if config.host:
        parts = _present(host=config.host, password=_secret(config, "password"))
        return PostgresResource(
            port=config.port,
            user=config.user,
            dbname=config.dbname,
            embedded_home=home,
            outage_seconds=outage,
            **parts,  # type: ignore[arg-type]
        )
    return PostgresResource(embedded_home=home, outage_seconds=outage)


def zephyr_resource(settings: Settings) -> ZephyrResource:
    config = settings.zephyr
    values = _present(base_url=config.base_url or None, api_token=_secret(config, "api_token"))
    return ZephyrResource(**values)  # type: ignore[arg-type]


def jira_resource(settings: Settings) -> JiraResource:
    config = settings.jira
    values = _present(
        base_url=config.base_url or None, email=config.email or None, api_token=_secret(config, "api_token")
    )
    return JiraResource(**values)  # type: ignore[arg-type]


def qtest_resource(settings: Settings) -> QtestResource:
    """The site and its credentials, with the publishing options of the mapping settings."""
    config = settings.qtest
    values = _present(
        base_url=config.base_url or None,
        api_token=_secret(config, "api_token"),
        username=config.username or None,
        password=_secret(config, "password"),
        cdn_token=_secret(settings.zephyr, "cdn_token"),
    )
    return QtestResource(
        project_map=dict(settings.mapping.project_map),
        approve_test_cases=settings.mapping.approve_test_cases,
        create_fields=settings.mapping.create_fields,
        when_busy=settings.qtest.when_busy.value,
        queue_window_s=settings.qtest.queue_window_s,
        **values,  # type: ignore[arg-type]
    )


def snowflake_resource(settings: Settings) -> SnowflakeWarehouse:
    """A Snowflake account when ``SNOWFLAKE_ACCOUNT`` is set (its secrets through ``dg.EnvVar``), else the
    embedded emulation under the project home."""
    config = settings.snowflake
    common: dict[str, object] = {
        "database": config.database or warehouse.EMBEDDED_DATABASE,
        "schema": config.schema_name or warehouse.EMBEDDED_SCHEMA,
        "copy_attachment_bytes": config.copy_attachment_bytes,
    }
    if not config.account:
        embedded_dir = str(settings.paths.home_dir() / "snowflake")
        return SnowflakeWarehouse(embedded=True, user="zephyr_qtest", embedded_dir=embedded_dir, **common)  # type: ignore[arg-type]
    if not config.user:
        raise ValueError(
            "SNOWFLAKE_ACCOUNT is set: set SNOWFLAKE_USER too (or unset both for the emulation)."
        )
    account = _present(
        account=config.account,
        user=config.user,
        password=_secret(config, "password"),
        private_key=_secret(config, "private_key"),
        private_key_path=config.private_key_path,
        private_key_password=_secret(config, "private_key_password"),
        warehouse=config.warehouse,
        role=config.role,
    )
    return SnowflakeWarehouse(**account, **common)  # type: ignore[arg-type]


def snowflake_resource_from_env() -> SnowflakeWarehouse:
    """``snowflake_resource`` of the settings as they are now (the real-account test builds it alone)."""
    return snowflake_resource(load_settings())


def resources_from_settings(settings: Settings) -> dict[str, Any]:
    """Every resource of the graph, built from one settings tree."""
    return {
        "postgres": postgres_resource(settings),
        "zephyr": zephyr_resource(settings),
        "jira": jira_resource(settings),
        "qtest": qtest_resource(settings),
        "dbt": DbtCliResource(project_dir=DBT_PROJECT_DIR, dbt_executable=dbt_executable()),
        "snowflake": snowflake_resource(settings),
    }


@dg.definitions
def resources() -> dg.Definitions:
    # The one read of the settings when a code location (or a run's process) loads the definitions.
    return dg.Definitions(resources=resources_from_settings(load_settings()))
