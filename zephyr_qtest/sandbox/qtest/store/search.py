"""Search (``POST /search``): the query language on the stored objects, indexed where it can be."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from zephyr_qtest.sandbox.qtest.search import Query, QueryError, Term, evaluate, parse_query
from zephyr_qtest.sandbox.qtest.store.base import (
    COLLECTION_OF,
    KIND_OF,
    Json,
    StoreBase,
    bad,
    require_object,
    version_text,
)
from zephyr_qtest.sandbox.qtest.store.projects import PROPERTY_TYPE
from zephyr_qtest.sandbox.qtest.template import (
    PICKLIST_TYPES,
    USER_LIST,
)

SEARCH_TYPES: tuple[str, ...] = (
    "releases",
    "requirements",
    "test-cases",
    "test-runs",
    "test-suites",
    "test-cycles",
    "test-logs",
    "builds",
    "defects",
)

# Search criteria that are attributes, not properties: criterion name (lower case) → stored key.
_COMMON_ATTRIBUTES: dict[str, str] = {
    "id": "id",
    "pid": "pid",
    "name": "name",
    "created date": "created_date",
    "last modified date": "last_modified_date",
}
_SEARCH_ATTRIBUTES: dict[str, dict[str, str]] = {
    "test-case": {
        "description": "description",
        "precondition": "precondition",
        "module": "parent_id",
        "version": "version",
    },
    "test-run": {"test case": "test_case", "test case version": "version", "parent": "parent_id"},
    "test-cycle": {
        "description": "description",
        "target release": "target_release_id",
        "parent": "parent_id",
    },
    "test-suite": {
        "description": "description",
        "target release": "target_release_id",
        "parent": "parent_id",
    },
    "release": {
        "description": "description",
        "note": "note",
        "start date": "start_date",
        "end date": "end_date",
    },
    "test-log": {
        "status": "status",
        "execution start date": "exe_start_date",
        "execution end date": "exe_end_date",
        "note": "note",
        "test run": "test_run",
        "test case version": "version",
        "submitted by": "submittedBy",
    },
}


class SearchStore(StoreBase):
    """Search (``POST /search``): the query language on the stored objects, indexed where it can be."""

    def _criterion(self, project_id: int, kind: str, field: str) -> tuple[str, Any]:
        """How a criterion name maps to an object: ("attr", getter name) or ("prop", field)."""
        name = field.strip().lower()
        attribute = _SEARCH_ATTRIBUTES.get(kind, {}).get(name) or _COMMON_ATTRIBUTES.get(name)
        if attribute is not None:
            return "attr", attribute
        object_type = PROPERTY_TYPE.get(kind)
        if object_type is not None:
            found = self._field_by_label(project_id, object_type, field.strip())
            if found is None and field.strip().isdigit():
                found = self._field_map(project_id, object_type).get(int(field.strip()))
            if found is not None:
                if found.get("attribute"):
                    return "attr", found["attribute"]
                return "prop", found
        known = sorted({*_COMMON_ATTRIBUTES, *_SEARCH_ATTRIBUTES.get(kind, {})})
        labels = [f["label"] for f in self._fields(project_id, object_type)] if object_type else []
        raise bad(
            f"search: '{field}' is not a criterion of {COLLECTION_OF[kind]} (known: {', '.join(known)}; "
            f"field labels: {', '.join(labels) or 'none'})"
        )

    def _criterion_values(
        self, project_id: int, kind: str, obj: Json, criterion: tuple[str, Any]
    ) -> list[str]:
        how, what = criterion
        if how == "prop":
            # A test case's properties belong to its versions: the latest one is searched.
            props = self._latest(obj)["props"] if kind == "test-case" else obj.get("props", {})
            value = props.get(str(what["id"]), "")
            if value == "":
                return []
            if what["data_type"] in PICKLIST_TYPES or what["data_type"] == USER_LIST:
                choices = {str(v["value"]): v for v in self._allowed_values(what)}
                ids = [str(i) for i in json.loads(value)] if value.startswith("[") else [value]
                out: list[str] = []
                for item in ids:
                    out.append(item)
                    choice = choices.get(item)
                    if choice is not None:
                        out.append(choice["label"])
                    if what["data_type"] == USER_LIST:
                        user = self.user(int(item))
                        if user is not None:
                            out.append(user["username"])
                return out
            return [value]
        if what == "status":
            status = self._status(project_id, obj.get("status_id", 0))
            return [str(obj.get("status_id")), status["name"]] if status else []
        if what == "version":
            version = self._version(obj.get("test_case_version_id") or obj.get("latest_version_id") or 0)
            return [version_text(version), str(version["id"])] if version else []
        if what in ("description", "precondition", "name") and kind == "test-case":
            return [self._latest(obj)[what]]
        if what == "last_modified_date" and kind == "test-case":
            return [self._latest(obj)["last_modified_date"]]
        if what == "test_case":
            case = self._get("test-case", obj.get("link_id") or 0, project_id)
            return [str(case["id"]), case["pid"], self._latest(case)["name"]] if case else []
        if what == "test_run":
            run = self._get("test-run", obj.get("link_id") or 0, project_id)
            return [str(run["id"]), run["pid"], run["name"]] if run else []
        if what == "target_release_id":
            value = obj.get("target_release_id")
            return [str(value), str(-value)] if value else []
        value = obj.get(what)
        return [] if value is None or value == "" else [str(value)]

    def _indexed_candidates(self, project_id: int, kind: str, conjunction: Sequence[Term]) -> set[int] | None:
        """Ids an ``=`` term allows, looked up in an index; None when no term of the conjunction can."""
        for term in conjunction:
            if term.op != "=" or term.value == "":
                continue
            how, what = self._criterion(project_id, kind, term.field)
            wanted = term.value.lower()
            if how == "prop":
                values = [wanted]
                if what["data_type"] in PICKLIST_TYPES or what["data_type"] == USER_LIST:
                    values = [
                        str(v["value"])
                        for v in self._allowed_values(what)
                        if v["label"].lower() == wanted or str(v["value"]) == wanted
                    ]
                    if what["data_type"] == USER_LIST:
                        values += [str(u["id"]) for u in self._users() if u["username"].lower() == wanted]
                if not values:
                    return set()
                marks = ",".join("?" * len(values))
                return {
                    row[0]
                    for row in self.conn.execute(
                        "SELECT object_id FROM prop_index WHERE project_id = ? AND kind = ? AND field_id = ?"
                        f" AND value_norm IN ({marks})",
                        (project_id, kind, what["id"], *values),
                    )
                }
            if what == "name":
                return {
                    row[0]
                    for row in self.conn.execute(
                        "SELECT id FROM objects WHERE kind = ? AND project_id = ? AND name_norm = ?",
                        (kind, project_id, wanted),
                    )
                }
            if what == "pid":
                found = self._by_pid(kind, project_id, term.value)
                return {found["id"]} if found else set()
            if what == "id":
                return {int(wanted)} if wanted.isdigit() else set()
        return None

    def search(
        self,
        project_id: int,
        body: Any,
        *,
        page: int,
        page_size: int,
        append_steps: bool,
        include_log_properties: bool,
    ) -> tuple[int, list[Json]]:
        self._project(project_id)
        body = require_object(body, "search")
        object_type = body.get("object_type")
        if object_type not in SEARCH_TYPES:
            raise bad(f"search.object_type must be one of {', '.join(SEARCH_TYPES)}, got {object_type!r}")
        fields = body.get("fields")
        if fields is not None and (
            not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
        ):
            raise bad("search.fields must be an array of field names")
        query_text = body.get("query")
        if query_text is not None and not isinstance(query_text, str):
            raise bad("search.query must be a string")
        try:
            query: Query = parse_query(query_text)
        except QueryError as exc:
            raise bad(f"search.query: {exc}") from None
        kind = KIND_OF.get(object_type)
        if kind is None or kind == "module":
            return 0, []  # requirements, builds and defects: the sandbox keeps none
        criteria = {term.field: self._criterion(project_id, kind, term.field) for c in query for term in c}
        candidates: set[int] | None = set()
        for conjunction in query:
            allowed = self._indexed_candidates(project_id, kind, conjunction) if conjunction else None
            if allowed is None:
                candidates = None
                break
            assert candidates is not None
            candidates |= allowed
        if candidates is None:
            objects = self._select(
                "SELECT body FROM objects WHERE kind = ? AND project_id = ? ORDER BY id", (kind, project_id)
            )
        else:
            objects = [
                o for o in (self._get(kind, oid, project_id) for oid in sorted(candidates)) if o is not None
            ]
        matched = [
            obj
            for obj in objects
            if evaluate(
                query, lambda field, obj=obj: self._criterion_values(project_id, kind, obj, criteria[field])
            )
        ]
        total = len(matched)
        chunk = matched[(page - 1) * page_size : page * page_size]
        items = [self._render_found(kind, obj, append_steps, include_log_properties) for obj in chunk]
        if fields and "*" not in fields:
            wanted = {f.lower() for f in fields} | {"id", "links"}
            items = [{k: v for k, v in item.items() if k.lower() in wanted} for item in items]
        return total, items

    def _render_found(self, kind: str, obj: Json, append_steps: bool, include_log_properties: bool) -> Json:
        if kind == "test-case":
            return self.render_case(obj, steps=append_steps)
        if kind == "test-run":
            return self.render_run(obj)
        if kind == "test-cycle":
            return self.render_cycle(obj)
        if kind == "test-suite":
            return self.render_suite(obj)
        if kind == "release":
            return self.render_release(obj)
        return self.render_log(obj, full=include_log_properties)
