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


def ledger_of(
    database_url: str, qtest: QTestSandboxHandle, project: str, *, cdn_token: str | None = None
) -> Ledger:
    """The ledger of what did not arrive, as the reconciliation proves it (raw payloads against qTest);
    `cdn_token` reads the inline images on Zephyr's CDN again (ZEPHYR_CDN_TOKEN)."""

    async def run() -> Ledger:
        with Store(database_url) as store:
            async with QtestClient(qtest.base_url, qtest.token) as client:
                return (await prove(store, client, project, cdn_token=cdn_token))[1]

    return asyncio.run(run())


# Executions with their case's key (from the testCase link: older versions have ids of their own) and
# whether they ran (an end date: qTest makes a test log only of a result).
_EXECUTIONS = """
    select id, key, payload, payload->>'actualEndDate' is not null as ran,
        substring(payload->'testCase'->>'self' from '/testcases/([^/]+)') as case_key
    from zephyr_raw.test_executions where project_key = %(p)s
"""
# Executions not run yet that a later unrun execution of the same run (cycle, case) shadows: the run holds
# that one's values, and qTest has no log of either.
_SHADOWED = f"""
    with executions as ({_EXECUTIONS}),
    unrun as (
        select *, row_number() over (
            partition by payload->'testCycle'->>'id', case_key order by id desc) as newest_first
        from executions where not ran
    )
    select * from unrun where newest_first > 1
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
    ("test case", "owner", Reason.NO_MAPPING): f"""
        select count(*) from zephyr_raw.test_cases where project_key = %(p)s
        and payload->'owner'->>'accountId' is not null and payload->'owner'->>'accountId' {_UNMAPPED_ACCOUNT}""",
    # A call to a case of another Zephyr project: qTest links calls within one project only.
    ("test step", "testCase.testCaseKey", Reason.NOT_CARRIED): """
        select count(*) from zephyr_raw.test_steps
        where project_key = %(p)s and payload->'testCase'->>'testCaseKey' not like %(p)s || '-%%'""",
    # Values of an execution not run yet go on its run, of the latest such execution of the run only.
    **{
        ("test execution", name, Reason.NOT_CARRIED): f"""
            with shadowed as ({_SHADOWED})
            select count(*) from shadowed where {_nonempty(f"payload->'{name}'")}"""
        for name in ("environment", "estimatedTime", "jiraProjectVersion", "assignedToId", "comment")
    },
    ("test execution", "executedById", Reason.NO_MAPPING): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from executions
        where ran and payload->>'executedById' is not null and payload->>'executedById' {_UNMAPPED_ACCOUNT}""",
    # An assignee is on the log of an execution that ran, and on the run of the latest one not run yet.
    ("test execution", "assignedToId", Reason.NO_MAPPING): f"""
        with executions as ({_EXECUTIONS}), shadowed as ({_SHADOWED})
        select count(*) from executions
        where id not in (select id from shadowed)
        and payload->>'assignedToId' is not null and payload->>'assignedToId' {_UNMAPPED_ACCOUNT}""",
    ("test execution", "testExecutionStatus", Reason.NO_MAPPING): """
        select count(*) from zephyr_raw.test_executions as executions
        join zephyr_raw.statuses as statuses on statuses.project_key = executions.project_key
            and statuses.id = (executions.payload->'testExecutionStatus'->>'id')::bigint
        where executions.project_key = %(p)s and executions.payload->>'actualEndDate' is not null
        and statuses.payload->>'name' not in (
            select zephyr_name from qtest_mapping.status_map where status_type = 'TEST_EXECUTION')""",
    # Step results qTest cannot hold: those of executions not run yet (a test log needs start and end
    # dates), but for a plain one (a status the seed maps to qTest's default, Unexecuted in the sandbox's
    # template, and no actual result), which is what the run without a log shows. Every other result is a
    # step log (on the case's step or a called case's step, every data row) or a line of the log's note.
    ("execution step", "(object)", Reason.NOT_CARRIED): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from zephyr_raw.test_execution_steps as results
        join executions on results.parent_key = executions.id::text
        left join zephyr_raw.statuses as statuses on statuses.project_key = results.project_key
            and statuses.id = (results.payload #>> '{{inline,status,id}}')::bigint
        left join qtest_mapping.status_map as map on map.status_type = 'TEST_EXECUTION'
            and map.zephyr_name = statuses.payload->>'name'
        where results.project_key = %(p)s and not executions.ran
        and not (coalesce(map.qtest_name, statuses.payload->>'name') = 'Unexecuted'
            and coalesce(results.payload #>> '{{inline,actualResult}}', '') = '')""",
    # Executions not run yet: qTest makes no log of them, and a run has no executor.
    ("test execution", "executedById", Reason.NOT_CARRIED): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from executions where not ran and {_nonempty("payload->'executedById'")}""",
    # qTest takes no files on test cycles (plans go as releases, which take them), and an execution not run
    # yet has no test log to hold its files or its step results' files.
    ("attachment", "(object)", Reason.NOT_CARRIED): f"""
        with executions as ({_EXECUTIONS})
        select count(*) from zephyr_raw.attachments
        where project_key = %(p)s and (
            key like 'testcycles/%%'
            or (key like 'testexecutions/%%' and split_part(key, '/', 2) in (
                select id::text from executions where not ran)))""",
    # A folder of plans is named in the details of the plans in it or below it: one that holds none is
    # named nowhere. (A folder's position among its siblings arrives: qTest's order, by creation.)
    ("folder", "(object)", Reason.NOT_CARRIED): """
        with recursive folders as (
            select id, (payload->>'parentId')::bigint as parent_id, payload->>'folderType' as folder_type
            from zephyr_raw.folders where project_key = %(p)s
        ),
        holding as (
            select (payload->'folder'->>'id')::bigint as id, 1 as depth from zephyr_raw.test_plans
            where project_key = %(p)s and payload->'folder'->>'id' is not null
            union
            select folders.parent_id, holding.depth + 1 from holding
            join folders on folders.id = holding.id
            where folders.parent_id is not null and holding.depth < 50
        )
        select count(*) from folders
        where folder_type not in ('TEST_CASE', 'TEST_CYCLE')
        and (folder_type <> 'TEST_PLAN' or id not in (select id from holding where id is not null))""",
    # Older versions of the cases, replayed in qTest with their values (by the current version's rules):
    # the steps of each (Zephyr's API gives none), and an owner no qTest user maps, as on the current one.
    # The executions that ran against one have their logs on it: no line.
    ("test case version", "steps", Reason.NOT_CARRIED): """
        select count(*) from zephyr_raw.test_case_versions where project_key = %(p)s""",
    ("test case version", "owner", Reason.NO_MAPPING): f"""
        select count(*) from zephyr_raw.test_case_versions where project_key = %(p)s
        and payload->'owner'->>'accountId' is not null and payload->'owner'->>'accountId' {_UNMAPPED_ACCOUNT}""",
}


# Pictures embedded in rich text (<img src=...>): their text arrives, they do not (SmartBear's CDN, and no
# ZEPHYR_CDN_TOKEN in these runs). One line per picture, per (object type, field): counted with a regular
# expression over the raw text. The data: pictures of a test case, its steps and its script arrive
# (attachments of the case), and those of a plan (of its release: plans_as release, these runs' setting).
# A test cycle's never arrive (qTest takes no attachments on test cycles).
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
    _src = (
        "src\\s*=\\s*[\"''](?!data:)"
        if _table in ("test_cases", "test_steps", "test_scripts", "test_plans")
        else "src\\s*="
    )
    RAW_LOSSES[(_object_type, f"{_path} (inline image)", Reason.NOT_CARRIED)] = f"""
        select count(*) from zephyr_raw.{_table},
            regexp_matches(coalesce({_text}, ''), '<img[^>]*{_src}', 'gi')
        where project_key = %(p)s"""

# Custom-field values that have no qTest place, per Zephyr object type (their field names are the tenant's
# own, so they are counted together): of executions not run yet whose run holds a later one's. The ledger
# names each under its own field. (Those of cycles and plans are in the Zephyr details of their descriptions,
# those of steps in the steps' own.)
RAW_CUSTOM_FIELD_LOSSES: dict[str, str] = {
    "test execution": f"with shadowed as ({_SHADOWED}) select payload->'customFields' as values from shadowed",
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
