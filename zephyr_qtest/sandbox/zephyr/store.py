"""The Zephyr sandbox's in-memory tenant: one fixture, indexed once, served many times.

Everything a request needs is precomputed here: per-project and per-folder lists sorted by id,
id/key lookups, the last execution of every (cycle, case) pair, and each object's JSON text (made
lazily, then kept) with its ``self`` links pointing at this sandbox. Filtered lists are cached
until the next mutation, so paging through 20,000 executions never rescans them.

The store never changes the fixture's objects in place: a mutation replaces the object.
"""

from __future__ import annotations

import bisect
import json
import mimetypes
import random
import re
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from zephyr_qtest.sandbox.common import parse_iso_datetime
from zephyr_qtest.sandbox.zephyr.fixture import (
    ATTACHMENT_OWNER,
    LIST_SECTIONS,
    attachment_bytes,
    json_int,
    load_fixture,
)

FOLDER_TYPES: tuple[str, ...] = ("TEST_CASE", "TEST_PLAN", "TEST_CYCLE")

# Zephyr API resources: a link to one of these is rewritten to this sandbox, whatever host the
# fixture named. Jira links (users, components, versions, issues) are left alone.
_API_LINK = re.compile(
    r'"(self|target)":"(https?://[^"]*?)'
    r"(/(?:projects|folders|statuses|priorities|environments|testcases|testCases|testcycles|testplans"
    r'|testexecutions|links)(?:[/?#][^"]*)?)"'
)
# The address of a picture pasted into rich text, on SmartBear's CDN (REAL_SHAPES Zephyr 5).
_CDN_TENANT = "https://cloudfront.tm4j.smartbear.com/tenant/"
_VERSION_LINK = re.compile(r"/testcases/([^/?#]+)/versions/([0-9]+)", re.IGNORECASE)
# The hidden update time of an object comes from the first of these it has (see updatedAfter).
_UPDATE_TIME_FIELDS = ("updatedOn", "lastModifiedOn", "createdOn", "actualEndDate", "plannedEndDate")
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
_FILTER_CACHE_SIZE = 512


def parse_timestamp(value: Any) -> float | None:
    """Seconds since the epoch for an ISO 8601 date-time (``Z`` or an offset), else None."""
    moment = parse_iso_datetime(value)
    return None if moment is None else moment.timestamp()


def _link_id(value: Any) -> int | None:
    """The id of a ``{id, self}`` link, or None."""
    return json_int(value.get("id")) if isinstance(value, dict) else None


@dataclass(slots=True, eq=False)
class Record:
    """One served object plus what the indexes and filters need to know about it."""

    obj: dict[str, Any]
    oid: int | None
    key: str | None
    project_id: int | None
    updated: float
    meta: dict[str, Any] = field(default_factory=dict)
    json: str | None = None

    @property
    def sort_key(self) -> tuple[int, int]:
        # Objects without an id (deliberately bad fixtures) sort after all others.
        return (0, self.oid) if self.oid is not None else (1, 0)


@dataclass(slots=True)
class Selection:
    """A filtered, id-ordered list of records, with the ids alongside for cursor paging."""

    records: list[Record]
    ids: list[int]


@dataclass(slots=True)
class Attachment:
    id: int
    name: str
    content_type: str
    data: bytes


class Collection:
    """All objects of one kind, with the lookups every kind needs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.records: list[Record] = []
        self.by_id: dict[int, Record] = {}
        self.by_key: dict[str, Record] = {}
        self.by_project: dict[int | None, list[Record]] = defaultdict(list)

    def add(self, record: Record) -> None:
        bisect.insort(self.records, record, key=lambda r: r.sort_key)
        bisect.insort(self.by_project[record.project_id], record, key=lambda r: r.sort_key)
        if record.oid is not None:
            self.by_id[record.oid] = record
        if record.key is not None:
            self.by_key[record.key] = record

    def remove(self, record: Record) -> None:
        self.records.remove(record)
        self.by_project[record.project_id].remove(record)
        if record.oid is not None and self.by_id.get(record.oid) is record:
            del self.by_id[record.oid]
        if record.key is not None and self.by_key.get(record.key) is record:
            del self.by_key[record.key]

    def get(self, ref: str | int) -> Record | None:
        """Look up by id (digits) or key."""
        text = str(ref)
        if text.isdigit():
            return self.by_id.get(int(text))
        return self.by_key.get(text)


class StoreError(ValueError):
    """A mutation the store cannot make (the message says why)."""


class ZephyrStore:
    """The served tenant. ``base_url`` is this sandbox's API root, e.g. ``http://127.0.0.1:8080/v2``."""

    def __init__(self, fixture: Mapping[str, Any], *, base_url: str) -> None:
        doc = load_fixture(fixture)
        self.base_url = base_url.rstrip("/")
        self.meta: dict[str, Any] = {k: v for k, v in doc.items() if k.startswith("_")}
        # One collection per list section of the fixture (the object kinds the API lists).
        self.collections: dict[str, Collection] = {kind: Collection(kind) for kind in LIST_SECTIONS}
        self._project_ids_by_key: dict[str, int] = {}
        # The type each status is served under (`statusType` filter); the status itself never says
        # (REAL_SHAPES.md, Zephyr Scale Cloud 1).
        self.status_types: dict[int, str] = {
            ident: status_type for status_type, ids in doc["status_types"].items() for ident in ids
        }
        for project in doc["projects"]:
            self._project_ids_by_key[project["key"]] = project["id"]
        self.versions: dict[str, list[Record]] = {}
        self.scripts: dict[str, dict[str, Any]] = dict(doc["testscripts"])
        self.steps: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in doc["teststeps"].items()}
        self.execution_steps: dict[int, list[dict[str, Any]]] = {}
        self.attachments: dict[tuple[Any, ...], list[Attachment]] = {}
        self._rendered_lists: dict[tuple[str, Any], list[str]] = {}
        self._selection_cache: OrderedDict[tuple[Any, ...], Selection] = OrderedDict()
        self._last_execution_ids: set[int] | None = None
        self.generation = 0

        for kind in ("projects", "folders", "statuses", "priorities", "environments"):
            for obj in doc[kind]:
                self.collections[kind].add(self._record(kind, obj))
        for obj in doc["testcases"]:
            self.collections["testcases"].add(self._record("testcases", self._with_script_link(obj)))
        for kind in ("testcycles", "testplans", "testexecutions"):
            for obj in doc[kind]:
                self.collections[kind].add(self._record(kind, obj))
        for key, older in doc["testcase_versions"].items():
            current = self.collections["testcases"].by_key[key]
            self.versions[key] = [self._record("testcases", obj) for obj in older] + [current]
        executions = self.collections["testexecutions"]
        for ref, items in doc["testexecution_steps"].items():
            execution = executions.get(ref)
            if execution is not None and execution.oid is not None:
                self.execution_steps[execution.oid] = list(items)
        self._load_attachments(doc["attachments"])

    # ------------------------------------------------------------------ building records

    def project_id_for_key(self, key: str) -> int | None:
        return self._project_ids_by_key.get(key)

    def _project_of(self, kind: str, obj: Mapping[str, Any]) -> int | None:
        if kind == "projects":
            return json_int(obj.get("id"))
        project = obj.get("project")
        if isinstance(project, dict) and json_int(project.get("id")) is not None:
            return project["id"]
        if isinstance(obj.get("projectKey"), str):
            return self._project_ids_by_key.get(obj["projectKey"])
        return json_int(obj.get("projectId"))

    def _record(self, kind: str, obj: dict[str, Any], *, updated: float | None = None) -> Record:
        key = obj.get("key") if isinstance(obj.get("key"), str) else None
        if updated is None:
            updated = _EPOCH
            for name in _UPDATE_TIME_FIELDS:
                moment = parse_timestamp(obj.get(name))
                if moment is not None:
                    updated = moment
                    break
        record = Record(
            obj=obj,
            oid=json_int(obj.get("id")),
            key=key,
            project_id=self._project_of(kind, obj),
            updated=updated,
        )
        meta = record.meta
        if kind == "folders":
            meta["folder_type"] = obj.get("folderType")
        elif kind == "statuses":
            meta["status_type"] = self.status_types.get(record.oid) if record.oid is not None else None
        elif kind in ("testcases", "testcycles", "testplans"):
            meta["folder_id"] = _link_id(obj.get("folder"))
            meta["jira_version_id"] = _link_id(obj.get("jiraProjectVersion"))
        elif kind == "testexecutions":
            test_case = obj.get("testCase")
            link = test_case.get("self") if isinstance(test_case, dict) else None
            match = _VERSION_LINK.search(link) if isinstance(link, str) else None
            meta["case_key"] = match.group(1) if match else None
            meta["cycle_id"] = _link_id(obj.get("testCycle"))
            meta["jira_version_id"] = _link_id(obj.get("jiraProjectVersion"))
            meta["end"] = parse_timestamp(obj.get("actualEndDate"))
        return record

    def _with_script_link(self, case: dict[str, Any]) -> dict[str, Any]:
        """Fill in ``testScript`` when a fixture leaves it out but gives steps or a script: ``/teststeps``
        for a step-by-step case, ``/testscript`` for a plain or BDD one (REAL_SHAPES.md, Zephyr 2)."""
        key = case.get("key")
        if "testScript" in case or not isinstance(key, str):
            return case
        if key in self.steps:
            return {**case, "testScript": {"self": f"{self.base_url}/testcases/{key}/teststeps"}}
        if key in self.scripts:
            return {**case, "testScript": {"self": f"{self.base_url}/testcases/{key}/testscript"}}
        return case

    def _load_attachments(self, section: Mapping[str, list[dict[str, Any]]]) -> None:
        explicit = [item["id"] for files in section.values() for item in files if "id" in item]
        next_id = max(explicit, default=0) + 1
        for owner_text, files in section.items():
            owner = self.resolve_owner(owner_text)
            if owner is None:
                continue
            stored = self.attachments.setdefault(owner, [])
            for item in files:
                attachment_id = item.get("id")
                if attachment_id is None:
                    attachment_id, next_id = next_id, next_id + 1
                name = item["name"]
                content_type = item.get("contentType") or mimetypes.guess_type(name)[0]
                stored.append(
                    Attachment(
                        id=attachment_id,
                        name=name,
                        content_type=content_type or "application/octet-stream",
                        data=attachment_bytes(item),
                    )
                )

    def resolve_owner(self, owner_text: str) -> tuple[Any, ...] | None:
        """Turn ``testcases/KEY[/teststeps/N]`` etc. into the canonical owner tuple used as index key."""
        match = ATTACHMENT_OWNER.match(owner_text)
        if not match:
            return None
        record = self.collections[match["kind"]].get(match["ref"])
        if record is None:
            return None
        ident: Any = record.key if match["kind"] == "testcases" else record.oid
        step = match["step"]
        return (match["kind"], ident) if step is None else (match["kind"], ident, int(step))

    # ------------------------------------------------------------------ rendering

    def rewrite_links(self, text: str) -> str:
        """Point every Zephyr API ``self``/``target`` link in a JSON text at this sandbox."""
        base = self.base_url
        text = _API_LINK.sub(lambda m: f'"{m[1]}":"{base}{m[3]}"', text)
        # Inline images on SmartBear's CDN are served by this sandbox (routes/cdn.py), at its own host.
        if _CDN_TENANT in text:
            text = text.replace(_CDN_TENANT, f"{base.removesuffix('/v2')}/cdn/tenant/")
        return text

    def to_json(self, value: Any) -> str:
        return self.rewrite_links(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def render(self, record: Record) -> str:
        if record.json is None:
            record.json = self.to_json(record.obj)
        return record.json

    def rendered_list(self, cache_key: tuple[str, Any], items: Iterable[Any]) -> list[str]:
        """JSON texts of plain items (steps), cached under ``cache_key`` until they change."""
        cached = self._rendered_lists.get(cache_key)
        if cached is None:
            cached = self._rendered_lists[cache_key] = [self.to_json(item) for item in items]
        return cached

    # ------------------------------------------------------------------ queries

    def get(self, kind: str, ref: str | int) -> Record | None:
        return self.collections[kind].get(ref)

    def test_case(self, key: str) -> Record | None:
        return self.collections["testcases"].by_key.get(key)

    def last_execution_ids(self) -> set[int]:
        """Ids of the last execution of each (cycle, case) pair; computed once per generation."""
        if self._last_execution_ids is None:
            latest: dict[tuple[int, str | None], Record] = {}
            for record in self.collections["testexecutions"].records:
                cycle_id = record.meta["cycle_id"]
                if cycle_id is None or record.oid is None:
                    continue
                pair = (cycle_id, record.meta["case_key"])
                best = latest.get(pair)
                rank = (record.obj.get("actualEndDate") or "", record.oid)
                if best is None or rank >= (best.obj.get("actualEndDate") or "", best.oid):
                    latest[pair] = record
            self._last_execution_ids = {record.oid for record in latest.values() if record.oid is not None}
        return self._last_execution_ids

    def select(self, kind: str, **filters: Any) -> Selection:
        """The records of ``kind`` matching ``filters`` (None means "no filter"), sorted by id.

        Filters: project_id, folder_id, folder_type, status_type, jira_version_id, cycle_id,
        case_key, end_after / end_before (epoch seconds, inclusive / exclusive), only_last,
        updated_after (epoch seconds, exclusive).
        """
        active = tuple(sorted((name, value) for name, value in filters.items() if value is not None))
        cache_key = (kind, active)
        cached = self._selection_cache.get(cache_key)
        if cached is not None:
            self._selection_cache.move_to_end(cache_key)
            return cached
        collection = self.collections[kind]
        wanted = dict(active)
        project_id = wanted.pop("project_id", None)
        records: Iterable[Record] = (
            collection.by_project.get(project_id, []) if project_id is not None else collection.records
        )
        predicates = [self._predicate(name, value) for name, value in wanted.items()]
        selected = [r for r in records if all(p(r) for p in predicates)] if predicates else list(records)
        selection = Selection(selected, [r.oid if r.oid is not None else 2**63 for r in selected])
        self._selection_cache[cache_key] = selection
        if len(self._selection_cache) > _FILTER_CACHE_SIZE:
            self._selection_cache.popitem(last=False)
        return selection

    def _predicate(self, name: str, value: Any) -> Callable[[Record], bool]:
        if name in ("folder_id", "folder_type", "status_type", "jira_version_id", "cycle_id", "case_key"):
            return lambda r: r.meta.get(name) == value
        if name == "end_after":
            return lambda r: r.meta["end"] is not None and r.meta["end"] >= value
        if name == "end_before":
            return lambda r: r.meta["end"] is not None and r.meta["end"] < value
        if name == "only_last":
            if not value:
                return lambda r: True
            last = self.last_execution_ids()
            return lambda r: r.meta["cycle_id"] is None or r.oid in last
        if name == "updated_after":
            return lambda r: r.updated > value
        raise ValueError(f"unknown filter {name!r}")

    def attachment_list(self, owner: tuple[Any, ...]) -> list[Attachment]:
        return self.attachments.get(owner, [])

    def counts(self) -> dict[str, Any]:
        """Object counts per project: what a complete extraction must end up with."""
        per_project: dict[str, dict[str, int]] = {}
        for project in self.collections["projects"].records:
            pid = project.oid
            counts = {
                kind: len(self.collections[kind].by_project.get(pid, []))
                for kind in LIST_SECTIONS
                if kind != "projects"
            }
            case_keys = [r.key for r in self.collections["testcases"].by_project.get(pid, [])]
            execution_ids = [r.oid for r in self.collections["testexecutions"].by_project.get(pid, [])]
            counts["teststeps"] = sum(len(self.steps.get(key or "", [])) for key in case_keys)
            counts["testscripts"] = sum(1 for key in case_keys if key in self.scripts)
            # The versions before the current one (the current one is the case itself).
            counts["testcase_versions"] = sum(
                len(self.versions.get(key or "", [None])) - 1 for key in case_keys
            )
            counts["testexecution_steps"] = sum(
                len(self.execution_steps.get(i or 0, [])) for i in execution_ids
            )
            per_project[str(project.key)] = counts
        return {
            "projects": len(self.collections["projects"].records),
            "attachments": sum(len(files) for files in self.attachments.values()),
            "per_project": per_project,
        }

    # ------------------------------------------------------------------ mutations

    def _changed(self) -> None:
        self.generation += 1
        self._selection_cache.clear()
        self._last_execution_ids = None

    def delete_test_case(self, key: str) -> bool:
        """Delete a case as if someone removed it in Zephyr mid-run: it, its versions, steps, script
        and attachments disappear. Executions that ran it stay (their history is still there)."""
        record = self.test_case(key)
        if record is None:
            return False
        self.collections["testcases"].remove(record)
        self.versions.pop(key, None)
        self.steps.pop(key, None)
        self.scripts.pop(key, None)
        self._rendered_lists.pop(("teststeps", key), None)
        for owner in [owner for owner in self.attachments if owner[:2] == ("testcases", key)]:
            del self.attachments[owner]
        self._changed()
        return True

    def mutate(self, kind: str, ref: str, changes: Mapping[str, Any], remove: Iterable[str] = ()) -> Record:
        """Edit an object as someone would in Zephyr: set/remove fields and bump its update time."""
        collection = self.collections.get(kind)
        if collection is None or kind in ("projects",):
            raise StoreError(
                f"cannot mutate {kind!r}; use testcases, testcycles, testplans, testexecutions, "
                "folders, statuses, priorities or environments"
            )
        record = collection.get(ref)
        if record is None:
            raise StoreError(f"no object {ref!r} in {kind}")
        removed = list(remove)
        if kind == "statuses" and ("statusType" in changes or "statusType" in removed):
            # The type is the filter a status answers under, not a field (REAL_SHAPES.md, Zephyr 1).
            raise StoreError(f"statuses {ref}: 'statusType' is not a field of a Zephyr status")
        for name in ("id", "key", "project"):
            if (name in changes and changes[name] != record.obj.get(name)) or name in removed:
                raise StoreError(f"{kind} {ref}: {name!r} cannot be changed (it identifies the object)")
        obj = {**record.obj, **changes}
        for name in removed:
            obj.pop(name, None)
        # A fresh update time strictly after everything already served, so updatedAfter sees it.
        replacement = self._record(kind, obj, updated=max(time.time(), record.updated + 0.001))
        collection.remove(record)
        collection.add(replacement)
        if kind == "testcases" and record.key in self.versions:
            self.versions[record.key][-1] = replacement
        self._changed()
        return replacement

    def churn(
        self, project_key: str, share: float, *, delete_cases: int = 0, seed: int = 0
    ) -> dict[str, Any]:
        """Change `share` of each kind of the project's objects as its users would between two runs, and
        delete `delete_cases` test cases; answers the keys (ids for executions) changed and deleted.

        Cases, cycles and plans get an edited field (through ``mutate``, which moves their hidden update
        time past everything served). An execution is run again: a new ``actualEndDate`` (now), status
        and comment, which is how Zephyr's own player records one, and what ``actualEndDateAfter`` filters on
        (API_NOTES.md Z-4; the execution carries no other change time, SmartBear's 2026 schema). At least one
        object of a kind is changed when `share` > 0 and the kind has any. The choice is ``seed``'s.
        """
        project_id = self.project_id_for_key(project_key)
        if project_id is None:
            raise StoreError(f"no project {project_key!r}")
        if not 0 <= share <= 1:
            raise StoreError(f"share must be between 0 and 1, got {share!r}")
        chooser = random.Random(seed)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        changed: dict[str, list[Any]] = {}
        deleted: list[str] = []
        cases = [r.key for r in self.collections["testcases"].by_project.get(project_id, []) if r.key]
        if delete_cases:
            deleted = sorted(chooser.sample(cases, min(delete_cases, len(cases))))
            for key in deleted:
                self.delete_test_case(key)
        statuses = [
            r.obj
            for r in self.collections["statuses"].by_project.get(project_id, [])
            if r.meta.get("status_type") == "TEST_EXECUTION" and r.oid is not None
        ]
        for kind, field_name in (
            ("testcases", "name"),
            ("testcycles", "description"),
            ("testplans", "objective"),
            ("testexecutions", "comment"),
        ):
            records = [r for r in self.collections[kind].by_project.get(project_id, []) if r.oid is not None]
            if kind == "testexecutions":
                # Nobody runs an execution of a case that was just deleted: its test player is gone with it.
                records = [r for r in records if _case_key_of_execution(r.obj) not in deleted]
            if not records or share <= 0:
                changed[kind] = []
                continue
            picked = chooser.sample(records, max(1, round(share * len(records))))
            refs: list[Any] = []
            for record in sorted(picked, key=lambda r: r.sort_key):
                ref = record.key if kind != "testexecutions" else record.oid
                previous = record.obj.get(field_name) or ""
                changes: dict[str, Any] = {field_name: f"{previous} (changed {stamp})".strip()}
                if kind == "testexecutions":
                    changes["actualEndDate"] = stamp
                    if statuses:
                        status = chooser.choice(statuses)
                        changes["testExecutionStatus"] = {
                            "id": status["id"],
                            "self": f"{self.base_url}/statuses/{status['id']}",
                        }
                self.mutate(kind, str(ref), changes)
                refs.append(ref)
            changed[kind] = refs
        return {"project": project_key, "changed": changed, "deleted": {"testcases": deleted}}

    def version_records(self, key: str) -> list[Record]:
        """Versions of a case, oldest first; the last one is the current case."""
        current = self.test_case(key)
        if current is None:
            return []
        return self.versions.get(key, [current])


def _case_key_of_execution(execution: dict[str, Any]) -> str | None:
    """The key of an execution's test case, from its ``testCase.self`` (``.../testcases/KEY/versions/N``)."""
    link = str((execution.get("testCase") or {}).get("self") or "")
    return link.split("/testcases/", 1)[1].split("/", 1)[0] if "/testcases/" in link else None
