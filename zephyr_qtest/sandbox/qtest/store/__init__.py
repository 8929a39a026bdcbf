"""The qTest sandbox's tenant: every object of every project, persisted in SQLite under ``state_dir``.

One SQLite file (``state_dir/qtest.sqlite3``, WAL mode, ``synchronous=NORMAL``) holds the site: users and
tokens, projects with their field settings and execution statuses, and every artifact (modules, test cases
and their versions, releases, test cycles, test suites, test runs, test logs, attachments, queued bulk
submissions). Objects are stored as JSON text in one ``objects`` table keyed by id, with the columns the
API filters on (kind, project, parent, pid, name, a sort key, a linked id) indexed beside the JSON; set
properties go to ``prop_index`` so a search by "Zephyr Key" is an index lookup, not a scan. A restarted
server on the same ``state_dir`` sees everything; a write is committed before its answer is sent (so a lost
answer loses nothing but the answer).

Ids come from one site-wide sequence that starts at a seed-derived seven-digit number, so ids are unique
across kinds (a test case id used as a test run id is a 404, not another object) and look like a real
tenant's rather than 1, 2, 3. PIDs (``TC-1``, ``MD-2``, ``RL-1``, ``CL-3``, ``TS-1``, ``TR-2``) count per
project and kind.

The store is used from one thread (the server's event loop); it is not thread-safe. Every method that
changes data runs inside ``tx()``: validation first, then writes, then one commit; a failure rolls back
and reloads the in-memory caches. Domain errors are ``QTestError(status, message)``.

The store is one class put together from one mixin per resource, each in its own module of this package:
``base`` (the connection, schema, transactions, ids, object rows; ``StoreBase``), ``auth`` (users and
tokens), ``projects`` (projects, field settings, statuses, properties), ``modules``, ``cases`` (test cases,
versions, steps), ``cycles`` (releases, test cycles, test suites), ``runs``, ``logs`` (manual test logs),
``automation`` (automation logs and the queue), ``attachments``, ``search`` and ``admin`` (counts, dump,
reset). The mixins share one state (``self``): a method of one resource calls another's helpers directly,
as the rules cross resources (deleting a module deletes its test cases, a log checks its run's version).
"""

from __future__ import annotations

from zephyr_qtest.sandbox.qtest.store.admin import AdminStore
from zephyr_qtest.sandbox.qtest.store.attachments import ATTACHMENT_TYPES, AttachmentsStore
from zephyr_qtest.sandbox.qtest.store.auth import AuthStore
from zephyr_qtest.sandbox.qtest.store.automation import AutomationStore
from zephyr_qtest.sandbox.qtest.store.base import (
    DB_FILE,
    DEFAULT_ATTACHMENT_MAX_BYTES,
    SCHEMA_VERSION,
    QTestError,
    StoreBase,
    format_time,
)
from zephyr_qtest.sandbox.qtest.store.cases import CasesStore
from zephyr_qtest.sandbox.qtest.store.cycles import CyclesStore
from zephyr_qtest.sandbox.qtest.store.logs import LogsStore
from zephyr_qtest.sandbox.qtest.store.modules import ModulesStore
from zephyr_qtest.sandbox.qtest.store.projects import ProjectsStore
from zephyr_qtest.sandbox.qtest.store.requirements import RequirementsStore
from zephyr_qtest.sandbox.qtest.store.runs import RunsStore
from zephyr_qtest.sandbox.qtest.store.search import SEARCH_TYPES, SearchStore


class QTestStore(
    AuthStore,
    ProjectsStore,
    ModulesStore,
    CasesStore,
    CyclesStore,
    RunsStore,
    LogsStore,
    AutomationStore,
    AttachmentsStore,
    SearchStore,
    RequirementsStore,
    AdminStore,
    StoreBase,
):
    """Persistence and domain rules of one sandbox site. See the package docstring."""


__all__ = [
    "ATTACHMENT_TYPES",
    "DB_FILE",
    "DEFAULT_ATTACHMENT_MAX_BYTES",
    "SCHEMA_VERSION",
    "SEARCH_TYPES",
    "QTestError",
    "QTestStore",
    "format_time",
]
