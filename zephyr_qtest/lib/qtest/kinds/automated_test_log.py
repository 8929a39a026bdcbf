"""qTest test logs of automated executions, through the bulk auto-test-logs endpoint: a level's worth per
cycle and submission, each submission a queue job polled to its end. The endpoint finds a log's test case
by its Automation Content and pairs the step logs with the case's steps by position.

A submission is never sent twice on a guess. Before it is sent, each of its logs' pending rows in the id
map records the submission (``Submission``: the body's fingerprint and when it was sent; the job id joins
them once qTest answers), so a crash mid-send leaves the same trace as a lost answer. A pending log with a
job id waits for the job's end; one without (the answer was lost) is looked for in qTest for as long as
qTest's queue may still be working on its submission (``PublishContext.queue_window_s`` from the time it
was sent), one wait per submission (a job makes all its logs or none), and only then may it be sent again.

Pictures (the execution's comment in the note, its step results' actual results): the job's answer names no
log, but the logs are read back after it (`ManualTestLogs.find_many`), so each log's id and its step logs'
ids are known; the pictures are uploaded on the log and the log written again pointing at them through the
automation log's own PUT (swagger modifyAutomationLog: status, dates, note, properties, and each step log's
actual result by ``test_step_log_id``; ``qaprosoft/qps-pipeline`` updates automation logs so).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from zephyr_qtest.lib.http import AmbiguousWriteError, ApiError
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    AUTOMATION_CONTENT_LABEL,
    STEP_ORDER,
    PublishContext,
    Row,
    mart_properties,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.manual_test_log import (
    ManualTestLogs,
    answered_step_logs,
    older_version_id,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import (
    TEST_CASE,
    TEST_CYCLE,
    TEST_LOG,
    TEST_RUN,
)

log = logging.getLogger(__name__)

# How long the run that lost a submission's answer looks for its logs (never beyond the queue window).
# Not the whole window: the rest of the stage, and the attachments after it, should not wait an hour for
# a job that may have failed. What has not shown up stays pending with its submission, and the next run
# waits out the window before sending it again.
LOST_SUBMISSION_WAIT_S = 60.0
# Between looks for the logs of a submission of unknown fate: short at first (most jobs end within
# seconds), doubling up to the cap (a long queue is not read hard).
LOOK_AGAIN_FIRST_S = 1.0
LOOK_AGAIN_MAX_S = 15.0


def body_fingerprint(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a submission's body (sorted keys, no spaces)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Submission:
    """A bulk submission as its pending logs' rows in the id map keep it (``detail``), so that a later
    run can tell whether qTest's queue may still make them: the body's fingerprint and when it was sent."""

    fingerprint: str
    sent_at: datetime

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Submission:
        return cls(body_fingerprint(body), utc_now())

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> Submission | None:
        """The submission an id-map row names, or None (a row of an earlier version, or not sent)."""
        fingerprint, sent_at = detail.get("submission"), detail.get("sent_at")
        if not fingerprint or not sent_at:
            return None
        try:
            when = datetime.fromisoformat(str(sent_at))
        except ValueError:
            return None
        return cls(str(fingerprint), when if when.tzinfo else when.replace(tzinfo=UTC))

    def detail(self) -> dict[str, Any]:
        # queue_id null: a job id left by an earlier submission of these logs is not theirs any more.
        return {"submission": self.fingerprint, "sent_at": self.sent_at.isoformat(), "queue_id": None}

    def until(self, window_s: float) -> datetime:
        """Until when qTest's queue may still make this submission's logs."""
        return self.sent_at + timedelta(seconds=window_s)

    def describe(self) -> str:
        return f"bulk submission {self.fingerprint[:12]} (sent {stamp(self.sent_at)})"


def stamp(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def pending_reason(submission: Submission, window_s: float) -> str:
    """Why a log of a submission whose answer was lost is pending, and why a re-run is safe."""
    return (
        f"the answer to {submission.describe()} was lost and its logs are not in qTest yet; qTest's queue "
        f"may still make them until {stamp(submission.until(window_s))}: a re-run looks for them first, "
        "waits for them until then, and sends them again only if they have not come"
    )


@dataclass
class AutomatedLogs:
    """What sending automated executions through the bulk auto-test-logs endpoint needs."""

    # Automation runs (qtest_test_runs rows with automation_module_names) by source key.
    runs: Mapping[str, Row]
    # qtest_test_steps rows by test case, in order: the endpoint's step logs repeat their texts.
    steps_by_case: Mapping[str, list[Row]]
    # Pending logs of an earlier run -> the queue job that may have created them.
    queued: dict[str, int] = field(default_factory=dict)
    # Pending logs of an earlier run whose submission's answer was lost (no job id) -> that submission.
    submissions: dict[str, Submission] = field(default_factory=dict)
    # A queue job's end, awaited once however many logs it carries.
    job_ends: dict[int, asyncio.Task[dict]] = field(default_factory=dict)
    # The wait for a submission of unknown fate, shared by its logs (a job makes all of them or none).
    waits: dict[Submission, asyncio.Task[bool]] = field(default_factory=dict)
    # The source keys of each case's steps, in order (built once per case, not once per log).
    step_keys_by_case: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.step_keys_by_case = {
            case: [str(step["source_key"]) for step in steps] for case, steps in self.steps_by_case.items()
        }


# The project's Automation Settings map these result strings to the execution statuses of the same name
# (qTest's defaults: PASSED -> Passed, FAILED -> Failed, ...); the mapped status names come from status_map.
def automation_status(status_name: str) -> str:
    return status_name.upper()


def pairs_by_position(step_results: Iterable[Row], case_step_keys: Sequence[str]) -> bool:
    """Whether the endpoint, which pairs step logs with the case's steps by position, pairs these step
    results right: their steps must be the case's first steps, in order."""
    results = [
        str(step["test_step_source_key"])
        for step in step_results
        if not step.get("skip_reason") and step.get("test_step_source_key")
    ]
    return results == list(case_step_keys[: len(results)])


def automation_item(
    row: Row, run: Row, case_steps: Sequence[Row], sent: Sequence[Row], manual_body: Mapping[str, Any]
) -> dict[str, Any]:
    """One execution (`row`) as the bulk endpoint takes it: named after its automation `run`, its case by
    Automation Content (the case's key), its step logs carrying the texts of the case's steps; status
    names as the Automation Settings map them. `manual_body` is its manual body (dates, note, properties)."""
    step_logs = [
        {
            "description": case_steps[order].get("description") or "",
            "expected_result": case_steps[order].get("expected") or "",
            "actual_result": step.get("actual_result") or "",
            "status": automation_status(str(step.get("status"))),
            "order": order,
        }
        for order, step in enumerate(sent)
    ]
    return {
        "name": run["name"],
        "automation_content": str(run["test_case_source_key"]),
        "status": automation_status(str(row.get("status"))),
        "exe_start_date": manual_body["exe_start_date"],
        "exe_end_date": manual_body["exe_end_date"],
        "module_names": mart_properties(run["automation_module_names"]),
        "note": manual_body["note"],
        "properties": manual_body["properties"],
        "test_step_logs": step_logs,
    }


# The id map's mark of a log the bulk endpoint made (its entry's detail): only such a log is written again
# through the automation log's PUT. A log made one call at a time (a manual one, e.g. of an execution that
# Zephyr ran by hand before it was automated) keeps the manual log's PUT, its own.
MADE_BY = "made_by"
MADE_BY_BULK = "auto-test-logs"


def made_by_bulk(made: Created) -> Created:
    """`made` marked in the id map as a log the bulk endpoint made."""
    return replace(made, detail={**made.detail, MADE_BY: MADE_BY_BULK})


def automation_update(item: Mapping[str, Any], step_log_ids: Sequence[int]) -> dict[str, Any]:
    """The body of an automation log's PUT (swagger modifyAutomationLog) from its bulk `item`: status,
    dates, note and properties, and each step log by its id (AutomationStepLog requires
    ``test_step_log_id``) in the order it was submitted (which the PUT cannot change), with its actual
    result and status; its description and expected result cannot be modified, so they are not sent."""
    return {
        "status": item["status"],
        "exe_start_date": item["exe_start_date"],
        "exe_end_date": item["exe_end_date"],
        "note": item["note"],
        "properties": item["properties"],
        "test_step_logs": [
            {
                "test_step_log_id": step_log_id,
                "order": step["order"],
                "actual_result": step["actual_result"],
                "status": step["status"],
            }
            for step, step_log_id in zip(item["test_step_logs"], step_log_ids, strict=False)
        ],
    }


def automation_waves(rows: Iterable[Row], batched: Callable[[Row], bool]) -> dict[str, int]:
    """The load order of test logs: a run's logs oldest first, but consecutive automated ones share the
    level of the first of them, so that they go in one submission (in order) instead of one each."""
    waves: dict[str, int] = {}
    previous: dict[str, tuple[bool, int]] = {}
    for row in sorted(rows, key=lambda r: (str(r["parent_source_key"]), int(r["log_order"]))):
        run, bulk = str(row["parent_source_key"]), bool(batched(row))
        last = previous.get(run)
        wave = last[1] if bulk and last is not None and last[0] else int(row["log_order"])
        waves[source_key(row)] = wave
        previous[run] = (bulk, wave)
    return waves


def queue_failure(outcome: Mapping[str, Any]) -> str:
    """Why a finished queue job made no log: a FAILED job's content is the error text (REAL_SHAPES.md
    qTest item 1)."""
    if outcome.get("state") == "SUCCESS":
        return "succeeded, but the log is neither on its run nor found by its Zephyr key"
    return f"failed: {outcome.get('content') or 'no reason given'}"


async def automated_logs(ctx: PublishContext) -> AutomatedLogs | None:
    """What the bulk auto-test-logs endpoint needs, or None when this qTest project cannot take it: without
    the Automation Content field it would make a new case for every automated execution."""
    if ctx.test_case_fields.get(AUTOMATION_CONTENT_LABEL) is None:
        log.warning(
            "qTest project %s has no test-case field %r: automated executions go as manual test logs",
            ctx.project_id, AUTOMATION_CONTENT_LABEL,
        )  # fmt: skip
        return None
    assert TEST_RUN.mart is not None
    runs = {
        str(row["source_key"]): row
        for row in ctx.marts.rows(TEST_RUN.mart)
        if row.get("automation_module_names") is not None
    }
    steps = ctx.marts.by_parent("qtest_test_steps", STEP_ORDER)
    queued: dict[str, int] = {}
    submissions: dict[str, Submission] = {}
    for key, entry in (await ctx.id_map.load(TEST_LOG.name)).items():
        if entry.state != "pending":
            continue
        if entry.detail.get("queue_id"):
            queued[key] = int(entry.detail["queue_id"])
        elif (submission := Submission.from_detail(entry.detail)) is not None:
            submissions[key] = submission
    return AutomatedLogs(runs, steps, queued, submissions)


class AutomatedTestLogs:
    """The bulk side of the test-log kind: which logs go in bulk, their submission, and the lookup of
    logs a queue job of an earlier run may have made. Single calls go through `manual`."""

    def __init__(self, manual: ManualTestLogs, automation: AutomatedLogs) -> None:
        self.manual = manual
        self.ctx = manual.ctx
        self.automation = automation
        # A log the bulk endpoint made is written again through the automation log's PUT.
        manual.repoint = self.repoint

    async def job_end(self, queue_id: int) -> dict:
        job_ends = self.automation.job_ends
        if queue_id not in job_ends:
            job_ends[queue_id] = asyncio.ensure_future(self.ctx.client.wait_for_queue(queue_id))
        return await asyncio.shield(job_ends[queue_id])

    async def lookup(self, row: Row) -> Created | None:
        """A pending log of an earlier run: after its queue job has ended (a job still in the queue has not
        made its logs yet), on its run or anywhere by its Zephyr key. Without a job id (its submission's
        answer was lost), it is looked for until found or until qTest's queue can no longer make it (the
        window from the time it was sent); None (send it again) only after that."""
        queue_id = self.automation.queued.get(source_key(row))
        submission = self.automation.submissions.get(source_key(row))
        if queue_id is None and submission is not None:
            count = sum(1 for other in self.automation.submissions.values() if other == submission)
            deadline = submission.until(self.ctx.queue_window_s)
            await self.shared_wait(submission, row, deadline, count)
        if queue_id is not None:
            try:
                await self.job_end(queue_id)
            except ApiError as exc:
                if exc.status != 404:
                    # Still queued (or the poll failed): the log stays pending until a later run.
                    raise AmbiguousWriteError(
                        exc.method, exc.url, exc.status, f"queue job {queue_id}: {exc.message}"
                    ) from exc
                # qTest no longer knows the job: what it made, if anything, is in qTest by now.
        found = await self.manual.find_pictured(row)
        if found is not None:
            self.warn_if_elsewhere(row, found, queue_id)
        return found

    def warn_if_elsewhere(self, row: Row, found: Created, queue_id: int | None) -> None:
        """A log on another run than its own is recorded (never sent twice); the reconciliation shows it."""
        own_run = self.ctx.ids[TEST_RUN.name].get(row["parent_source_key"])
        on_run = found.detail.get("test_run_id")
        if on_run is not None and on_run != own_run:
            log.warning(
                "queue job %s put execution %s on qTest run %s, not on its run %s: the project did not find "
                "test case %s by its Automation Content (check its Automation Settings); recorded there",
                queue_id if queue_id is not None else "(unknown)", source_key(row), on_run, own_run,
                self.automation.runs[row["parent_source_key"]]["test_case_source_key"],
            )  # fmt: skip

    def automation_run(self, row: Row) -> Row | None:
        return self.automation.runs.get(str(row["parent_source_key"])) if row.get("automated") else None

    def batched(self, row: Row) -> bool:
        """Automated executions of automation runs, when qTest can match their step logs by position."""
        run = self.automation_run(row)
        if run is None:
            return False
        if older_version_id(row, self.ctx.ids) is not None:
            # It goes on the older version it ran against: a call of its own (the bulk endpoint takes
            # test_case_version_id only for runs that exist, and makes its runs itself).
            return False
        case_step_keys = self.automation.step_keys_by_case.get(run["test_case_source_key"], [])
        return pairs_by_position(self.manual.step_results_by_log.get(source_key(row), []), case_step_keys)

    def item(self, row: Row, addresses: dict[str, str] | None = None) -> dict[str, Any]:
        """The execution as the bulk endpoint takes it; its pictures pointed at `addresses` when given."""
        run = self.automation.runs[str(row["parent_source_key"])]
        case_key = str(run["test_case_source_key"])
        if case_key not in self.ctx.ids[TEST_CASE.name]:
            # The endpoint would make a new case for an unknown fingerprint.
            raise KeyError(f"its test case {case_key} is not in qTest (see that case's failure)")
        manual = self.manual.body(row, addresses)  # checks the statuses and encodes the properties
        sent = self.manual.sent_step_results(row, addresses)
        return automation_item(row, run, self.automation.steps_by_case.get(case_key, []), sent, manual)

    async def repoint(self, row: Row, created: Created, addresses: dict[str, str]) -> Mapping[str, Any]:
        """A log written again pointing at its pictures: one the bulk endpoint made through the automation
        log's PUT (`rewrite_automation_log`), any other as a manual log."""
        if not self.batched(row):
            return await self.manual.repoint_manual(row, created, addresses)
        run_id = int(created.detail["test_run_id"])
        current = await self.ctx.client.get_test_log(self.ctx.project_id, run_id, created.qtest_id)
        return await self.rewrite_automation_log(row, run_id, current, addresses)

    async def rewrite_automation_log(
        self, row: Row, run_id: int, current: Mapping[str, Any], addresses: dict[str, str]
    ) -> Mapping[str, Any]:
        """A log the bulk endpoint made (`current`, read from qTest: a run's listing of logs need not carry
        step logs) written again through the automation log's PUT, its pictures pointed at `addresses`; the
        log read back whole (the swagger types this PUT's answer as a bare object)."""
        ctx = self.ctx
        log_id = int(current["id"])
        step_log_ids = [
            int(step.get("test_step_log_id") or step["id"]) for step in answered_step_logs(current)
        ]
        body = automation_update(self.item(row, addresses), step_log_ids)
        await ctx.client.update_automation_log(ctx.project_id, run_id, log_id, body)
        return await ctx.client.get_test_log(ctx.project_id, run_id, log_id)

    async def update(self, row: Row, entry: Entry) -> Created:
        """A changed execution's log: one the bulk endpoint made (``MADE_BY_BULK`` in its entry) through the
        automation log's PUT, when it holds a step log for each step result sent (that PUT can neither add
        nor remove one); any other as a manual log."""
        assert entry.qtest_id is not None
        if not self.batched(row) or entry.detail.get(MADE_BY) != MADE_BY_BULK:
            return await self.manual.update(row, entry)
        ctx = self.ctx
        run_id = int(entry.detail.get("test_run_id") or self.manual.run_id(row))
        current = await ctx.client.get_test_log(ctx.project_id, run_id, entry.qtest_id)
        if len(answered_step_logs(current)) != len(self.manual.sent_step_results(row)):
            return await self.manual.update(row, entry)
        addresses = await self.manual.pictures(row, entry.qtest_id)
        log = await self.rewrite_automation_log(row, run_id, current, addresses)
        return made_by_bulk(self.manual.created(row, log, run_id))

    async def with_pictures(self, row: Row, landed: Created) -> Created | Exception:
        """A log a job made, written again with its pictures; a refusal leaves it pending, for the next run
        to find it and point it at its pictures then (its pictures' uploads are recorded)."""
        try:
            return await self.manual.with_pictures(row, landed)
        except ApiError as exc:
            return AmbiguousWriteError(
                exc.method,
                exc.url,
                exc.status,
                f"made by the bulk endpoint; its pictures not pointed at: {exc.message}",
            )

    async def shared_wait(self, submission: Submission, row: Row, deadline: datetime, count: int) -> bool:
        """`wait_for_logs` once per submission, however many of its logs ask (any one shows the job ran)."""
        waits = self.automation.waits
        if submission not in waits:
            then = f"qTest's queue window ({self.ctx.queue_window_s:.0f}s) has passed: they are sent again"
            waits[submission] = asyncio.ensure_future(
                self.wait_for_logs(submission, row, deadline, count, then)
            )
        return await asyncio.shield(waits[submission])

    async def wait_for_logs(
        self, submission: Submission, row: Row, deadline: datetime, count: int, then: str
    ) -> bool:
        """Looks for `row`'s log (one of the `count` logs of `submission`) until it shows up (True) or
        `deadline` passes (False), saying once what it waits for and until when, and at the deadline what
        happens `then`."""
        interval, told = LOOK_AGAIN_FIRST_S, False
        while True:
            if await self.manual.find(row) is not None:
                return True
            left = (deadline - utc_now()).total_seconds()
            if left <= 0:
                log.warning("the %d test logs of %s are not in qTest: %s", count, submission.describe(), then)
                return False
            if not told:
                log.warning(
                    "looking in qTest until %s for the %d test logs of %s, whose answer was lost: qTest's "
                    "queue may still be making them, so they are not sent again before then "
                    "(ZEPHYR_QTEST_QUEUE_WINDOW_S sets how long qTest's queue is given)",
                    stamp(deadline), count, submission.describe(),
                )  # fmt: skip
                told = True
            await asyncio.sleep(min(interval, left))
            interval = min(interval * 2, LOOK_AGAIN_MAX_S)

    async def after_lost_submission(self, rows: Sequence[Row], submission: Submission) -> dict[str, Created]:
        """A submission whose answer was lost may still be queued: give its logs time to show up (a job
        makes all of them or none; this run waits `LOST_SUBMISSION_WAIT_S` at most, a later run the rest
        of the queue window), then take those that did."""
        until = submission.until(self.ctx.queue_window_s)
        deadline = min(until, utc_now() + timedelta(seconds=LOST_SUBMISSION_WAIT_S))
        then = f"they stay pending, and are not sent again before {stamp(until)}"
        if not await self.wait_for_logs(submission, rows[0], deadline, len(rows), then):
            return {}
        found = await self.manual.find_many(rows)
        for row in rows:
            if source_key(row) in found:
                self.warn_if_elsewhere(row, found[source_key(row)], None)
        return found

    async def submit(
        self, cycle_key: str, items: list[tuple[Row, dict[str, Any]]]
    ) -> dict[str, Created | Exception]:
        """One submission to the queue, polled to its end; then which log landed where is read back from
        qTest (the job's answer holds counts only: REAL_SHAPES.md qTest item 1)."""
        ctx = self.ctx
        rows = [row for row, _ in items]
        try:
            test_cycle = ctx.ids[TEST_CYCLE.name][cycle_key]
        except KeyError:
            error = KeyError(f"its cycle {cycle_key} is not in qTest (see that cycle's failure)")
            return {source_key(row): error for row in rows}
        body = {"test_cycle": test_cycle, "test_logs": [item for _, item in items]}
        keys = [source_key(row) for row in rows]
        # Recorded before the call: a crash mid-send leaves the same trace as a lost answer.
        submission = Submission.of(body)
        await ctx.id_map.note_pending(TEST_LOG.name, keys, submission.detail())
        try:
            job = await ctx.client.submit_auto_test_logs(ctx.project_id, body)
        except AmbiguousWriteError as exc:
            # Sending again now could make every log twice if the job is only slow. It was sent by now at
            # the latest: the queue window runs from here (a retried 429 may have sent it late).
            submission = replace(submission, sent_at=utc_now())
            await ctx.id_map.note_pending(TEST_LOG.name, keys, submission.detail())
            try:
                found: dict[str, Created | Exception] = dict(
                    await self.after_lost_submission(rows, submission)
                )
            except ApiError as lookup_error:  # not looked for: pending, for the next run to look for
                log.warning("%s not looked for: %s", submission.describe(), lookup_error)
                found = {}
            pending = AmbiguousWriteError(
                exc.method, exc.url, exc.status, pending_reason(submission, ctx.queue_window_s)
            )
            return {key: found.get(key, pending) for key in keys}
        except ApiError as exc:  # refused: nothing was queued
            return {key: exc for key in keys}
        queue_id = int(job["id"])
        await ctx.id_map.note_pending(TEST_LOG.name, keys, {"queue_id": queue_id})
        try:
            outcome = await self.job_end(queue_id)
        except ApiError as exc:  # the job may still finish: the logs stay pending for the next run
            ambiguous = AmbiguousWriteError(
                exc.method, exc.url, exc.status, f"queue job {queue_id}: {exc.message}"
            )
            return {source_key(row): ambiguous for row in rows}
        try:
            landed = await self.manual.find_many(rows)
        except ApiError as exc:  # not read back: whatever the job made stays pending, to be looked for
            ambiguous = AmbiguousWriteError(
                exc.method,
                exc.url,
                exc.status,
                f"queue job {queue_id} ended, its logs not read back: {exc.message}",
            )
            return {source_key(row): ambiguous for row in rows}
        results: dict[str, Created | Exception] = {}
        for row in rows:
            key = source_key(row)
            if key in landed:
                self.warn_if_elsewhere(row, landed[key], queue_id)
                pictured = await self.with_pictures(row, landed[key])
                results[key] = made_by_bulk(pictured) if isinstance(pictured, Created) else pictured
            elif outcome.get("state") == "SUCCESS":
                # qTest made it somewhere this run cannot see (no Zephyr Key field on test runs, or the
                # search has not caught up): pending, so the next run looks for it before sending it.
                results[key] = AmbiguousWriteError(
                    "POST", "auto-test-logs", None, f"queue job {queue_id} {queue_failure(outcome)}"
                )
            else:
                results[key] = ApiError(
                    "POST", "auto-test-logs", None, f"queue job {queue_id} {queue_failure(outcome)}"
                )
        return results

    async def create_many(self, rows: Sequence[Row]) -> list[Created | Exception]:
        results: dict[str, Created | Exception] = {}
        by_cycle: dict[str, list[tuple[Row, dict[str, Any]]]] = defaultdict(list)
        for row in rows:
            try:
                run = self.automation_run(row)
                assert run is not None
                by_cycle[str(run["automation_test_cycle_source_key"])].append((row, self.item(row)))
            except (KeyError, ValueError) as exc:
                results[source_key(row)] = exc

        # Not bounded by ctx.concurrency: a submission mostly waits for its queue job, and the HTTP
        # layer's rate limiter paces the calls themselves.
        async def one(cycle_key: str, items: list[tuple[Row, dict[str, Any]]]) -> None:
            results.update(await self.submit(cycle_key, items))

        size = max(1, self.ctx.auto_test_log_batch)
        await asyncio.gather(*(
            one(cycle_key, items[start : start + size])
            for cycle_key, items in by_cycle.items()
            for start in range(0, len(items), size)
        ))  # fmt: skip
        return [results[source_key(row)] for row in rows]

    def protocol(self) -> ObjectKind[Row]:
        return replace(
            self.manual.protocol(self.lookup),
            update=self.update,
            batched=self.batched,
            create_many=self.create_many,
        )
