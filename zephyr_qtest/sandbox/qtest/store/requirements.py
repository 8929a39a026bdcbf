"""Requirements and object links (the swagger's ``requirement`` and ``object-link`` tags).

Requirements: ``createRequirement`` (``name`` and ``properties``, required by RequirementResource; an
optional ``parentId`` query parameter, which the sandbox accepts only as 0/absent since it keeps no
requirement modules), ``getRequirement``, ``updateRequirement`` and ``getRequirements`` (a bare array,
``page`` and ``size``, default 20). Links: ``linkArtifacts`` (``POST {objectType}/{objectId}/link?type=``
with an array of ids; "System will ignore those objects that cannot be linked", so ids that are not
objects of the type in the project are left out of the answer, not refused) and ``find``
(``GET linked-artifacts?type=&ids=``), both answering LinkedArtifactContainer ``{id, pid, objects: [{id,
pid, link_type, self}]}``. A link is a pair: linking it again adds nothing. A link is seen from both ends
(a test case read back lists its requirement). ``link_type`` follows the swagger's example
("is_covered_by" from a requirement to a test case; its reverse "covers"); the other names are the
sandbox's own.

Requirements a site's Jira integration imported (``import_jira_issues``, the admin route
``POST /_sandbox/jira-import/{projectId}``) carry ``external_properties``: the swagger's RequirementResource
has it (readOnly, an ExternalPropertyResource ``{id, link, unique_id}``, all strings), and getRequirements,
getRequirement and the search return it only with ``includeExternalProperties=true`` ("By default,
Requirement external properties are not included in the response"). What the integration puts in them is
not established (the swagger names the fields, nothing public shows a value): the sandbox's guess is the
Jira issue id in ``id``, the issue's REST URL in ``link`` and the key in ``unique_id``; a caller may give
other values. The integration's naming of the requirement is not established either: the sandbox names it
``<key or id> <summary>``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from zephyr_qtest.sandbox.qtest.store.base import (
    Json,
    QTestError,
    StoreBase,
    bad,
    format_time,
    name_field,
    page_bounds,
    require_object,
)

# The linkArtifacts source types and linked types the sandbox keeps -> its stored kind.
LINKABLE: dict[str, str] = {
    "requirements": "requirement",
    "test-cases": "test-case",
    "test-runs": "test-run",
    "test-logs": "test-log",
}
# The swagger's enums: source types of linkArtifacts, and the types of ``type``.
LINK_SOURCE_TYPES: tuple[str, ...] = ("releases", "builds", "requirements", "test-logs", "test-steps")
LINK_TYPES: tuple[str, ...] = (
    "releases",
    "builds",
    "requirements",
    "test-cases",
    "test-runs",
    "test-logs",
    "test-steps",
    "defects",
)
# link_type as seen from the first kind towards the second.
LINK_TYPE_NAMES: dict[tuple[str, str], str] = {
    ("requirement", "test-case"): "is_covered_by",
    ("test-case", "requirement"): "covers",
}
LINK_KIND = "object-link"
WEB_COLLECTION: dict[str, str] = {
    "requirement": "requirements",
    "test-case": "test-cases",
    "test-run": "test-runs",
    "test-log": "test-logs",
}


class RequirementsStore(StoreBase):
    """Requirements (at the root of the Requirements tab) and the links between objects."""

    def render_requirement(self, requirement: Json, *, external: bool = False) -> Json:
        """The RequirementResource; `external`: with ``external_properties`` (includeExternalProperties),
        which only imported requirements have (the others leave it out: their value is unverified)."""
        project_id = requirement["project_id"]
        rendered = {
            "links": self._self_link(project_id, "requirements", requirement["id"]),
            "id": requirement["id"],
            "name": requirement["name"],
            "order": requirement["order"],
            "pid": requirement["pid"],
            "created_date": requirement["created_date"],
            "last_modified_date": requirement["last_modified_date"],
            "properties": self.render_properties(project_id, "requirements", requirement["props"]),
            "web_url": self._web_url(project_id, "requirement", requirement["id"]),
            "parent_id": requirement["parent_id"],
        }
        if external and requirement.get("external") is not None:
            rendered["external_properties"] = dict(requirement["external"])
        return rendered

    def _requirement(self, project_id: int, requirement_id: int) -> Json:
        self._project(project_id)
        return self._require("requirement", requirement_id, project_id)

    @staticmethod
    def _requirement_at_root(parent_id: int | None) -> None:
        if parent_id:
            raise bad(f"parentId {parent_id}: the sandbox keeps no requirement modules (leave it out)")

    def create_requirement(self, project_id: int, body: Any, parent_id: int | None) -> Json:
        self._project(project_id)
        self._requirement_at_root(parent_id)
        body = require_object(body, "requirement")
        name = name_field(body, "requirement")
        props, _ = self._parse_properties(
            project_id, "requirements", body.get("properties"), "requirement", required=True
        )
        return self.render_requirement(self._new_requirement(project_id, name, props))

    def _new_requirement(
        self, project_id: int, name: str, props: dict, external: dict[str, str] | None = None
    ) -> Json:
        now = format_time(time.time())
        with self.tx():
            requirement = {
                "id": self.new_id(),
                "project_id": project_id,
                "parent_kind": "root",
                "parent_id": 0,
                "pid": self._new_pid(project_id, "requirement"),
                "name": name,
                "order": self._count("requirement", project_id, 0) + 1,
                "props": self._with_defaults(project_id, "requirements", props),
                "created_date": now,
                "last_modified_date": now,
                "external": external,
            }
            self._put("requirement", requirement)
        return requirement

    def import_jira_issues(self, project_id: int, issues: Any) -> list[Json]:
        """Requirements as a Jira integration would import them (not the vendor API: the sandbox's admin
        route). Each issue: ``issue_id`` (required), ``key``, ``summary``, and optionally the external
        ``id``, ``link`` and ``unique_id`` to store (defaults: the id, ``jira_url``'s REST URL of the
        issue, the key). Answers the requirements with their external properties."""
        self._project(project_id)
        if not isinstance(issues, list):
            raise bad("the body must be an array of issues")
        made = []
        for issue in issues:
            issue = require_object(issue, "issue")
            if not isinstance(issue.get("issue_id"), int):
                raise bad("each issue needs issue_id, a number")
            issue_id, key = issue["issue_id"], issue.get("key")
            jira_url = str(issue.get("jira_url") or "https://jira.example.invalid").rstrip("/")
            external = {
                "id": str(issue.get("id", issue_id)),
                "link": str(issue.get("link", f"{jira_url}/rest/api/2/issue/{issue_id}")),
                "unique_id": str(issue.get("unique_id", key or issue_id)),
            }
            name = " ".join(str(part) for part in (key or issue_id, issue.get("summary")) if part)
            made.append(self._new_requirement(project_id, name, {}, external))
        return [self.render_requirement(requirement, external=True) for requirement in made]

    def requirement(self, project_id: int, requirement_id: int, *, external: bool = False) -> Json:
        return self.render_requirement(self._requirement(project_id, requirement_id), external=external)

    def update_requirement(
        self, project_id: int, requirement_id: int, body: Any, parent_id: int | None
    ) -> Json:
        requirement = self._requirement(project_id, requirement_id)
        self._requirement_at_root(parent_id)
        body = require_object(body, "requirement")
        props, _ = self._parse_properties(
            project_id, "requirements", body.get("properties"), "requirement", required=False
        )
        with self.tx():
            if "name" in body:
                requirement["name"] = name_field(body, "requirement")
            requirement["props"] = {**requirement["props"], **props}
            requirement["last_modified_date"] = format_time(time.time())
            self._put("requirement", requirement)
        return self.render_requirement(requirement)

    def delete_requirement(self, project_id: int, requirement_id: int) -> Json:
        """The swagger's deleteRequirementById (``DELETE requirements/{requirementId}``, 200 with an object;
        qTest Manager 6+): the requirement, its attachments and its links, from either end (a linked test
        case or run no longer lists it)."""
        self._requirement(project_id, requirement_id)
        links = [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM objects WHERE kind = ? AND project_id = ? AND (parent_id = ? OR link_id = ?)",
                (LINK_KIND, project_id, requirement_id, requirement_id),
            )
        ]
        with self.tx():
            self._delete_rows([requirement_id, *links])
        return {}

    def requirements(
        self, project_id: int, *, parent_id: int | None, page: int, size: int, external: bool = False
    ) -> list[Json]:
        self._project(project_id)
        self._requirement_at_root(parent_id)
        limit, offset = page_bounds(page, size)
        found = self._select(
            "SELECT body FROM objects WHERE kind = 'requirement' AND project_id = ? ORDER BY id LIMIT ? OFFSET ?",
            (project_id, limit, offset),
        )
        return [self.render_requirement(requirement, external=external) for requirement in found]

    # ------------------------------------------------------------------ links

    @staticmethod
    def _link_kind(object_type: str, allowed: Sequence[str], what: str) -> str:
        if object_type not in allowed:
            raise bad(f"{what} must be one of {', '.join(allowed)}, got {object_type!r}")
        kind = LINKABLE.get(object_type)
        if kind is None:
            raise QTestError(400, f"the sandbox keeps no {object_type}: they cannot be linked")
        return kind

    def _object_links(self, project_id: int, kind: str, oid: int) -> list[tuple[str, int]]:
        """(kind, id) of what the object is linked to, either end, in the order the links were made."""
        linked: list[tuple[str, int]] = []
        for link in self._select(
            "SELECT body FROM objects WHERE kind = ? AND project_id = ? AND (parent_id = ? OR link_id = ?)"
            " ORDER BY id",
            (LINK_KIND, project_id, oid, oid),
        ):
            if link["parent_id"] == oid and link["source_kind"] == kind:
                linked.append((link["target_kind"], link["link_id"]))
            elif link["link_id"] == oid and link["target_kind"] == kind:
                linked.append((link["source_kind"], link["parent_id"]))
        return linked

    def _link_container(self, project_id: int, kind: str, obj: Json, only: str | None = None) -> Json:
        objects = []
        for linked_kind, linked_id in self._object_links(project_id, kind, obj["id"]):
            if only is not None and linked_kind != only:
                continue
            linked = self._get(linked_kind, linked_id, project_id)
            if linked is None:
                continue  # deleted since
            objects.append(
                {
                    "id": linked_id,
                    "pid": linked.get("pid"),
                    "link_type": LINK_TYPE_NAMES.get((kind, linked_kind), "is_related_to"),
                    "self": f"{self.api_url}/projects/{project_id}/{WEB_COLLECTION[linked_kind]}/{linked_id}",
                }
            )
        return {"id": obj["id"], "pid": obj.get("pid"), "objects": objects}

    def link_artifacts(
        self, project_id: int, object_type: str, object_id: int, linked_type: str, raw: Any
    ) -> list[Json]:
        self._project(project_id)
        kind = self._link_kind(object_type, LINK_SOURCE_TYPES, "objectType")
        target_kind = self._link_kind(linked_type, LINK_TYPES, "type")
        source = self._require(kind, object_id, project_id)
        if not isinstance(raw, list) or not all(
            isinstance(item, int) and not isinstance(item, bool) for item in raw
        ):
            raise bad("the body must be a JSON array of object ids")
        existing = set(self._object_links(project_id, kind, object_id))
        with self.tx():
            for target_id in dict.fromkeys(raw):
                if self._get(target_kind, target_id, project_id) is None:
                    continue  # "System will ignore those objects that cannot be linked"
                if (target_kind, target_id) in existing:
                    continue  # a pair, never a copy
                self._put(
                    LINK_KIND,
                    {
                        "id": self.new_id(),
                        "project_id": project_id,
                        "parent_id": object_id,
                        "link_id": target_id,
                        "source_kind": kind,
                        "target_kind": target_kind,
                    },
                )
        return [self._link_container(project_id, kind, source, only=target_kind)]

    def linked_artifacts(self, project_id: int, object_type: str, ids: Sequence[int]) -> list[Json]:
        self._project(project_id)
        kind = self._link_kind(object_type, LINK_TYPES, "type")
        containers = []
        for oid in dict.fromkeys(ids):
            obj = self._get(kind, oid, project_id)
            if obj is not None:
                containers.append(self._link_container(project_id, kind, obj))
        return containers
