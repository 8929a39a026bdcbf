"""The test-log kind: one qTest test log per Zephyr execution on its run, oldest first. Manual executions
(``manual_test_log``) go one call each; automated executions of automation runs (``automated_test_log``)
go through the bulk queue. Both are one pass of the exactly-once protocol, as a run's logs must keep their
order whichever way each goes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from zephyr_qtest.lib.qtest.exactly_once import PublishSummary
from zephyr_qtest.lib.qtest.kinds.automated_test_log import (
    AutomatedTestLogs,
    automated_logs,
    automation_waves,
)
from zephyr_qtest.lib.qtest.kinds.base import Kind, Marts, PublishContext, ReadBack, Row, source_key
from zephyr_qtest.lib.qtest.kinds.inline_image import keep_failed_pictures_due
from zephyr_qtest.lib.qtest.kinds.manual_test_log import (
    RUN_OF_LOG,
    ManualTestLogs,
    expected_test_log,
    held_test_log,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import (
    TEST_CASE,
    TEST_CASE_VERSION,
    TEST_CYCLE,
    TEST_LOG,
    TEST_RUN,
    TEST_STEP,
    TEST_STEP_LOG,
)

LOG_ORDER = ("load_order", "log_order", "source_key")
# Step results of a test log, in their order.
STEP_RESULT_ORDER = ("parent_source_key", "step_order")


def test_log_rows(marts: Marts) -> list[Row]:
    """The executions that become test logs (those the mart does not skip, with its reason)."""
    assert TEST_LOG.mart is not None
    return [row for row in marts.rows(TEST_LOG.mart, LOG_ORDER) if not row.get("skip_reason")]


def step_results_by_log(marts: Marts) -> dict[str, list[Row]]:
    assert TEST_STEP_LOG.mart is not None
    return marts.by_parent(TEST_STEP_LOG.mart, STEP_RESULT_ORDER)


async def publish_test_logs(ctx: PublishContext) -> PublishSummary:
    rows = test_log_rows(ctx.marts)
    manual = ManualTestLogs(ctx, step_results_by_log(ctx.marts))
    automation = await automated_logs(ctx)
    protocol = manual.protocol() if automation is None else AutomatedTestLogs(manual, automation).protocol()
    waves = automation_waves(rows, protocol.batched or (lambda row: False))
    summary = await ctx.run(replace(protocol, level=lambda row: waves[source_key(row)]), rows)
    await keep_failed_pictures_due(ctx.images, TEST_LOG.name, rows, protocol.payload_hash)
    return summary


async def read_back_test_logs(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    """The logs of every run read back (the test runs are read back before), each with its run's id."""
    logs: dict[int, Any] = {}
    for run_id in sorted(rb.found[TEST_RUN.name]):
        async for log in rb.client.iter_test_logs(rb.project_id, run_id):
            logs[int(log["id"])] = {**log, RUN_OF_LOG: run_id}
    return logs


KIND = Kind(
    object_type=TEST_LOG,
    description="One qTest test log per Zephyr execution on its run, oldest first, with status, dates, note, "
    "properties and step logs.",
    marts=("qtest_test_logs", "qtest_test_step_logs"),
    upstream=(TEST_RUN,),
    # test cases and cycles: the bulk auto-test-logs endpoint names them (fingerprint, test_cycle); older
    # versions: a log goes on the one its execution ran against.
    id_types=(TEST_CASE, TEST_CASE_VERSION, TEST_CYCLE, TEST_RUN, TEST_STEP, TEST_LOG),
    needs_fields=True,
    publish=publish_test_logs,
    rows=test_log_rows,
    read_back=read_back_test_logs,
    expect=lambda row, rb: expected_test_log(
        row,
        step_results_by_log(rb.marts).get(str(row["source_key"]), []),
        rb.ids,
        rb.statuses,
        rb.test_run_fields,
    ),
    held=held_test_log,
)
