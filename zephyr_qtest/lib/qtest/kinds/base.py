"""What every qTest kind shares: its declaration (`Kind`), the mart reader, the context a publishing stage
runs in (`PublishContext`) and the one the reconciliation reads qTest back in (`ReadBack`).

A kind's rules are pure functions of a mart row and the ids they need, passed in explicitly; the contexts
hold what is read once per run (ids from the id map, field catalogs, execution statuses) and hand it over.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.comparison import Reconciliation
from zephyr_qtest.lib.qtest.exactly_once import QUEUE_WINDOW_S, Created, ObjectKind, PublishSummary, publish
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import IdMap
from zephyr_qtest.lib.qtest.kinds.vocabulary import TEST_CASE, TEST_RUN, ObjectType

if TYPE_CHECKING:
    from zephyr_qtest.lib.qtest.kinds.inline_image import InlineImages

Row = dict[str, Any]
# object type -> source key -> qTest id (done rows of the id map)
Ids = Mapping[str, Mapping[str, int]]

ZEPHYR_KEY_LABEL = "Zephyr Key"
# The test-case field the bulk auto-test-logs endpoint finds a case by (the marts set it to the Zephyr key).
AUTOMATION_CONTENT_LABEL = "Automation Content"

LOAD_ORDER = ("load_order", "source_key")
# Steps of a test case, and step results of a test log, in their order.
STEP_ORDER = ("parent_source_key", "step_order", "source_key")


class AttachmentContents(Protocol):
    def read(self, attachment_id: int) -> bytes: ...


class MartSource(Protocol):
    """Where the marts are read from (``mapping.MartRows``; a unit test passes rows of its own)."""

    def rows(self, table: str, project_key: str, order_by: Sequence[str]) -> list[Row]: ...

    def attachment_contents(self) -> AbstractContextManager[AttachmentContents]: ...


class Marts:
    """One project's mapping marts, each read once per stage or reconciliation in a given order."""

    def __init__(self, source: MartSource, project_key: str) -> None:
        self.source = source
        self.project_key = project_key
        self._read: dict[tuple[str, tuple[str, ...]], list[Row]] = {}
        self._grouped: dict[tuple[str, tuple[str, ...]], dict[str, list[Row]]] = {}

    def rows(self, table: str, order_by: Sequence[str] = LOAD_ORDER) -> list[Row]:
        cache_key = (table, tuple(order_by))
        if cache_key not in self._read:
            self._read[cache_key] = self.source.rows(table, self.project_key, order_by)
        return self._read[cache_key]

    def by_parent(self, table: str, order_by: Sequence[str]) -> dict[str, list[Row]]:
        """The rows of `table` grouped by ``parent_source_key``, each group in `order_by` order."""
        cache_key = (table, tuple(order_by))
        if cache_key not in self._grouped:
            self._grouped[cache_key] = group_by_parent(self.rows(table, order_by))
        return self._grouped[cache_key]


def source_key(row: Row) -> str:
    return str(row["source_key"])


def payload_hash(row: Row) -> str:
    return str(row["payload_hash"])


def payload_hash_on(catalog: Callable[[], FieldCatalog]) -> Callable[[Row], str]:
    """The row's hash, marked with the properties the project's fields (`catalog`, read when the row is
    hashed) cannot hold now: once the fields or values exist (created by a later run, or by hand), the
    rows that lacked them hash differently and are sent again, and only those."""

    def hashed(row: Row) -> str:
        problems = catalog().encode(mart_properties(row.get("properties")))[1]
        if not problems:
            return payload_hash(row)
        unset = sorted(f"{problem.field_label}\x1f{problem.value}" for problem in problems)
        return f"{payload_hash(row)}:unset:{hashlib.md5(json.dumps(unset).encode()).hexdigest()[:12]}"

    return hashed


def load_level(row: Row) -> int:
    return int(row.get("load_order") or 0)


def sibling_order(row: Row, order_column: str, id_column: str) -> tuple[str, tuple[Any, ...]] | None:
    """Where a folder goes among its siblings (``ObjectKind.sequence``): (its parent, (Zephyr index, folder
    id)); None without an index.

    The order rests on creation: nothing says qTest takes a module's or test cycle's display order
    (``order``) from a request. The swagger lists ``order`` in ModuleResource and TestCycleResource (not
    read-only, but with no word on writing it) and names no ``order`` in the bodies of createModule,
    updateModule, createCycle or updateCycle; none of the public qTest clients searched sends one; and
    Tricentis' response sample (support.qasymphony.com, "Module APIs") shows orders 2, 11 and 265333 in
    one tree: a counter of creations, not positions. So siblings are created one after the other in
    Zephyr's index order. No documented call moves one among its siblings afterwards: a folder added
    between two others in Zephyr, or a sibling created by a later run, is a ledger line (the proof
    compares the ranks). The sandbox numbers by creation too."""
    index = row.get(order_column)
    if index is None:
        return None
    return str(row.get("parent_source_key") or ""), (int(index), int(row.get(id_column) or 0))


def mart_properties(value: Any) -> list[Mapping[str, Any]]:
    """A mart's ``properties`` column (jsonb, or its text) as a list of {field_label, value}."""
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])


def encoded_properties(catalog: FieldCatalog, value: Any) -> list[dict]:
    """A mart's properties as qTest takes them ({field_id, field_value}); what cannot be set is left out."""
    return catalog.encode(mart_properties(value))[0]


def group_by_parent(rows: Iterable[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[str(row["parent_source_key"])].append(row)
    return grouped


def done_ids(entries: Mapping[str, Any]) -> dict[str, int]:
    """Source key -> qTest id of the id-map entries that are done."""
    return {key: entry.qtest_id for key, entry in entries.items() if entry.state == "done" and entry.qtest_id}


async def field_catalogs(client: QtestClient, project_id: int) -> tuple[FieldCatalog, FieldCatalog]:
    """The test-case and test-run fields (test logs use the run's) with the users, read once per run."""
    users = await client.list_users(project_id)
    by_name = {str(user.get("username")): int(user["id"]) for user in users if user.get("username")}
    return (
        FieldCatalog(await client.get_fields(project_id, TEST_CASE.api_segment), by_name),
        FieldCatalog(await client.get_fields(project_id, TEST_RUN.api_segment), by_name),
    )


async def execution_statuses(client: QtestClient, project_id: int) -> dict[str, int]:
    """The project's execution statuses: lower-cased name -> id."""
    return status_ids(await client.execution_statuses(project_id))


def status_ids(resources: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Execution statuses as qTest lists them (``StatusResource``): lower-cased name -> id."""
    return {str(status["name"]).lower(): int(status["id"]) for status in resources}


def default_status(resources: Iterable[Mapping[str, Any]]) -> str | None:
    """The name of the status qTest shows for a run that has no test log (``StatusResource.is_default``)."""
    return next((str(status["name"]) for status in resources if status.get("is_default")), None)


@dataclass
class PublishContext:
    """What every kind of a publishing stage needs, read once per run."""

    client: QtestClient
    project_id: int
    id_map: IdMap
    marts: Marts
    approve_test_cases: bool = True
    concurrency: int = 8
    # Automated executions per bulk auto-test-logs submission.
    auto_test_log_batch: int = 200
    # How long after a bulk submission whose answer was lost qTest's queue may still make its logs.
    queue_window_s: float = QUEUE_WINDOW_S
    test_case_fields: FieldCatalog = field(default_factory=lambda: FieldCatalog([]))
    test_run_fields: FieldCatalog = field(default_factory=lambda: FieldCatalog([]))
    execution_statuses: dict[str, int] = field(default_factory=dict)
    # object type -> source key -> qTest id (done rows, as the run goes)
    ids: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    property_problems: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # The inline images of rich texts (``inline_image.py``); None: texts go as they are.
    images: InlineImages | None = None

    async def load_settings(self) -> None:
        self.test_case_fields, self.test_run_fields = await field_catalogs(self.client, self.project_id)
        self.execution_statuses = await execution_statuses(self.client, self.project_id)

    async def load_ids(self, *object_types: str) -> None:
        for object_type in object_types:
            self.ids[object_type].update(done_ids(await self.id_map.load(object_type)))

    def claimed(self, object_type: str) -> set[int]:
        return set(self.ids[object_type].values())

    def adopt_by_name(
        self, object_type: str, key: str, name: Any, candidates: Iterable[Mapping[str, Any]]
    ) -> Created | None:
        """After a lost answer: the first of qTest's `candidates` with this `name` that no other object of
        the run holds (two Zephyr objects may share a name), remembered under `key`; None when none is."""
        claimed = self.claimed(object_type)
        for candidate in candidates:
            if candidate.get("name") == name and int(candidate["id"]) not in claimed:
                created = Created(int(candidate["id"]), {"pid": candidate.get("pid")})
                self.remember(object_type, key, created)
                return created
        return None

    def encode(self, catalog: FieldCatalog, object_type: str, properties: Any) -> list[dict]:
        """The properties as qTest takes them; what cannot be set is counted under (object type, label, reason)."""
        encoded, problems = catalog.encode(mart_properties(properties))
        for problem in problems:
            self.property_problems[(object_type, problem.field_label, problem.reason)] += 1
        return encoded

    def remember(self, object_type: str, key: str, created: Created) -> None:
        self.ids[object_type][key] = created.qtest_id
        for child_type, child_key, child_id, _ in created.children:
            self.ids[child_type][child_key] = child_id

    async def run(
        self, kind: ObjectKind[Row], rows: list[Row], also_reload: Sequence[str] = ()
    ) -> PublishSummary:
        """`rows` through the exactly-once protocol; then the ids of what is done, for the kinds after it."""
        summary = await publish(kind, rows, self.id_map, concurrency=self.concurrency)
        await self.load_ids(kind.object_type, *also_reload)
        return summary


@dataclass
class ReadBack:
    """What the reconciliation of every kind needs: qTest's project, the id map, the field catalogs, the
    statuses, and what the kinds before have read back (test logs are read run by run)."""

    client: QtestClient
    project_id: int
    marts: Marts
    ids: dict[str, dict[str, int]]
    outcome: Reconciliation
    test_case_fields: FieldCatalog
    test_run_fields: FieldCatalog
    statuses: dict[str, int]
    # The status of a run without a test log (qTest's default execution status), when the site names one.
    default_status: str | None = None
    # id-map type -> qTest id -> the object as read back
    found: dict[str, dict[int, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    """One kind of qTest object: where its rows come from, what comes before it, how it is published and
    how its result is read back and compared. ``KINDS`` in ``kinds/__init__.py`` lists them in load order."""

    object_type: ObjectType
    # The asset's description (joined with the other kinds' of its stage).
    description: str
    # The ``qtest_mapping`` marts it reads (the asset's dependencies).
    marts: tuple[str, ...]
    # The kinds its objects refer to: published before it (their stages are the asset's dependencies).
    upstream: tuple[ObjectType, ...]
    # The id-map types whose ids it needs (its parents' and its own), loaded before it publishes.
    id_types: tuple[ObjectType, ...]
    # Publishes the kind's rows; returns the summary.
    publish: Callable[[PublishContext], Awaitable[PublishSummary]]
    # The mart rows that become objects of this kind (those the reconciliation expects in qTest).
    rows: Callable[[Marts], list[Row]]
    # Reads back what qTest holds of this kind: qTest id -> object.
    read_back: Callable[[ReadBack, list[Row]], Awaitable[dict[int, Any]]]
    # What qTest must hold for a row (field -> value), and what it holds of the same fields.
    expect: Callable[[Row, ReadBack], dict[str, Any]]
    held: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]
    # Whether it needs the project's field catalogs and execution statuses to publish.
    needs_fields: bool = False
    # The reconciliation row it counts in (default: its own object type), and child rows it fills.
    reconciled_as: ObjectType | None = None
    children: tuple[ObjectType, ...] = ()
    # Compares the children made by a row's object (a test case's steps).
    reconcile_children: Callable[[ReadBack, Row, Mapping[str, Any]], None] | None = None

    @property
    def name(self) -> str:
        return self.object_type.name

    @property
    def stage(self) -> str:
        assert self.object_type.stage is not None
        return self.object_type.stage

    @property
    def result_type(self) -> ObjectType:
        return self.reconciled_as or self.object_type
