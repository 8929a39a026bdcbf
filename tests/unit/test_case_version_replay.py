"""The older versions of a test case replayed in qTest (the real qTest sandbox, over HTTP), oldest first and
the current version last; a run killed mid-replay, resumed, neither replays a version twice nor skips one;
a re-run after success sends nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_store import IdMapInMemory, MartsInMemory
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.comparison import Reconciliation, TypeResult
from zephyr_qtest.lib.qtest.exactly_once import PublishSummary
from zephyr_qtest.lib.qtest.kinds import test_case, test_case_version
from zephyr_qtest.lib.qtest.kinds.base import Marts, PublishContext, ReadBack, done_ids
from zephyr_qtest.lib.qtest.kinds.vocabulary import MODULE, TEST_CASE, TEST_CASE_VERSION, TEST_STEP
from zephyr_qtest.lib.qtest.reconcile import reconcile_kind
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread

PROJECT = "UT"
KEY = [{"field_label": "Zephyr Key", "value": "UT-T1", "zephyr_field": "key"}]


def version(number: int, name: str) -> dict[str, Any]:
    return {
        "project_key": PROJECT,
        "source_key": f"UT-T1@{number}",
        "parent_source_key": "UT-T1",
        "version_number": number,
        "name": name,
        "description": f"<p>objective of {name}</p>",
        "precondition": None,
        "properties": KEY,
        "load_order": number,
        "payload_hash": f"h{number}",
    }


TABLES: dict[str, list[dict[str, Any]]] = {
    "qtest_test_cases": [
        {
            "project_key": PROJECT,
            "source_key": "UT-T1",
            "parent_source_key": None,
            "name": "Log in",
            "description": "<p>objective now</p>",
            "precondition": "A user",
            "properties": KEY,
            "load_order": 0,
            "payload_hash": "current",
        }
    ],
    "qtest_test_steps": [
        {
            "project_key": PROJECT,
            "source_key": "UT-T1#1",
            "parent_source_key": "UT-T1",
            "step_order": 1,
            "description": "Open the page",
            "expected": "It opens",
            "payload_hash": "s1",
        }
    ],
    "qtest_test_case_versions": [version(1, "Log in (v1)"), version(2, "Log in (v2)")],
}


@pytest.fixture
def qtest(tmp_path: Path) -> Iterator[QTestSandboxHandle]:
    # The rich template has the Zephyr Key field the lookups search by.
    with start_qtest_in_thread(tmp_path / "qtest", seed=3, projects=["Versions"], template="rich") as handle:
        yield handle


class Killed(BaseException):
    """The process dies (kill -9): nothing after it runs, no failure is recorded."""


class Writes:
    """The client, with its test-case writes recorded; `kill_at` = (method, nth call): that call dies, before
    it is sent (`before`) or after qTest made it (its answer never read)."""

    WRITES = ("create_test_case", "update_test_case", "approve_test_case")

    def __init__(self, client: QtestClient, kill_at: tuple[str, int, bool] | None = None) -> None:
        self.client = client
        self.kill_at = kill_at
        self.sent: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if name not in self.WRITES:
            return method

        async def write(*args: Any) -> Any:
            calls = sum(1 for sent in self.sent if sent.startswith(name)) + 1
            kill = self.kill_at is not None and self.kill_at[:2] == (name, calls)
            if kill and self.kill_at[2]:  # type: ignore[index]
                raise Killed(name)
            answer = await method(*args)
            self.sent.append(f"{name} {answer.get('version')}")
            if kill:
                raise Killed(name)
            return answer

        return write


class Replay:
    """Runs of the test-case stage's two kinds against one sandbox project and one id map."""

    def __init__(self, qtest: QTestSandboxHandle, tables: dict[str, list[dict[str, Any]]] = TABLES) -> None:
        self.qtest = qtest
        self.tables = tables
        self.id_map = IdMapInMemory()

    async def _context(self, client: Any) -> PublishContext:
        project_id = next(p["id"] for p in await client.list_projects() if p["name"] == "Versions")
        marts = Marts(MartsInMemory(self.tables, {}), PROJECT)  # type: ignore[arg-type]
        ctx = PublishContext(client, project_id, self.id_map, marts)  # type: ignore[arg-type]
        await ctx.load_settings()
        await ctx.load_ids(TEST_CASE.name, TEST_CASE_VERSION.name, TEST_STEP.name)
        return ctx

    def run(self, kill_at: tuple[str, int, bool] | None = None) -> tuple[list[PublishSummary], list[str]]:
        """The stage's kinds in order; the summaries (none when killed) and the writes sent."""

        async def go() -> tuple[list[PublishSummary], list[str]]:
            async with QtestClient(self.qtest.base_url, self.qtest.token) as client:
                writes = Writes(client, kill_at)
                ctx = await self._context(writes)
                try:
                    return [await kind.publish(ctx) for kind in STAGE], writes.sent
                except Killed:
                    return [], writes.sent

        return asyncio.run(go())

    def reconciled(self) -> TypeResult:
        """The loader's own check of the older versions: the marts against qTest's version lists."""

        async def check() -> TypeResult:
            async with QtestClient(self.qtest.base_url, self.qtest.token) as client:
                ctx = await self._context(client)
                ids = {t: done_ids(await self.id_map.load(t)) for t in (MODULE.name, TEST_CASE.name)}
                ids[TEST_CASE_VERSION.name] = done_ids(await self.id_map.load(TEST_CASE_VERSION.name))
                outcome = Reconciliation(PROJECT, ctx.project_id)
                rb = ReadBack(
                    client,
                    ctx.project_id,
                    ctx.marts,
                    ids,
                    outcome,
                    ctx.test_case_fields,
                    ctx.test_run_fields,
                    {},
                )
                await reconcile_kind(test_case_version.KIND, rb)
                return outcome.results[TEST_CASE_VERSION.name]

        return asyncio.run(check())

    def versions(self) -> list[tuple[str, str, int]]:
        """Every version qTest lists of the project's one case: (version, name, step count)."""

        async def read() -> list[tuple[str, str, int]]:
            async with QtestClient(self.qtest.base_url, self.qtest.token) as client:
                ctx = await self._context(client)
                cases = [case async for case in client.iter_test_cases(ctx.project_id)]
                assert len(cases) == 1, cases  # never a second case
                case_id = int(cases[0]["id"])
                out = []
                for item in await client.list_test_case_versions(ctx.project_id, case_id):
                    steps = await client.get_json(
                        f"projects/{ctx.project_id}/test-cases/{case_id}/versions/"
                        f"{item['test_case_version_id']}/test-steps"
                    )
                    out.append((item["version"], item["name"], len(steps)))
                return out

        return asyncio.run(read())


STAGE = (test_case_version.KIND, test_case.KIND)
# Older versions without steps (Zephyr's API gives none); the current one last, with its steps.
HISTORY = [("1.0", "Log in (v1)", 0), ("2.0", "Log in (v2)", 0), ("3.0", "Log in", 1)]
ALL_WRITES = [
    "create_test_case 0.1",
    "approve_test_case 1.0",
    "update_test_case 1.1",
    "approve_test_case 2.0",
    "update_test_case 2.1",
    "approve_test_case 3.0",
]


def test_older_versions_arrive_oldest_first_and_the_current_one_last(qtest: QTestSandboxHandle) -> None:
    replay = Replay(qtest)
    (versions, cases), sent = replay.run()
    assert (versions.created, versions.failed, cases.created, cases.failed) == (2, 0, 1, 0)
    assert sent == ALL_WRITES
    assert replay.versions() == HISTORY
    entries = replay.id_map.entries
    case_id = entries[(TEST_CASE.name, "UT-T1")].qtest_id
    assert entries[(TEST_CASE_VERSION.name, "UT-T1@1")].detail["case_id"] == case_id
    # A re-run after success sends nothing.
    (versions, cases), sent = replay.run()
    assert (versions.skipped, cases.skipped, sent) == (2, 1, [])
    assert replay.versions() == HISTORY
    result = replay.reconciled()
    assert (result.expected, result.matched, result.unaccounted, result.mismatches) == (2, 2, [], [])

    # An edit of the current version in Zephyr: a new version after it; the older ones are untouched.
    edited = {
        **TABLES,
        "qtest_test_cases": [{**TABLES["qtest_test_cases"][0], "name": "Sign in", "payload_hash": "e"}],
    }
    replay.tables = edited
    (versions, cases), sent = replay.run()
    assert (versions.skipped, cases.updated, sent) == (
        2,
        1,
        ["update_test_case 3.1", "approve_test_case 4.0"],
    )
    assert replay.versions() == [*HISTORY, ("4.0", "Sign in", 1)]
    result = replay.reconciled()
    assert (result.expected, result.matched, result.unaccounted, result.mismatches) == (2, 2, [], [])


@pytest.mark.parametrize(
    "kill_at",
    [
        ("create_test_case", 1, True),  # before the first version left
        ("create_test_case", 1, False),  # the first version made, its approval not sent
        ("approve_test_case", 1, False),  # the first version approved, its done row not written
        ("update_test_case", 1, True),  # before the second version left
        ("update_test_case", 1, False),  # the second version made, not approved
        ("approve_test_case", 2, False),  # the second version approved, not recorded
        ("update_test_case", 2, False),  # the current version made, not approved
        ("approve_test_case", 3, False),  # the current version approved, not recorded
    ],
)
def test_a_run_killed_mid_replay_resumes_without_replaying_or_skipping_a_version(
    qtest: QTestSandboxHandle, kill_at: tuple[str, int, bool]
) -> None:
    replay = Replay(qtest)
    summaries, before = replay.run(kill_at)
    assert summaries == []
    (versions, cases), after = replay.run()
    assert (versions.failed, cases.failed) == (0, 0)
    # Each write was sent once in all: what the killed run sent is not sent again.
    assert before + after == ALL_WRITES
    assert replay.versions() == HISTORY
    (versions, cases), sent = replay.run()
    assert sent == []


def test_a_refused_older_version_stops_neither_the_current_one_nor_comes_after_it(
    qtest: QTestSandboxHandle,
) -> None:
    # qTest refuses a name over 500 characters (the sandbox's rule): the second version is refused.
    tables = {**TABLES, "qtest_test_case_versions": [version(1, "Log in (v1)"), version(2, "x" * 501)]}
    replay = Replay(qtest, tables)
    (versions, cases), _ = replay.run()
    assert (versions.created, versions.failed, cases.created, cases.failed) == (1, 1, 1, 0)
    assert replay.versions() == [("1.0", "Log in (v1)", 0), ("2.0", "Log in", 1)]
    # A re-run does not put the refused version after the current one: it says why, and sends nothing.
    (versions, cases), sent = replay.run()
    assert sent == [] and cases.skipped == 1
    [failure] = versions.failures
    assert failure.source_key == "UT-T1@2" and "cannot be replayed before it" in failure.reason


def test_each_version_carries_its_own_values_and_clears_what_a_later_one_dropped(
    qtest: QTestSandboxHandle,
) -> None:
    """An older version's values are its own (the case's rules: the marts' shared macro), and a value a
    later version no longer has is cleared there (an update keeps what it does not name): version 1's
    second label and component are gone from version 2, and version 2's label from the current one."""

    def props(priority: str, labels: list[str], component: str | None = None) -> list[dict[str, Any]]:
        values = [*KEY, {"field_label": "Priority", "value": priority, "zephyr_field": "priority"}]
        if labels:
            values.append({"field_label": "Labels", "value": labels, "zephyr_field": "labels"})
        if component:
            values.append({"field_label": "Component", "value": component, "zephyr_field": "component"})
        return values

    tables = {
        **TABLES,
        "qtest_test_cases": [{**TABLES["qtest_test_cases"][0], "properties": props("Medium", [])}],
        "qtest_test_case_versions": [
            {**version(1, "Log in (v1)"), "properties": props("High", ["smoke", "api"], "70001")},
            {**version(2, "Log in (v2)"), "properties": props("Low", ["smoke"])},
        ],
    }
    replay = Replay(qtest, tables)
    (versions, cases), _ = replay.run()
    assert (versions.created, cases.created, versions.failed, cases.failed) == (2, 1, 0, 0)

    async def held() -> list[dict[str, str]]:
        async with QtestClient(qtest.base_url, qtest.token) as client:
            ctx = await replay._context(client)
            labels = {field.id: field.label for field in ctx.test_case_fields.fields.values()}
            names = {
                field.id: {value: label for label, value in field.allowed.items()}
                for field in ctx.test_case_fields.fields.values()
            }
            case_id = replay.id_map.entries[(TEST_CASE.name, "UT-T1")].qtest_id
            out = []
            for item in await client.list_test_case_versions(ctx.project_id, case_id):
                shown = {}
                for prop in item["properties"]:
                    value, field_id = str(prop.get("field_value") or ""), int(prop["field_id"])
                    if labels[field_id] in ("Priority", "Labels", "Component") and value:
                        ids = json.loads(value) if value.startswith("[") else [value]
                        shown[labels[field_id]] = ", ".join(
                            names[field_id].get(int(i), str(i))
                            if str(i).isdigit() and names[field_id]
                            else str(i)
                            for i in ids
                        )
                out.append(shown)
            return out

    assert asyncio.run(held()) == [
        {"Priority": "high", "Labels": "smoke, api", "Component": "70001"},
        {"Priority": "low", "Labels": "smoke"},
        {"Priority": "medium"},
    ]
    result = replay.reconciled()
    assert (result.expected, result.matched, result.mismatches) == (2, 2, [])
