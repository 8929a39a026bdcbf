"""Helpers for tests of the proof: the ledger of a migrated project, and the losses counted on their own
from the raw payloads.

``raw_loss_counts`` counts, with SQL over ``zephyr_raw.*`` and the user's seeds only (never a mart, never the
proof's code), how many values of each kind cannot be in qTest on a project migrated with the shipped seeds:
the ledger must have as many lines of that (object type, field, reason).
"""

from __future__ import annotations

import asyncio

from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.proof.compare import prove
from zephyr_qtest.lib.proof.ledger import Ledger, Reason
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle


def ledger_of(database_url: str, qtest: QTestSandboxHandle, project: str) -> Ledger:
    """The ledger of what did not arrive, as the reconciliation proves it (raw payloads against qTest)."""

    async def run() -> Ledger:
        with Store(database_url) as store:
            async with QtestClient(qtest.base_url, qtest.token) as client:
                return (await prove(store, client, project))[1]

    return asyncio.run(run())


# Executions with their case's key (from the testCase link: older versions have ids of their own) and
# whether they ran (an end date: qTest makes a test log only of a result).
_EXECUTIONS = """
    select id, key, payload, payload->>'actualEndDate' is not null as ran,
        substring(payload->'testCase'->>'self' from '/testcases/([^/]+)') as case_key
    from zephyr_raw.test_executions where project_key = %(p)s
"""
# (An account that is null is no account: `null not in (<no rows>)` would be true.)
_UNMAPPED_ACCOUNT = "not in (select zephyr_account_id::text from qtest_mapping.user_map)"


def _nonempty(path: str) -> str:
    return (
        f"coalesce({path}, 'null'::jsonb) not in ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb, '{{}}'::jsonb)"
    )


def _items(path: str) -> str:
    return f"coalesce(jsonb_array_length(case jsonb_typeof({path}) when 'array' then {path} end), 0)"


# (object type, field, reason) -> a query of one number: what the ledger must hold.
RAW_LOSSES: dict[tuple[str, str, Reason], str] = {
    ("test case", "links.webLinks", Reason.NOT_CARRIED): f"""
        select coalesce(sum({_items("payload->'links'->'webLinks'")}), 0) from zephyr_raw.test_cases
        where project_key = %(p)s""",
    ("test case", "createdOn", Reason.NOT_CARRIED): f"""
        select count(*) from zephyr_raw.test_cases where project_key = %(p)s and {_nonempty("payload->'createdOn'")}""",
    ("test case", "owner", Reason.NO_MAPPING): f"""
        select count(*) from zephyr_raw.test_cases where project_key = %(p)s
        and payload->'owner'->>'accountId' is not null and payload->'owner'->>'accountId' {_UNMAPPED_ACCOUNT}""",
    ("test case", "priority", Reason.NO_MAPPING): """
        select count(*) from zephyr_raw.test_cases as cases
        join zephyr_raw.priorities as priorities
            on priorities.project_key = cases.project_key and priorities.id = (cases.payload->'priority'->>'id')::bigint
        where cases.project_key = %(p)s
        and priorities.payload->>'name' not in (select zephyr_name from qtest_mapping.priority_map)""",
    ("test step", "testCase.parameters", Reason.NOT_CARRIED): f"""
        select coalesce(sum({_items("payload->'testCase'->'parameters'")}), 0) from zephyr_raw.test_steps
        where project_key = %(p)s""",
    ("test execution", "environment", Reason.VALUE_NOT_ALLOWED): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from executions where ran and {_nonempty("payload->'environment'")}""",
    ("test execution", "environment", Reason.NOT_CARRIED): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from executions where not ran and {_nonempty("payload->'environment'")}""",
    ("test execution", "executedById", Reason.NO_MAPPING): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from executions
        where ran and payload->>'executedById' is not null and payload->>'executedById' {_UNMAPPED_ACCOUNT}""",
    ("test execution", "assignedToId", Reason.NO_MAPPING): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from executions
        where ran and payload->>'assignedToId' is not null and payload->>'assignedToId' {_UNMAPPED_ACCOUNT}""",
    ("test execution", "links.issues", Reason.NOT_CARRIED): f"""
        select coalesce(sum({_items("payload->'links'->'issues'")}), 0) from zephyr_raw.test_executions
        where project_key = %(p)s""",
    ("test execution", "estimatedTime", Reason.NOT_CARRIED): f"""
        select count(*) from zephyr_raw.test_executions
        where project_key = %(p)s and {_nonempty("payload->'estimatedTime'")}""",
    ("test execution", "testExecutionStatus", Reason.NO_MAPPING): """
        select count(*) from zephyr_raw.test_executions as executions
        join zephyr_raw.statuses as statuses on statuses.project_key = executions.project_key
            and statuses.id = (executions.payload->'testExecutionStatus'->>'id')::bigint
        where executions.project_key = %(p)s and executions.payload->>'actualEndDate' is not null
        and statuses.payload->>'name' not in (
            select zephyr_name from qtest_mapping.status_map where status_type = 'TEST_EXECUTION')""",
    # Step results qTest cannot hold: of executions not run yet, of cases with call-to-test steps (Zephyr
    # flattens the called steps), and beyond the steps the case has now.
    ("execution step", "(object)", Reason.NOT_CARRIED): f"""
        with executions as ({_EXECUTIONS}),
        case_steps as (
            select parent_key as case_key, count(*) as steps, bool_or(payload ? 'testCase') as calls
            from zephyr_raw.test_steps where project_key = %(p)s group by parent_key
        )
        select count(*) from zephyr_raw.test_execution_steps as results
        join executions on results.parent_key = executions.id::text
        left join case_steps using (case_key)
        where results.project_key = %(p)s
        and (not executions.ran or coalesce(case_steps.calls, false)
             or results.position > coalesce(case_steps.steps, 0))""",
    **{
        ("test cycle", name, Reason.NOT_CARRIED): f"""
            select count(*) from zephyr_raw.test_cycles
            where project_key = %(p)s and {_nonempty(f"payload->'{name}'")}"""
        for name in ("plannedStartDate", "plannedEndDate", "status", "owner", "jiraProjectVersion")
    },
    **{
        ("test cycle", f"links.{name}", Reason.NOT_CARRIED): f"""
            select coalesce(sum({_items(f"payload->'links'->'{name}'")}), 0) from zephyr_raw.test_cycles
            where project_key = %(p)s"""
        for name in ("issues", "webLinks")
    },
}


def raw_loss_counts(database_url: str, project: str) -> dict[tuple[str, str, Reason], int]:
    """Each kind of loss of ``RAW_LOSSES``, counted in the raw payloads of ``project``."""
    with connect(database_url) as conn:
        return {
            kind: int(conn.execute(query, {"p": project}).fetchone()[0])  # type: ignore[index]
            for kind, query in RAW_LOSSES.items()
        }
