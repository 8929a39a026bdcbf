"""The saved proof: ``migration.proof`` (one verdict per target site and project, from the run that made
it) and ``migration.ledger`` (its lines, with the rule that accepted each), replaced together in one
transaction; and the CLI's short version of it, for the runs of this command only.

Like the id map and the reconciliation, a proof belongs to a target site: a rehearsal's verdict is never
shown as the live site's. Each row names the run that made it, so the CLI prints only what this command's
runs proved, never an earlier run's numbers as if they were this run's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from zephyr_qtest.lib.proof.acceptance import Verdict
from zephyr_qtest.lib.proof.ledger import Ledger
from zephyr_qtest.lib.qtest.id_map import DDL_LOCK_KEY, site_of
from zephyr_qtest.lib.raw_store import storable_text

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import Connections

# The schema named literally: no identifier is interpolated into the statement text.
PROOF_DDL = """
create schema if not exists migration;
create table if not exists migration.proof (
    target_site      text not null,
    project_key      text not null,
    run_id           text not null,
    checked_at       timestamptz not null,
    complete         boolean not null,
    verdict          text not null,
    open_lines       integer not null,
    accepted_lines   integer not null,
    report           text not null,
    acceptance_file  text,
    primary key (target_site, project_key)
);
create table if not exists migration.ledger (
    target_site   text not null,
    project_key   text not null,
    object_type   text not null,
    object_key    text not null,
    field         text not null,
    value         text not null,
    reason        text not null,
    remedy        text not null,
    detail        text not null,
    accepted_by   text
);
create index if not exists ledger_project on migration.ledger (target_site, project_key);
"""


@dataclass(frozen=True)
class ProofRow:
    """One project's saved verdict on one target site."""

    target_site: str
    project_key: str
    run_id: str
    checked_at: datetime
    complete: bool
    verdict: str
    open_lines: int
    accepted_lines: int
    report: str
    acceptance_file: str | None = None


PROOF_COLUMNS = (
    "target_site, project_key, run_id, checked_at, complete, verdict, open_lines, accepted_lines, report, "
    "acceptance_file"
)
# (object_type, object_key, field, value, reason, remedy, detail, accepted_by or None)
LedgerRow = tuple[str, str, str, str, str, str, str, str | None]


def _text(value: str) -> str:
    # Ledger values come from Zephyr as it was: a NUL or a lone surrogate would fail the whole insert.
    return storable_text(value)


class ProofRows:
    """The saved proof's repository: ``migration.proof`` and ``migration.ledger``, per target site."""

    def __init__(self, db: Connections) -> None:
        self._db = db

    def replace(self, proof: ProofRow, lines: list[LedgerRow]) -> None:
        """The project's verdict and ledger on its target site replaced in one transaction (the tables
        created when needed; one process at a time)."""
        with self._db.connection() as conn, conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (DDL_LOCK_KEY,))
            conn.execute(PROOF_DDL)
            for statement in (
                "delete from migration.proof where target_site = %s and project_key = %s",
                "delete from migration.ledger where target_site = %s and project_key = %s",
            ):
                conn.execute(statement, (proof.target_site, proof.project_key))
            conn.execute(
                f"insert into migration.proof ({PROOF_COLUMNS}) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (proof.target_site, proof.project_key, proof.run_id, proof.checked_at, proof.complete,
                 _text(proof.verdict), proof.open_lines, proof.accepted_lines, proof.report,
                 proof.acceptance_file),
            )  # fmt: skip
            with conn.cursor() as cursor:
                cursor.executemany(
                    "insert into migration.ledger (target_site, project_key, object_type, object_key, field, "
                    "value, reason, remedy, detail, accepted_by) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (proof.target_site, proof.project_key, *(_text(v) for v in row[:7]), row[7])
                        for row in lines
                    ],
                )

    def _exists(self) -> bool:
        with self._db.connection() as conn:
            return bool(conn.execute("select to_regclass('migration.proof') is not null").fetchone()[0])  # type: ignore[index]

    def read(self, projects: list[str], target_site: str) -> list[ProofRow]:
        """The saved verdicts of `projects` on `target_site` (none before a first proof there)."""
        if not self._exists():
            return []
        with self._db.connection() as conn:
            rows = conn.execute(
                f"select {PROOF_COLUMNS} from migration.proof where target_site = %s and project_key = any(%s) "
                "order by project_key",
                (site_of(target_site), projects),
            ).fetchall()
        return [ProofRow(*row) for row in rows]

    def open_groups(
        self, project_key: str, target_site: str, limit: int = 5
    ) -> list[tuple[str, str, str, int]]:
        """The largest groups of open (not accepted) lines: (object type, field, reason, lines)."""
        if not self._exists():
            return []
        with self._db.connection() as conn:
            return conn.execute(
                "select object_type, field, reason, count(*)::int from migration.ledger "
                "where target_site = %s and project_key = %s and accepted_by is null "
                "group by 1, 2, 3 order by 4 desc, 1, 2, 3 limit %s",
                (site_of(target_site), project_key, limit),
            ).fetchall()

    def open_by_reason(self, project_key: str, target_site: str) -> list[tuple[str, int]]:
        """Open (not accepted) lines per reason, largest first."""
        if not self._exists():
            return []
        with self._db.connection() as conn:
            return conn.execute(
                "select reason, count(*)::int from migration.ledger "
                "where target_site = %s and project_key = %s and accepted_by is null "
                "group by 1 order by 2 desc, 1",
                (site_of(target_site), project_key),
            ).fetchall()

    def lines(self, project_key: str, target_site: str) -> list[LedgerRow]:
        """Every saved ledger line of the project, in no particular order."""
        if not self._exists():
            return []
        with self._db.connection() as conn:
            return conn.execute(
                "select object_type, object_key, field, value, reason, remedy, detail, accepted_by "
                "from migration.ledger where target_site = %s and project_key = %s",
                (site_of(target_site), project_key),
            ).fetchall()


def save_proof(
    rows: ProofRows, ledger: Ledger, verdict: Verdict, *, run_id: str, checked_at: datetime, report: Path
) -> ProofRow:
    """The project's verdict and every ledger line (with the rule that accepted it) saved for its target."""
    proof = ProofRow(
        target_site=site_of(ledger.target_site),
        project_key=ledger.project_key,
        run_id=run_id,
        checked_at=checked_at,
        complete=verdict.complete,
        verdict=verdict.text,
        open_lines=len(verdict.open),
        accepted_lines=len(verdict.accepted),
        report=str(report),
        acceptance_file=str(verdict.acceptance.path) if verdict.acceptance else None,
    )
    lines: list[LedgerRow] = [
        (line.object_type, line.object_key, line.field, line.value, line.reason.value, line.remedy, line.detail,
         accepted_by or None)
        for line, accepted_by in verdict.lines
    ]  # fmt: skip
    rows.replace(proof, lines)
    return proof


def print_proofs(rows: ProofRows, projects: list[str], target_site: str, run_ids: Mapping[str, str]) -> bool:
    """Each project's verdict on `target_site` as this command's run (`run_ids`: project -> run id) proved
    it: the verdict, the open lines by reason, the largest open groups, and the report's path. A project
    whose saved proof is from another run is "not reconciled in this run", never shown with those numbers.
    True when every project is complete in this run."""
    print("proof (Zephyr as extracted against qTest read back):")
    saved = {row.project_key: row for row in rows.read(projects, target_site)}
    complete = True
    for project in projects:
        row = saved.get(project)
        run_id = run_ids.get(project)
        if row is None or run_id is None or row.run_id != run_id:
            print(f"  {project}: not reconciled in this run (the reconciliation did not run, or failed)")
            complete = False
            continue
        print(f"  {project}: {row.verdict}")
        if not row.complete:
            complete = False
            by_reason = rows.open_by_reason(project, target_site)
            if by_reason:
                print("    by reason: " + ", ".join(f"{reason} {count}" for reason, count in by_reason))
            for object_type, field, reason, count in rows.open_groups(project, target_site):
                print(f"    {count:>6}  {object_type} {field} ({reason})")
        print(f"    report: {row.report}")
    return complete
