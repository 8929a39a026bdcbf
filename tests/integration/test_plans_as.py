"""Zephyr test plans in qTest, under both settings of ``plans_as``, through Dagster: the mapping marts are
rebuilt by dbt with the setting as run config, and the tree stages are published into a clean qTest
sandbox, then read back through qTest's API.

Proves: with ``release`` (the default), every plan is a release (created with the ``properties`` qTest
requires) spanning the planned dates of its cycles, and each linked cycle sits under the release of its
first plan, naming the others; with ``test_cycle``, every plan is a top-level cycle and the linked cycles
stay where their folders put them. The tree stages' checks pass either way, and the proof (raw payloads
against qTest read back) finds every cycle's and plan's values in qTest (their Zephyr details) and every
cycle where its plans put it: a cycle moved away from its release in qTest is a line.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import pytest

from tests.graph_helpers import TransformedDatabase, materialize_partition
from tests.proof_helpers import ledger_of
from zephyr_qtest.defs.publish.qtest import publish_assets, reconciliation
from zephyr_qtest.defs.transform.dbt_models import zephyr_dbt_models
from zephyr_qtest.lib.details_block import details_of
from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.proof.ledger import Ledger, Reason
from zephyr_qtest.lib.qtest.comparison import instant
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle

pytestmark = pytest.mark.e2e

TREE_STAGES = {"modules", "test_cases", "test_cycles"}
# The reconciliation's checks of what the tree stages publish (releases count as test cycles).
TREE_CHECKS = {"module_equal", "test_case_equal", "test_cycle_equal"}


def id_map(database_url: str, project_key: str, object_type: str) -> dict[str, int]:
    with connect(database_url) as conn:
        rows = conn.execute(
            "select source_key, qtest_id from migration.id_map "
            "where project_key = %s and object_type = %s and state = 'done'",
            (project_key, object_type),
        ).fetchall()
    return {str(key): int(qtest_id) for key, qtest_id in rows}


def plan_links(database_url: str, project_key: str) -> dict[str, list[str]]:
    """Zephyr cycle key -> the keys of the plans it is linked to, in key order (the canonical layer)."""
    links: dict[str, list[str]] = defaultdict(list)
    with connect(database_url) as conn:
        for cycle_key, plan_key in conn.execute(
            "select test_cycle_key, test_plan_key from canonical.test_plan_test_cycle "
            "where project_key = %s and test_cycle_key is not null and test_plan_key is not null "
            'order by test_cycle_key, test_plan_key collate "C"',
            (project_key,),
        ):
            links[cycle_key].append(plan_key)
    return links


def planned_span(database_url: str, project_key: str) -> dict[str, tuple[str | None, str | None]]:
    """Zephyr plan key -> the earliest planned start and latest planned end of its cycles, from the raw
    payloads (the release's dates)."""
    with connect(database_url) as conn:
        rows = conn.execute(
            "select plans.key, min((cycles.payload->>'plannedStartDate')::timestamptz), "
            "max((cycles.payload->>'plannedEndDate')::timestamptz) "
            "from zephyr_raw.test_plans as plans "
            "cross join lateral jsonb_array_elements(plans.payload->'links'->'testCycles') as link "
            "join zephyr_raw.test_cycles as cycles on cycles.project_key = plans.project_key "
            "and cycles.id = (link->>'testCycleId')::bigint "
            "where plans.project_key = %s group by plans.key",
            (project_key,),
        ).fetchall()
    return {str(key): (start, end) for key, start, end in rows}


def tree_lines(ledger: Ledger) -> list[Any]:
    """The ledger lines of the objects the tree stages publish (the other stages did not run here)."""
    return [line for line in ledger.lines if line.object_type in ("test cycle", "test plan", "folder")]


def get(qtest: QTestSandboxHandle, path: str, **params: Any) -> Any:
    response = httpx.get(
        f"{qtest.base_url}/api/v3/{path}",
        params=params,
        headers={"Authorization": f"Bearer {qtest.token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def publish_tree(
    transformed_database: TransformedDatabase,
    zephyr: ZephyrSandboxHandle,
    qtest: QTestSandboxHandle,
    plans_as: str,
) -> tuple[str, str]:
    """Rebuilds the marts of the first project with ``plans_as`` and publishes its tree stages."""
    project_key = transformed_database.projects[0]
    database_url = transformed_database.copy(f"zq_plans_as_{plans_as}")
    stages = [asset for asset in publish_assets if asset.key.path[1] in TREE_STAGES]
    result = materialize_partition(
        [zephyr_dbt_models, *stages, reconciliation],
        project_key,
        database_url=database_url,
        zephyr=zephyr,
        qtest=qtest,
        run_config={"ops": {"zephyr_dbt_models": {"config": {"plans_as": plans_as}}}},
    )
    # The loader's own check of the tree (the ledger of values that did not arrive is the proof's, and
    # only the tree stages ran here).
    checks = {
        e.check_name: e.metadata["loader_equal"].value
        for e in result.get_asset_check_evaluations()
        if e.check_name in TREE_CHECKS
    }
    assert set(checks) == TREE_CHECKS and all(checks.values()), checks
    return database_url, project_key


@pytest.mark.parametrize("plans_as", ["release", "test_cycle"])
def test_plans_and_their_cycles_land_where_the_setting_says(
    plans_as: str,
    transformed_database: TransformedDatabase,
    shared_zephyr: ZephyrSandboxHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with start_qtest_in_thread(tmp_path_factory.mktemp(f"qtest_{plans_as}"), seed=1) as qtest:
        database_url, project_key = publish_tree(transformed_database, shared_zephyr, qtest, plans_as)
        project_id = id_map(database_url, project_key, "project")[project_key]
        links = plan_links(database_url, project_key)
        assert links, "the generated project links cycles to plans"
        cycles = id_map(database_url, project_key, "test_cycle")
        releases = id_map(database_url, project_key, "release")
        qtest_releases = {int(r["id"]): r for r in get(qtest, f"projects/{project_id}/releases")}

        if plans_as == "release":
            with connect(database_url) as conn:
                (plans,) = conn.execute(
                    "select count(*) from canonical.test_plan where project_key = %s", (project_key,)
                ).fetchone()
            assert len(releases) == plans > 0
            assert set(releases.values()) == set(qtest_releases)
            under = {
                release_id: {
                    int(c["id"])
                    for c in get(
                        qtest, f"projects/{project_id}/test-cycles", parentId=release_id, parentType="release"
                    )
                }
                for release_id in qtest_releases
            }
            for cycle_key, plan_keys in links.items():
                assert cycles[cycle_key] in under[releases[plan_keys[0]]], (cycle_key, plan_keys)
            # Every release holds exactly the cycles whose first plan it is.
            placed = sum(len(ids) for ids in under.values())
            assert placed == len(links)
            # Each release spans the planned dates of its cycles (Zephyr plans have none of their own).
            spans = planned_span(database_url, project_key)
            assert any(start for start, _ in spans.values())
            for plan_key, (start, end) in spans.items():
                release = qtest_releases[releases[plan_key]]
                assert instant(release.get("start_date")) == start, (plan_key, release)
                assert instant(release.get("end_date")) == end, (plan_key, release)
            # A cycle in several plans names the others in its details (the dbt and proof unit tests
            # cover it when the generated project has none).
            several = {key: plans for key, plans in links.items() if len(plans) > 1}
            for cycle_key, plan_keys in several.items():
                cycle = get(qtest, f"projects/{project_id}/test-cycles/{cycles[cycle_key]}")
                assert details_of(cycle["description"])["Also in test plans"] == plan_keys[1:]

            # The proof finds every value of the cycles and plans in qTest, each cycle under its release.
            ledger = ledger_of(database_url, qtest, project_key)
            lines = tree_lines(ledger)
            # Older case versions arrive with their own values (the case's rules): of a version, only its
            # steps (Zephyr's API gives none) and what its case loses as well are lines.
            case_losses = {
                (line.object_key, line.field, line.reason)
                for line in ledger.lines
                if line.object_type == "test case"
            }
            versions = [line for line in ledger.lines if line.object_type == "test case version"]
            assert any(line.field == "steps" for line in versions), "the generated project has older versions"
            assert ledger.count("test case version").in_qtest == ledger.count("test case version").in_zephyr
            assert [
                line
                for line in versions
                if line.field != "steps"
                and (line.object_key.split(" version ")[0], line.field, line.reason) not in case_losses
            ] == []
            assert [line for line in lines if line.reason is not Reason.NOT_CARRIED] == [], lines
            assert {(line.object_type, line.field) for line in lines} <= {
                ("folder", "(object)"),  # a folder of plans that holds no plan
                ("folder", "index"),
                # a picture of a cycle's description: qTest takes no attachments on test cycles
                ("test cycle", "description (inline image)"),
            }, lines
            # A cycle moved out of its release in qTest is a line of its plan link.
            moved_key, plan_keys = next(iter(links.items()))
            httpx.put(
                f"{qtest.base_url}/api/v3/projects/{project_id}/test-cycles/{cycles[moved_key]}",
                params={"parentId": 0, "parentType": "root"},
                json={},
                headers={"Authorization": f"Bearer {qtest.token}"},
                timeout=30,
            ).raise_for_status()
            [line] = [
                line
                for line in tree_lines(ledger_of(database_url, qtest, project_key))
                if line.field == "links.testPlans"
            ]
            assert (line.object_key, line.value, line.reason) == (moved_key, plan_keys[0], Reason.DIFFERS)
        else:
            assert releases == {} and qtest_releases == {}
            root = {
                int(c["id"])
                for c in get(qtest, f"projects/{project_id}/test-cycles", parentId=0, parentType="root")
            }
            plan_keys = {plan for keys in links.values() for plan in keys}
            assert {cycles[plan] for plan in plan_keys} <= root
            # A linked cycle is not moved under its plan's cycle.
            for plan in plan_keys:
                inside = get(
                    qtest,
                    f"projects/{project_id}/test-cycles",
                    parentId=cycles[plan],
                    parentType="test-cycle",
                )
                assert not {int(c["id"]) for c in inside} & {cycles[key] for key in links}
            # The plan links are lines (not carried with this setting); every other value arrived.
            lines = tree_lines(ledger_of(database_url, qtest, project_key))
            plan_links_held = [line for line in lines if line.field == "links.testPlans"]
            assert len(plan_links_held) == sum(len(keys) for keys in links.values())
            assert {line.reason for line in plan_links_held} == {Reason.NOT_CARRIED}
            assert [line for line in lines if line.reason is not Reason.NOT_CARRIED] == [], lines
