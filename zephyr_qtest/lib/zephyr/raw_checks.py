"""Checks on the raw layer, as set-based SQL over one project's rows.

Each returns a ``CheckOutcome``; the Dagster asset checks in ``defs/ingest`` only wrap them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from zephyr_qtest.lib.raw_store import SERVED_TWICE, RawQueries, raw_table

# How many offending objects a check names in its result (the count is always complete).
SAMPLE = 20


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def row_count_matches_api(raw: RawQueries, entity: str, project_key: str) -> CheckOutcome:
    """The rows written equal the count the API reported for this project."""
    logged = raw.query(
        "select rows_written, api_reported from zephyr_raw.extraction_log where project_key = %s and entity = %s",
        (project_key, entity),
    )
    counted = raw.query(
        sql.SQL("select count(*) from {} where project_key = %s").format(raw_table(entity)), (project_key,)
    )
    row = logged[0] if logged else None
    actual = counted[0] if counted else None
    if row is None:
        return CheckOutcome(False, f"{entity} of {project_key} has not been extracted")
    rows_written, api_reported = row
    in_table = actual[0] if actual else 0
    metadata = {"rows_in_table": in_table, "rows_written": rows_written, "api_reported": api_reported}
    if api_reported is None:
        return CheckOutcome(False, "the API's count could not be read, so completeness is unproven", metadata)
    passed = in_table == rows_written == api_reported
    description = (
        f"{in_table} rows, as the API reported"
        if passed
        else f"{in_table} rows in the table, {rows_written} written, but the API reported {api_reported}"
    )
    return CheckOutcome(passed, description, metadata)


def ids_unique(raw: RawQueries, entity: str, project_key: str) -> CheckOutcome:
    """No Zephyr id and no key appears twice in the project's rows, and the listing served no object
    twice with different content (the table then holds the later copy, so only the extraction issues
    say so; an object between the two pages may have been skipped)."""
    duplicates = raw.query(
        sql.SQL(
            """
            select 'id ' || id::text, count(*) from {table}
            where project_key = %s and id is not null group by id having count(*) > 1
            union all
            select 'key ' || key, count(*) from {table}
            where project_key = %s and key is not null group by key having count(*) > 1
            order by 1 limit {sample}
            """
        ).format(table=raw_table(entity), sample=sql.Literal(SAMPLE)),
        (project_key, project_key),
    )
    served_twice = raw.query(
        "select object_ref, field from zephyr_raw.extraction_issues "
        "where project_key = %s and entity = %s and starts_with(reason, %s) order by 1 limit %s",
        (project_key, entity, SERVED_TWICE, SAMPLE),
    )
    if not duplicates and not served_twice:
        return CheckOutcome(True, "every id and key is unique")
    parts = []
    if duplicates:
        parts.append("duplicates: " + ", ".join(f"{what} (x{count})" for what, count in duplicates))
    if served_twice:
        parts.append(
            f"{SERVED_TWICE} (the later copy kept): "
            + ", ".join(f"{ref} ({differing})" for ref, differing in served_twice)
        )
    return CheckOutcome(
        False, "; ".join(parts), {"duplicates": len(duplicates), "served_twice": len(served_twice)}
    )


def executions_reference_existing(raw: RawQueries, project_key: str) -> CheckOutcome:
    """Every execution's test case (by the key in ``testCase.self``) and test cycle (by id) were extracted."""
    missing = raw.query(
        """
            with executions as (
                select e.id,
                       substring(e.payload -> 'testCase' ->> 'self' from '/testcases/([^/]+)/versions/') as case_key,
                       (e.payload -> 'testCycle' ->> 'id')::bigint as cycle_id
                from zephyr_raw.test_executions e
                where e.project_key = %(project)s
            )
            select x.id, x.case_key, x.cycle_id,
                   c.key is null as case_missing,
                   x.cycle_id is not null and cy.id is null as cycle_missing
            from executions x
            left join zephyr_raw.test_cases c on c.project_key = %(project)s and c.key = x.case_key
            left join zephyr_raw.test_cycles cy on cy.project_key = %(project)s and cy.id = x.cycle_id
            where c.key is null or (x.cycle_id is not null and cy.id is null)
            order by x.id
            """,
        {"project": project_key},
    )
    if not missing:
        return CheckOutcome(True, "every execution's test case and test cycle exist")
    lines = [
        f"execution {ident}: "
        + ", ".join(
            part
            for part in (
                f"test case {case_key!r} missing" if case_missing else "",
                f"test cycle {cycle_id} missing" if cycle_missing else "",
            )
            if part
        )
        for ident, case_key, cycle_id, case_missing, cycle_missing in missing[:SAMPLE]
    ]
    return CheckOutcome(
        False,
        f"{len(missing)} executions reference objects that were not extracted: " + "; ".join(lines),
        {"executions_with_missing_refs": len(missing)},
    )


def call_to_test_targets_exist(raw: RawQueries, project_key: str) -> CheckOutcome:
    """Every call-to-test step calls a case of this project that was extracted, or another project's case (reported)."""
    rows = raw.query(
        """
            select s.key, s.payload -> 'testCase' ->> 'testCaseKey' as target,
                   regexp_replace(s.payload -> 'testCase' ->> 'testCaseKey', '-T[0-9]+$', '') as target_project,
                   c.key is not null as found
            from zephyr_raw.test_steps s
            left join zephyr_raw.test_cases c
                   on c.project_key = s.project_key and c.key = s.payload -> 'testCase' ->> 'testCaseKey'
            where s.project_key = %s and s.payload ? 'testCase' and s.payload -> 'testCase' is not null
              and jsonb_typeof(s.payload -> 'testCase') = 'object'
            order by s.key
            """,
        (project_key,),
    )
    missing = [
        (step, target)
        for step, target, target_project, found in rows
        if target_project == project_key and not found
    ]
    foreign = sorted(
        {target for _, target, target_project, _ in rows if target and target_project != project_key}
    )
    metadata: dict[str, Any] = {
        "call_to_test_steps": len(rows),
        "targets_in_other_projects": len(foreign),
        "missing_targets": len(missing),
    }
    if foreign:
        metadata["other_project_targets"] = ", ".join(foreign[:SAMPLE])
    if missing:
        named = "; ".join(f"{step} calls {target}" for step, target in missing[:SAMPLE])
        return CheckOutcome(
            False, f"{len(missing)} call-to-test steps call a case that was not extracted: {named}", metadata
        )
    description = f"all {len(rows)} call-to-test targets exist"
    if foreign:
        description += f"; {len(foreign)} are in other projects: {', '.join(foreign[:SAMPLE])}"
    return CheckOutcome(True, description, metadata)
