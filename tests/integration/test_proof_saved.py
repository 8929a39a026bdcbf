"""The saved proof on a real PostgreSQL: a project's verdict and ledger are replaced together, per target
site, keeping who accepted each line; and the CLI's summary shows a verdict only for the run that made it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from zephyr_qtest.lib.proof.acceptance import parse_acceptance, verdict
from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason
from zephyr_qtest.lib.proof.saved import print_proofs, save_proof
from zephyr_qtest.lib.store import Store

SITE = "https://acme.qtestnet.com"
LIVE = "https://live.qtestnet.com"
WHEN = datetime(2026, 12, 6, 19, 30, tzinfo=UTC)
ACCEPT = '[[accept]]\nfield = "links.webLinks"\nreason = "*"\nnote = "web links: kept in the description"\n'


@pytest.fixture
def url(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("drop table if exists migration.proof, migration.ledger")
    return database_url


def ledger(project: str, site: str, *lines: LedgerLine) -> Ledger:
    result = Ledger(project, f"qTest site {site}, project '{project}' (id 7)", site + "/api/v3/")
    for line in lines:
        result.add(line)
    return result


LABEL = LedgerLine(
    "test case", "PAY-T1", "labels", "smoke", Reason.NO_MAPPING, "add it to seeds/label_map.csv"
)
WEB = LedgerLine(
    "test case", "PAY-T2", "links.webLinks", "https://wiki.invalid", Reason.NOT_CARRIED, "accept"
)
ODD = LedgerLine("test case", "PAY-T3", "name", "NUL \x00 and half an emoji \ud83d", Reason.REPLACED, "none")


def saved(url: str) -> tuple[list[tuple], list[tuple]]:
    with psycopg.connect(url) as conn:
        proofs = conn.execute(
            "select target_site, project_key, run_id, complete, verdict, open_lines, accepted_lines, report, "
            "acceptance_file from migration.proof order by 1, 2"
        ).fetchall()
        lines = conn.execute(
            "select target_site, project_key, object_key, field, value, reason, accepted_by from migration.ledger "
            "order by 1, 2, 3"
        ).fetchall()
    return proofs, lines


def test_a_proof_replaces_its_project_on_its_site_only(url: str) -> None:
    acceptance = parse_acceptance(ACCEPT, Path("/cfg/acceptance.toml"))
    with Store(url) as store:
        rows = store.proofs()
        first = ledger("PAY", SITE, LABEL, WEB, ODD)
        save_proof(
            rows, first, verdict(first, acceptance), run_id="run-1", checked_at=WHEN, report=Path("/r/PAY.md")
        )
        other = ledger("SHOP", SITE)
        save_proof(rows, other, verdict(other), run_id="run-2", checked_at=WHEN, report=Path("/r/SHOP.md"))
        live = ledger("PAY", LIVE, LABEL)
        save_proof(rows, live, verdict(live), run_id="run-3", checked_at=WHEN, report=Path("/live/PAY.md"))
        proofs, lines = saved(url)
        assert proofs == [
            (SITE, "PAY", "run-1", False, "incomplete: 2 values in 2 fields did not arrive", 2, 1, "/r/PAY.md",
             "/cfg/acceptance.toml"),
            (SITE, "SHOP", "run-2", True, "complete", 0, 0, "/r/SHOP.md", None),
            (LIVE, "PAY", "run-3", False, "incomplete: 1 value in 1 field did not arrive", 1, 0, "/live/PAY.md", None),
        ]  # fmt: skip
        assert lines == [
            (SITE, "PAY", "PAY-T1", "labels", "smoke", "no mapping", None),
            (SITE, "PAY", "PAY-T2", "links.webLinks", "https://wiki.invalid", "not carried by design",
             "/cfg/acceptance.toml rule 1: web links: kept in the description"),
            # What PostgreSQL cannot hold is stored as U+FFFD, and the line is kept.
            (SITE, "PAY", "PAY-T3", "name", "NUL \ufffd and half an emoji \ufffd", "characters replaced", None),
            (LIVE, "PAY", "PAY-T1", "labels", "smoke", "no mapping", None),
        ]  # fmt: skip

        # The next run's proof of PAY on SITE replaces its verdict and every line, and nothing else.
        again = ledger("PAY", SITE, WEB)
        save_proof(
            rows, again, verdict(again, acceptance), run_id="run-4", checked_at=WHEN, report=Path("/r/PAY.md")
        )
        proofs, lines = saved(url)
    assert [(p[0], p[1], p[2], p[3], p[4]) for p in proofs] == [
        (SITE, "PAY", "run-4", True, "complete: 1 value accepted by /cfg/acceptance.toml"),
        (SITE, "SHOP", "run-2", True, "complete"),
        (LIVE, "PAY", "run-3", False, "incomplete: 1 value in 1 field did not arrive"),
    ]
    assert [(line[0], line[2]) for line in lines] == [(SITE, "PAY-T2"), (LIVE, "PAY-T1")]


def test_the_summary_shows_only_this_runs_verdicts(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(url) as store:
        rows = store.proofs()
        # Nothing proven yet on this database: every project is not reconciled in this run.
        assert not print_proofs(rows, ["PAY"], SITE, {"PAY": "run-1"})
        assert "PAY: not reconciled in this run" in capsys.readouterr().out
        labels = [
            LedgerLine("test case", f"PAY-T{n}", "labels", "x", Reason.NO_MAPPING, "seed") for n in range(3)
        ]
        pay = ledger("PAY", SITE, *labels, WEB)
        save_proof(rows, pay, verdict(pay), run_id="run-1", checked_at=WHEN, report=Path("/r/PAY.md"))
        shop = ledger("SHOP", SITE)
        save_proof(rows, shop, verdict(shop), run_id="run-0", checked_at=WHEN, report=Path("/r/SHOP.md"))

        assert not print_proofs(rows, ["PAY", "SHOP"], SITE + "/api/v3/", {"PAY": "run-1", "SHOP": "run-2"})
        out = capsys.readouterr().out
        assert "  PAY: incomplete: 4 values in 2 fields did not arrive\n" in out
        assert "by reason: no mapping 3, not carried by design 1" in out
        assert "     3  test case labels (no mapping)" in out and "report: /r/PAY.md" in out
        # SHOP's saved proof is an earlier run's: not shown as this run's, with none of its numbers.
        assert "SHOP: not reconciled in this run" in out and "/r/SHOP.md" not in out

        assert print_proofs(rows, ["SHOP"], SITE, {"SHOP": "run-0"})
        assert "  SHOP: complete\n    report: /r/SHOP.md" in capsys.readouterr().out
        # Another site has no proof of its own.
        assert not print_proofs(rows, ["SHOP"], LIVE, {"SHOP": "run-0"})
