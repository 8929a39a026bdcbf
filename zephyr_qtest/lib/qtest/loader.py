"""Publishing one stage of one Zephyr project's mapping marts into qTest: the fields the migration sets
(created on a bare site, ``field_setup.py``), then the stage's kinds (see ``kinds/``), in load order, each
through the exactly-once protocol of ``exactly_once.py``; ids of parents come from the id map."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.exactly_once import PublishSummary
from zephyr_qtest.lib.qtest.field_setup import FieldSetup, ensure_fields, migration_fields
from zephyr_qtest.lib.qtest.id_map import IdMap
from zephyr_qtest.lib.qtest.kinds import id_types_of_stage, kinds_of_stage
from zephyr_qtest.lib.qtest.kinds.base import Marts, PublishContext
from zephyr_qtest.lib.qtest.kinds.vocabulary import PROJECT

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import Store


async def resolve_project(client: QtestClient, id_map: IdMap, project_key: str, target: str | None) -> int:
    """The qTest project a Zephyr project goes to: `target` (a name or an id) from the project map, else
    the project named after the Zephyr key, created when missing (once: the id map remembers it)."""
    known = (await id_map.load(PROJECT.name)).get(project_key)
    if known is not None and known.state == "done" and known.qtest_id:
        return known.qtest_id
    wanted = target or project_key
    for project in await client.list_projects():
        if str(project.get("id")) == wanted or project.get("name") == wanted:
            await id_map.done(
                PROJECT.name, project_key, int(project["id"]), None, {"name": project.get("name")}
            )
            return int(project["id"])
    if target and target.isdigit():
        raise ValueError(f"qTest project {target} (from the project map for {project_key}) does not exist")
    await id_map.pending(PROJECT.name, project_key, "")
    project = await client.create_project(wanted, f"Migrated from Zephyr Scale project {project_key}")
    await id_map.done(PROJECT.name, project_key, int(project["id"]), None, {"name": wanted, "created": True})
    return int(project["id"])


async def publish_stage(
    stage: str,
    store: Store,
    client: QtestClient,
    project_key: str,
    *,
    project_target: str | None = None,
    approve_test_cases: bool = True,
    concurrency: int = 8,
) -> tuple[PublishSummary, Counter[tuple[str, str, str]], FieldSetup]:
    """Publishes one stage of one project; returns its summary, the properties that could not be set and
    the fields it created first (`FieldSetupError` when it may not: then nothing is written)."""
    kinds = kinds_of_stage(stage)
    id_map = await store.open_id_map(project_key)
    try:
        project_id = await resolve_project(client, id_map, project_key, project_target)
        id_map.qtest_project_id = project_id
        # Every stage, before it writes anything (any stage may be the first a run or a user starts).
        fields = await ensure_fields(client, project_id, migration_fields(store.marts(), project_key))
        ctx = PublishContext(
            client,
            project_id,
            id_map,
            Marts(store.marts(), project_key),
            approve_test_cases=approve_test_cases,
            concurrency=concurrency,
        )
        await ctx.load_ids(*id_types_of_stage(stage))
        if any(kind.needs_fields for kind in kinds):
            await ctx.load_settings()
        summary = await kinds[0].publish(ctx)
        for kind in kinds[1:]:
            summary.absorb(await kind.publish(ctx))
        return summary, ctx.property_problems, fields
    finally:
        await id_map.close()
