"""Zephyr text in the reports is shown as text: no live HTML, no link or image a viewer would load, and
a value never breaks out of its table cell."""

from __future__ import annotations

from zephyr_qtest.lib.markdown import cell
from zephyr_qtest.lib.qtest.comparison import Mismatch, Reconciliation, TypeResult
from zephyr_qtest.lib.qtest.reconcile import html, markdown

HOSTILE = "<img src=x onerror=alert(1)> | ![t](http://tracker.invalid/p.png) [x](javascript:alert(1))"


def report_of(value: str) -> Reconciliation:
    result = TypeResult("test_case", expected=1, found=1)
    result.mismatches.append(Mismatch("SHOP-T1", "description", value, "plain"))
    return Reconciliation("SHOP", 7, {"test_case": result})


def test_a_cell_is_inert_text() -> None:
    text = cell(HOSTILE)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "](" not in text.replace("\\](", "")  # every link or image opener is escaped
    assert "|" not in text.replace("\\|", "")


def test_the_markdown_report_carries_no_live_html() -> None:
    report = markdown(report_of(HOSTILE))
    row = next(line for line in report.splitlines() if line.startswith("| SHOP-T1 |"))
    assert "<img" not in report and "&lt;img" in row
    # Four cells: the value's own "|" does not open a fifth.
    assert len(row.replace("\\|", "").strip("|").split("|")) == 4


def test_the_html_report_escapes_once() -> None:
    page = html(report_of(HOSTILE))
    assert "<img" not in page and "&lt;img src=x" in page and "&amp;lt;" not in page
