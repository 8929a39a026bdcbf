"""The proof of an execution's step results, against its qTest test log as read back.

Zephyr flattens an execution's steps (a call-to-test step becomes the called case's steps, a data-driven
execution repeats the list once per data row), and every result must be in the log: as a step log (the
log's step logs, in their order, hold the results that are not in its note, in theirs), or, when qTest has
no step for it, as a "Step result <position>" line of the Zephyr details block of the log's note. Each data
row is named by a "Data row <n>" line of that block, with its test data. Nothing here reads the marts: the
raw results are compared with what qTest holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from zephyr_qtest.lib.details_block import details_of
from zephyr_qtest.lib.proof.ledger import Reason
from zephyr_qtest.lib.proof.source import RawObject

if TYPE_CHECKING:
    from zephyr_qtest.lib.proof.compare import Proof

RESULT_WORDS = "execution step"
# An execution that has not run: qTest holds no log for it, and cannot (see `unrun_reason`).
NOT_RUN = (
    "qTest cannot hold it: its execution has not run, and qTest keeps step results only in a test log, "
    "which requires execution start and end dates (swagger ManualTestLogResource: exe_start_date and "
    "exe_end_date required); an invented date would report a run that never happened"
)


def note_label(result: RawObject) -> str:
    return f"Step result {result.position}"


def row_label(row: Any) -> str:
    return f"Data row {row}"


def prove_step_results(
    proof: Proof, key: str, results: list[RawObject], log: Mapping[str, Any], statuses: Mapping[str, str]
) -> None:
    """Each result of the execution `key` (in position order) against the log qTest holds for it."""
    # (compare imports this module: its helpers are taken when a proof runs)
    from zephyr_qtest.lib.proof.compare import ACCEPT, OBJECT, RERUN, reader_text, status_map_remedy

    held = sorted(log.get("test_step_logs") or [], key=lambda step: int(step.get("order") or 0))
    details = details_of(log.get("note"))
    count = proof.ledger.count(RESULT_WORDS)
    index = 0
    for result in results:
        result_key = f"{key}#{result.position}"
        inline = result.payload.get("inline") or {}
        status = proof.source.name("statuses", inline.get("status"))
        _check_data_row(proof, result_key, inline, details)
        noted = details.get(note_label(result))
        if noted:
            # (its pictures are checked with the other inline images: `Proof.inline_images`)
            proof.result_texts[result_key] = noted[-1]
            count.in_qtest += 1
            proof.ledger.values_compared += 1
            words = reader_text(noted[-1])
            actual = reader_text(inline.get("actualResult"))
            if (status and status not in words) or (actual and actual not in words):
                proof.line(
                    RESULT_WORDS,
                    result_key,
                    OBJECT,
                    proof._result_words(result),
                    Reason.DIFFERS,
                    RERUN,
                    f"the log's note holds {words[:120]}",
                )
            proof.not_carried("test_execution_steps", RESULT_WORDS, result_key, result.payload)
            continue
        if index >= len(held):
            skip = proof.source.skipped.get(("qtest_test_step_logs", result_key))
            proof.line(
                RESULT_WORDS,
                result_key,
                OBJECT,
                proof._result_words(result),
                Reason.NOT_CARRIED,
                ACCEPT,
                skip or "qTest's test log holds no step log for it, and its note does not name it",
            )
            continue
        count.in_qtest += 1
        actual_log = held[index]
        index += 1
        proof.result_texts[result_key] = actual_log.get("actual_result")
        if status is not None:
            proof.ledger.values_compared += 1
            mapped = statuses.get(status, status)
            held_status = str((actual_log.get("status") or {}).get("name") or "")
            if held_status.lower() != mapped.lower():
                reason = Reason.NO_MAPPING if status not in statuses else Reason.DIFFERS
                proof.line(
                    RESULT_WORDS,
                    result_key,
                    "inline.status",
                    status,
                    reason,
                    status_map_remedy(status) if reason is Reason.NO_MAPPING else RERUN,
                    f"qTest's step log is {held_status or 'without status'}",
                )
        proof.check_value(
            RESULT_WORDS,
            result_key,
            "inline.actualResult",
            inline.get("actualResult"),
            actual_log.get("actual_result"),
        )
        proof.not_carried("test_execution_steps", RESULT_WORDS, result_key, result.payload)


def _check_data_row(
    proof: Proof, result_key: str, inline: Mapping[str, Any], details: Mapping[str, list[str]]
) -> None:
    """A result of a data row: the log's note names the row, with the result's test data."""
    from zephyr_qtest.lib.proof.compare import RERUN, reader_text

    row = inline.get("testDataRowNumber")
    if row is None:
        return
    proof.ledger.values_compared += 1
    named = details.get(row_label(row))
    data = reader_text(inline.get("testData"))
    if named and (not data or any(data in reader_text(value) for value in named)):
        return
    proof.line(
        RESULT_WORDS,
        result_key,
        "inline.testData" if named else "inline.testDataRowNumber",
        f"row {row}" + (f": {data}" if data else ""),
        Reason.DIFFERS,
        RERUN,
        f"the log's note names data row {row} as {reader_text(named[-1])[:120]}"
        if named
        else f"the log's note does not name data row {row}",
    )
