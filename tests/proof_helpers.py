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
    # A call to a case of another Zephyr project: qTest links calls within one project only.
    ("test step", "testCase.testCaseKey", Reason.NOT_CARRIED): """
        select count(*) from zephyr_raw.test_steps
        where project_key = %(p)s and payload->'testCase'->>'testCaseKey' not like %(p)s || '-%%'""",
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
    # Test plans become cycles (plans_as test_cycle, the default) or releases: neither holds these.
    **{
        ("test plan", name, Reason.NOT_CARRIED): f"""
            select count(*) from zephyr_raw.test_plans
            where project_key = %(p)s and {_nonempty(f"payload->'{name}'")}"""
        for name in ("status", "owner", "folder")
    },
    ("test plan", "labels", Reason.NOT_CARRIED): f"""
        select coalesce(sum({_items("payload->'labels'")}), 0) from zephyr_raw.test_plans
        where project_key = %(p)s""",
    **{
        ("test plan", f"links.{name}", Reason.NOT_CARRIED): f"""
            select coalesce(sum({_items(f"payload->'links'->'{name}'")}), 0) from zephyr_raw.test_plans
            where project_key = %(p)s"""
        for name in ("issues", "webLinks")
    },
    ("test execution", "jiraProjectVersion", Reason.NOT_CARRIED): f"""
        select count(*) from zephyr_raw.test_executions
        where project_key = %(p)s and {_nonempty("payload->'jiraProjectVersion'")}""",
    # Executions not run yet: qTest makes no log of them, and their run holds none of their values.
    **{
        ("test execution", name, Reason.NOT_CARRIED): f"""
            with executions as ({_EXECUTIONS})
            select count(*) from executions where not ran and {_nonempty(f"payload->'{name}'")}"""
        for name in ("comment", "assignedToId")
    },
    # With plans_as test_cycle (the default) a plan is a cycle of its own, without the cycles it links.
    ("test cycle", "links.testPlans", Reason.NOT_CARRIED): f"""
        select coalesce(sum({_items("payload->'links'->'testPlans'")}), 0) from zephyr_raw.test_cycles
        where project_key = %(p)s""",
    # qTest takes no files on test cycles (nor on plans made cycles), and an execution not run yet has no
    # test log to hold its files or its step results' files.
    ("attachment", "(object)", Reason.NOT_CARRIED): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from zephyr_raw.attachments
        where project_key = %(p)s and (
            key like 'testcycles/%%' or key like 'testplans/%%'
            or (key like 'testexecutions/%%' and split_part(key, '/', 2) in (
                select id::text from executions where not ran)))""",
    # Folders of plans have no qTest counterpart at all; the others lose their position among siblings.
    ("folder", "(object)", Reason.NOT_CARRIED): """
        select count(*) from zephyr_raw.folders
        where project_key = %(p)s and payload->>'folderType' not in ('TEST_CASE', 'TEST_CYCLE')""",
    ("folder", "index", Reason.NOT_CARRIED): f"""
        select count(*) from zephyr_raw.folders
        where project_key = %(p)s and payload->>'folderType' in ('TEST_CASE', 'TEST_CYCLE')
        and {_nonempty("payload->'index'")}""",
    # Older versions of the cases, replayed in qTest: the steps of each (Zephyr's API gives none), and each
    # value besides its name, objective, precondition and key (not replayed); and the executions that ran
    # against one (their logs are on the current version).
    ("test case version", "steps", Reason.NOT_CARRIED): """
        select count(*) from zephyr_raw.test_case_versions where project_key = %(p)s""",
    **{
        ("test case version", path, Reason.NOT_CARRIED): f"""
        select count(*) from zephyr_raw.test_case_versions
        where project_key = %(p)s and {_nonempty(f"payload->'{path}'")}"""
        for path in ("priority", "status", "owner", "component", "estimatedTime", "createdOn")
    },
    **{
        ("test case version", path, Reason.NOT_CARRIED): f"""
        select coalesce(sum({_items(f"payload{pointer}")}), 0) from zephyr_raw.test_case_versions
        where project_key = %(p)s"""
        for path, pointer in (
            ("labels", "->'labels'"),
            ("links.issues", "->'links'->'issues'"),
            ("links.webLinks", "->'links'->'webLinks'"),
        )
    },
    ("test execution", "testCase (version)", Reason.NOT_CARRIED): f"""
        with executions as ({_EXECUTIONS}),
        newest as (
            select parent_key as case_key, max(position) + 1 as number from zephyr_raw.test_case_versions
            where project_key = %(p)s group by parent_key
        )
        select count(*) from executions join newest using (case_key)
        where substring(payload->'testCase'->>'self' from '/versions/([0-9]+)')::int < newest.number""",
}


# Pictures embedded in rich text (<img src=...>): their text arrives, they do not (SmartBear's CDN). One line
# per picture, per (object type, field): counted with a regular expression over the raw text.
_RICH_TEXT_WITH_IMAGES = (
    ("test case", "test_cases", "objective"),
    ("test case", "test_cases", "precondition"),
    ("test step", "test_steps", "inline.description"),
    ("test step", "test_steps", "inline.testData"),
    ("test step", "test_steps", "inline.expectedResult"),
    ("test step", "test_scripts", "text"),
    ("test cycle", "test_cycles", "description"),
    ("test plan", "test_plans", "objective"),
    ("test execution", "test_executions", "comment"),
    ("execution step", "test_execution_steps", "inline.actualResult"),
)
for _object_type, _table, _path in _RICH_TEXT_WITH_IMAGES:
    _text = "payload #>> '{" + _path.replace(".", ",") + "}'"
    RAW_LOSSES[(_object_type, f"{_path} (inline image)", Reason.NOT_CARRIED)] = f"""
        select count(*) from zephyr_raw.{_table},
            regexp_matches(coalesce({_text}, ''), '<img[^>]*src\\s*=', 'gi')
        where project_key = %(p)s"""

# Custom-field values that have no qTest place, per Zephyr object type (their field names are the tenant's
# own, so they are counted together): of cycles and plans (neither takes properties), of executions not run
# yet, and of steps (qTest steps have no fields). The ledger names each under its own field.
RAW_CUSTOM_FIELD_LOSSES: dict[str, str] = {
    "test cycle": "select payload->'customFields' as values from zephyr_raw.test_cycles where project_key = %(p)s",
    "test plan": "select payload->'customFields' as values from zephyr_raw.test_plans where project_key = %(p)s",
    "test execution": f"with executions as ({_EXECUTIONS}) "
    "select payload->'customFields' as values from executions where not ran",
    "test step": "select payload->'inline'->'customFields' as values from zephyr_raw.test_steps "
    "where project_key = %(p)s",
    "test case version": "select payload->'customFields' as values from zephyr_raw.test_case_versions "
    "where project_key = %(p)s",
}


def raw_custom_field_losses(database_url: str, project: str) -> dict[str, int]:
    """Per object type, the non-empty custom-field values of ``RAW_CUSTOM_FIELD_LOSSES``."""
    with connect(database_url) as conn:
        return {
            object_type: int(
                conn.execute(  # type: ignore[index]
                    f"with fields as ({values}) select count(*) from fields, jsonb_each(fields.values) as item "
                    f"where jsonb_typeof(fields.values) = 'object' and {_nonempty('item.value')}",
                    {"p": project},
                ).fetchone()[0]
            )
            for object_type, values in RAW_CUSTOM_FIELD_LOSSES.items()
        }


def raw_loss_counts(database_url: str, project: str) -> dict[tuple[str, str, Reason], int]:
    """Each kind of loss of ``RAW_LOSSES``, counted in the raw payloads of ``project``."""
    with connect(database_url) as conn:
        return {
            kind: int(conn.execute(query, {"p": project}).fetchone()[0])  # type: ignore[index]
            for kind, query in RAW_LOSSES.items()
        }
