"""The report people sign off: ``reports/<project>.md``, ``.html`` (with its charts as inline SVG) and
``reports/<project>-ledger.csv`` (every ledger line).

It says which run it is about (run id, time in UTC, target site and qTest project, seconds per step), the
verdict (and the acceptance file behind it), every object type's count in Zephyr against its count in qTest,
and the ledger grouped by object type, field and reason with counts, remedy and a few example objects. The
loader's own check (qTest against the mapping marts: ``qtest.reconcile``) follows below it, titled as such:
it tells whether the loader did what the marts said, not whether Zephyr arrived.

Every value from Zephyr or qTest is escaped: Markdown cells through ``markdown.cell``, HTML and SVG through
``html.escape``, CSV cells that a spreadsheet would run as a formula prefixed with an apostrophe. The HTML
loads nothing: no script, no stylesheet, no image from anywhere.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from zephyr_qtest.lib.markdown import cell, flat
from zephyr_qtest.lib.proof.acceptance import Verdict, plural
from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason
from zephyr_qtest.lib.qtest import reconcile
from zephyr_qtest.lib.qtest.comparison import Reconciliation
from zephyr_qtest.lib.raw_store import storable_text

CSV_COLUMNS = ("object_type", "object_key", "field", "value", "reason", "remedy", "detail", "accepted_by")
# Example objects shown per ledger group (the CSV has them all).
EXAMPLES = 3
# Ledger groups shown in the report (the CSV has every line).
GROUPS_SHOWN = 300


@dataclass(frozen=True)
class RunInfo:
    """The run a report is about: its id, when it was checked, and seconds per step of the run (step key
    -> seconds; None for a step still running, such as the reconciliation itself)."""

    run_id: str
    checked_at: datetime
    step_seconds: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    csv: Path


def report_files(directory: Path, project_key: str) -> ReportFiles:
    """Where a project's report goes (absolute: the CLI prints these paths as they are)."""
    directory = directory.resolve()
    return ReportFiles(
        directory / f"{project_key}.md",
        directory / f"{project_key}.html",
        directory / f"{project_key}-ledger.csv",
    )


@dataclass
class LedgerGroup:
    """The ledger lines of one object type, field and reason (open, or accepted by one rule)."""

    object_type: str
    field: str
    reason: Reason
    accepted_by: str
    lines: list[LedgerLine] = field(default_factory=list)

    @property
    def remedy(self) -> str:
        # Lines of a group almost always share their remedy; when not, the most common one leads.
        remedies: dict[str, int] = {}
        for line in self.lines:
            remedies[line.remedy] = remedies.get(line.remedy, 0) + 1
        ordered = sorted(remedies, key=lambda r: -remedies[r])
        return ordered[0] + (
            f" (and {len(ordered) - 1} other remedies: see the CSV)" if len(ordered) > 1 else ""
        )

    def examples(self, limit: int = EXAMPLES) -> list[str]:
        return [
            f"{line.object_key}: {line.value}"
            if line.value and line.value != line.object_key
            else line.object_key
            for line in self.lines[:limit]
        ]


def ledger_groups(verdict: Verdict) -> list[LedgerGroup]:
    """The ledger by (object type, field, reason), open groups first, each by size."""
    groups: dict[tuple[str, str, Reason, str], LedgerGroup] = {}
    for line, accepted_by in verdict.lines:
        key = (line.object_type, line.field, line.reason, accepted_by)
        groups.setdefault(key, LedgerGroup(*key)).lines.append(line)
    return sorted(groups.values(), key=lambda g: (bool(g.accepted_by), -len(g.lines), g.object_type, g.field))


def counts_by_reason(lines: Iterable[LedgerLine]) -> dict[Reason, int]:
    counts: dict[Reason, int] = {}
    for line in lines:
        counts[line.reason] = counts.get(line.reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    return "running" if value is None else f"{value:.1f}"


def _acceptance_line(verdict: Verdict) -> str:
    if verdict.acceptance is None:
        return "Acceptance file: none (set ZEPHYR_QTEST_ACCEPTANCE to accept reviewed ledger lines)."
    text = f"Acceptance file: {verdict.acceptance.path} ({plural(len(verdict.acceptance.rules), 'rule')})"
    if verdict.unused_rules:
        text += "; rules that matched nothing: " + ", ".join(
            str(rule.number) for rule in verdict.unused_rules
        )
    return text + "."


def _objects_rows(ledger: Ledger) -> list[tuple[str, int, int, int]]:
    return [
        (count.object_type, count.in_zephyr, count.in_qtest, max(count.in_zephyr - count.in_qtest, 0))
        for count in ledger.counts.values()
    ]


def render_markdown(
    ledger: Ledger,
    verdict: Verdict,
    run: RunInfo,
    loader: Reconciliation | None = None,
    unmapped: Iterable[Any] = (),
    skipped: Iterable[Mapping[str, Any]] = (),
    csv_name: str | None = None,
) -> str:
    """The report in Markdown (also the reconciliation asset's metadata in the UI)."""
    csv_name = csv_name or f"{ledger.project_key}-ledger.csv"
    lines = [
        f"# Proof of {cell(ledger.project_key)}",
        "",
        f"Verdict: **{cell(verdict.text, 400)}**",
        "",
        cell(_acceptance_line(verdict), 2000),
        "",
        "| | |",
        "|---|---|",
        f"| run | {cell(run.run_id)} |",
        f"| checked at | {_utc(run.checked_at)} |",
        f"| target | {cell(ledger.target, 400)} |",
        f"| values compared | {ledger.values_compared} |",
        f"| ledger lines | {len(verdict.lines)} ({len(verdict.open)} open, {len(verdict.accepted)} accepted) |",
        "",
        "## Objects: in Zephyr against in qTest",
        "",
        "| object type | in Zephyr | in qTest | not in qTest |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {cell(t)} | {z} | {q} | {d} |" for t, z, q, d in _objects_rows(ledger)]
    if verdict.unexplained:
        lines += ["", "Objects missing in qTest that no ledger line explains: " + ", ".join(
            f"{cell(t)} {n}" for t, n in verdict.unexplained.items()) + "."]  # fmt: skip
    groups = ledger_groups(verdict)
    open_groups = [g for g in groups if not g.accepted_by]
    accepted_groups = [g for g in groups if g.accepted_by]
    lines += ["", "## What did not arrive (the ledger)", ""]
    if not verdict.lines:
        lines.append("Every value compared is in qTest: the ledger is empty.")
    else:
        lines.append(
            f"{plural(len(verdict.lines), 'line')} by object type, field and reason; every line in "
            f"[{cell(csv_name)}]({cell(csv_name)})."
        )
    if open_groups:
        lines += [
            "",
            "### Open (not accepted)",
            "",
            "| object type | field | reason | values | remedy | examples |",
            "|---|---|---|---:|---|---|",
        ]
        lines += [
            f"| {cell(g.object_type)} | {cell(g.field)} | {cell(g.reason.value)} | {len(g.lines)} "
            f"| {cell(g.remedy, 300)} | {'; '.join(cell(e, 80) for e in g.examples())} |"
            for g in open_groups[:GROUPS_SHOWN]
        ]
    if accepted_groups:
        lines += [
            "",
            "### Accepted",
            "",
            "| object type | field | reason | values | accepted by | examples |",
            "|---|---|---|---:|---|---|",
        ]
        lines += [
            f"| {cell(g.object_type)} | {cell(g.field)} | {cell(g.reason.value)} | {len(g.lines)} "
            f"| {cell(g.accepted_by, 300)} | {'; '.join(cell(e, 80) for e in g.examples())} |"
            for g in accepted_groups[:GROUPS_SHOWN]
        ]
    if len(groups) > GROUPS_SHOWN:
        lines += ["", f"… {len(groups) - GROUPS_SHOWN} more groups in the CSV."]
    if verdict.lines:
        lines += ["", "### By reason", "", "| reason | open | accepted |", "|---|---:|---:|"]
        open_by = counts_by_reason(verdict.open)
        accepted_by = counts_by_reason(a.line for a in verdict.accepted)
        lines += [
            f"| {cell(reason.value)} | {open_by.get(reason, 0)} | {accepted_by.get(reason, 0)} |"
            for reason in Reason
            if reason in open_by or reason in accepted_by
        ]
    if run.step_seconds:
        lines += ["", "## Per-stage timings", "", "| step | seconds |", "|---|---:|"]
        lines += [f"| {cell(step)} | {_seconds(s)} |" for step, s in run.step_seconds.items()]
    if loader is not None:
        lines += ["", reconcile.markdown(loader, unmapped, skipped).rstrip()]
    return "\n".join(lines) + "\n"


# Charts: horizontal bars, drawn here as SVG so the page needs nothing from anywhere.
EXPECTED_COLOUR = "#9aa5b1"
ARRIVED_COLOUR = "#2f855a"
REASON_COLOUR = "#c05621"
ACCEPTED_COLOUR = "#718096"


def bar_chart(title: str, rows: Sequence[tuple[str, Sequence[tuple[str, int, str]]]]) -> str:
    """An inline SVG bar chart: one labelled row per item, one bar per series (name, value, colour)."""
    label_width, bar_width, bar_height, gap = 190, 420, 14, 10
    bars = max((len(series) for _, series in rows), default=1)
    row_height = bars * bar_height + gap
    top = 28
    height = top + max(len(rows), 1) * row_height + 24
    largest = max((value for _, series in rows for _, value, _ in series), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 80}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    if not rows:
        parts.append(f'<text x="0" y="{top + 14}" font-size="12">nothing to show</text>')
    legend: dict[str, str] = {}
    for index, (label, series) in enumerate(rows):
        y = top + index * row_height
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bars * bar_height / 2 + 4}" font-size="12" '
            f'text-anchor="end">{escape(flat(label, 30))}</text>'
        )
        for position, (name, value, colour) in enumerate(series):
            legend.setdefault(name, colour)
            width = round(bar_width * value / largest, 1)
            bar_y = y + position * bar_height
            parts.append(
                f'<rect x="{label_width}" y="{bar_y}" width="{width}" height="{bar_height - 2}" fill="{colour}">'
                f"<title>{escape(flat(label, 60))}: {escape(name)} {value}</title></rect>"
            )
            parts.append(
                f'<text x="{label_width + width + 4}" y="{bar_y + bar_height - 4}" font-size="11">{value}</text>'
            )
    x = 0
    for name, colour in legend.items():
        parts.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{height - 5}" font-size="11">{escape(name)}</text>')
        x += 30 + 7 * len(name)
    return "".join(parts) + "</svg>"


def objects_chart(ledger: Ledger) -> str:
    return bar_chart(
        "Objects: expected (in Zephyr) against arrived (in qTest)",
        [
            (t, [("expected", z, EXPECTED_COLOUR), ("arrived", q, ARRIVED_COLOUR)])
            for t, z, q, _ in _objects_rows(ledger)
        ],
    )


def reasons_chart(verdict: Verdict) -> str:
    open_by, accepted_by = counts_by_reason(verdict.open), counts_by_reason(a.line for a in verdict.accepted)
    return bar_chart(
        "Ledger lines by reason",
        [
            (reason.value, [("open", open_by.get(reason, 0), REASON_COLOUR),
                            ("accepted", accepted_by.get(reason, 0), ACCEPTED_COLOUR)])
            for reason in Reason
            if reason in open_by or reason in accepted_by
        ],
    )  # fmt: skip


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(c if isinstance(c, str) else flat(c, 400))}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    ledger: Ledger,
    verdict: Verdict,
    run: RunInfo,
    loader: Reconciliation | None = None,
    unmapped: Iterable[Any] = (),
    skipped: Iterable[Mapping[str, Any]] = (),
    csv_name: str | None = None,
) -> str:
    """The same report as one standalone HTML page, with its two charts inline."""
    csv_name = csv_name or f"{ledger.project_key}-ledger.csv"
    groups = ledger_groups(verdict)
    state = "complete" if verdict.complete else "incomplete"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Proof of {escape(ledger.project_key)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        ".complete{color:#2f855a}.incomplete{color:#c53030}.chart{display:block;margin:1em 0}</style>"
        "</head><body>",
        f"<h1>Proof of {escape(ledger.project_key)}</h1>",
        f"<p>Verdict: <strong class='{state}'>{escape(verdict.text)}</strong></p>",
        f"<p>{escape(_acceptance_line(verdict))}</p>",
        _table(
            ["", ""],
            [
                ["run", run.run_id],
                ["checked at", _utc(run.checked_at)],
                ["target", ledger.target],
                ["values compared", str(ledger.values_compared)],
                [
                    "ledger lines",
                    f"{len(verdict.lines)} ({len(verdict.open)} open, {len(verdict.accepted)} accepted)",
                ],
            ],
        ),
        "<h2>Objects: in Zephyr against in qTest</h2>",
        objects_chart(ledger),
        _table(
            ["object type", "in Zephyr", "in qTest", "not in qTest"], [list(r) for r in _objects_rows(ledger)]
        ),
    ]
    if verdict.unexplained:
        parts.append(
            "<p>Objects missing in qTest that no ledger line explains: "
            + escape(", ".join(f"{t} {n}" for t, n in verdict.unexplained.items()))
            + ".</p>"
        )
    parts += ["<h2>What did not arrive (the ledger)</h2>", reasons_chart(verdict)]
    if not verdict.lines:
        parts.append("<p>Every value compared is in qTest: the ledger is empty.</p>")
    else:
        parts.append(
            f"<p>{plural(len(verdict.lines), 'line')} by object type, field and reason; every line in "
            f"<a href='{escape(csv_name, quote=True)}'>{escape(csv_name)}</a>.</p>"
        )
    open_groups = [g for g in groups if not g.accepted_by][:GROUPS_SHOWN]
    accepted_groups = [g for g in groups if g.accepted_by][:GROUPS_SHOWN]
    if open_groups:
        parts += [
            "<h3>Open (not accepted)</h3>",
            _table(
                ["object type", "field", "reason", "values", "remedy", "examples"],
                [[g.object_type, g.field, g.reason.value, str(len(g.lines)), g.remedy, "; ".join(g.examples())]
                 for g in open_groups],
            ),
        ]  # fmt: skip
    if accepted_groups:
        parts += [
            "<h3>Accepted</h3>",
            _table(
                ["object type", "field", "reason", "values", "accepted by", "examples"],
                [[g.object_type, g.field, g.reason.value, str(len(g.lines)), g.accepted_by, "; ".join(g.examples())]
                 for g in accepted_groups],
            ),
        ]  # fmt: skip
    if run.step_seconds:
        parts += [
            "<h2>Per-stage timings</h2>",
            _table(["step", "seconds"], [[step, _seconds(s)] for step, s in run.step_seconds.items()]),
        ]
    if loader is not None:
        parts.append(reconcile.html(loader, unmapped, skipped))
    return "".join(parts) + "</body></html>\n"


# Characters that make a spreadsheet read a cell as a formula.
FORMULA_START = ("=", "+", "@", "\t", "\r", "-")


def _csv_cell(text: str) -> str:
    if text.startswith(FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def ledger_csv(verdict: Verdict) -> str:
    """Every ledger line, in the ledger's order, with the rule that accepted it (empty when open)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line, accepted_by in verdict.lines:
        row = (line.object_type, line.object_key, line.field, line.value, line.reason.value, line.remedy,
               line.detail, accepted_by)  # fmt: skip
        writer.writerow([_csv_cell(str(value)) for value in row])
    return out.getvalue()


def write_report(
    directory: Path,
    ledger: Ledger,
    verdict: Verdict,
    run: RunInfo,
    loader: Reconciliation | None = None,
    unmapped: Iterable[Any] = (),
    skipped: Iterable[Mapping[str, Any]] = (),
) -> tuple[ReportFiles, str]:
    """The three files written under `directory` (made when missing); returns their paths and the
    Markdown (for the asset's metadata)."""
    files = report_files(directory, ledger.project_key)
    files.markdown.parent.mkdir(parents=True, exist_ok=True)
    unmapped, skipped = list(unmapped), list(skipped)
    # A lone surrogate in a Zephyr value has no UTF-8 form: written as U+FFFD, as the raw layer stores it.
    text = storable_text(render_markdown(ledger, verdict, run, loader, unmapped, skipped, files.csv.name))
    files.markdown.write_text(text, encoding="utf-8")
    page = render_html(ledger, verdict, run, loader, unmapped, skipped, files.csv.name)
    files.html.write_text(storable_text(page), encoding="utf-8")
    files.csv.write_text(storable_text(ledger_csv(verdict)), encoding="utf-8")
    return files, text
