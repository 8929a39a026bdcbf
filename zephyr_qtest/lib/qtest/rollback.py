"""Rollback: what a migration created in one qTest project, deleted, and the target's id map cleared.

The id map of the target (site and Zephyr project) says what the migration made: every ``done`` row of an
object it created, newest first per type and children before parents (`DELETIONS`: attachments,
requirements, runs, cycles, releases, test cases, modules, then the allowed values it added to existing
fields and the fields it created, which ``record_field_setup`` records). Objects qTest deletes with their
parent (test steps and versions with their case, test logs and step logs with their run, requirement links
with their requirement) are cleared with it. Never deleted: the qTest project (the migration adopts it, or
created it: qTest's API has no call to delete a project), the requirements the site's Jira integration
imported and the migration only linked (``imported`` in their row's detail: their links to the migration's
test cases and runs go with those) and anything the id map does not name.

Exactly once: each deletion is followed by the removal of its row in its own transaction, and a DELETE
answered 404 counts as done (an earlier rollback, or the parent's deletion, removed it), so a rollback
killed midway and run again finishes the rest. A deletion qTest refuses (a module holding a case someone
added by hand, a field a token may not change) keeps its row and is reported; the rows of the objects that
go with it stay too. Rows left ``pending`` (a create whose answer was lost) are not deleted on a guess:
they are named, and kept.

qTest's DELETE endpoints used (the swagger): deleteByBlobHandleId, deleteRequirementById,
deleteTestRunById, deleteCycle, deleteReleaseById, deleteTestCase, deleteModule, deleteProjectFieldValue,
deleteCustomField. Test logs have no DELETE endpoint: they go with their run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zephyr_qtest.lib.http import ApiError, NotFoundError
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.id_map import IdMap, site_of
from zephyr_qtest.lib.qtest.kinds.module import DEFAULT_MODULE_NAME
from zephyr_qtest.lib.qtest.kinds.requirement import IMPORTED
from zephyr_qtest.lib.qtest.kinds.vocabulary import (
    ATTACHMENT,
    INLINE_IMAGE,
    MODULE,
    PROJECT,
    RELEASE,
    REQUIREMENT,
    REQUIREMENT_LINK,
    TEST_CASE,
    TEST_CASE_VERSION,
    TEST_CYCLE,
    TEST_LOG,
    TEST_RUN,
    TEST_STEP,
    TEST_STEP_LOG,
)

if TYPE_CHECKING:
    from zephyr_qtest.lib.qtest.field_setup import FieldSetup
    from zephyr_qtest.lib.store import Connections

log = logging.getLogger(__name__)

# The id-map types of what the field setup made: a field it created, an allowed value it added to a field
# the project had.
FIELD = "field"
ALLOWED_VALUE = "allowed_value"
SEPARATOR = "\x1f"
# The module qTest makes by itself for the cases created without one ("Created via API"): recorded when the
# migration's test cases made it (it was not there before), so a rollback removes it too.
DEFAULT_MODULE = "default_module"

# What goes with what: the rows of these types are cleared once their parent types are deleted.
GOES_WITH: dict[str, str] = {
    REQUIREMENT_LINK.name: REQUIREMENT.name,
    TEST_STEP_LOG.name: TEST_RUN.name,
    TEST_LOG.name: TEST_RUN.name,
    TEST_STEP.name: TEST_CASE.name,
    TEST_CASE_VERSION.name: TEST_CASE.name,
    # The inline images of a case's texts are attachments of the case (kinds/inline_image.py).
    INLINE_IMAGE.name: TEST_CASE.name,
}


async def record_field_setup(id_map: IdMap, setup: FieldSetup) -> None:
    """The fields `setup` created and the allowed values it added to existing fields, in the id map (done
    rows of `FIELD` and `ALLOWED_VALUE`), so that a rollback removes them and only them."""
    for need, field_id in setup.created:
        key = f"{need.object_type}{SEPARATOR}{need.label}"
        await id_map.done(FIELD, key, field_id, None, {"object_type": need.object_type, "label": need.label})
    for object_type, label, values in setup.values_added:
        for value in values:
            key = f"{object_type}{SEPARATOR}{label}{SEPARATOR}{value}"
            detail = {"object_type": object_type, "label": label, "value": value}
            # An allowed value has no id of its own in the map (qTest numbers it within its field): the
            # rollback finds it by its label.
            await id_map.done(ALLOWED_VALUE, key, None, None, detail)


async def default_module_id(client: QtestClient, project_id: int) -> int | None:
    """The id of the project's root module qTest makes for cases created without one, None if absent."""
    for module in await client.list_modules(project_id):
        if module.get("name") == DEFAULT_MODULE_NAME and not module.get("parent_id"):
            return int(module["id"])
    return None


async def note_default_module(client: QtestClient, project_id: int, id_map: IdMap, *, before: bool) -> None:
    """Around the stage that creates test cases: `before` it, a pending row when the project has no default
    module (the stage may make it: a crash leaves the row, which the next stage resolves); after it, the
    pending row done with the module's id once qTest holds it. A module that was there before is never
    recorded (nor deleted)."""
    entry = (await id_map.load(DEFAULT_MODULE)).get(DEFAULT_MODULE_NAME)
    if entry is not None and entry.state == "done":
        return
    found = await default_module_id(client, project_id)
    if entry is None:
        if before and found is None:
            await id_map.pending(DEFAULT_MODULE, DEFAULT_MODULE_NAME, "")
        return
    # After the stage, done either way, so that no pending row outlives it: with the module's id when the
    # stage made it, without one when it did not (every case had its module), which a rollback leaves alone.
    if found is not None or not before:
        await id_map.done(DEFAULT_MODULE, DEFAULT_MODULE_NAME, found, "")


@dataclass(frozen=True)
class Row:
    object_type: str
    source_key: str
    qtest_id: int | None
    state: str
    detail: Mapping[str, Any]


@dataclass
class RollbackPlan:
    """What a rollback deletes (per type), what goes with it, and what it keeps."""

    project_key: str
    site: str
    qtest_project_id: int | None
    delete: dict[str, list[Row]] = field(default_factory=dict)
    goes_with: Counter[str] = field(default_factory=Counter)
    pending: list[Row] = field(default_factory=list)
    cleared_only: int = 0
    project_created: bool = False
    # Requirements the site's Jira integration imported: kept in qTest, their rows cleared.
    kept_imported: int = 0

    @property
    def total(self) -> int:
        return sum(len(rows) for rows in self.delete.values())

    def confirmation(self) -> str:
        """The question a user answers before anything is deleted: the counts per object type."""
        parts = [f"{len(rows)} {object_type}" for object_type, rows in self.delete.items() if rows]
        gone = [f"{count} {object_type}" for object_type, count in self.goes_with.items() if count]
        text = (
            f"Delete from qTest project {self.qtest_project_id} on {self.site} what the migration of "
            f"{self.project_key} created: {', '.join(parts) or 'nothing'}"
        )
        if gone:
            text += f" (with them: {', '.join(gone)})"
        if self.pending:
            text += (
                f"; {len(self.pending)} objects left pending (a create whose answer was lost) are kept in the "
                "id map and not deleted: run `migrate` to resolve them first if they must go too"
            )
        if self.kept_imported:
            text += (
                f"; {self.kept_imported} requirements the site's Jira integration imported stay (the migration "
                "only linked them; the links go with its test cases and runs)"
            )
        if self.project_created:
            text += "; the qTest project itself stays (qTest's API cannot delete a project)"
        return text + ". Then clear that target's id map."


@dataclass
class RollbackResult:
    deleted: Counter[str] = field(default_factory=Counter)
    already_gone: Counter[str] = field(default_factory=Counter)
    cleared: int = 0
    refused: list[tuple[Row, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused


def _newest_first(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda row: (row[-1], row[2] or 0), reverse=True)


def plan_rollback(db: Connections, project_key: str, site_url: str) -> RollbackPlan:
    """What the id map of `project_key` on `site_url` says the migration created there."""
    site = site_of(site_url)
    with db.connection() as conn:
        exists = conn.execute("select to_regclass('migration.id_map')").fetchone()
        records = (
            conn.execute(
                "select object_type, source_key, qtest_id, state, detail, updated_at from migration.id_map "
                "where target_site = %s and project_key = %s",
                (site, project_key),
            ).fetchall()
            if exists and exists[0]
            else []
        )
    rows = [Row(t, k, q, s, d or {}) for t, k, q, s, d, _ in _newest_first(list(records))]
    project = next((row for row in rows if row.object_type == PROJECT.name), None)
    project_id = (
        project.qtest_id
        if project is not None
        else next(
            (row.detail.get("qtest_project_id") for row in rows if row.detail.get("qtest_project_id")), None
        )
    )
    plan = RollbackPlan(project_key, site, project_id)
    plan.project_created = bool(project is not None and project.detail.get("created"))
    plan.delete = {object_type: [] for object_type, _ in DELETIONS}
    deletable = {object_type for object_type, _ in DELETIONS}
    case_ids = {row.qtest_id for row in rows if row.object_type == TEST_CASE.name and row.state == "done"}
    for row in rows:
        if row.object_type == DEFAULT_MODULE and row.state == "pending":
            # Its stage may have made it: looked for by name when deleting.
            plan.delete[DEFAULT_MODULE].append(row)
        elif row.state == "pending":
            plan.pending.append(row)
        elif row.state != "done" or row.object_type == PROJECT.name:
            plan.cleared_only += 1
        elif row.object_type == REQUIREMENT.name and row.detail.get(IMPORTED):
            plan.kept_imported += 1
            plan.cleared_only += 1
        elif row.object_type in deletable:
            plan.delete[row.object_type].append(row)
        elif row.object_type == TEST_CASE_VERSION.name and row.detail.get("case_id") not in case_ids:
            # Older versions replayed into a case whose current version never arrived: the case is ours.
            case_id = int(row.detail["case_id"])
            case_ids.add(case_id)
            plan.delete[TEST_CASE.name].append(Row(TEST_CASE.name, row.source_key, case_id, "done", {}))
        elif row.object_type in GOES_WITH:
            plan.goes_with[row.object_type] += 1
        else:
            plan.cleared_only += 1
    plan.delete = {object_type: rows for object_type, rows in plan.delete.items() if rows}
    return plan


Deleter = Callable[[QtestClient, int, Row], Any]


async def _delete_attachment(client: QtestClient, project_id: int, row: Row) -> None:
    owner_type, owner_id = row.detail.get("owner_type"), row.detail.get("owner_id")
    if not owner_type or not owner_id or row.qtest_id is None:
        raise NotFoundError("DELETE", "blob-handles", 404, "its owner is not recorded")
    await client.delete_attachment(project_id, str(owner_type), int(owner_id), row.qtest_id)


def _deleting(collection: str) -> Deleter:
    async def delete(client: QtestClient, project_id: int, row: Row) -> None:
        await client.request("DELETE", f"projects/{project_id}/{collection}/{row.qtest_id}")

    return delete


async def _field_of(client: QtestClient, project_id: int, object_type: str, label: str) -> Mapping[str, Any]:
    for resource in await client.get_fields(project_id, object_type, include_inactive=True):
        if str(resource.get("label") or "").strip().lower() == label.strip().lower():
            return resource
    raise NotFoundError("GET", f"settings/{object_type}/fields", 404, f"no field '{label}'")


async def _delete_allowed_value(client: QtestClient, project_id: int, row: Row) -> None:
    object_type, label, value = (str(row.detail[name]) for name in ("object_type", "label", "value"))
    resource = await _field_of(client, project_id, object_type, label)
    for allowed in resource.get("allowed_values") or []:
        if str(allowed.get("label") or "").strip().lower() == value.strip().lower():
            await client.request(
                "DELETE",
                f"projects/{project_id}/settings/{object_type}/fields/{resource['id']}/allowed-values/"
                f"{allowed['value']}",
            )
            return
    raise NotFoundError("GET", f"settings/{object_type}/fields", 404, f"no allowed value '{value}'")


async def _delete_field(client: QtestClient, project_id: int, row: Row) -> None:
    object_type = str(row.detail["object_type"])
    await client.request("DELETE", f"projects/{project_id}/settings/{object_type}/fields/{row.qtest_id}")


async def _delete_default_module(client: QtestClient, project_id: int, row: Row) -> None:
    if row.state == "done" and row.qtest_id is None:
        return  # the migration's cases did not make it
    module_id = row.qtest_id if row.qtest_id is not None else await default_module_id(client, project_id)
    if module_id is None:
        raise NotFoundError("GET", "modules", 404, f"no module '{DEFAULT_MODULE_NAME}'")
    await client.request("DELETE", f"projects/{project_id}/{MODULE.api_segment}/{module_id}")


# In this order: children before parents, the fields last (the objects that use them are gone by then).
DELETIONS: tuple[tuple[str, Deleter], ...] = (
    (ATTACHMENT.name, _delete_attachment),
    (REQUIREMENT.name, _deleting(REQUIREMENT.api_segment)),
    (TEST_RUN.name, _deleting(TEST_RUN.api_segment)),
    (TEST_CYCLE.name, _deleting(TEST_CYCLE.api_segment)),
    (RELEASE.name, _deleting(RELEASE.api_segment)),
    (TEST_CASE.name, _deleting(TEST_CASE.api_segment)),
    (MODULE.name, _deleting(MODULE.api_segment)),
    # qTest's own "Created via API" module, when the migration's cases made it (refused if not empty).
    (DEFAULT_MODULE, _delete_default_module),
    (ALLOWED_VALUE, _delete_allowed_value),
    (FIELD, _delete_field),
)


def _forget(db: Connections, site: str, project_key: str, rows: Sequence[tuple[str, str]]) -> None:
    """The rows gone from qTest, out of the id map (one transaction)."""
    if not rows:
        return
    with db.connection() as conn, conn.cursor() as cursor:
        cursor.executemany(
            "delete from migration.id_map where target_site = %s and project_key = %s and object_type = %s "
            "and source_key = %s",
            [(site, project_key, object_type, key) for object_type, key in rows],
        )


async def roll_back(
    db: Connections, client: QtestClient, plan: RollbackPlan, report: Callable[[str], None] = log.info
) -> RollbackResult:
    """Deletes what `plan` names, one object at a time in `DELETIONS` order, each followed by the removal
    of its id-map row; then clears the rows that went with them and those of nothing in qTest (failed),
    unless something their parent type needed was refused. Pending rows stay."""
    result = RollbackResult()
    if plan.qtest_project_id is None:
        return result
    project_id = int(plan.qtest_project_id)
    for object_type, delete in DELETIONS:
        for row in plan.delete.get(object_type, []):
            try:
                await delete(client, project_id, row)
                result.deleted[object_type] += 1
            except NotFoundError:
                result.already_gone[object_type] += 1
            except ApiError as error:
                result.refused.append((row, str(error)))
                report(f"not deleted: {object_type} {row.source_key} (qTest id {row.qtest_id}): {error}")
                continue
            if row.object_type == object_type:
                _forget(db, plan.site, plan.project_key, [(row.object_type, row.source_key)])
            else:  # a case deleted for its older versions: their rows go with it below
                pass
        if plan.delete.get(object_type):
            report(f"{object_type}: {result.deleted[object_type]} deleted, "
                   f"{result.already_gone[object_type]} already gone")  # fmt: skip
    refused_types = {row.object_type for row, _ in result.refused}
    kept_states = ("pending",)
    with db.connection() as conn:
        cursor = conn.execute(
            "delete from migration.id_map where target_site = %s and project_key = %s "
            "and state <> all(%s) and not (object_type = any(%s)) and not (object_type = any(%s))",
            (
                plan.site,
                plan.project_key,
                list(kept_states),
                sorted(refused_types),
                sorted(child for child, parent in GOES_WITH.items() if parent in refused_types),
            ),
        )
        result.cleared = cursor.rowcount
    return result
