"""qTest requirements for the Jira issues Zephyr test cases and executions link to, and their links to the
qTest test cases and test runs (the ``requirements`` stage).

Zephyr's issue link holds the Jira issue id and its REST URL, not its key: each issue becomes one
requirement at the project's root named ``<KEY> <summary>`` after Jira's answer (``lib/jira_issues.py``,
when Jira is configured), else ``Jira issue <id>``; its 'Description' field links the issue and names, in the
"Zephyr details" block, its id and key and every Zephyr object that links to it with its link type
(COVERAGE, BLOCKS, RELATED; qTest's links hold no type of ours). A re-run after Jira was configured renames
the requirements an earlier run made (their payload hash changed: an update, nothing else).

A site whose Jira integration already imported the issue holds a requirement of its own for it: that one is
adopted instead (``imported_by_issue``), recorded in the id map as ``imported`` (never updated, since its
name and description are the integration's, and never deleted by a rollback), and linked like ours. The
stage lists the project's requirements once, with ``includeExternalProperties=true`` (the swagger: qTest
returns a requirement's ``external_properties``, an ExternalPropertyResource ``{id, link, unique_id}``, only
when asked). Which value the integration puts in them is not established: the swagger names the fields, no
public source shows a value, and nothing here was checked against a real site. A requirement stands for a
Zephyr issue link when its external ``id`` is the link's ``issueId``, or its ``link`` names it
(``.../issue/<issueId>``, the form of Zephyr's ``target``), or, once Jira answered the issue's key, when its
external ``id`` is that key or its ``link`` names it (``.../browse/<KEY>``, ``.../issue/<KEY>``). Without
Jira's answer an integration that keeps only the issue key matches nothing, and its issues get requirements
of ours. The decision is made when the
requirement is first published: one the migration created on an earlier run (the integration imported the
issue later) is kept, with its links, and the imported one is left alone (nothing is moved or deleted).

A link is made with ``POST requirements/{id}/link?type=test-cases|test-runs`` (the swagger's linkArtifacts,
a real client: ``requirements/{id}/link?type=test-cases`` with the array of ids as body) and read back
through ``GET linked-artifacts?type=requirements&ids=...`` (the swagger's ``find``). qTest answers a link
it ignores ("System will ignore those objects that cannot be linked") with the other links only, so the
answer is checked. Whether qTest keeps a requirement-to-test-run link (its UI shows a requirement's runs
through its test cases) is unverified: the proof reads the links back and a link qTest dropped stays a
ledger line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.comparison import Mismatch, compare
from zephyr_qtest.lib.qtest.exactly_once import Created, ObjectKind, PublishSummary
from zephyr_qtest.lib.qtest.fields import FieldCatalog
from zephyr_qtest.lib.qtest.id_map import Entry
from zephyr_qtest.lib.qtest.kinds.base import (
    LOAD_ORDER,
    Ids,
    Kind,
    Marts,
    PublishContext,
    ReadBack,
    Row,
    load_level,
    payload_hash,
    source_key,
)
from zephyr_qtest.lib.qtest.kinds.vocabulary import REQUIREMENT, REQUIREMENT_LINK, TEST_CASE, TEST_RUN

# The requirement field the description goes in (qTest's requirements have no description attribute: the
# swagger's RequirementResource holds name and properties only).
DESCRIPTION_LABEL = "Description"
# linkArtifacts' type -> the id-map type of the linked object, and the PID prefix qTest gives it.
LINKED_TYPES: dict[str, str] = {TEST_CASE.api_segment: TEST_CASE.name, TEST_RUN.api_segment: TEST_RUN.name}
PID_PREFIXES: dict[str, str] = {TEST_CASE.api_segment: "TC-", TEST_RUN.api_segment: "TR-"}
# Requirements read back per linked-artifacts call (their ids go in the query string).
LINKS_READ_PER_CALL = 50
# Set on each requirement read back: its 'Description' value, and its links as (linkArtifacts type, id).
DESCRIPTION = "_description"
LINKS = "_links"
# The id-map detail of a requirement adopted from the site's Jira integration (rollback leaves it).
IMPORTED = "imported"
# The reconciliation's field of an imported requirement: the Jira issue it stands for.
JIRA_ISSUE = "jira_issue"
# A Jira REST URL's issue id (Zephyr's ``target``: .../rest/api/2/issue/<id>).
ISSUE_IN_URL = re.compile(r"/issue/(\d+)(?:[/?#]|$)")
# A Jira issue key (a project key: a letter, then letters, digits or underscores; a dash; a number), alone or
# in an issue URL (.../browse/<KEY>, .../rest/api/N/issue/<KEY>).
ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")
KEY_IN_URL = re.compile(r"/(?:browse|issue)/([A-Za-z][A-Za-z0-9_]*-\d+)(?:[/?#]|$)")
# How the expected value of an imported requirement names the issue's id and key.
REFS_JOINED = " or "


def requirement_body(row: Row, properties: list[dict]) -> dict[str, Any]:
    return {"name": row["name"], "properties": properties}


def requirement_properties(row: Row) -> list[dict[str, Any]]:
    return [{"field_label": DESCRIPTION_LABEL, "value": row.get("description") or ""}]


def linked_object(row: Row, ids: Ids) -> tuple[int, str, int]:
    """(requirement id, linkArtifacts type, linked object id) of a link; KeyError when either is not in
    qTest (its own failure says why)."""
    requirement_id = ids.get(REQUIREMENT.name, {}).get(row["parent_source_key"])
    if requirement_id is None:
        raise KeyError(f"requirement {row['parent_source_key']} is not in qTest")
    linked_type = str(row["qtest_object_type"])
    object_id = ids.get(LINKED_TYPES[linked_type], {}).get(row["object_source_key"])
    if object_id is None:
        raise KeyError(f"{linked_type} {row['object_source_key']} is not in qTest")
    return requirement_id, linked_type, object_id


def links_of(containers: Iterable[Mapping[str, Any]]) -> dict[int, set[tuple[str, int]]]:
    """linked-artifacts' answer as source id -> {(linkArtifacts type, id)} of the test cases and runs (told
    apart by their PID prefix; ids alone may repeat across object types on a real site)."""
    links: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for container in containers:
        for linked in container.get("objects") or []:
            pid = str(linked.get("pid") or "").upper()
            for linked_type, prefix in PID_PREFIXES.items():
                if pid.startswith(prefix):
                    links[int(container["id"])].add((linked_type, int(linked["id"])))
    return links


def row_issue(row: Row) -> str:
    """The Jira issue id of a requirement row (its ``issue_id``, else its source key ``jira-issue:<id>``)."""
    if row.get("issue_id") is not None:
        return str(row["issue_id"])
    return str(row["source_key"]).removeprefix("jira-issue:")


def issue_refs(issue_id: Any, issue_key: Any = None) -> list[str]:
    """How a requirement the site's Jira integration imported may name an issue: its id, and its key (upper
    case) when Jira answered one."""
    refs = [str(issue_id)]
    if issue_key and ISSUE_KEY.match(str(issue_key).strip()):
        refs.append(str(issue_key).strip().upper())
    return refs


def row_issue_refs(row: Row) -> list[str]:
    """The id and (when Jira answered it) the key of a requirement row's issue."""
    return issue_refs(row_issue(row), row.get("issue_key"))


def imported_issues(requirement: Mapping[str, Any]) -> set[str]:
    """The Jira issues a requirement read with its external properties stands for, by id and by key (upper
    case): its external ``id`` when it is an id (a number) or a key (``PAY-12``), and the id or key its
    external ``link`` names (``.../issue/<id>``, ``.../browse/<KEY>``). Rests on the swagger's field names
    only (module docstring). The swagger has one ExternalPropertyResource; a list is read as well."""
    external = requirement.get("external_properties")
    issues: set[str] = set()
    for resource in external if isinstance(external, list) else [external]:
        if not isinstance(resource, Mapping):
            continue
        external_id = str(resource.get("id") or "").strip()
        if external_id.isdigit():
            issues.add(external_id)
        elif ISSUE_KEY.match(external_id):
            issues.add(external_id.upper())
        link = str(resource.get("link") or "")
        if match := ISSUE_IN_URL.search(link):
            issues.add(match.group(1))
        if match := KEY_IN_URL.search(link):
            issues.add(match.group(1).upper())
    return issues


def imported_by_issue(requirements: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Jira issue id or key -> the requirement the site's Jira integration imported for it (the oldest,
    should it have imported one twice)."""
    found: dict[str, Mapping[str, Any]] = {}
    for requirement in sorted(requirements, key=lambda r: int(r["id"])):
        for issue in imported_issues(requirement):
            found.setdefault(issue, requirement)
    return found


def requirement_protocol(
    ctx: PublishContext, catalog: FieldCatalog, imported: Mapping[str, Mapping[str, Any]] | None = None
) -> ObjectKind[Row]:
    """Create, update and look up requirements (a lost create is found by its name, unclaimed). `imported`:
    the requirements the site's Jira integration made, by issue id: "creating" one of those adopts it, with
    no call (a run killed before its done row adopts it again, as it is still there); an adopted one is
    never updated."""
    imported = imported or {}

    def body(row: Row) -> dict[str, Any]:
        properties = ctx.encode(catalog, REQUIREMENT.api_segment, requirement_properties(row))
        return requirement_body(row, properties)

    def imported_for(row: Row) -> Created | None:
        found = next((imported[ref] for ref in row_issue_refs(row) if ref in imported), None)
        if found is None or int(found["id"]) in ctx.claimed(REQUIREMENT.name):
            return None
        return Created(int(found["id"]), {"pid": found.get("pid"), IMPORTED: True})

    async def create(row: Row) -> Created:
        created = imported_for(row)
        if created is None:
            requirement = await ctx.client.create_requirement(ctx.project_id, body(row))
            created = Created(int(requirement["id"]), {"pid": requirement.get("pid")})
        ctx.remember(REQUIREMENT.name, source_key(row), created)
        return created

    async def update(row: Row, entry: Entry) -> Created:
        assert entry.qtest_id is not None
        if not entry.detail.get(IMPORTED):  # the integration's requirement keeps its name and description
            await ctx.client.update_requirement(ctx.project_id, entry.qtest_id, body(row))
        return Created(entry.qtest_id, entry.detail)

    async def lookup(row: Row) -> Created | None:
        # The integration may name its requirement as ours would be ('<KEY> <summary>'): its own first.
        if (created := imported_for(row)) is not None:
            ctx.remember(REQUIREMENT.name, source_key(row), created)
            return created
        return ctx.adopt_by_name(
            REQUIREMENT.name, source_key(row), row["name"], await ctx.client.list_requirements(ctx.project_id)
        )

    return ObjectKind(REQUIREMENT.name, source_key, payload_hash, load_level, create, update, lookup)


def requirement_link_protocol(ctx: PublishContext) -> ObjectKind[Row]:
    """Make and look up links. A link is a pair, never a copy: linking again what is linked adds nothing,
    so an update sends the link again; a lost answer is looked for among the requirement's links."""

    async def link(row: Row) -> Created:
        requirement_id, linked_type, object_id = linked_object(row, ctx.ids)
        answer = await ctx.client.link_artifacts(
            ctx.project_id, REQUIREMENT.api_segment, requirement_id, linked_type, [object_id]
        )
        if (linked_type, object_id) not in links_of(answer).get(requirement_id, set()):
            raise ValueError(
                f"qTest did not link {linked_type} {object_id} to requirement {requirement_id} (it ignores "
                "objects it cannot link)"
            )
        return Created(object_id, {"requirement_id": requirement_id, "type": linked_type})

    async def update(row: Row, entry: Entry) -> Created:
        return await link(row)

    async def lookup(row: Row) -> Created | None:
        requirement_id, linked_type, object_id = linked_object(row, ctx.ids)
        answer = await ctx.client.linked_artifacts(ctx.project_id, REQUIREMENT.api_segment, [requirement_id])
        if (linked_type, object_id) in links_of(answer).get(requirement_id, set()):
            return Created(object_id, {"requirement_id": requirement_id, "type": linked_type})
        return None

    return ObjectKind(REQUIREMENT_LINK.name, source_key, payload_hash, load_level, link, update, lookup)


def requirement_rows(marts: Marts) -> list[Row]:
    assert REQUIREMENT.mart is not None
    return marts.rows(REQUIREMENT.mart)


def requirement_link_rows(marts: Marts) -> list[Row]:
    assert REQUIREMENT_LINK.mart is not None
    return marts.rows(REQUIREMENT_LINK.mart)


def links_by_requirement(marts: Marts) -> dict[str, list[Row]]:
    assert REQUIREMENT_LINK.mart is not None
    return marts.by_parent(REQUIREMENT_LINK.mart, LOAD_ORDER)


async def publish_requirements(ctx: PublishContext) -> PublishSummary:
    """The requirements (those the site's Jira integration imported adopted, the others created), then their
    links (which need the requirements' ids)."""
    catalog = FieldCatalog(await ctx.client.get_fields(ctx.project_id, REQUIREMENT.api_segment))
    rows = requirement_rows(ctx.marts)
    # Once per run, and only when something is left to publish (a re-run with nothing new reads nothing).
    known = await ctx.id_map.load(REQUIREMENT.name)
    imported: dict[str, Mapping[str, Any]] = {}
    if any(not (entry := known.get(source_key(row))) or entry.state != "done" for row in rows):
        imported = imported_by_issue(
            await ctx.client.list_requirements(ctx.project_id, external_properties=True)
        )
    # Done already, or pending (a lost create, found again by `lookup`: counted as adopted by the run).
    before = {key for key, entry in known.items() if entry.state in ("done", "pending")}
    summary = await ctx.run(requirement_protocol(ctx, catalog, imported), rows)
    # Adopting an imported requirement goes through `create` (no call is made): counted as adopted.
    adopted = [
        key
        for key, entry in (await ctx.id_map.load(REQUIREMENT.name)).items()
        if key not in before and entry.state == "done" and entry.detail.get(IMPORTED)
    ]
    summary.created -= len(adopted)
    summary.adopted += len(adopted)
    return summary.absorb(await ctx.run(requirement_link_protocol(ctx), requirement_link_rows(ctx.marts)))


async def read_links(
    client: QtestClient, project_id: int, requirement_ids: Sequence[int]
) -> dict[int, set[tuple[str, int]]]:
    """The test cases and runs each requirement is linked to, as qTest answers."""
    links: dict[int, set[tuple[str, int]]] = defaultdict(set)
    ids = sorted(requirement_ids)
    for start in range(0, len(ids), LINKS_READ_PER_CALL):
        chunk = ids[start : start + LINKS_READ_PER_CALL]
        for requirement_id, linked in links_of(
            await client.linked_artifacts(project_id, REQUIREMENT.api_segment, chunk)
        ).items():
            links[requirement_id] |= linked
    return links


async def read_back_requirements(rb: ReadBack, rows: list[Row]) -> dict[int, Any]:
    """Every requirement of the project, each with its 'Description' value, its links and its external
    properties (those the site's Jira integration imported)."""
    catalog = FieldCatalog(await rb.client.get_fields(rb.project_id, REQUIREMENT.api_segment))
    description = catalog.get(DESCRIPTION_LABEL)
    requirements = {
        int(r["id"]): r for r in await rb.client.list_requirements(rb.project_id, external_properties=True)
    }
    links = await read_links(rb.client, rb.project_id, list(requirements))
    found: dict[int, Any] = {}
    for requirement_id, requirement in requirements.items():
        value = next(
            (
                prop.get("field_value")
                for prop in requirement.get("properties") or []
                if description is not None and prop.get("field_id") == description.id
            ),
            None,
        )
        found[requirement_id] = {**requirement, DESCRIPTION: value, LINKS: links.get(requirement_id, set())}
    return found


def adopted_import(row: Row, rb: ReadBack) -> bool:
    """Whether the row's requirement in qTest is one the site's Jira integration imported for its issue."""
    qtest_id = rb.ids.get(REQUIREMENT.name, {}).get(source_key(row))
    found = rb.found.get(REQUIREMENT.name, {}).get(qtest_id) if qtest_id is not None else None
    return found is not None and bool(set(row_issue_refs(row)) & imported_issues(found))


def expected_requirement(row: Row, rb: ReadBack) -> dict[str, Any]:
    """Ours: its name and description; an imported one: that it stands for the row's issue, by id or key
    (its name and description are the integration's)."""
    if adopted_import(row, rb):
        return {JIRA_ISSUE: REFS_JOINED.join(row_issue_refs(row))}
    return {"name": row["name"], "description": row.get("description") or ""}


def held_requirement(found: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    if JIRA_ISSUE in expected:
        issues = imported_issues(found)
        refs = set(str(expected[JIRA_ISSUE]).split(REFS_JOINED))
        return {JIRA_ISSUE: expected[JIRA_ISSUE] if refs & issues else sorted(issues)}
    return {"name": found.get("name"), "description": found.get(DESCRIPTION)}


def reconcile_links(rb: ReadBack, row: Row, requirement: Mapping[str, Any]) -> None:
    """A requirement's links against the mart's: each expected link held, and none other to our objects."""
    result = rb.outcome.results[REQUIREMENT_LINK.name]
    held: set[tuple[str, int]] = set(requirement.get(LINKS) or ())
    if adopted_import(row, rb):
        # The integration's requirement may be linked to test cases and runs that are not the migration's.
        held &= {
            (segment, qtest_id)
            for segment, object_type in LINKED_TYPES.items()
            for qtest_id in rb.ids.get(object_type, {}).values()
        }
    result.found += len(held)
    expected: set[tuple[str, int]] = set()
    for link in links_by_requirement(rb.marts).get(str(row["source_key"]), []):
        result.expected += 1
        linked_type = str(link["qtest_object_type"])
        object_id = rb.ids.get(LINKED_TYPES[linked_type], {}).get(str(link["object_source_key"]))
        if object_id is None or (linked_type, object_id) not in held:
            result.missing.append(str(link["source_key"]))
            continue
        expected.add((linked_type, object_id))
        compare(result, str(link["source_key"]), [])
    for linked_type, object_id in sorted(held - expected):
        result.mismatches.append(
            Mismatch(str(row["source_key"]), "links", "no link", f"{linked_type} {object_id}")
        )


KIND = Kind(
    object_type=REQUIREMENT,
    description="qTest requirements for the Jira issues Zephyr test cases and executions link to (named "
    "'<KEY> <summary>' after Jira's answer, else 'Jira issue <id>'; the link types in their description; or the ones the site's Jira integration imported), "
    "linked to the qTest test cases and test runs.",
    marts=("qtest_requirements", "qtest_requirement_links"),
    upstream=(TEST_CASE, TEST_RUN),
    id_types=(TEST_CASE, TEST_RUN, REQUIREMENT, REQUIREMENT_LINK),
    publish=publish_requirements,
    rows=requirement_rows,
    read_back=read_back_requirements,
    expect=expected_requirement,
    held=held_requirement,
    children=(REQUIREMENT_LINK,),
    reconcile_children=reconcile_links,
)
