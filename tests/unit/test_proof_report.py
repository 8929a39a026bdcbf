"""The report people sign off: the verdict, counts per object type, the ledger grouped with its remedy and
examples, the charts in the HTML, every line in the CSV, and the loader's own check below it, titled as
such. Everything from Zephyr is shown as text."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

from zephyr_qtest.lib.proof.acceptance import parse_acceptance, verdict
from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason
from zephyr_qtest.lib.proof.report import (
    CSV_COLUMNS,
    RunInfo,
    ledger_csv,
    ledger_groups,
    render_html,
    render_markdown,
    write_report,
)
from zephyr_qtest.lib.qtest.comparison import Mismatch, Reconciliation, TypeResult

HOSTILE = "<img src=x onerror=alert(1)> | ![t](http://tracker.invalid/p.png)"
RUN = RunInfo(
    "run-0042",
    datetime(2026, 12, 6, 19, 30, 5, tzinfo=UTC),
    {"qtest__test_cases": 12.34, "qtest__reconciliation": None},
)


def sample_ledger() -> Ledger:
    ledger = Ledger(
        "PAY", "qTest site https://acme.qtestnet.com, project 'PAY' (id 7)", "https://acme.qtestnet.com"
    )
    for object_type, zephyr, qtest in (("test case", 40, 39), ("test execution", 12, 12)):
        count = ledger.count(object_type)
        count.in_zephyr, count.in_qtest = zephyr, qtest
    ledger.values_compared = 812
    for n in range(1, 6):
        ledger.add(LedgerLine("test case", f"PAY-T{n}", "labels", f"label-{n}", Reason.NO_MAPPING,
                              "add the label to seeds/label_map.csv"))  # fmt: skip
    ledger.add(LedgerLine("test case", "PAY-T7", "links.webLinks", "https://wiki.invalid/x", Reason.NOT_CARRIED,
                          "accept it (kept in the description)"))  # fmt: skip
    ledger.add(
        LedgerLine("test case", "PAY-T9", "(object)", "PAY-T9", Reason.REFUSED, "re-run", "400: bad field")
    )
    ledger.add(LedgerLine("test execution", "PAY-E1", "comment", HOSTILE, Reason.DIFFERS, "check the comment",
                          "=HYPERLINK(\"http://evil.invalid\")"))  # fmt: skip
    return ledger


ACCEPT_WEB_LINKS = '[[accept]]\nfield = "links.webLinks"\nreason = "not carried by design"\nnote = "web links: kept in the description"\n'


def test_the_markdown_names_the_run_the_verdict_counts_and_ledger_groups() -> None:
    ledger = sample_ledger()
    judged = verdict(ledger, parse_acceptance(ACCEPT_WEB_LINKS, Path("/cfg/acceptance.toml")))
    text = render_markdown(ledger, judged, RUN)
    assert "Verdict: **incomplete: 7 values in 3 fields did not arrive**" in text
    assert "Acceptance file: /cfg/acceptance.toml (1 rule)." in text
    assert "| run | run-0042 |" in text and "| checked at | 2026-12-06 19:30:05 UTC |" in text
    assert "qTest site https://acme.qtestnet.com, project 'PAY' (id 7)" in text
    assert "| test case | 40 | 39 | 1 |" in text and "| test execution | 12 | 12 | 0 |" in text
    # Grouped by object type, field and reason, with its count, remedy and a few examples.
    assert (
        "| test case | labels | no mapping | 5 | add the label to seeds/label_map.csv | PAY-T1: label-1; PAY-T2: label-2; PAY-T3: label-3 |"
        in text
    )
    assert "PAY-T4" not in text  # beyond the examples: in the CSV
    assert (
        "### Accepted" in text and "/cfg/acceptance.toml rule 1: web links: kept in the description" in text
    )
    assert "| no mapping | 5 | 0 |" in text and "| not carried by design | 0 | 1 |" in text
    assert "[PAY-ledger.csv](PAY-ledger.csv)" in text
    assert "| qtest\\_\\_test\\_cases | 12.3 |" in text or "| qtest__test_cases | 12.3 |" in text
    assert "| qtest__reconciliation | running |" in text


def test_the_markdown_report_carries_no_live_html_from_a_ledger_value() -> None:
    ledger = sample_ledger()
    text = render_markdown(ledger, verdict(ledger), RUN)
    row = next(line for line in text.splitlines() if line.startswith("| test execution | comment |"))
    assert "<img" not in text and "&lt;img" in row
    assert "](" not in row.replace("\\](", "")  # every link or image opener is escaped
    # Six cells: the value's own "|" does not open a seventh.
    assert len(row.replace("\\|", "").strip("|").split("|")) == 6


def test_an_empty_ledger_says_so_and_complete() -> None:
    ledger = Ledger(
        "SHOP", "qTest site https://acme.qtestnet.com, project 'SHOP' (id 8)", "https://acme.qtestnet.com"
    )
    count = ledger.count("test case")
    count.in_zephyr = count.in_qtest = 3
    text = render_markdown(ledger, verdict(ledger), RUN)
    assert "Verdict: **complete**" in text and "the ledger is empty" in text
    assert "Acceptance file: none" in text and "### By reason" not in text


def test_the_html_has_both_charts_inline_and_escapes_once() -> None:
    ledger = sample_ledger()
    page = render_html(ledger, verdict(ledger), RUN)
    charts = re.findall(r"<svg .*?</svg>", page)
    assert len(charts) == 2, charts
    objects, reasons = charts
    assert "expected (in Zephyr) against arrived (in qTest)" in objects
    # One bar per series per object type: expected and arrived.
    assert objects.count("<rect") == 2 * 2 + 2  # bars, plus the legend's two swatches
    assert (
        "<title>test case: expected 40</title>" in objects
        and "<title>test case: arrived 39</title>" in objects
    )
    assert "Ledger lines by reason" in reasons and "no mapping: open 5" in reasons
    # Nothing loaded from anywhere: no script, no stylesheet link, no image, no external reference.
    assert not re.search(r"<script|<link|<img|<[^>]*\b(src|xlink:href)=|url\(", page, re.IGNORECASE)
    assert "&lt;img src=x" in page and "&amp;lt;" not in page
    assert "<a href='PAY-ledger.csv'>" in page


def test_the_csv_has_every_line_with_who_accepted_it_and_no_formula() -> None:
    ledger = sample_ledger()
    judged = verdict(ledger, parse_acceptance(ACCEPT_WEB_LINKS, Path("/cfg/acceptance.toml")))
    rows = list(csv.reader(io.StringIO(ledger_csv(judged))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == len(ledger.lines)
    assert [(r[1], r[2]) for r in rows[1:]] == [(line.object_key, line.field) for line in ledger.lines]
    web = next(r for r in rows if r[2] == "links.webLinks")
    assert web[7] == "/cfg/acceptance.toml rule 1: web links: kept in the description"
    assert all(r[7] == "" for r in rows[1:] if r[2] != "links.webLinks")
    comment = next(r for r in rows if r[2] == "comment")
    assert comment[3] == HOSTILE and comment[6] == '\'=HYPERLINK("http://evil.invalid")'


def test_the_loader_check_is_below_titled_as_its_own() -> None:
    ledger = sample_ledger()
    loader = Reconciliation("PAY", 7, {"test_case": TypeResult("test_case", expected=1, found=1)})
    loader.results["test_case"].mismatches.append(Mismatch("PAY-T1", "name", "a", "b"))
    text = render_markdown(
        ledger,
        verdict(ledger),
        RUN,
        loader,
        [],
        [{"name": "big.bin", "size_bytes": 9, "skip_reason": "too big"}],
    )
    assert text.index("## What did not arrive") < text.index("## The loader's own check")
    assert "Loader check: **differences**" in text and "### Attachments not uploaded" in text
    assert "everything equal" not in text and "DIFFERENCES" not in text
    page = render_html(ledger, verdict(ledger), RUN, loader)
    assert "<h2>The loader&#x27;s own check: qTest against the mapping marts</h2>" in page


def test_groups_put_open_lines_first_largest_first() -> None:
    ledger = sample_ledger()
    judged = verdict(ledger, parse_acceptance(ACCEPT_WEB_LINKS, Path("/cfg/acceptance.toml")))
    groups = ledger_groups(judged)
    assert [(g.field, len(g.lines), bool(g.accepted_by)) for g in groups] == [
        ("labels", 5, False), ("(object)", 1, False), ("comment", 1, False), ("links.webLinks", 1, True)
    ]  # fmt: skip


def test_the_three_files_are_written_beside_each_other(tmp_path: Path) -> None:
    ledger = sample_ledger()
    ledger.add(LedgerLine("test case", "PAY-T8", "name", "half an emoji \ud83d", Reason.REPLACED, "none"))
    files, text = write_report(tmp_path / "reports", ledger, verdict(ledger), RUN)
    assert files.markdown == (tmp_path / "reports" / "PAY.md").resolve()
    assert files.html.name == "PAY.html" and files.csv.name == "PAY-ledger.csv"
    assert files.markdown.read_text() == text and "<svg" in files.html.read_text()
    # A lone surrogate has no UTF-8 form: written as U+FFFD, the other lines intact.
    rows = list(csv.reader(io.StringIO(files.csv.read_text())))
    assert len(rows) - 1 == len(ledger.lines) and "half an emoji \ufffd" in files.csv.read_text()
