"""The CLI's dry run (``migrate --dry-run``) and ``rollback``: settings in, ``lib.qtest.plan`` and
``lib.qtest.rollback`` doing the work, lines out. Kept apart from ``cli.py`` so that it stays thin."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.id_map import site_of
from zephyr_qtest.settings import QtestSettings, Settings

# The asset groups a dry run materializes: extraction and transform, never the qTest stages.
DRY_RUN_GROUPS = ("zephyr_raw", "staging", "canonical", "qtest_mapping")


def dry_run_groups(only: Sequence[str] | None) -> list[str]:
    """The groups of a dry run: those asked for (``--only``) that do not write to qTest or Snowflake."""
    return [group for group in (only or DRY_RUN_GROUPS) if group in DRY_RUN_GROUPS]


def _client_options(qtest: QtestSettings) -> tuple[str | None, dict[str, str | None]]:
    token = qtest.api_token.get_secret_value() if qtest.api_token else None
    password = qtest.password.get_secret_value() if qtest.password else None
    return token, {"username": qtest.username or None, "password": password}


def print_plans(settings: Settings, db_url: str, projects: Sequence[str]) -> Path:
    """The plan of qTest writes of each project (nothing is written to qTest), printed and written to
    ``<reports>/dry-run-plan.json`` (and ``.md``); the JSON file's path."""
    from zephyr_qtest.lib.qtest.plan import PlanningClient, ProjectPlan, plan_project, write_plan
    from zephyr_qtest.lib.store import Store

    qtest, mapping = settings.qtest, settings.mapping
    token, login = _client_options(qtest)

    async def plan_all() -> list[ProjectPlan]:
        plans = []
        with Store(db_url) as store:
            async with PlanningClient(qtest.base_url, token, **login) as client:
                for project_key in projects:
                    plans.append(
                        await plan_project(
                            store,
                            client,
                            project_key,
                            project_target=mapping.project_map.get(project_key),
                            approve_test_cases=mapping.approve_test_cases,
                            create_fields=mapping.create_fields,
                        )
                    )
        return plans

    plans = asyncio.run(plan_all())
    print("\n== dry run: the qTest writes the migration would make (none was sent) ==")
    for plan in plans:
        print("\n".join(plan.lines()))
    path = write_plan(plans, settings.paths.reports_dir())
    print(f"plan: {path} (and {path.with_suffix('.md').name})", flush=True)
    return path


def run_rollback(
    settings: Settings,
    db_url: str,
    project_key: str,
    site: str,
    *,
    yes: bool,
    ask: Callable[[str], str] = input,
    sandbox_site: str | None = None,
) -> int:
    """``rollback``: what the migration of `project_key` created on `site`, deleted after a confirmation
    naming the counts (or `yes`); that target's id map cleared. Exits 1 when qTest refused a deletion.
    `sandbox_site`: the address of the project home's qTest sandbox, named when the site is not configured."""
    from zephyr_qtest.lib.qtest.rollback import RollbackResult, plan_rollback, roll_back
    from zephyr_qtest.lib.store import Store

    qtest = settings.qtest
    if not qtest.is_configured or site_of(qtest.base_url) != site_of(site):
        sandbox = (
            f" (the qTest sandbox of `migrate --sandbox` on this project home is {sandbox_site}: with "
            "QTEST_BASE_URL unset, the rollback of that site uses it)"
            if sandbox_site
            else ""
        )
        print(
            f"zephyr-qtest rollback: set QTEST_BASE_URL to {site} and QTEST_API_TOKEN (or QTEST_USERNAME and "
            f"QTEST_PASSWORD) to a token of that site: the rollback deletes with the configured credentials{sandbox}",
            file=sys.stderr,
        )
        return 2
    token, login = _client_options(qtest)
    with Store(db_url) as store:
        plan = plan_rollback(store, project_key, site)
        if plan.qtest_project_id is None or not (plan.total or plan.goes_with or plan.cleared_only):
            print(f"nothing to roll back: the id map holds nothing of {project_key} on {site_of(site)}")
            return 0
        print(plan.confirmation())
        if not yes and ask("Type yes to delete: ").strip().lower() != "yes":
            print("rollback cancelled: nothing was deleted")
            return 1

        async def delete() -> RollbackResult:
            async with QtestClient(qtest.base_url, token, **login) as client:
                return await roll_back(store, client, plan, print)

        result = asyncio.run(delete())
    deleted = ", ".join(f"{count} {kind}" for kind, count in result.deleted.items()) or "nothing"
    print(f"deleted: {deleted}; id-map rows cleared: {result.cleared}")
    if result.refused:
        print(
            f"{len(result.refused)} deletions refused (named above): their id-map rows are kept; fix what "
            "each names in qTest (or QTEST_API_TOKEN's permissions) and run the same rollback again",
            file=sys.stderr,
        )
        return 1
    return 0
