"""qTest test logs of manual executions: one call each on their run, oldest first, with status, dates,
note, properties and step logs. Automated executions that cannot go in bulk are sent the same way.

The pictures of their notes (the execution's comment) and of their step results' actual results
(``inline_image.py``) are attachments of the test log: the log is written, its pictures uploaded on it, and
the log written again with its note and step logs (or the note's "Step result <n>" lines) pointing at them.
On the log, not on its step logs (swagger's blob-handles take both): a PUT of a log sends its
``test_step_logs`` whole, and nothing documents that a step log keeps its id through it, while the log keeps
its id and its attachments. Logs made in bulk (``automated_test_log.py``) are written again the same way
through the automation log's own PUT.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from zephyr_qtest.lib.details_block import with_details
from zephyr_qtest.lib.inline_images import without_sources
from zephyr_qtest.lib.qtest.client import quote_search_value
from zephyr_qtest.lib.qtest.comparison import (
    expected_properties,
    held_properties,
    instant,
    iso,
    same_instant,
    text,
)
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    ZEPHYR_KEY_LABEL,
    Ids,
    PublishContext,
    Row,
    encoded_properties,
    load_level,
    payload_hash_on,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.inline_image import rewritten
from zephyr_qtest.lib.qtest.kinds.vocabulary import (
    TEST_CASE,
    TEST_CASE_VERSION,
    TEST_LOG,
    TEST_RUN,
    TEST_STEP,
    TEST_STEP_LOG,
)

# The field the reconciliation reads a log's run from (qTest's log does not name it; it is read per run).
RUN_OF_LOG = "_run_id"
# A log's self link names its run: .../test-runs/{run}/test-logs/{log} (the API's own path of a log).
_RUN_IN_LINK = re.compile(r"/test-runs/(\d+)/test-logs/\d+")


def run_of_log(log: Mapping[str, Any]) -> int | None:
    """The run a log is on, from its self link (a search answers logs of any run), else None."""
    for link in log.get("links") or []:
        if link.get("rel") == "self" and (match := _RUN_IN_LINK.search(str(link.get("href") or ""))):
            return int(match.group(1))
    return None


def zephyr_key_query(key: str) -> str:
    """The search query of the objects that carry this Zephyr key."""
    return f"'{ZEPHYR_KEY_LABEL}' = '{quote_search_value(key)}'"


def execution_status(statuses: Mapping[str, int], name: str | None, what: str) -> dict[str, int]:
    """The qTest status reference for a mapped status name; ValueError naming `what` when qTest has none."""
    status_id = statuses.get(str(name or "").lower())
    if status_id is None:
        raise ValueError(f"{what}: no qTest execution status named {name!r} (see status_map.csv)")
    return {"id": status_id}


def on_a_step(step: Row, ids: Ids) -> bool:
    """Whether a step result becomes a step log: the mart placed it on a step (of the case, or of a case it
    calls, with the calling step) and qTest holds that step (and the called case and calling step)."""
    if step.get("skip_reason") or step.get("placement") == "note":
        return False
    if not ids[TEST_STEP.name].get(step.get("test_step_source_key") or ""):
        return False
    called = step.get("called_test_case_source_key")
    return not called or (
        called in ids[TEST_CASE.name]
        and (step.get("parent_test_step_source_key") or "") in ids[TEST_STEP.name]
    )


def sent_step_results(step_results: Sequence[Row], ids: Ids) -> list[Row]:
    """The step results a log carries as step logs (see `on_a_step`), in order."""
    return [step for step in step_results if on_a_step(step, ids)]


def noted_step_results(step_results: Sequence[Row], ids: Ids) -> list[Row]:
    """The step results a log keeps in its note: those with no step log (the mart's note_reason, or their
    step is not in qTest)."""
    return [step for step in step_results if not step.get("skip_reason") and not on_a_step(step, ids)]


def step_result_words(step: Row) -> str:
    """A step result as the note shows it: Zephyr status, actual result, the step as run."""
    words = str(step.get("zephyr_status") or step.get("status") or "no status")
    if step.get("actual_result"):
        words += f": {step['actual_result']}"
    if step.get("description"):
        words += f" (step: {step['description']})"
    return words


def step_result_details(step_results: Sequence[Row], ids: Ids) -> list[tuple[str, str]]:
    """The lines a log's note adds to its Zephyr details block: each step result without a step log
    ("Step result <position>", with why), and each data row of a data-driven execution ("Data row <n>":
    its positions and test data), since a step log holds neither a data row nor its values."""
    pairs = []
    for step in noted_step_results(step_results, ids):
        why = step.get("note_reason") or "its step is not in qTest (see that test case's failure)"
        pairs.append(
            (f"Step result {step['step_order']}", f"{step_result_words(step)}; not a step log: {why}")
        )
    rows: dict[int, list[Row]] = defaultdict(list)
    for step in step_results:
        if step.get("data_row") is not None and not step.get("skip_reason"):
            rows[int(step["data_row"])].append(step)
    for number, steps in sorted(rows.items()):
        positions = [int(step["step_order"]) for step in steps]
        data = list(dict.fromkeys(str(step["test_data"]) for step in steps if step.get("test_data")))
        value = f"step results {min(positions)}-{max(positions)}" + (
            f"; test data: {' | '.join(data)}" if data else ""
        )
        pairs.append((f"Data row {number}", value))
    return pairs


def log_note(row: Row, step_results: Sequence[Row], ids: Ids) -> str:
    """The note of a log: the mart's (the execution's comment, ...) with its step results' details."""
    return with_details(row.get("note") or "", step_result_details(step_results, ids))


def step_log_body(step: Row, ids: Ids, statuses: Mapping[str, int]) -> dict[str, Any]:
    """One step log: on its step, and for a step of a called case, that case and the calling step (swagger,
    submitTestLog: "the called_test_case_id and parent_test_step_id must be included")."""
    body: dict[str, Any] = {
        "test_step_id": ids[TEST_STEP.name][step["test_step_source_key"]],
        "status": execution_status(statuses, step.get("status"), f"step result {step['source_key']}"),
        "actual_result": step.get("actual_result") or "",
        "order": int(step.get("step_order") or 0),
    }
    if step.get("called_test_case_source_key"):
        body["called_test_case_id"] = ids[TEST_CASE.name][step["called_test_case_source_key"]]
        body["parent_test_step_id"] = ids[TEST_STEP.name][step["parent_test_step_source_key"]]
    return body


def older_version_id(row: Row, ids: Ids) -> int | None:
    """The qTest version a log goes on when its execution ran against an older version of the case (the
    mart's ``test_case_version_source_key``) that qTest holds; None: the case's latest approved version
    (the current one). Swagger, submitTestLog: "test_case_version_id: ID of the associated Test Case's
    version. If it is omitted, the submitted Test Log will be associated with the Test Case's latest
    approved version"."""
    version_key = row.get("test_case_version_source_key")
    return ids.get(TEST_CASE_VERSION.name, {}).get(str(version_key)) if version_key else None


def manual_log_body(
    row: Row,
    step_results: Sequence[Row],
    ids: Ids,
    statuses: Mapping[str, int],
    properties: list[dict],
) -> dict[str, Any]:
    """The create (and update) body of a test log: its step results (all of them: those with a step log as
    step logs, the others in the note), `properties` already encoded for the project; on the older version
    its execution ran against, when qTest holds it (whose step results the mart put in the note: qTest holds
    an older version without steps)."""
    body: dict[str, Any] = {
        "status": execution_status(statuses, row.get("status"), f"execution {source_key(row)}"),
        "exe_start_date": iso(row["exe_start_date"]),
        "exe_end_date": iso(row["exe_end_date"]),
        "note": log_note(row, step_results, ids),
        "properties": properties,
        "test_step_logs": [
            step_log_body(step, ids, statuses) for step in sent_step_results(step_results, ids)
        ],
    }
    if (version_id := older_version_id(row, ids)) is not None:
        body["test_case_version_id"] = version_id
    return body


def answered_step_logs(log: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A log's step logs as qTest answers them, in their order."""
    return sorted(log.get("test_step_logs") or [], key=lambda step: int(step.get("order") or 0))


def step_log_children(sent: Sequence[Row], log: Mapping[str, Any]) -> list[tuple[str, str, int, str | None]]:
    """The id-map rows of a log's step logs: the step results sent, paired by order with qTest's answer."""
    return [
        (TEST_STEP_LOG.name, str(source["source_key"]), int(step_log_id), str(source["payload_hash"]))
        for source, step in zip(sent, answered_step_logs(log), strict=False)
        if (step_log_id := step.get("test_step_log_id") or step.get("id")) is not None
    ]


def expected_test_log(
    row: Row, step_results: Sequence[Row], ids: Ids, statuses: Mapping[str, int], catalog: FieldCatalog
) -> dict[str, Any]:
    """What qTest must hold for a test log: on its run, status, dates, note, its step logs' statuses in
    order, and the properties qTest has a field for."""
    return {
        "run": ids[TEST_RUN.name].get(row["parent_source_key"]),
        # None: the latest approved version qTest chose (not compared).
        "test case version": older_version_id(row, ids),
        "status": statuses.get(text(row.get("status")).lower()),
        "exe_start_date": instant(row.get("exe_start_date")),
        "exe_end_date": instant(row.get("exe_end_date")),
        "note": note_text(log_note(row, step_results, ids)),
        "step log statuses": [
            statuses.get(text(step.get("status")).lower()) for step in sent_step_results(step_results, ids)
        ],
        "properties": expected_properties(encoded_properties(catalog, row.get("properties"))),
    }


def note_text(value: Any) -> str:
    """A log's note as the loader's check compares it: entities decoded (a step result's picture is escaped
    in its note line) and its pictures' addresses left out (they point at the log's attachments in qTest;
    the proof compares each picture with its source)."""
    return without_sources(html.unescape(text(value)))


def held_test_log(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run": found[RUN_OF_LOG],
        "test case version": (
            found.get("test_case_version_id") if expected["test case version"] is not None else None
        ),
        "status": (found.get("status") or {}).get("id"),
        "exe_start_date": instant(found.get("exe_start_date")),
        "exe_end_date": instant(found.get("exe_end_date")),
        "note": note_text(found.get("note")),
        "step log statuses": [(step.get("status") or {}).get("id") for step in answered_step_logs(found)],
        "properties": held_properties(found, expected["properties"]),
    }


class ManualTestLogs:
    """Create, update and find test logs one call each (a lost create is found on its run by status and
    end date)."""

    def __init__(self, ctx: PublishContext, step_results_by_log: Mapping[str, list[Row]]) -> None:
        self.ctx = ctx
        self.step_results_by_log = step_results_by_log
        # How a log is written again pointing at its pictures: a manual log's PUT here; a log the bulk
        # endpoint made goes through the automation log's (automated_test_log).
        self.repoint: Callable[[Row, Created, dict[str, str]], Awaitable[Mapping[str, Any]]] = (
            self.repoint_manual
        )

    def step_results(self, row: Row, addresses: dict[str, str] | None = None) -> list[Row]:
        """The log's step results, their actual results' pictures pointed at `addresses` when given."""
        steps = self.step_results_by_log.get(source_key(row), [])
        if not addresses:
            return steps
        return [{**step, "actual_result": rewritten(step.get("actual_result"), addresses)} for step in steps]

    def sent_step_results(self, row: Row, addresses: dict[str, str] | None = None) -> list[Row]:
        return sent_step_results(self.step_results(row, addresses), self.ctx.ids)

    def body(self, row: Row, addresses: dict[str, str] | None = None) -> dict[str, Any]:
        """The log's body, its step results' pictures pointed at `addresses` (picture -> attachment)."""
        ctx = self.ctx
        properties = ctx.encode(ctx.test_run_fields, TEST_LOG.api_segment, row.get("properties"))
        steps = self.step_results(row, addresses)
        if addresses:
            row = {**row, "note": rewritten(row.get("note"), addresses)}
        return manual_log_body(row, steps, ctx.ids, ctx.execution_statuses, properties)

    def picture_texts(self, row: Row) -> list[Any]:
        """The rich texts of a log whose pictures go on it: its note (the execution's comment) and its step
        results' actual results."""
        return [row.get("note"), *(step.get("actual_result") for step in self.step_results(row))]

    async def pictures(self, row: Row, log_id: int) -> dict[str, str]:
        """The log's pictures uploaded on it (once), picture -> attachment address; {} when none is carried."""
        images = self.ctx.images
        if images is None:
            return {}
        return await images.settle(TEST_LOG.api_segment, source_key(row), log_id, self.picture_texts(row))

    async def with_pictures(self, row: Row, created: Created) -> Created:
        """A log just made (or found after a lost create) written again with its pictures' qTest addresses,
        when it has pictures that could be carried."""
        addresses = await self.pictures(row, created.qtest_id)
        if not addresses:
            return created
        log = await self.repoint(row, created, addresses)
        return self.created(row, log, int(created.detail["test_run_id"]))

    async def repoint_manual(
        self, row: Row, created: Created, addresses: dict[str, str]
    ) -> Mapping[str, Any]:
        """A log written again (a manual log's PUT) with its pictures pointed at `addresses`."""
        ctx = self.ctx
        run_id = int(created.detail["test_run_id"])
        return await ctx.client.update_test_log(
            ctx.project_id, run_id, created.qtest_id, self.body(row, addresses)
        )

    def run_id(self, row: Row) -> int:
        return self.ctx.ids[TEST_RUN.name][row["parent_source_key"]]

    def created(self, row: Row, log: Mapping[str, Any], run_id: int | None = None) -> Created:
        """The log's id and the run it is on (its own unless `run_id` says otherwise), and its step logs'
        ids (by order) for the attachments of step results."""
        children = step_log_children(self.sent_step_results(row), log)
        return Created(int(log["id"]), {"test_run_id": run_id or self.run_id(row)}, children)

    async def create(self, row: Row) -> Created:
        ctx = self.ctx
        made = self.created(
            row, await ctx.client.create_test_log(ctx.project_id, self.run_id(row), self.body(row))
        )
        return await self.with_pictures(row, made)

    async def update(self, row: Row, entry: Entry) -> Created:
        # (A log the bulk endpoint made goes through the automation log's PUT: AutomatedTestLogs.update,
        # unless its step logs no longer match.) A log stays on the test-case
        # version it was made for, whose steps may be older than the case's latest: its step logs keep
        # naming the steps they name now, in order.
        assert entry.qtest_id is not None
        # A log qTest put on another run (see `find`) is updated where it is.
        ctx = self.ctx
        run_id = int(entry.detail.get("test_run_id") or self.run_id(row))
        payload = self.body(row, await self.pictures(row, entry.qtest_id))
        current = await ctx.client.get_test_log(ctx.project_id, run_id, entry.qtest_id)
        for step_log, recorded in zip(payload["test_step_logs"], answered_step_logs(current), strict=False):
            # (only where both name a step of the same case: a step log that a new mapping put on a called
            # step keeps it)
            if recorded.get("called_test_case_id") != step_log.get("called_test_case_id"):
                continue
            if step_log.get("called_test_case_id") is None:
                if recorded.get("test_step_id") is not None:
                    step_log["test_step_id"] = int(recorded["test_step_id"])
            elif recorded.get("parent_test_step_id") is not None:
                # A called step is the called case's as it is now; the step that calls it is one of the
                # version the log is on (an update of the calling case since made new steps).
                step_log["parent_test_step_id"] = int(recorded["parent_test_step_id"])
        return self.created(
            row, await ctx.client.update_test_log(ctx.project_id, run_id, entry.qtest_id, payload), run_id
        )

    async def find(self, row: Row) -> Created | None:
        """The log a create that may have happened made: on its run, else anywhere by its Zephyr key."""
        return (await self.find_many([row])).get(source_key(row))

    async def find_pictured(self, row: Row) -> Created | None:
        """`find`, and the log found written again with its pictures (as `create` does)."""
        found = await self.find(row)
        return None if found is None else await self.with_pictures(row, found)

    async def find_many(self, rows: Sequence[Row], taken: set[int] | None = None) -> dict[str, Created]:
        """The logs of `rows` that qTest holds, by source key. Each run's logs are listed once and a log is
        matched by status and end date; a log not on its run is searched for by its Zephyr key (qTest's bulk
        endpoint puts a log on a run of its own choosing when the case's Automation Content does not
        match). A log already recorded for another execution (or in `taken`) is never taken twice."""
        ctx = self.ctx
        taken = ctx.claimed(TEST_LOG.name) | (taken or set())
        found: dict[str, Created] = {}
        by_run: dict[int, list[Row]] = defaultdict(list)
        runs = ctx.ids[TEST_RUN.name]
        for row in rows:
            # A log whose run is not in qTest (refused, or its answer lost) is looked for by its key below:
            # qTest's bulk endpoint may have put it on a run of its own choosing.
            if row["parent_source_key"] in runs:
                by_run[runs[row["parent_source_key"]]].append(row)
        for run_id, on_run in by_run.items():
            wanted = [(row, self.body(row)) for row in on_run]
            async for log in ctx.client.iter_test_logs(ctx.project_id, run_id):
                if int(log["id"]) in taken:
                    continue
                for row, body in wanted:
                    same_status = (log.get("status") or {}).get("id") == body["status"]["id"]
                    same_end = same_instant(log.get("exe_end_date"), body["exe_end_date"])
                    if same_status and same_end and source_key(row) not in found:
                        found[source_key(row)] = self.created(row, log)
                        taken.add(int(log["id"]))
                        break
        for row in rows:
            if source_key(row) not in found and (elsewhere := await self.find_by_key(row, taken)) is not None:
                found[source_key(row)] = elsewhere
                taken.add(elsewhere.qtest_id)
        return found

    async def find_by_key(self, row: Row, taken: set[int]) -> Created | None:
        """The log that carries this execution's Zephyr key, on whichever run it is (a search)."""
        ctx = self.ctx
        if ctx.test_run_fields.get(ZEPHYR_KEY_LABEL) is None:
            return None  # logs take the run's fields: without the key field a log cannot be told apart
        # POST /search takes object_type test-logs (swagger; API_NOTES Q-9) and a query by field label
        # (REAL_SHAPES.md qTest item 4). That a log's own properties are searchable by label is unverified
        # on a real site; the self link of each hit names its run (item 4: items carry links[{rel, href}]).
        hits = await ctx.client.search(
            ctx.project_id, TEST_LOG.api_segment, zephyr_key_query(source_key(row))
        )
        for hit in hits:
            run_id = run_of_log(hit)
            if int(hit["id"]) in taken or run_id is None:
                continue
            # The search answers the log without its step logs: read it whole, from its run.
            log = await ctx.client.get_test_log(ctx.project_id, run_id, int(hit["id"]))
            return self.created(row, log, run_id)
        return None

    def payload_hash(self, row: Row) -> str:
        """The log's hash, marked with the properties the run's fields cannot hold now (`payload_hash_on`),
        with its step results' (a result that changed, or that a new mapping now places on a step, updates
        the log)."""
        own = payload_hash_on(lambda: self.ctx.test_run_fields)(row)
        steps = self.step_results(row)
        if not steps:
            return own + self.picture_mark(row)
        joined = "|".join([own, *(str(step.get("payload_hash")) for step in steps)])
        return hashlib.md5(joined.encode(), usedforsecurity=False).hexdigest() + self.picture_mark(row)

    def picture_mark(self, row: Row) -> str:
        """The part of the hash the log's pictures make (``InlineImages.mark``): a run that can now carry
        a picture it could not sends the log again."""
        images = self.ctx.images
        if images is None:
            return ""
        return images.mark(TEST_LOG.api_segment, source_key(row), self.picture_texts(row))

    def protocol(self, lookup: Callable[[Row], Awaitable[Created | None]] | None = None) -> ObjectKind[Row]:
        return ObjectKind(
            TEST_LOG.name,
            source_key,
            self.payload_hash,
            load_level,
            self.create,
            self.update,
            lookup or self.find_pictured,
        )
