"""Extract one Zephyr entity of one project into its raw table.

The registry ``ENTITIES`` drives the Dagster asset factory: one raw asset per entity, its upstream
entities as dependencies. Each extractor streams what the API returns into a ``RawPartitionWriter``
and records every problem as an ``Issue`` naming the object and the field; an object whose data could
not be read is recorded as *lost*, everything else goes on.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from zephyr_qtest.lib import progress
from zephyr_qtest.lib.http import ApiError, NotFoundError
from zephyr_qtest.lib.pagination import int_or_none
from zephyr_qtest.lib.raw_store import (
    Issue,
    MergeScope,
    PartitionSummary,
    RawPartitionWriter,
    RawRow,
    RawRows,
)
from zephyr_qtest.lib.zephyr.client import CHANGE_FILTERS, ZephyrClient

ATTACHMENT_OWNER_KINDS = (
    "testcases",
    "teststeps",
    "testcycles",
    "testplans",
    "testexecutions",
    "testexecution_steps",
)

# What the vendor spec requires of each object, and the enums it defines: checked so that bad input is
# reported by object and field. The object is still stored as the API gave it.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "projects": ("id", "key"),
    "folders": ("id", "name", "folderType"),
    "statuses": ("id", "name"),
    "priorities": ("id", "name"),
    "environments": ("id", "name"),
    "test_cases": ("id", "key", "name", "project", "priority", "status"),
    "test_cycles": ("id", "key", "name", "project", "status"),
    "test_plans": ("id", "key", "name", "project", "status"),
    "test_executions": ("id", "project", "testCase", "testExecutionStatus"),
}
ENUMS: dict[str, dict[str, frozenset[str]]] = {
    "folders": {"folderType": frozenset({"TEST_CASE", "TEST_PLAN", "TEST_CYCLE"})},
    "test_scripts": {"type": frozenset({"plain", "bdd"})},
}
LINK_TYPES = frozenset({"COVERAGE", "BLOCKS", "RELATED"})
PARAMETER_TYPES = frozenset({"MANUAL_INPUT", "DEFAULT_VALUE"})


# How long before the last complete extraction began a delta starts reading again: a change saved while
# that extraction ran (after its listing passed the object), or stamped by a server clock behind ours, is
# then read again instead of lost. Reading an object twice costs a request; missing it costs the migration.
DELTA_OVERLAP_SECONDS = 300.0


@dataclass
class ExtractionSettings:
    concurrency: int = 32
    attachment_owners: tuple[str, ...] = ATTACHMENT_OWNER_KINDS
    # Read everything even where a watermark allows a delta (`zephyr-qtest migrate --full`).
    full: bool = False
    delta_overlap_seconds: float = DELTA_OVERLAP_SECONDS


@dataclass
class ExtractContext:
    client: ZephyrClient
    writer: RawPartitionWriter
    project_key: str
    raw: RawRows
    settings: ExtractionSettings = field(default_factory=ExtractionSettings)
    # Where the listings' change filters start (None: no delta, read everything).
    since: datetime | None = None
    # A delta of a child table: per upstream entity, the column and values of the rows to read again.
    only: dict[str, tuple[str, frozenset[str]]] | None = None

    def record(self, issue: Issue) -> None:
        self.writer.record(issue)

    def upstream_rows(
        self, entity: str, columns: tuple[str, ...] = ("id", "key", "payload")
    ) -> list[tuple[Any, ...]]:
        """The project's rows of an upstream table; in a delta, only those of the objects that changed."""
        rows = self.raw.project_rows(entity, self.project_key, columns)
        if self.only is None or entity not in self.only:
            return rows
        column, wanted = self.only[entity]
        index = columns.index(column)
        return [row for row in rows if row[index] is not None and str(row[index]) in wanted]


def validate(entity: str, payload: dict[str, Any], object_ref: str) -> list[Issue]:
    """Missing required fields and unknown enum values, each as its own issue (the object is kept)."""
    issues = [
        Issue(object_ref, "required field is missing or null", field=name)
        for name in REQUIRED_FIELDS.get(entity, ())
        if payload.get(name) is None
    ]
    for name, allowed in ENUMS.get(entity, {}).items():
        value = payload.get(name)
        if value is not None and value not in allowed:
            issues.append(
                Issue(object_ref, f"unknown value {value!r} (expected one of {sorted(allowed)})", field=name)
            )
    for kind in ("issues", "webLinks"):
        for link in ((payload.get("links") or {}).get(kind)) or []:
            if link.get("type") is not None and link["type"] not in LINK_TYPES:
                issues.append(
                    Issue(object_ref, f"unknown link type {link['type']!r}", field=f"links.{kind}.type")
                )
    return issues


def _ref(entity: str, payload: dict[str, Any]) -> str:
    ident = payload.get("key") or payload.get("id")
    return f"{entity} {ident if ident is not None else '(no id)'}"


Listed = tuple[dict[str, Any], dict[str, str] | None]
"""An object as the API listed it, and the query filter it was listed with (None: no filter)."""


async def _unfiltered(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Listed]:
    async for item in items:
        yield item, None


async def _collect_listing(
    ctx: ExtractContext, entity: str, entries: AsyncIterator[Listed], reported: Awaitable[int | None]
) -> None:
    """A top-level listing: every object is one row, its listing filter beside it; the API's own count is
    recorded too."""
    # The client yields what each page holds; an id seen before is the writer's to judge (a plain repeat
    # or an edit between pages: `RawPartitionWriter.add_again`).
    seen: set[int] = set()
    try:
        async for item, listing_filter in entries:
            issues = validate(entity, item, _ref(entity, item))
            row = RawRow(
                payload=item,
                id=int_or_none(item.get("id")),
                key=item.get("key"),
                listing_filter=listing_filter,
            )
            if row.id is not None and row.id in seen:
                ctx.writer.add_again(row, issues)
                continue
            if row.id is not None:
                seen.add(row.id)
            for issue in issues:
                ctx.record(issue)
            await ctx.writer.add(row)
    except ApiError as error:
        ctx.record(Issue(f"{entity} of project {ctx.project_key}", f"listing stopped: {error}", lost=True))
    try:
        ctx.writer.summary.api_reported = await reported
    except ApiError as error:
        ctx.record(
            Issue(f"{entity} of project {ctx.project_key}", f"could not read the API's total: {error}")
        )


async def _for_each(
    items: Sequence[Any], work: Callable[[Any], Awaitable[None]], concurrency: int, unit: str
) -> None:
    """Run ``work`` over ``items`` with at most ``concurrency`` in flight (bounded memory for 1M items);
    the stage's progress counts them as `unit` (``lib/progress``)."""
    progress.expect(len(items), unit)
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=concurrency * 2)

    async def worker() -> None:
        while True:
            item = await queue.get()
            try:
                if item is _DONE:
                    return
                await work(item)
                progress.advance(1, unit)
            finally:
                queue.task_done()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        for item in items:
            await queue.put(item)
        for _ in workers:
            await queue.put(_DONE)
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()


_DONE = object()


# --------------------------------------------------------------------------------------------------
# Extractors, one per entity
# --------------------------------------------------------------------------------------------------


async def extract_projects(ctx: ExtractContext) -> None:
    try:
        project = await ctx.client.get_project(ctx.project_key)
    except ApiError as error:
        ctx.record(Issue(f"project {ctx.project_key}", str(error), lost=True))
        return
    for issue in validate("projects", project, f"project {ctx.project_key}"):
        ctx.record(issue)
    await ctx.writer.add(RawRow(payload=project, id=int_or_none(project.get("id")), key=project.get("key")))
    ctx.writer.summary.api_reported = 1


def _listing(entity: str, iterate: str, collection: str) -> Callable[[ExtractContext], Awaitable[None]]:
    async def extract(ctx: ExtractContext) -> None:
        if ctx.since is not None and collection in CHANGE_FILTERS:
            await _mark_reported_changes(ctx, entity, iterate, collection)
        await _collect_listing(
            ctx,
            entity,
            _unfiltered(getattr(ctx.client, iterate)(ctx.project_key)),
            ctx.client.reported_total(collection, ctx.project_key),
        )

    extract.__name__ = f"extract_{entity}"
    return extract


async def _mark_reported_changes(ctx: ExtractContext, entity: str, iterate: str, collection: str) -> None:
    """The objects the listing's change filter names (``updatedAfter`` / ``actualEndDateAfter`` since the
    watermark), marked changed: their steps, script, versions and attachments are read again even when the
    listed object looks the same. The whole listing follows anyway (it is the only way to see deletions,
    and its pages hold the objects), so a filter the tenant refuses costs only this finer signal."""
    name = CHANGE_FILTERS[collection]
    keyword = "ended_after" if name == "actualEndDateAfter" else "updated_after"
    try:
        async for item in getattr(ctx.client, iterate)(ctx.project_key, **{keyword: ctx.since}):
            ident = int_or_none(item.get("id"))
            if ident is not None:
                ctx.writer.mark_changed(ident)
    except ApiError as error:
        ctx.record(
            Issue(
                f"{entity} of project {ctx.project_key}",
                f"the {name} listing failed ({error}); changes are taken from the listed objects alone, so a "
                "change only to an object's steps, script or attachments waits for `migrate --full`",
                field=name,
            )
        )


async def extract_statuses(ctx: ExtractContext) -> None:
    """Statuses, one listing per `statusType`: a status never carries its type (REAL_SHAPES.md, Zephyr
    Scale Cloud 1), so the type the listing asked for is kept beside the payload (``listing_filter``)."""
    first_type: dict[int, str] = {}

    async def typed() -> AsyncIterator[Listed]:
        async for status_type, item in ctx.client.iter_typed_statuses(ctx.project_key):
            ident = int_or_none(item.get("id"))
            if ident is not None and first_type.get(ident, status_type) != status_type:
                # Each status belongs to one type; a second type would give one id two rows.
                ctx.record(
                    Issue(
                        _ref("statuses", item),
                        f"listed under statusType {first_type[ident]} and {status_type}; "
                        f"kept as {first_type[ident]}",
                        field="statusType",
                    )
                )
                continue
            if ident is not None:
                first_type[ident] = status_type
            yield item, {"statusType": status_type}

    # The API's count is the unfiltered listing's: a status that answered under no type shows as missing.
    await _collect_listing(ctx, "statuses", typed(), ctx.client.reported_total("statuses", ctx.project_key))


async def extract_test_steps(ctx: ExtractContext) -> None:
    cases = [
        key
        for _, key, payload in ctx.upstream_rows("test_cases")
        if key
        and str(((payload.get("testScript") or {}).get("self")) or "").rstrip("/").endswith("/teststeps")
    ]
    reported = 0

    async def fetch(case_key: str) -> None:
        nonlocal reported
        try:
            steps = await ctx.client.get_test_steps(case_key)
        except NotFoundError:
            ctx.record(
                Issue(f"test case {case_key}", "deleted in Zephyr during the run (404); no steps to keep")
            )
            return
        except ApiError as error:
            ctx.record(
                Issue(
                    f"test case {case_key}", f"steps could not be read: {error}", field="teststeps", lost=True
                )
            )
            return
        reported += len(steps)
        for position, step in enumerate(steps, start=1):
            ref = f"test case {case_key} step {position}"
            call = step.get("testCase")
            if step.get("inline") is None and call is None:
                ctx.record(Issue(ref, "a step has neither 'inline' nor 'testCase'", field="inline"))
            if call is not None:
                if not call.get("testCaseKey"):
                    ctx.record(
                        Issue(ref, "call-to-test step without a target key", field="testCase.testCaseKey")
                    )
                for parameter in call.get("parameters") or []:
                    if parameter.get("type") not in PARAMETER_TYPES:
                        ctx.record(
                            Issue(
                                ref,
                                f"unknown parameter type {parameter.get('type')!r}",
                                field="testCase.parameters.type",
                            )
                        )
            await ctx.writer.add(
                RawRow(
                    payload=step,
                    id=int_or_none(step.get("id")),
                    key=f"{case_key}#{position}",
                    parent_key=case_key,
                    position=position,
                )
            )

    await _for_each(cases, fetch, ctx.settings.concurrency, "test cases")
    ctx.writer.summary.api_reported = reported


async def extract_test_scripts(ctx: ExtractContext) -> None:
    cases = [
        key
        for _, key, payload in ctx.upstream_rows("test_cases")
        if key
        and str(((payload.get("testScript") or {}).get("self")) or "").rstrip("/").endswith("/testscript")
    ]
    reported = 0

    async def fetch(case_key: str) -> None:
        nonlocal reported
        try:
            script = await ctx.client.get_test_script(case_key)
        except ApiError as error:
            ctx.record(
                Issue(
                    f"test case {case_key}",
                    f"script could not be read: {error}",
                    field="testscript",
                    lost=True,
                )
            )
            return
        if script is None:
            # 422: the case is step-by-step now; 404: it has no script (changed or deleted during the run?).
            ctx.record(
                Issue(
                    f"test case {case_key}",
                    "its testScript link names a plain or BDD script, but the API answers that it has none "
                    "(404 or 422: the case changed or was deleted during the run?); extract again to get "
                    "what it holds now",
                    field="testScript",
                )
            )
            return
        reported += 1
        for issue in validate("test_scripts", script, f"test script of {case_key}"):
            ctx.record(issue)
        await ctx.writer.add(
            RawRow(payload=script, id=int_or_none(script.get("id")), key=case_key, parent_key=case_key)
        )

    await _for_each(cases, fetch, ctx.settings.concurrency, "test cases")
    ctx.writer.summary.api_reported = reported


_VERSION_NUMBER = re.compile(r"/versions/([0-9]+)/?$")


async def extract_test_case_versions(ctx: ExtractContext) -> None:
    """The older versions of every test case (the current one is the test case itself): the listing of each
    case, then each version but the newest, stored with its number as position."""
    cases = [key for _, key, _ in ctx.upstream_rows("test_cases") if key]
    reported = 0

    async def fetch(case_key: str) -> None:
        nonlocal reported
        ref = f"test case {case_key}"
        try:
            listed = await ctx.client.list_test_case_versions(case_key)
        except NotFoundError:
            ctx.record(Issue(ref, "deleted in Zephyr during the run (404); no versions to keep"))
            return
        except ApiError as error:
            ctx.record(Issue(ref, f"versions could not be listed: {error}", field="versions", lost=True))
            return
        numbers = []
        for item in listed:
            match = _VERSION_NUMBER.search(str((item or {}).get("self") or ""))
            if match is None:
                ctx.record(
                    Issue(ref, f"a version without a number in its self link: {item!r}", field="versions")
                )
            else:
                numbers.append(int(match.group(1)))
        # The newest is the test case as listed; the older ones are fetched one by one.
        for number in sorted(numbers)[:-1]:
            try:
                version = await ctx.client.get_test_case_version(case_key, number)
            except ApiError as error:
                ctx.record(
                    Issue(
                        f"{ref} version {number}", f"could not be read: {error}", field="versions", lost=True
                    )
                )
                continue
            reported += 1
            await ctx.writer.add(
                RawRow(
                    payload=version,
                    id=int_or_none(version.get("id")),
                    key=f"{case_key}@{number}",
                    parent_key=case_key,
                    position=number,
                )
            )

    await _for_each(cases, fetch, ctx.settings.concurrency, "test cases")
    ctx.writer.summary.api_reported = reported


async def extract_test_execution_steps(ctx: ExtractContext) -> None:
    executions = [ident for ident, _, _ in ctx.upstream_rows("test_executions") if ident is not None]
    reported = 0

    async def fetch(execution_id: int) -> None:
        nonlocal reported
        try:
            steps = await ctx.client.get_execution_steps(execution_id)
        except NotFoundError:
            ctx.record(
                Issue(
                    f"test execution {execution_id}",
                    "deleted in Zephyr during the run (404); no steps to keep",
                )
            )
            return
        except ApiError as error:
            ctx.record(
                Issue(
                    f"test execution {execution_id}",
                    f"step results could not be read: {error}",
                    field="teststeps",
                    lost=True,
                )
            )
            return
        reported += len(steps)
        for position, step in enumerate(steps, start=1):
            await ctx.writer.add(
                RawRow(
                    payload=step,
                    id=int_or_none(step.get("id")),
                    key=f"{execution_id}#{position}",
                    parent_key=str(execution_id),
                    position=position,
                )
            )

    await _for_each(executions, fetch, ctx.settings.concurrency, "test executions")
    ctx.writer.summary.api_reported = reported


def attachment_owners(ctx: ExtractContext) -> list[str]:
    """Every object that can carry attachments, as the API path that lists them."""
    wanted = set(ctx.settings.attachment_owners)
    owners: list[str] = []
    if "testcases" in wanted:
        owners += [f"testcases/{key}" for _, key, _ in ctx.upstream_rows("test_cases") if key]
    if "teststeps" in wanted:
        owners += [
            f"testcases/{parent}/teststeps/{ident}"
            for ident, parent in ctx.upstream_rows("test_steps", ("id", "parent_key"))
            if ident is not None
        ]
    if "testcycles" in wanted:
        owners += [f"testcycles/{key}" for _, key, _ in ctx.upstream_rows("test_cycles") if key]
    if "testplans" in wanted:
        owners += [f"testplans/{key}" for _, key, _ in ctx.upstream_rows("test_plans") if key]
    if "testexecutions" in wanted:
        owners += [
            f"testexecutions/{ident}"
            for ident, _, _ in ctx.upstream_rows("test_executions")
            if ident is not None
        ]
    if "testexecution_steps" in wanted:
        owners += [
            f"testexecutions/{parent}/teststeps/{ident}"
            for ident, parent in ctx.upstream_rows("test_execution_steps", ("id", "parent_key"))
            if ident is not None
        ]
    return owners


async def extract_attachments(ctx: ExtractContext) -> None:
    reported = 0

    async def fetch(owner: str) -> None:
        nonlocal reported
        try:
            listed = await ctx.client.list_attachments(owner)
        except ApiError as error:
            # A 404 too: some tenants answer 404 for endpoints others serve, so a 404 on a listing says
            # nothing about whether the owner has attachments (REAL_SHAPES.md, Zephyr Scale Cloud 4). Its
            # attachments are unknown, so they count as not migrated.
            ctx.record(
                Issue(
                    owner,
                    f"attachments of {owner} could not be listed: {error}",
                    field="attachments",
                    lost=True,
                )
            )
            return
        reported += len(listed)
        for item in listed:
            ident = int_or_none(item.get("id"))
            ref = f"{owner}/attachments/{item.get('id')}"
            if ident is None:
                ctx.record(Issue(ref, "attachment without an id cannot be downloaded", field="id", lost=True))
                continue
            try:
                content, content_type = await ctx.client.download_attachment(owner, ident)
            except ApiError as error:
                ctx.record(
                    Issue(ref, f"content could not be downloaded: {error}", field="content", lost=True)
                )
                continue
            await ctx.writer.add(
                RawRow(
                    payload=item,
                    id=ident,
                    key=ref,
                    parent_key=owner,
                    content=content,
                    content_type=item.get("contentType") or content_type,
                )
            )

    await _for_each(attachment_owners(ctx), fetch, ctx.settings.concurrency, "owners")
    ctx.writer.summary.api_reported = reported


@dataclass(frozen=True)
class Entity:
    """One raw table and how to fill it. ``tracked``: a listed collection whose new, changed and deleted
    objects each extraction records (the per-object children read only those in a delta)."""

    name: str
    description: str
    extract: Callable[[ExtractContext], Awaitable[None]]
    upstream: tuple[str, ...] = ()
    tracked: bool = False


ENTITIES: tuple[Entity, ...] = (
    Entity("projects", "The Zephyr project itself (`GET /projects/{key}`).", extract_projects),
    Entity(
        "folders",
        "Every folder of the project, of all three types (test case, test cycle, test plan), with `parentId`.",
        _listing("folders", "iter_folders", "folders"),
    ),
    Entity(
        "statuses",
        "Every status of the project, of all four types: one listing per `statusType`, the type kept in "
        "`listing_filter` (the status itself has none).",
        extract_statuses,
    ),
    Entity(
        "priorities",
        "Every priority of the project.",
        _listing("priorities", "iter_priorities", "priorities"),
    ),
    Entity(
        "environments",
        "Every environment of the project.",
        _listing("environments", "iter_environments", "environments"),
    ),
    Entity(
        "test_cases",
        "Every test case (current version) with its custom fields, labels and links, through the cursor endpoint.",
        _listing("test_cases", "iter_test_cases", "testcases"),
        tracked=True,
    ),
    Entity(
        "test_steps",
        "Every step of every step-by-step test case, all pages, in order: inline steps and call-to-test steps "
        "with their parameters.",
        extract_test_steps,
        upstream=("test_cases",),
    ),
    Entity(
        "test_scripts",
        "The plain-text and BDD scripts of the test cases that have one.",
        extract_test_scripts,
        upstream=("test_cases",),
    ),
    Entity(
        "test_case_versions",
        "The older versions of every test case (its fields as they were; the API gives no steps of them), "
        "numbered as Zephyr numbers them.",
        extract_test_case_versions,
        upstream=("test_cases",),
    ),
    Entity(
        "test_cycles",
        "Every test cycle of the project.",
        _listing("test_cycles", "iter_test_cycles", "testcycles"),
        tracked=True,
    ),
    Entity(
        "test_plans",
        "Every test plan of the project.",
        _listing("test_plans", "iter_test_plans", "testplans"),
        tracked=True,
    ),
    Entity(
        "test_executions",
        "Every test execution, in cycles and ad hoc, automated or manual.",
        _listing("test_executions", "iter_test_executions", "testexecutions"),
        tracked=True,
    ),
    Entity(
        "test_execution_steps",
        "The step results of every test execution, all pages, in order.",
        extract_test_execution_steps,
        upstream=("test_executions",),
    ),
    Entity(
        "attachments",
        "Every attachment of test cases, their steps, cycles, plans, executions and execution steps, with its "
        "bytes, size and sha256.",
        extract_attachments,
        upstream=(
            "test_cases",
            "test_steps",
            "test_cycles",
            "test_plans",
            "test_executions",
            "test_execution_steps",
        ),
    ),
)


# A child table's rows, by the parent whose change makes them be read again: the column of the parent's
# rows that names it, and how a child row names its parent (the ``parent_key`` values and prefixes).
_CHILD_SCOPES: dict[
    str, dict[str, tuple[str, Callable[[str], tuple[str, ...]], Callable[[str], tuple[str, ...]]]]
] = {
    "test_steps": {"test_cases": ("key", lambda key: (key,), lambda key: ())},
    "test_scripts": {"test_cases": ("key", lambda key: (key,), lambda key: ())},
    "test_case_versions": {"test_cases": ("key", lambda key: (key,), lambda key: ())},
    "test_execution_steps": {"test_executions": ("id", lambda ident: (ident,), lambda ident: ())},
    "attachments": {
        "test_cases": ("key", lambda key: (f"testcases/{key}",), lambda key: (f"testcases/{key}/",)),
        "test_cycles": ("key", lambda key: (f"testcycles/{key}",), lambda key: ()),
        "test_plans": ("key", lambda key: (f"testplans/{key}",), lambda key: ()),
        "test_executions": (
            "id",
            lambda ident: (f"testexecutions/{ident}",),
            lambda ident: (f"testexecutions/{ident}/",),
        ),
    },
}
# The upstream tables whose rows a child reads per changed parent: (table, parent's table, column).
_CHILD_UPSTREAM_BY_PARENT = {
    "test_steps": ("test_cases", "parent_key"),
    "test_execution_steps": ("test_executions", "parent_key"),
}


@dataclass(frozen=True)
class DeltaPlan:
    """What a delta of a child table reads again and replaces."""

    only: dict[str, tuple[str, frozenset[str]]]
    merge: MergeScope
    parents: int


def plan_child_delta(
    entity_name: str, changes: Iterable[tuple[str, int | None, str | None, str]]
) -> DeltaPlan:
    """From the parents' recorded changes ``(entity, id, key, change)``: the parents to read again (new or
    changed) and the child rows to replace (those of every changed, new or deleted parent)."""
    scopes = _CHILD_SCOPES[entity_name]
    reread: dict[str, set[str]] = {parent: set() for parent in scopes}
    parents: set[str] = set()
    prefixes: set[str] = set()
    for parent, ident, key, change in changes:
        if parent not in scopes:
            continue
        column, exact, prefix = scopes[parent]
        name = key if column == "key" else (None if ident is None else str(ident))
        if name is None:
            continue
        parents.update(exact(name))
        prefixes.update(prefix(name))
        if change != "deleted":
            reread[parent].add(name)
    only = {parent: (scopes[parent][0], frozenset(names)) for parent, names in reread.items()}
    # The children of a parent's children (steps of a changed case, for attachments) follow their parent.
    for table, (parent, column) in _CHILD_UPSTREAM_BY_PARENT.items():
        if parent in reread and entity_name == "attachments":
            only[table] = (column, frozenset(reread[parent]))
    return DeltaPlan(
        only=only,
        merge=MergeScope(parents=frozenset(parents), prefixes=frozenset(prefixes)),
        parents=sum(len(names) for names in reread.values()),
    )


async def extract_entity(
    entity: Entity,
    *,
    client: ZephyrClient,
    raw: RawRows,
    project_key: str,
    run_id: str,
    settings: ExtractionSettings | None = None,
) -> tuple[PartitionSummary, dict[str, float | int]]:
    """Extract one entity of one project into its raw partition. Returns what happened and the API stats.

    The first extraction, and every one under ``settings.full``, reads everything. After a complete one (the
    watermark in the extraction log), a listed collection still reads its whole listing (deletions can only
    be seen so; a page holds 1,000 objects) plus what its change filter names since the watermark, and
    records what changed; a per-object child (steps, scripts, versions, step results, attachments) reads only
    the objects whose parent changed since its own last complete extraction and merges them with the rows
    it holds.
    """
    settings = settings or ExtractionSettings()
    started = time.monotonic()
    read_since = datetime.now(UTC)
    changes_upto = raw.last_change_seq()
    watermark = None if settings.full else raw.watermark(entity.name, project_key)
    since: datetime | None = None
    plan: DeltaPlan | None = None
    if watermark is not None and entity.tracked and watermark.read_since is not None:
        since = watermark.read_since - timedelta(seconds=settings.delta_overlap_seconds)
    if watermark is not None and entity.name in _CHILD_SCOPES and watermark.changes_read_to is not None:
        changes = raw.changes_between(
            project_key, tuple(_CHILD_SCOPES[entity.name]), watermark.changes_read_to, changes_upto
        )
        plan = plan_child_delta(entity.name, changes)
    writer = raw.writer(
        entity.name,
        project_key,
        run_id,
        merge=None if plan is None else plan.merge,
        track_changes=entity.tracked,
    )
    writer.read_since = read_since
    writer.changes_read_to = changes_upto
    if since is not None:
        writer.mode = "delta"
    async with writer:
        ctx = ExtractContext(
            client,
            writer,
            project_key,
            raw,
            settings,
            since=since,
            only=None if plan is None else plan.only,
        )
        await entity.extract(ctx)
        # Each asset has a client of its own, so the client's totals are this extraction's.
        stats: dict[str, float | int] = {
            **client.stats.as_metadata(),
            "seconds": round(time.monotonic() - started, 3),
        }
        summary = await writer.finish(stats=stats)
    return summary, stats
