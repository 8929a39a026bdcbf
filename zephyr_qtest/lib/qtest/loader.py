"""Publishing one stage of one Zephyr project's mapping marts into qTest: the fields the migration sets
(created on a bare site, ``field_setup.py``), then the stage's kinds (see ``kinds/``), in load order, each
through the exactly-once protocol of ``exactly_once.py``; ids of parents come from the id map of the target
site. A stage holds the project on its site for its run while it publishes (``one_writer``)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from zephyr_qtest.lib.http import NotFoundError
from zephyr_qtest.lib.inline_images import CdnFetcher
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.exactly_once import QUEUE_WINDOW_S, PublishSummary
from zephyr_qtest.lib.qtest.field_setup import FieldSetup, ensure_fields, migration_fields
from zephyr_qtest.lib.qtest.id_map import NO_SITE, Entry, IdMap
from zephyr_qtest.lib.qtest.kinds import id_types_of_stage, kinds_of_stage
from zephyr_qtest.lib.qtest.kinds.base import Marts, PublishContext
from zephyr_qtest.lib.qtest.kinds.inline_image import InlineImages
from zephyr_qtest.lib.qtest.kinds.vocabulary import PROJECT, RELEASE, TEST_CASE, TEST_LOG
from zephyr_qtest.lib.qtest.one_writer import Writer
from zephyr_qtest.lib.qtest.rollback import note_default_module, record_field_setup

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import Store


class ProjectTargetError(ValueError):
    """The qTest project a Zephyr project should go to cannot be the one it goes to (stops its stage)."""


async def resolve_project(client: QtestClient, id_map: IdMap, project_key: str, target: str | None) -> int:
    """The qTest project a Zephyr project goes to: `target` (a name or an id) from the project map, else
    the project named after the Zephyr key, created when missing (once: the id map remembers it)."""
    known = (await id_map.load(PROJECT.name)).get(project_key)
    if known is not None and known.state == "done" and known.qtest_id:
        earlier = known.detail.get("name")
        if target and target not in (str(known.qtest_id), earlier):
            # Everything the id map holds for this site is in that project: following the new map would
            # create the whole project again beside it, or update objects it cannot reach.
            raise ProjectTargetError(
                project_moved(project_key, earlier, known.qtest_id, target, id_map.target_site)
            )
        return known.qtest_id
    wanted = target or project_key
    for project in await client.list_projects():
        if str(project.get("id")) == wanted or project.get("name") == wanted:
            await id_map.done(
                PROJECT.name, project_key, int(project["id"]), None, {"name": project.get("name")}
            )
            return int(project["id"])
    if target and target.isdigit():
        raise ProjectTargetError(
            f"qTest project {target} (from the project map for {project_key}) does not exist: fix "
            "ZEPHYR_QTEST_PROJECT_MAP"
        )
    await id_map.pending(PROJECT.name, project_key, "")
    project = await client.create_project(wanted, f"Migrated from Zephyr Scale project {project_key}")
    await id_map.done(PROJECT.name, project_key, int(project["id"]), None, {"name": wanted, "created": True})
    return int(project["id"])


def project_moved(project_key: str, earlier: Any, qtest_id: int, target: str, site: str) -> str:
    """Why a Zephyr project already migrated to one qTest project is not sent to another, and what to do."""
    return (
        f"{project_key} was migrated to qTest project {earlier!r} (id {qtest_id}) on {site}, but "
        f"ZEPHYR_QTEST_PROJECT_MAP now names {target!r} for it: the id map keeps one qTest project per Zephyr "
        f"project and site. {project_moved_remedy(project_key, earlier, target, site)}"
    )


def project_moved_remedy(project_key: str, earlier: Any, target: str, site: str) -> str:
    return (
        f"Set ZEPHYR_QTEST_PROJECT_MAP back to keep migrating into {earlier!r}; or, to start over in "
        f"{target!r}, undo the first with `zephyr-qtest rollback --project {project_key} --site {site}` (it "
        "clears the id map), then run again"
    )


async def adopt_rows_without_site(client: QtestClient, id_map: IdMap, writer: Writer) -> None:
    """Rows of the project written before the id map named its site become this site's only if this site
    still holds their qTest project (it answers for the id, under the name they recorded); otherwise they
    are left as they are, unused (another site's, most likely a rehearsal's), and the run says so."""
    count, project = await id_map.rows_without_site()
    if not count:
        return
    key, site = id_map.project_key, id_map.target_site
    if (await id_map.load(PROJECT.name)).get(key) is not None:
        reason = f"{site} has id-map rows of its own for {key}"
    elif project is None or project.qtest_id is None:
        reason = "they name no qTest project to look for"
    elif await _site_holds(client, project):
        adopted = await id_map.adopt_rows_without_site()
        writer.log(
            f"{adopted} id-map rows of {key} written before the id map named its site are now {site}'s: "
            f"it holds their qTest project {project.qtest_id}"
        )
        return
    else:
        reason = f"their qTest project {project.qtest_id} is not on {site}"
    writer.log(
        f"{count} id-map rows of {key} written before the id map named its site are kept aside and not "
        f"used ({reason}); they stay in migration.id_map with target_site '{NO_SITE}'"
    )


async def _site_holds(client: QtestClient, project: Entry) -> bool:
    try:
        found = await client.get_json(f"projects/{project.qtest_id}")
    except NotFoundError:
        return False
    name = project.detail.get("name")
    return isinstance(found, dict) and (not name or found.get("name") == name)


async def publish_stage(
    stage: str,
    store: Store,
    client: QtestClient,
    project_key: str,
    *,
    project_target: str | None = None,
    approve_test_cases: bool = True,
    create_fields: bool = True,
    concurrency: int = 8,
    writer: Writer | None = None,
    queue_window_s: float = QUEUE_WINDOW_S,
    cdn_token: str | None = None,
) -> tuple[PublishSummary, Counter[tuple[str, str, str]], FieldSetup]:
    """Publishes one stage of one project to the site of `client`, as the project's only writer there
    (`writer`: the run, and whether it waits for another run or stops); returns its summary, the
    properties that could not be set and the fields it created first (`FieldSetupError` when it may not:
    then nothing is written). `cdn_token` (``ZEPHYR_CDN_TOKEN``) reads the inline images on Zephyr's CDN."""
    kinds = kinds_of_stage(stage)
    writer = writer or Writer(stage=stage)
    id_map = await store.open_id_map(project_key, client.site_url)
    fetcher = CdnFetcher(cdn_token)
    try:
        await id_map.become_sole_writer(writer)
        await adopt_rows_without_site(client, id_map, writer)
        project_id = await resolve_project(client, id_map, project_key, project_target)
        id_map.qtest_project_id = project_id
        # Every stage, before it writes anything (any stage may be the first a run or a user starts).
        # create_fields False (report only): nothing is made; what needs it is reported, not sent.
        fields = await ensure_fields(
            client, project_id, migration_fields(store.marts(), project_key), create=create_fields
        )
        # What it made, for a rollback to remove (and nothing the project had before).
        await record_field_setup(id_map, fields)
        ctx = PublishContext(
            client,
            project_id,
            id_map,
            Marts(store.marts(), project_key),
            approve_test_cases=approve_test_cases,
            concurrency=concurrency,
            queue_window_s=queue_window_s,
        )
        await ctx.load_ids(*id_types_of_stage(stage))
        if any(kind.needs_fields for kind in kinds):
            await ctx.load_settings()
        makes_cases = stage == TEST_CASE.stage
        if makes_cases:
            await note_default_module(client, project_id, id_map, before=True)
        # The stages whose texts hold pictures qTest can keep: test cases (theirs, their steps' and their
        # scripts'), releases (their plans' objectives; published in the test-cycle stage) and test logs
        # (their executions' comments and their step results' actual results).
        if makes_cases or stage in (RELEASE.stage, TEST_LOG.stage):
            ctx.images = InlineImages(client, project_id, id_map, fetcher)
            await ctx.images.load()
        summary = await kinds[0].publish(ctx)
        for kind in kinds[1:]:
            summary.absorb(await kind.publish(ctx))
        if makes_cases:
            await note_default_module(client, project_id, id_map, before=False)
        return summary, ctx.property_problems, fields
    finally:
        await fetcher.aclose()
        await id_map.close()
