"""Publishing one Zephyr project's mapping marts into qTest: modules, test cases with their steps
(callees first, approved as configured), test cycles (and releases), test runs, test logs with their step
logs (manual ones one by one, automated ones through the bulk auto-test-logs queue). Each kind reads its
``qtest_mapping`` table, builds the API bodies, and goes through the exactly-once protocol of
``publish.py``; ids of parents come from the id map.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import dict_row

from zephyr_qtest.lib.http import AmbiguousWriteError, ApiError
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.qtest.client import QtestClient, quote_search_value
from zephyr_qtest.lib.qtest.fields import FieldCatalog, PropertyProblem
from zephyr_qtest.lib.qtest.id_map import Entry, IdMap
from zephyr_qtest.lib.qtest.publish import Created, ObjectKind, PublishSummary, publish

log = logging.getLogger(__name__)

Row = dict[str, Any]
ZEPHYR_KEY_LABEL = "Zephyr Key"
# The test-case field the bulk auto-test-logs endpoint finds a case by (the marts set it to the Zephyr key).
AUTOMATION_CONTENT_LABEL = "Automation Content"


def read_mapping(
    database_url: str, table: str, project_key: str, order_by: str = "load_order, source_key"
) -> list[Row]:
    """One project's rows of ``qtest_mapping.<table>`` (table names are ours, never user input)."""
    with connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(
            f"select * from qtest_mapping.{table} where project_key = %s order by {order_by}", (project_key,)
        )
        return list(cursor.fetchall())


def iso(value: datetime | None) -> str | None:
    """qTest date-times: ISO-8601 in UTC (the marts hold UTC timestamps without a zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class PublishContext:
    """What every kind needs, read once per run."""

    client: QtestClient
    project_id: int
    id_map: IdMap
    approve_test_cases: bool = True
    concurrency: int = 8
    # Automated executions per bulk auto-test-logs submission.
    auto_test_log_batch: int = 200
    test_case_fields: FieldCatalog = field(default_factory=lambda: FieldCatalog([]))
    test_run_fields: FieldCatalog = field(default_factory=lambda: FieldCatalog([]))
    execution_statuses: dict[str, int] = field(default_factory=dict)
    # object type -> source key -> qTest id (done rows, as the run goes)
    ids: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    property_problems: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    async def load_settings(self) -> None:
        self.test_case_fields, self.test_run_fields = await field_catalogs(self.client, self.project_id)
        statuses = await self.client.execution_statuses(self.project_id)
        self.execution_statuses = {str(status["name"]).lower(): int(status["id"]) for status in statuses}

    async def load_ids(self, *object_types: str) -> None:
        for object_type in object_types:
            entries = await self.id_map.load(object_type)
            self.ids[object_type].update(
                {
                    key: entry.qtest_id
                    for key, entry in entries.items()
                    if entry.state == "done" and entry.qtest_id
                }
            )

    def claimed(self, object_type: str) -> set[int]:
        return set(self.ids[object_type].values())

    def encode(
        self, catalog: FieldCatalog, object_type: str, properties: Iterable[Mapping[str, Any]]
    ) -> list[dict]:
        encoded, problems = catalog.encode(properties or [])
        for problem in problems:
            self.property_problems[(object_type, problem.field_label, problem.reason)] += 1
        return encoded

    def remember(self, object_type: str, key: str, created: Created) -> None:
        self.ids[object_type][key] = created.qtest_id
        for child_type, child_key, child_id, _ in created.children:
            self.ids[child_type][child_key] = child_id

    async def run(self, kind: ObjectKind[Row], rows: list[Row]) -> PublishSummary:
        summary = await publish(kind, rows, self.id_map, concurrency=self.concurrency)
        await self.load_ids(kind.object_type, *(["test_step"] if kind.object_type == "test_case" else []))
        return summary


async def field_catalogs(client: QtestClient, project_id: int) -> tuple[FieldCatalog, FieldCatalog]:
    """The test-case and test-run fields (test logs use the run's) with the users, read once per run."""
    users = await client.list_users(project_id)
    by_name = {str(user.get("username")): int(user["id"]) for user in users if user.get("username")}
    return (
        FieldCatalog(await client.get_fields(project_id, "test-cases"), by_name),
        FieldCatalog(await client.get_fields(project_id, "test-runs"), by_name),
    )


def encoded_properties(catalog: FieldCatalog, value: Any) -> list[dict]:
    """A mart's properties as qTest takes them ({field_id, field_value}); what cannot be set is left out."""
    return catalog.encode(_properties(value))[0]


def _hash(row: Row) -> str:
    return str(row["payload_hash"])


def _key(row: Row) -> str:
    return str(row["source_key"])


def _level(row: Row) -> int:
    return int(row.get("load_order") or 0)


def _properties(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])


def property_problem_rows(problems: Counter[tuple[str, str, str]]) -> list[PropertyProblem]:
    return [
        PropertyProblem(label, count, f"{object_type}: {reason}")
        for (object_type, label, reason), count in problems.items()
    ]


# ---------------------------------------------------------------------------------------------- modules


def module_kind(ctx: PublishContext) -> ObjectKind[Row]:
    def parent_id(row: Row) -> int | None:
        parent = row.get("parent_source_key")
        if not parent:
            return None
        return ctx.ids["module"][parent]  # KeyError: the parent failed; recorded on this module

    def body(row: Row) -> dict[str, Any]:
        return {"name": row["name"], "description": row.get("description") or ""}

    async def create(row: Row) -> Created:
        module = await ctx.client.create_module(ctx.project_id, body(row), parent_id(row))
        created = Created(int(module["id"]))
        ctx.remember("module", _key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        await ctx.client.update_module(
            ctx.project_id, entry.qtest_id, {**body(row), "parent_id": parent_id(row)}
        )
        return Created(entry.qtest_id)

    async def lookup(row: Row) -> Created | None:
        parent = parent_id(row)
        siblings = await ctx.client.list_modules(ctx.project_id, parent_id=parent)
        claimed = ctx.claimed("module")
        for module in siblings:
            same_parent = (module.get("parent_id") or None) == parent or parent is None
            if module.get("name") == row["name"] and same_parent and int(module["id"]) not in claimed:
                created = Created(int(module["id"]))
                ctx.remember("module", _key(row), created)
                return created
        return None

    return ObjectKind("module", _key, _hash, _level, create, update, lookup)


# ------------------------------------------------------------------------------------------- test cases


def test_case_kind(ctx: PublishContext, steps_by_case: Mapping[str, list[Row]]) -> ObjectKind[Row]:
    def steps_body(row: Row) -> list[dict[str, Any]]:
        body = []
        for order, step in enumerate(steps_by_case.get(_key(row), []), start=1):
            item: dict[str, Any] = {
                "description": step.get("description") or "",
                "expected": step.get("expected") or "",
                "order": order,
            }
            callee = step.get("called_test_case_source_key")
            if callee and step.get("is_called_test_case_in_project"):
                item["called_test_case_id"] = ctx.ids["test_case"][callee]  # callees are a level earlier
            body.append(item)
        return body

    def body(row: Row) -> dict[str, Any]:
        parent = row.get("parent_source_key")
        payload: dict[str, Any] = {
            "name": row["name"],
            "description": row.get("description") or "",
            "precondition": row.get("precondition") or "",
            "properties": ctx.encode(ctx.test_case_fields, "test-cases", _properties(row.get("properties"))),
            "test_steps": steps_body(row),
        }
        if parent:
            payload["parent_id"] = ctx.ids["module"][parent]
        return payload

    async def finish(row: Row, case: Mapping[str, Any]) -> Created:
        """Approval as configured, then the steps' ids (by order) of the version runs will use: approving
        makes a new version, whose steps are the ones step logs must name."""
        case_id = int(case["id"])
        if ctx.approve_test_cases and not str(case.get("version") or "").endswith(".0"):
            approved = await ctx.client.approve_test_case(ctx.project_id, case_id)
            case = (
                approved
                if "test_steps" in approved
                else await ctx.client.get_test_case(ctx.project_id, case_id)
            )
        detail = {"version": case.get("version"), "test_case_version_id": case.get("test_case_version_id")}
        answered = sorted(case.get("test_steps") or [], key=lambda step: int(step.get("order") or 0))
        sources = steps_by_case.get(_key(row), [])
        children = [
            ("test_step", str(source["source_key"]), int(step["id"]), str(source["payload_hash"]))
            for source, step in zip(sources, answered, strict=False)
        ]
        created = Created(case_id, detail, children)
        ctx.remember("test_case", _key(row), created)
        return created

    async def create(row: Row) -> Created:
        return await finish(row, await ctx.client.create_test_case(ctx.project_id, body(row)))

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        return await finish(row, await ctx.client.update_test_case(ctx.project_id, entry.qtest_id, body(row)))

    async def lookup(row: Row) -> Created | None:
        if ctx.test_case_fields.get(ZEPHYR_KEY_LABEL) is None:
            return None  # without the key property a lost create cannot be told from a namesake
        query = f"'{ZEPHYR_KEY_LABEL}' = '{quote_search_value(_key(row))}'"
        found = await ctx.client.search(ctx.project_id, "test-cases", query)
        claimed = ctx.claimed("test_case")
        for case in found:
            if int(case["id"]) not in claimed:
                full = await ctx.client.get_test_case(ctx.project_id, int(case["id"]))
                return await finish(row, full)
        return None

    return ObjectKind("test_case", _key, _hash, _level, create, update, lookup)


# ------------------------------------------------------------------------------- cycles and releases


def test_cycle_kind(ctx: PublishContext) -> ObjectKind[Row]:
    def object_type(row: Row) -> str:
        return "release" if row.get("qtest_object_type") == "release" else "test_cycle"

    def body(row: Row) -> dict[str, Any]:
        return {"name": row["name"], "description": row.get("description") or ""}

    def parent(row: Row) -> tuple[int, str]:
        parent_key = row.get("parent_source_key")
        if not parent_key:
            return 0, "root"
        return ctx.ids["test_cycle"][parent_key], "test-cycle"

    async def create(row: Row) -> Created:
        if object_type(row) == "release":
            release = await ctx.client.create_release(ctx.project_id, body(row))
            created = Created(int(release["id"]), {"qtest_type": "release"})
        else:
            parent_id, parent_type = parent(row)
            cycle = await ctx.client.create_test_cycle(
                ctx.project_id, body(row), parent_id=parent_id, parent_type=parent_type
            )
            created = Created(int(cycle["id"]), {"qtest_type": "test-cycle", "pid": cycle.get("pid")})
        ctx.remember("test_cycle", _key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        if object_type(row) == "test_cycle":
            await ctx.client.update_test_cycle(ctx.project_id, entry.qtest_id, body(row))
        return Created(entry.qtest_id, entry.detail)

    async def lookup(row: Row) -> Created | None:
        if object_type(row) == "release":
            candidates = await ctx.client.list_releases(ctx.project_id)
        else:
            parent_id, parent_type = parent(row)
            candidates = await ctx.client.list_test_cycles(
                ctx.project_id, parent_id=parent_id, parent_type=parent_type
            )
        claimed = ctx.claimed("test_cycle")
        for candidate in candidates:
            if candidate.get("name") == row["name"] and int(candidate["id"]) not in claimed:
                created = Created(int(candidate["id"]), {"pid": candidate.get("pid")})
                ctx.remember("test_cycle", _key(row), created)
                return created
        return None

    return ObjectKind("test_cycle", _key, _hash, _level, create, update, lookup)


# -------------------------------------------------------------------------------------------- test runs


def test_run_kind(ctx: PublishContext) -> ObjectKind[Row]:
    def body(row: Row) -> dict[str, Any]:
        return {
            "name": row["name"],
            "test_case": {"id": ctx.ids["test_case"][row["test_case_source_key"]]},
            "properties": ctx.encode(ctx.test_run_fields, "test-runs", _properties(row.get("properties"))),
        }

    def parent_id(row: Row) -> int:
        return ctx.ids["test_cycle"][row["parent_source_key"]]

    async def create(row: Row) -> Created:
        run = await ctx.client.create_test_run(
            ctx.project_id, body(row), parent_id=parent_id(row), parent_type="test-cycle"
        )
        created = Created(int(run["id"]), {"parent_id": parent_id(row)})
        ctx.remember("test_run", _key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        # A run changes cycle when its pair gains automated executions (the automation sub-cycle).
        if entry.detail.get("parent_id") != parent_id(row):
            await ctx.client.move_test_run(ctx.project_id, entry.qtest_id, parent_id(row), "test-cycle")
        await ctx.client.update_test_run(ctx.project_id, entry.qtest_id, body(row))
        return Created(entry.qtest_id, {"parent_id": parent_id(row)})

    async def lookup(row: Row) -> Created | None:
        case_id = ctx.ids["test_case"][row["test_case_source_key"]]
        claimed = ctx.claimed("test_run")
        async for run in ctx.client.iter_test_runs(
            ctx.project_id, parent_id=parent_id(row), parent_type="test-cycle"
        ):
            run_case = run.get("testCaseId") or (run.get("test_case") or {}).get("id")
            if run_case is not None and int(run_case) == case_id and int(run["id"]) not in claimed:
                created = Created(int(run["id"]), {"parent_id": parent_id(row)})
                ctx.remember("test_run", _key(row), created)
                return created
        return None

    return ObjectKind("test_run", _key, _hash, _level, create, update, lookup)


# -------------------------------------------------------------------------------------------- test logs


@dataclass
class AutomatedLogs:
    """What sending automated executions through the bulk auto-test-logs endpoint needs."""

    # Automation runs (qtest_test_runs rows with automation_module_names) by source key.
    runs: Mapping[str, Row]
    # qtest_test_steps rows by test case, in order: the endpoint's step logs repeat their texts.
    steps_by_case: Mapping[str, list[Row]]
    # Step-log keys that own attachments: their qTest ids are read back after the submission.
    step_logs_with_files: set[str] = field(default_factory=set)
    # Pending logs of an earlier run -> the queue job that may have created them.
    queued: dict[str, int] = field(default_factory=dict)
    # A queue job's end, awaited once however many logs it carries.
    job_ends: dict[int, asyncio.Task[dict]] = field(default_factory=dict)


# The project's Automation Settings map these result strings to the execution statuses of the same name
# (qTest's defaults: PASSED -> Passed, FAILED -> Failed, ...); the mapped status names come from status_map.
def automation_status(status_name: str) -> str:
    return status_name.upper()


# How long a submission whose answer was lost is given to show its logs in this run (a queue may take
# longer: what has not shown up stays pending, and the next run looks for it before sending it again).
LOST_SUBMISSION_CHECKS = 5
LOST_SUBMISSION_INTERVAL_S = 1.0


def test_log_kind(
    ctx: PublishContext, step_logs_by_log: Mapping[str, list[Row]], automation: AutomatedLogs | None = None
) -> ObjectKind[Row]:
    """Manual executions become test logs one call each; automated executions of automation runs go to
    the bulk auto-test-logs endpoint, a level's worth per cycle and submission, polled to the end."""

    def status(name: str | None, what: str) -> dict[str, int]:
        status_id = ctx.execution_statuses.get(str(name or "").lower())
        if status_id is None:
            raise ValueError(f"{what}: no qTest execution status named {name!r} (see status_map.csv)")
        return {"id": status_id}

    def sent_step_results(row: Row) -> list[Row]:
        """The step results a log carries: those whose step is in the case's qTest version."""
        return [
            step
            for step in step_logs_by_log.get(_key(row), [])
            if not step.get("skip_reason")
            and ctx.ids["test_step"].get(step.get("test_step_source_key") or "")
        ]

    def body(row: Row) -> dict[str, Any]:
        step_logs = [
            {
                "test_step_id": ctx.ids["test_step"][step["test_step_source_key"]],
                "status": status(step.get("status"), f"step result {step['source_key']}"),
                "actual_result": step.get("actual_result") or "",
                "order": int(step.get("step_order") or 0),
            }
            for step in sent_step_results(row)
        ]
        payload: dict[str, Any] = {
            "status": status(row.get("status"), f"execution {_key(row)}"),
            "exe_start_date": iso(row["exe_start_date"]),
            "exe_end_date": iso(row["exe_end_date"]),
            "note": row.get("note") or "",
            "properties": ctx.encode(ctx.test_run_fields, "test-logs", _properties(row.get("properties"))),
            "test_step_logs": step_logs,
        }
        return payload

    def run_id(row: Row) -> int:
        return ctx.ids["test_run"][row["parent_source_key"]]

    def created(row: Row, log: Mapping[str, Any]) -> Created:
        """The log's id, and its step logs' ids (by order) for the attachments of step results."""
        answered = sorted(log.get("test_step_logs") or [], key=lambda step: int(step.get("order") or 0))
        children = [
            ("test_step_log", str(source["source_key"]), int(step_log_id), str(source["payload_hash"]))
            for source, step in zip(sent_step_results(row), answered, strict=False)
            if (step_log_id := step.get("test_step_log_id") or step.get("id")) is not None
        ]
        return Created(int(log["id"]), {"test_run_id": run_id(row)}, children)

    async def create(row: Row) -> Created:
        return created(row, await ctx.client.create_test_log(ctx.project_id, run_id(row), body(row)))

    async def update(row: Row, entry: Entry) -> Created:
        # An automation log is updated like a manual one (PUT takes either). A log stays on the test-case
        # version it was made for, whose steps may be older than the case's latest: its step logs keep
        # naming the steps they name now, in order.
        assert entry.qtest_id is not None
        payload = body(row)
        current = await ctx.client.get_test_log(ctx.project_id, run_id(row), entry.qtest_id)
        recorded_steps = sorted(
            current.get("test_step_logs") or [], key=lambda step: int(step.get("order") or 0)
        )
        for step_log, recorded in zip(payload["test_step_logs"], recorded_steps, strict=False):
            if recorded.get("test_step_id") is not None:
                step_log["test_step_id"] = int(recorded["test_step_id"])
        return created(
            row, await ctx.client.update_test_log(ctx.project_id, run_id(row), entry.qtest_id, payload)
        )

    async def find(row: Row) -> Created | None:
        wanted = body(row)
        claimed = ctx.claimed("test_log")
        async for log in ctx.client.iter_test_logs(ctx.project_id, run_id(row)):
            same_status = (log.get("status") or {}).get("id") == wanted["status"]["id"]
            same_end = _same_instant(log.get("exe_end_date"), wanted["exe_end_date"])
            if same_status and same_end and int(log["id"]) not in claimed:
                return created(row, log)
        return None

    async def lookup(row: Row) -> Created | None:
        queue_id = automation.queued.get(_key(row)) if automation else None
        if queue_id is not None:
            await job_end(queue_id)  # a job still in the queue has not made its logs yet
        return await find(row)

    if automation is None:
        return ObjectKind("test_log", _key, _hash, _level, create, update, lookup)

    # ---- the bulk, asynchronous endpoint

    async def job_end(queue_id: int) -> dict:
        assert automation is not None
        if queue_id not in automation.job_ends:
            automation.job_ends[queue_id] = asyncio.ensure_future(ctx.client.wait_for_queue(queue_id))
        return await asyncio.shield(automation.job_ends[queue_id])

    def automation_run(row: Row) -> Row | None:
        assert automation is not None
        return automation.runs.get(str(row["parent_source_key"])) if row.get("automated") else None

    def batched(row: Row) -> bool:
        """Automated executions of automation runs, when qTest can match their step logs: it pairs them
        with the case's steps by position, so they must be the case's first steps, in order."""
        assert automation is not None
        run = automation_run(row)
        if run is None:
            return False
        case_steps = [
            str(step["source_key"]) for step in automation.steps_by_case.get(run["test_case_source_key"], [])
        ]
        results = [
            str(step["test_step_source_key"])
            for step in step_logs_by_log.get(_key(row), [])
            if not step.get("skip_reason") and step.get("test_step_source_key")
        ]
        return results == case_steps[: len(results)]

    def automation_item(row: Row) -> dict[str, Any]:
        assert automation is not None
        run = automation.runs[str(row["parent_source_key"])]
        case_key = str(run["test_case_source_key"])
        if case_key not in ctx.ids["test_case"]:
            # The endpoint would make a new case for an unknown fingerprint.
            raise KeyError(f"its test case {case_key} is not in qTest (see that case's failure)")
        case_steps = automation.steps_by_case.get(case_key, [])
        manual = body(row)  # checks the statuses and encodes the properties
        step_logs = [
            {
                "description": case_steps[order].get("description") or "",
                "expected_result": case_steps[order].get("expected") or "",
                "actual_result": step.get("actual_result") or "",
                "status": automation_status(str(step.get("status"))),
                "order": order,
            }
            for order, step in enumerate(sent_step_results(row))
        ]
        return {
            "name": run["name"],
            "automation_content": case_key,
            "status": automation_status(str(row.get("status"))),
            "exe_start_date": manual["exe_start_date"],
            "exe_end_date": manual["exe_end_date"],
            "module_names": _properties(run["automation_module_names"]),
            "note": manual["note"],
            "properties": manual["properties"],
            "test_step_logs": step_logs,
        }

    async def recorded(row: Row, log_id: int) -> Created:
        """What the id map keeps of a log the queue made; its step logs' ids only when files go on them."""
        assert automation is not None
        keys = {str(step["source_key"]) for step in sent_step_results(row)}
        if keys & automation.step_logs_with_files:
            return created(row, await ctx.client.get_test_log(ctx.project_id, run_id(row), log_id))
        return Created(log_id, {"test_run_id": run_id(row)})

    async def after_lost_submission(rows: Sequence[Row]) -> dict[str, Created]:
        """A submission whose answer was lost may still be queued: give its logs time to show up (a job
        makes all of them or none), then take those that did."""
        for _ in range(LOST_SUBMISSION_CHECKS):
            if await find(rows[0]) is not None:
                break
            await asyncio.sleep(LOST_SUBMISSION_INTERVAL_S)
        found = {}
        for row in rows:
            if (adopted := await find(row)) is not None:
                found[_key(row)] = adopted
        return found

    async def submit(
        cycle_key: str, items: list[tuple[Row, dict[str, Any]]]
    ) -> dict[str, Created | Exception]:
        rows = [row for row, _ in items]
        results: dict[str, Created | Exception] = {}
        try:
            test_cycle = ctx.ids["test_cycle"][cycle_key]
        except KeyError:
            error = KeyError(f"its cycle {cycle_key} is not in qTest (see that cycle's failure)")
            return {_key(row): error for row in rows}
        body = {"test_cycle": test_cycle, "test_logs": [item for _, item in items]}
        try:
            try:
                job = await ctx.client.submit_auto_test_logs(ctx.project_id, body)
            except AmbiguousWriteError as exc:
                # Sending again now could make every log twice if the job is only slow.
                results.update(await after_lost_submission(rows))
                return {_key(row): results.get(_key(row), exc) for row in rows}
            queue_id = int(job["id"])
            await ctx.id_map.note_pending("test_log", [_key(row) for row in rows], {"queue_id": queue_id})
            try:
                outcome = await job_end(queue_id)
            except ApiError as exc:  # the job may still finish: the logs stay pending for the next run
                raise AmbiguousWriteError(
                    exc.method, exc.url, exc.status, f"queue job {queue_id}: {exc.message}"
                ) from exc
            for row, (log_id, on_run) in zip(rows, queued_logs(outcome, len(rows)), strict=True):
                if log_id is not None:
                    if on_run is not None and on_run != run_id(row):
                        # It exists, so it is recorded (never sent twice); the reconciliation shows it.
                        log.warning(
                            "queue job %s put execution %s on qTest run %s, not on its run %s: the project did "
                            "not find test case %s by its Automation Content (check its Automation Settings)",
                            queue_id, _key(row), on_run, run_id(row), automation.runs[row["parent_source_key"]]["test_case_source_key"],
                        )  # fmt: skip
                    results[_key(row)] = await recorded(row, log_id)
                elif (found := await find(row)) is not None:
                    results[_key(row)] = found
                else:
                    reason = queue_failure(outcome)
                    results[_key(row)] = ApiError(
                        "POST", "auto-test-logs", None, f"queue job {queue_id} {reason}"
                    )
        except ApiError as exc:
            for row in rows:
                results.setdefault(_key(row), exc)
        return results

    async def create_many(rows: Sequence[Row]) -> list[Created | Exception]:
        results: dict[str, Created | Exception] = {}
        by_cycle: dict[str, list[tuple[Row, dict[str, Any]]]] = defaultdict(list)
        for row in rows:
            try:
                run = automation_run(row)
                assert run is not None
                by_cycle[str(run["automation_test_cycle_source_key"])].append((row, automation_item(row)))
            except (KeyError, ValueError) as exc:
                results[_key(row)] = exc

        # Not bounded by ctx.concurrency: a submission mostly waits for its queue job, and the HTTP
        # layer's rate limiter paces the calls themselves.
        async def one(cycle_key: str, items: list[tuple[Row, dict[str, Any]]]) -> None:
            results.update(await submit(cycle_key, items))

        size = max(1, ctx.auto_test_log_batch)
        await asyncio.gather(*(
            one(cycle_key, items[start : start + size])
            for cycle_key, items in by_cycle.items()
            for start in range(0, len(items), size)
        ))  # fmt: skip
        return [results[_key(row)] for row in rows]

    return ObjectKind("test_log", _key, _hash, _level, create, update, lookup, batched, create_many)


def queued_logs(outcome: Mapping[str, Any], count: int) -> list[tuple[int | None, int | None]]:
    """(test log id, test run id) of each log a finished queue job reports, in submission order, where
    its content has them (the sandbox's does; otherwise each log is looked up on its run)."""
    unknown: list[tuple[int | None, int | None]] = [(None, None)] * count
    if outcome.get("state") != "SUCCESS":
        return unknown
    try:
        content = json.loads(outcome.get("content") or "{}")
        logs = content.get("test_logs") if isinstance(content, dict) else None
        if isinstance(logs, list) and len(logs) == count:
            return [
                (
                    int(item["test_log_id"]) if item.get("test_log_id") else None,
                    int(item["test_run_id"]) if item.get("test_run_id") else None,
                )
                for item in logs
            ]
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return unknown


def queue_failure(outcome: Mapping[str, Any]) -> str:
    if outcome.get("state") == "SUCCESS":
        return "succeeded, but the log is not on its run"
    try:
        message = json.loads(outcome.get("content") or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"failed: {message or outcome.get('content') or 'no reason given'}"


def automation_waves(rows: Iterable[Row], batched: Any) -> dict[str, int]:
    """The load order of test logs: a run's logs oldest first, but consecutive automated ones share the
    level of the first of them, so that they go in one submission (in order) instead of one each."""
    waves: dict[str, int] = {}
    previous: dict[str, tuple[bool, int]] = {}
    for row in sorted(rows, key=lambda r: (str(r["parent_source_key"]), int(r["log_order"]))):
        run, bulk = str(row["parent_source_key"]), bool(batched(row))
        last = previous.get(run)
        wave = last[1] if bulk and last is not None and last[0] else int(row["log_order"])
        waves[_key(row)] = wave
        previous[run] = (bulk, wave)
    return waves


# ------------------------------------------------------------------------------------------ attachments

# qTest blob-handle object type -> the id-map type of the owner.
ATTACHMENT_OWNERS = {
    "test-cases": "test_case",
    "test-steps": "test_step",
    "test-logs": "test_log",
    "test-step-logs": "test_step_log",
    "releases": "test_cycle",
}


def attachment_content(database_url: str, attachment_id: int) -> bytes:
    with connect(database_url) as conn:
        row = conn.execute(
            "select attachment_blob from canonical.attachment where attachment_id = %s", (attachment_id,)
        ).fetchone()
    if row is None or row[0] is None:
        raise ValueError(f"attachment {attachment_id} has no bytes in canonical.attachment")
    return bytes(row[0])


def attachment_owner(ids: Mapping[str, Mapping[str, int]], row: Row) -> tuple[str, int]:
    """The qTest object an attachment goes on. A step result whose step log qTest does not have (a result
    of a step the case's version lacks) hands its files to the test log, so that none is lost."""
    object_type = str(row["qtest_object_type"])
    owner_key = str(row["parent_source_key"])
    owner_id = ids[ATTACHMENT_OWNERS[object_type]].get(owner_key)
    if owner_id is None and object_type == "test-step-logs":
        object_type, owner_key = "test-logs", owner_key.rsplit("#", 1)[0]
        owner_id = ids["test_log"].get(owner_key)
    if owner_id is None:
        raise KeyError(f"its owner {owner_key} is not in qTest (see that object's failure)")
    return object_type, owner_id


def attachment_kind(ctx: PublishContext, database_url: str) -> ObjectKind[Row]:
    def owner(row: Row) -> tuple[str, int]:
        return attachment_owner(ctx.ids, row)

    async def create(row: Row) -> Created:
        object_type, owner_id = owner(row)
        content = attachment_content(database_url, int(row["attachment_id"]))
        uploaded = await ctx.client.upload_attachment(
            ctx.project_id,
            object_type,
            owner_id,
            str(row["name"]),
            str(row.get("content_type") or ""),
            content,
        )
        return Created(int(uploaded["id"]), {"owner_type": object_type, "owner_id": owner_id})

    async def update(row: Row, entry: Entry) -> Created:
        # A file cannot be edited in qTest: the old one goes, the new one comes.
        assert entry.qtest_id is not None
        object_type = str(entry.detail.get("owner_type") or row["qtest_object_type"])
        owner_id = int(entry.detail.get("owner_id") or owner(row)[1])
        await ctx.client.delete_attachment(ctx.project_id, object_type, owner_id, entry.qtest_id)
        return await create(row)

    async def lookup(row: Row) -> Created | None:
        object_type, owner_id = owner(row)
        claimed = ctx.claimed("attachment")
        for attachment in await ctx.client.list_attachments(ctx.project_id, object_type, owner_id):
            if attachment.get("name") == row["name"] and int(attachment["id"]) not in claimed:
                return Created(int(attachment["id"]), {"owner_type": object_type, "owner_id": owner_id})
        return None

    return ObjectKind("attachment", _key, _hash, _level, create, update, lookup)


def _same_instant(left: str | None, right: str | None) -> bool:
    if not left or not right:
        return left == right
    try:
        return datetime.fromisoformat(left.replace("Z", "+00:00")) == datetime.fromisoformat(
            right.replace("Z", "+00:00")
        )
    except ValueError:
        return left == right


def group_by_parent(rows: Iterable[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[str(row["parent_source_key"])].append(row)
    return grouped


# ---------------------------------------------------------------------------------------------- a stage

# The stages in load order, each with the id-map types its parents come from.
STAGES: dict[str, tuple[str, ...]] = {
    "modules": ("module",),
    "test_cases": ("module", "test_case", "test_step"),
    "test_cycles": ("test_cycle",),
    "test_runs": ("test_case", "test_cycle", "test_run"),
    # test cases and cycles: the bulk auto-test-logs endpoint names them (fingerprint, test_cycle).
    "test_logs": ("test_case", "test_cycle", "test_run", "test_step", "test_log"),
    "attachments": ("test_case", "test_step", "test_log", "test_step_log", "test_cycle", "attachment"),
}


async def automated_logs(ctx: PublishContext, database_url: str, project_key: str) -> AutomatedLogs | None:
    """What the bulk auto-test-logs endpoint needs, or None when this qTest project cannot take it: without
    the Automation Content field it would make a new case for every automated execution."""
    if ctx.test_case_fields.get(AUTOMATION_CONTENT_LABEL) is None:
        log.warning(
            "qTest project %s has no test-case field %r: automated executions go as manual test logs",
            ctx.project_id, AUTOMATION_CONTENT_LABEL,
        )  # fmt: skip
        return None
    runs = {
        str(row["source_key"]): row
        for row in read_mapping(database_url, "qtest_test_runs", project_key)
        if row.get("automation_module_names") is not None
    }
    steps = group_by_parent(
        read_mapping(
            database_url, "qtest_test_steps", project_key, "parent_source_key, step_order, source_key"
        )
    )
    files = {
        str(row["parent_source_key"])
        for row in read_mapping(database_url, "qtest_attachments", project_key)
        if row.get("qtest_object_type") == "test-step-logs"
    }
    queued = {
        key: int(entry.detail["queue_id"])
        for key, entry in (await ctx.id_map.load("test_log")).items()
        if entry.state == "pending" and entry.detail.get("queue_id")
    }
    return AutomatedLogs(runs, steps, files, queued)


async def resolve_project(client: QtestClient, id_map: IdMap, project_key: str, target: str | None) -> int:
    """The qTest project a Zephyr project goes to: `target` (a name or an id) from the project map, else
    the project named after the Zephyr key, created when missing (once: the id map remembers it)."""
    known = (await id_map.load("project")).get(project_key)
    if known is not None and known.state == "done" and known.qtest_id:
        return known.qtest_id
    wanted = target or project_key
    for project in await client.list_projects():
        if str(project.get("id")) == wanted or project.get("name") == wanted:
            await id_map.done("project", project_key, int(project["id"]), None, {"name": project.get("name")})
            return int(project["id"])
    if target and target.isdigit():
        raise ValueError(f"qTest project {target} (from the project map for {project_key}) does not exist")
    await id_map.pending("project", project_key, "")
    project = await client.create_project(wanted, f"Migrated from Zephyr Scale project {project_key}")
    await id_map.done("project", project_key, int(project["id"]), None, {"name": wanted, "created": True})
    return int(project["id"])


async def publish_stage(
    stage: str,
    database_url: str,
    client: QtestClient,
    project_key: str,
    *,
    project_target: str | None = None,
    approve_test_cases: bool = True,
    concurrency: int = 8,
) -> tuple[PublishSummary, Counter[tuple[str, str, str]]]:
    """Publishes one stage of one project; returns its summary and the properties that could not be set."""
    id_map = await IdMap.open(database_url, project_key)
    try:
        project_id = await resolve_project(client, id_map, project_key, project_target)
        id_map.qtest_project_id = project_id
        ctx = PublishContext(
            client, project_id, id_map, approve_test_cases=approve_test_cases, concurrency=concurrency
        )
        await ctx.load_ids(*STAGES[stage])
        if stage == "modules":
            summary = await ctx.run(
                module_kind(ctx), read_mapping(database_url, "qtest_modules", project_key)
            )
        elif stage == "test_cases":
            await ctx.load_settings()
            steps = group_by_parent(
                read_mapping(
                    database_url, "qtest_test_steps", project_key, "parent_source_key, step_order, source_key"
                )
            )
            rows = read_mapping(database_url, "qtest_test_cases", project_key)
            summary = await ctx.run(test_case_kind(ctx, steps), rows)
        elif stage == "test_cycles":
            summary = await ctx.run(
                test_cycle_kind(ctx), read_mapping(database_url, "qtest_test_cycles", project_key)
            )
        elif stage == "test_runs":
            await ctx.load_settings()
            summary = await ctx.run(
                test_run_kind(ctx), read_mapping(database_url, "qtest_test_runs", project_key)
            )
        elif stage == "test_logs":
            await ctx.load_settings()
            step_logs = group_by_parent(
                read_mapping(
                    database_url, "qtest_test_step_logs", project_key, "parent_source_key, step_order"
                )
            )
            rows = [
                row
                for row in read_mapping(
                    database_url, "qtest_test_logs", project_key, "load_order, log_order, source_key"
                )
                if not row.get("skip_reason")
            ]
            automation = await automated_logs(ctx, database_url, project_key)
            kind = test_log_kind(ctx, step_logs, automation)
            waves = automation_waves(rows, kind.batched or (lambda row: False))
            summary = await ctx.run(replace(kind, level=lambda row: waves[_key(row)]), rows)
        elif stage == "attachments":
            rows = read_mapping(database_url, "qtest_attachments", project_key)
            uploadable = [row for row in rows if not row.get("skip_reason") and row.get("qtest_object_type")]
            summary = await ctx.run(attachment_kind(ctx, database_url), uploadable)
            summary.not_uploaded = [
                {"name": row["name"], "size_bytes": row.get("size_bytes"),
                 "skip_reason": row.get("skip_reason") or "qTest takes no attachments on this kind of object"}
                for row in rows if row not in uploadable
            ]  # fmt: skip
        else:
            raise ValueError(f"unknown stage {stage!r}")
        return summary, ctx.property_problems
    finally:
        await id_map.close()
