"""Projects and their field settings (the default template), allowed values, execution statuses and
the parsing, defaults, rendering and indexing of object properties.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from zephyr_qtest.sandbox.common import parse_iso_datetime
from zephyr_qtest.sandbox.qtest.store.base import (
    Json,
    QTestError,
    StoreBase,
    as_int,
    bad,
    dumps,
    format_time,
    name_field,
    require_object,
    text_field,
)
from zephyr_qtest.sandbox.qtest.template import (
    CUSTOM_FIELD_OBJECT_TYPES,
    DATA_TYPES,
    DATE_PICKER,
    DATE_TIME,
    DEFAULT_TEMPLATE_NAME,
    EXECUTION_STATUSES,
    FIELD_OBJECT_TYPES,
    MULTIPLE_TYPES,
    NUMBER,
    PICKLIST_TYPES,
    TEMPLATES,
    USER_ACTIVE,
    USER_LIST,
)

# Whose field settings a kind's properties follow (test logs carry test-run fields).
PROPERTY_TYPE: dict[str, str] = {
    "test-case": "test-cases",
    "test-run": "test-runs",
    "test-suite": "test-suites",
    "release": "releases",
    "test-log": "test-runs",
}


# What qTest answers a user who may not change a project's field settings (REAL_SHAPES qTest 8; the
# swagger declares 403 on creating allowed values).
NO_PERMISSION = "No permission"


class ProjectsStore(StoreBase):
    """Projects and their field settings (the site's template), allowed values, execution statuses and
    the parsing, defaults, rendering and indexing of object properties."""

    # The template new projects get (template.TEMPLATES); the sandbox sets it from its ``template`` switch.
    template_name: str = DEFAULT_TEMPLATE_NAME

    def use_template(self, name: str) -> None:
        """New projects get template `name` (``default`` or ``rich``); existing ones keep their fields."""
        if name not in TEMPLATES:
            raise ValueError(f"unknown qTest sandbox template {name!r}: use one of {', '.join(TEMPLATES)}")
        self.template_name = name

    def _project(self, project_id: int) -> Json:
        project = self._get("project", project_id)
        if project is None:
            raise QTestError(404, f"Project {project_id} does not exist")
        return project

    def require_project(self, project_id: int) -> None:
        self._project(project_id)

    def render_project(self, project: Json) -> Json:
        users = {user["id"]: user for user in self._users()}
        out: Json = {
            "links": [{"rel": "self", "href": f"{self.api_url}/projects/{project['id']}"}],
            "id": project["id"],
            "name": project["name"],
            "description": project["description"],
            "status_id": project["status_id"],
            "start_date": project["start_date"],
            "admins": [users[a]["username"] for a in project["admin_ids"] if a in users],
            "admin_ids": project["admin_ids"],
            "sample": False,
            "defect_tracking_systems": [],
            "date_format": project["date_format"],
            "automation": True,
            "template_id": project["template_id"],
            "uuid": project["uuid"],
        }
        if project.get("end_date"):
            out["end_date"] = project["end_date"]
        return out

    def projects(self) -> list[Json]:
        return [
            self.render_project(p)
            for p in self._select("SELECT body FROM objects WHERE kind = 'project' ORDER BY id")
        ]

    def project(self, project_id: int) -> Json:
        return self.render_project(self._project(project_id))

    def create_project(self, body: Any, user_id: int) -> Json:
        body = require_object(body, "project")
        name = name_field(body, "project")
        assert name is not None
        for existing in self._select("SELECT body FROM objects WHERE kind = 'project'"):
            if existing["name"].lower() == name.lower():
                raise bad(
                    f"project.name: a project named '{existing['name']}' already exists (id {existing['id']})"
                )
        dates: dict[str, str | None] = {}
        for key in ("start_date", "end_date"):
            raw = body.get(key)
            if raw is None:
                dates[key] = None
                continue
            moment = parse_iso_datetime(raw)
            if moment is None:
                raise bad(f"project.{key} must be an ISO 8601 date-time, got {raw!r}")
            dates[key] = format_time(moment)
        admin_ids = sorted({user_id, self.admin_user()["id"]})
        now = format_time(time.time())
        with self.tx():
            project_id = self.new_id()
            project = {
                "id": project_id,
                "name": name,
                "description": text_field(body, "description", "project", default="") or "",
                "status_id": 301,
                "start_date": dates["start_date"] or now,
                "end_date": dates["end_date"],
                "admin_ids": admin_ids,
                "date_format": text_field(body, "date_format", "project", default="MM/dd/yyyy"),
                "template_id": 1,
                "uuid": text_field(body, "uuid", "project", default=None) or f"sandbox-{project_id}",
                "created_date": now,
            }
            self._put("project", project)
            self._instantiate_template(project_id)
        return self.render_project(project)

    def _instantiate_template(self, project_id: int) -> None:
        """Field settings and execution statuses of a new project, with ids fresh from the sequence."""
        statuses: list[Json] = []
        for order, spec in enumerate(EXECUTION_STATUSES, 1):
            status = {
                "id": self.new_id(),
                "project_id": project_id,
                "name": spec.name,
                "is_default": spec.is_default,
                "color": spec.color,
                "active": True,
                "order": order,
            }
            self._put("status", status)
            statuses.append(status)
        for object_type, specs in TEMPLATES[self.template_name].items():
            for order, spec in enumerate(specs, 1):
                field_id = self.new_id()
                allowed: list[Json] = []
                if spec.statuses:
                    allowed = [
                        {
                            "value": s["id"],
                            "label": s["name"],
                            "order": i,
                            "is_default": s["is_default"],
                            "is_active": True,
                            "color": s["color"],
                        }
                        for i, s in enumerate(statuses, 1)
                    ]
                elif spec.data_type in PICKLIST_TYPES:
                    allowed = [
                        {
                            "value": self.new_id(),
                            "label": label,
                            "order": i,
                            "is_default": label == spec.default,
                            "is_active": True,
                        }
                        for i, label in enumerate(spec.values, 1)
                    ]
                default: str | None = spec.default
                if allowed and spec.default is not None:
                    default = next(str(v["value"]) for v in allowed if v["label"] == spec.default)
                field = {
                    "id": field_id,
                    "project_id": project_id,
                    "parent_kind": object_type,
                    "label": spec.label,
                    "required": spec.required,
                    "constrained": spec.data_type in PICKLIST_TYPES,
                    "order": order,
                    "multiple": spec.multiple,
                    "data_type": spec.data_type,
                    "searchable": True,
                    "default_value": default,
                    "system_field": spec.system,
                    "original_name": spec.label,
                    "is_active": True,
                    "allowed_values": allowed,
                    "attribute": spec.attribute,
                }
                self._put("field", field)
        self._fields_cache.clear()
        self._statuses_cache.pop(project_id, None)

    # ------------------------------------------------------------------ fields and properties

    def _fields(self, project_id: int, object_type: str) -> list[Json]:
        key = (project_id, object_type)
        cached = self._fields_cache.get(key)
        if cached is None:
            cached = self._select(
                "SELECT body FROM objects WHERE kind = 'field' AND project_id = ? AND parent_kind = ?"
                " ORDER BY id",
                (project_id, object_type),
            )
            cached.sort(key=lambda f: (f["order"], f["id"]))
            self._fields_cache[key] = cached
        return cached

    def _field_map(self, project_id: int, object_type: str) -> dict[int, Json]:
        return {field["id"]: field for field in self._fields(project_id, object_type)}

    def _field_by_label(self, project_id: int, object_type: str, label: str) -> Json | None:
        wanted = label.lower()
        for field in self._fields(project_id, object_type):
            if field["label"].lower() == wanted:
                return field
        return None

    def _allowed_values(self, field: Json) -> list[Json]:
        """A field's allowed values; a user list's are the site's users."""
        if field["data_type"] == USER_LIST:
            return [
                {
                    "value": user["id"],
                    "label": f"{user['first_name']} {user['last_name']}",
                    "order": order,
                    "is_default": False,
                    "is_active": user["status"] == USER_ACTIVE,
                }
                for order, user in enumerate(self._users(), 1)
            ]
        return field["allowed_values"]

    def render_field(self, field: Json, *, swagger: bool = False) -> Json:
        project_id, object_type = field["project_id"], field["parent_kind"]
        out: Json = {
            "links": [
                {
                    "rel": "self",
                    "href": f"{self.api_url}/projects/{project_id}/settings/{object_type}/fields/{field['id']}",
                }
            ],
            "id": field["id"],
            "label": field["label"],
            "required": field["required"],
            "constrained": field["constrained"],
            "order": field["order"],
            "multiple": field["multiple"],
            "data_type": field["data_type"],
            "searchable": field["searchable"],
            "system_field": field["system_field"],
            "original_name": field["original_name"],
            "is_active": field["is_active"],
        }
        if field.get("default_value") is not None:
            out["default_value"] = field["default_value"]
        if swagger:
            out["attribute_type"] = DATA_TYPES.get(field["data_type"], "Unknown")
        elif field["data_type"] in PICKLIST_TYPES or field["data_type"] == USER_LIST:
            out["allowed_values"] = [self._render_allowed(v) for v in self._allowed_values(field)]
        return out

    @staticmethod
    def _render_allowed(value: Json) -> Json:
        out = {
            key: value[key] for key in ("value", "label", "order", "is_default", "is_active") if key in value
        }
        if value.get("color"):
            out["color"] = value["color"]
        return out

    @staticmethod
    def _check_field_type(object_type: str, *, custom: bool = False) -> None:
        allowed = CUSTOM_FIELD_OBJECT_TYPES if custom else FIELD_OBJECT_TYPES
        if object_type not in allowed:
            raise bad(f"objectType '{object_type}' is not one of {', '.join(allowed)}")

    def fields(self, project_id: int, object_type: str, *, include_inactive: bool = False) -> list[Json]:
        self._project(project_id)
        self._check_field_type(object_type)
        return [
            self.render_field(f)
            for f in self._fields(project_id, object_type)
            if include_inactive or f["is_active"]
        ]

    def _require_field(self, project_id: int, object_type: str, field_id: int) -> Json:
        self._project(project_id)
        self._check_field_type(object_type)
        field = self._field_map(project_id, object_type).get(field_id)
        if field is None:
            raise QTestError(
                404, f"Field {field_id} does not exist among the {object_type} fields of project {project_id}"
            )
        return field

    def field(self, project_id: int, object_type: str, field_id: int) -> Json:
        return self.render_field(self._require_field(project_id, object_type, field_id), swagger=True)

    def _parse_allowed_values(self, raw: Any, what: str, existing: Sequence[Json]) -> list[Json]:
        if not isinstance(raw, list):
            raise bad(f"{what} must be an array of allowed values")
        if len(raw) > 100:
            raise bad(f"{what}: at most 100 allowed values can be created at once, got {len(raw)}")
        labels = {v["label"].lower() for v in existing}
        parsed: list[Json] = []
        for index, item in enumerate(raw):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("label"), str)
                or not item["label"].strip()
            ):
                raise bad(f"{what}[{index}].label is required (a non-empty string)")
            label = item["label"]
            if label.lower() in labels:
                raise bad(f"{what}[{index}].label '{label}' already exists")
            labels.add(label.lower())
            value: Json = {
                "value": self.new_id(),
                "label": label,
                "order": len(existing) + len(parsed) + 1,
                "is_default": bool(item.get("is_default") or item.get("default")),
                "is_active": item.get("is_active", True) is not False,
            }
            if isinstance(item.get("color"), str):
                value["color"] = item["color"]
            parsed.append(value)
        return parsed

    def _require_settings_admin(self, project_id: int, user_id: int | None) -> None:
        """Field settings are a project admin's (or a site admin's) to change; anyone else gets 403."""
        if user_id is None:
            return
        user = self.user(user_id)
        if (user is None or not user.get("admin")) and user_id not in self._project(project_id)["admin_ids"]:
            raise QTestError(403, NO_PERMISSION)

    def current_profile(self, project_id: int, user_id: int) -> Json:
        """The caller's permissions in a project (the swagger's getCurrentProfile, ``UserProfile``). The
        sandbox's rule: every site user is a member of every project and may create, edit and execute its
        objects; field settings are a project or site admin's only (`_require_settings_admin`)."""
        project = self._project(project_id)
        user = self.user(user_id) or {}
        admin = bool(user.get("admin")) or user_id in project["admin_ids"]
        full = {"create": True, "edit": True, "delete": True, "view": True}
        areas = ("release", "build", "module", "requirement", "test_cycle", "test_suite", "defect")
        return {
            "user_id": user_id,
            "project_id": project_id,
            **{area: dict(full) for area in areas},
            "test_case": {**full, "approve": True, "export": True, "import": True, "edit_assignment": True},
            "test_run": {**full, "execute": True, "export": True, "edit_assignment": True},
            "project_setting": {"manage": admin},
            "project": {"admin": admin},
        }

    def create_field(self, project_id: int, object_type: str, body: Any, user_id: int | None = None) -> Json:
        self._project(project_id)
        self._check_field_type(object_type, custom=True)
        self._require_settings_admin(project_id, user_id)
        body = require_object(body, "field")
        label = body.get("label")
        if not isinstance(label, str) or not label.strip():
            raise bad("field.label is required (a non-empty string)")
        if self._field_by_label(project_id, object_type, label) is not None:
            raise bad(
                f"field.label: a {object_type} field labelled '{label}' already exists in project {project_id}"
            )
        data_type = as_int(body.get("data_type"))
        if data_type not in DATA_TYPES:
            codes = ", ".join(f"{code} ({name})" for code, name in DATA_TYPES.items())
            raise bad(
                f"field.data_type is required and must be one of {codes}; got {body.get('data_type')!r}"
            )
        multiple = body.get("multiple", data_type in MULTIPLE_TYPES)
        if data_type in MULTIPLE_TYPES and multiple is not True:
            raise bad(f"field.multiple must be true for data_type {data_type} ({DATA_TYPES[data_type]})")
        with self.tx():
            allowed: list[Json] = []
            if body.get("allowed_values") is not None:
                if data_type not in PICKLIST_TYPES:
                    raise bad(
                        f"field.allowed_values: a {DATA_TYPES[data_type]} field takes no allowed values"
                    )
                allowed = self._parse_allowed_values(body["allowed_values"], "field.allowed_values", [])
            default = next((str(v["value"]) for v in allowed if v["is_default"]), None)
            field = {
                "id": self.new_id(),
                "project_id": project_id,
                "parent_kind": object_type,
                "label": label,
                "required": body.get("required") is True,
                "constrained": data_type in PICKLIST_TYPES,
                "order": len(self._fields(project_id, object_type)) + 1,
                "multiple": bool(multiple),
                "data_type": data_type,
                "searchable": body.get("searchable", True) is not False,
                "default_value": default,
                "system_field": False,
                "original_name": label,
                "is_active": body.get("is_active", True) is not False,
                "allowed_values": allowed,
                "attribute": None,
            }
            self._put("field", field)
            self._fields_cache.pop((project_id, object_type), None)
        return self.render_field(field)

    def allowed_values(self, project_id: int, object_type: str, field_id: int) -> list[Json]:
        field = self._require_field(project_id, object_type, field_id)
        if field["data_type"] not in PICKLIST_TYPES and field["data_type"] != USER_LIST:
            raise bad(
                f"Field '{field['label']}' ({field_id}) is a {DATA_TYPES[field['data_type']]}: it has no allowed values"
            )
        return [self._render_allowed(v) for v in self._allowed_values(field)]

    def add_allowed_values(
        self, project_id: int, object_type: str, field_id: int, body: Any, user_id: int | None = None
    ) -> Json:
        field = self._require_field(project_id, object_type, field_id)
        self._require_settings_admin(project_id, user_id)
        if field["data_type"] not in PICKLIST_TYPES:
            raise bad(
                f"Field '{field['label']}' ({field_id}) is a {DATA_TYPES[field['data_type']]}: it takes no allowed values"
            )
        with self.tx():
            added = self._parse_allowed_values(body, "allowed values", field["allowed_values"])
            field["allowed_values"] = [*field["allowed_values"], *added]
            self._put("field", field)
            self._fields_cache.pop((project_id, object_type), None)
        items = [self._render_allowed(v) for v in added]
        return {"links": [], "total": len(items), "items": items}

    def delete_field(
        self, project_id: int, object_type: str, field_id: int, user_id: int | None = None
    ) -> Json:
        """The swagger's deleteCustomField (``DELETE settings/{objectType}/fields/{fieldId}``: "To delete a
        custom field (at project level)", 200 with an object; 403 without permission; 404 when the field
        does not exist). A system field is not a custom field: 400."""
        self._check_field_type(object_type, custom=True)
        field = self._require_field(project_id, object_type, field_id)
        self._require_settings_admin(project_id, user_id)
        if field["system_field"]:
            raise bad(
                f"Field '{field['label']}' ({field_id}) is a system field: only custom fields can be deleted"
            )
        with self.tx():
            self.conn.execute("DELETE FROM objects WHERE id = ?", (field_id,))
            self._fields_cache.pop((project_id, object_type), None)
        return {}

    def delete_allowed_value(
        self, project_id: int, object_type: str, field_id: int, value: int, user_id: int | None = None
    ) -> Json:
        """The swagger's deleteProjectFieldValue (``DELETE .../allowed-values/{value}``, the value's id as
        in its ``value`` property): of a combo box, multiple selection or check box field (400 otherwise),
        200 with an object; 404 when the field or the value does not exist. The other values keep their
        order numbers (nothing says qTest renumbers them)."""
        self._check_field_type(object_type, custom=True)
        field = self._require_field(project_id, object_type, field_id)
        self._require_settings_admin(project_id, user_id)
        if field["data_type"] not in PICKLIST_TYPES:
            raise bad(
                f"Field '{field['label']}' ({field_id}) is a {DATA_TYPES[field['data_type']]}: it has no allowed values"
            )
        kept = [item for item in field["allowed_values"] if int(item["value"]) != value]
        if len(kept) == len(field["allowed_values"]):
            raise QTestError(404, f"Field '{field['label']}' ({field_id}) has no allowed value {value}")
        with self.tx():
            field["allowed_values"] = kept
            if field.get("default_value") == str(value):
                field["default_value"] = None
            self._put("field", field)
            self._fields_cache.pop((project_id, object_type), None)
        return {}

    def _statuses(self, project_id: int) -> list[Json]:
        cached = self._statuses_cache.get(project_id)
        if cached is None:
            cached = self._select(
                "SELECT body FROM objects WHERE kind = 'status' AND project_id = ? ORDER BY id", (project_id,)
            )
            self._statuses_cache[project_id] = cached
        return cached

    def _status(self, project_id: int, status_id: int) -> Json | None:
        return next((s for s in self._statuses(project_id) if s["id"] == status_id), None)

    def render_status(self, status: Json) -> Json:
        return {k: status[k] for k in ("id", "name", "is_default", "color", "active")}

    def execution_statuses(self, project_id: int) -> list[Json]:
        self._project(project_id)
        return [self.render_status(s) for s in self._statuses(project_id)]

    def _parse_status(self, project_id: int, raw: Any, what: str) -> Json:
        """A ``{"id": N}`` status object naming one of the project's execution statuses."""
        if not isinstance(raw, dict) or as_int(raw.get("id")) is None:
            raise bad(
                f'{what} must be an object {{"id": <execution status id>}} (see '
                f"GET /api/v3/projects/{project_id}/test-runs/execution-statuses), got {raw!r}"
            )
        status = self._status(project_id, as_int(raw["id"]) or 0)
        if status is None:
            known = ", ".join(f"{s['id']} ({s['name']})" for s in self._statuses(project_id))
            raise bad(
                f"{what}.id {raw['id']} is not an execution status of project {project_id}; known: {known}"
            )
        return status

    def _normalize_value(self, field: Json, raw: Any, what: str) -> str:
        """A property value as stored (always a string; "" clears), after checking it fits the field."""
        label = f"field '{field['label']}' ({field['id']})"
        if raw is None:
            return ""
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if isinstance(raw, int | float):
            raw = str(raw)
        if isinstance(raw, list) and field["data_type"] in MULTIPLE_TYPES:
            raw = dumps(raw)
        if not isinstance(raw, str):
            raise bad(f"{what}: the value of {label} must be a string, got {type(raw).__name__}")
        text = raw.strip()
        if text == "":
            return ""
        data_type = field["data_type"]
        if data_type in PICKLIST_TYPES or data_type == USER_LIST:
            choices = {v["value"]: v for v in self._allowed_values(field)}
            many = data_type in MULTIPLE_TYPES or field["multiple"]
            parts = self._split_multi(text, label, what) if many else [text]
            ids: list[int] = []
            for part in parts:
                value = as_int(part)
                if value is None or value not in choices:
                    shown = ", ".join(f"{v['value']} ({v['label']})" for v in list(choices.values())[:12])
                    kind = "a user id of the site" if data_type == USER_LIST else "an allowed value id"
                    raise bad(f"{what}: '{part}' is not {kind} of {label}; allowed: {shown}")
                if value not in ids:
                    ids.append(value)
            return dumps(ids) if many else str(ids[0])
        if data_type in (DATE_PICKER, DATE_TIME):
            moment = parse_iso_datetime(text)
            if moment is None:
                raise bad(f"{what}: the value of {label} must be an ISO 8601 date-time, got {text!r}")
            return format_time(moment)
        if data_type == NUMBER:
            try:
                float(text)
            except ValueError:
                raise bad(f"{what}: the value of {label} must be a number, got {text!r}") from None
            return text
        return raw

    @staticmethod
    def _split_multi(text: str, label: str, what: str) -> list[str]:
        """The multi-select encodings accepted: ``[1,2]`` (JSON array), ``1,2`` and a single ``1``."""
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise bad(f"{what}: the value of {label} is not a JSON array of ids: {text!r}") from None
            if not isinstance(items, list):
                raise bad(f"{what}: the value of {label} must be a JSON array of ids, got {text!r}")
            return [str(item).strip() for item in items]
        return [part.strip() for part in text.split(",") if part.strip()]

    def _parse_properties(
        self, project_id: int, object_type: str, raw: Any, what: str, *, required: bool
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Checked ``properties``: (values by field id, attribute values such as ``description``)."""
        if raw is None:
            if required:
                raise bad(f"{what}.properties is required (an array, possibly empty)")
            return {}, {}
        if not isinstance(raw, list):
            raise bad(f"{what}.properties must be an array of {{field_id, field_value}}")
        fields = self._field_map(project_id, object_type)
        values: dict[str, str] = {}
        attributes: dict[str, str] = {}
        for index, item in enumerate(raw):
            where = f"{what}.properties[{index}]"
            if not isinstance(item, dict):
                raise bad(f"{where} must be an object {{field_id, field_value}}")
            field_id = as_int(item.get("field_id"))
            if field_id is None:
                raise bad(f"{where}.field_id is required (a number)")
            field = fields.get(field_id)
            if field is None:
                raise bad(
                    f"{where}: field_id {field_id} is not a {object_type} field of project {project_id}"
                )
            if not field["is_active"]:
                raise bad(f"{where}: field '{field['label']}' ({field_id}) is inactive")
            value = self._normalize_value(field, item.get("field_value"), where)
            if field.get("attribute"):
                attributes[field["attribute"]] = value
            else:
                values[str(field_id)] = value
        return values, attributes

    def _with_defaults(self, project_id: int, object_type: str, values: dict[str, str]) -> dict[str, str]:
        out = dict(values)
        for field in self._fields(project_id, object_type):
            key = str(field["id"])
            if key not in out and field.get("default_value") and not field.get("attribute"):
                out[key] = field["default_value"]
        return out

    def _value_name(self, field: Json, value: str) -> str | None:
        if value == "":
            return None
        if field["data_type"] in PICKLIST_TYPES or field["data_type"] == USER_LIST:
            labels = {str(v["value"]): v["label"] for v in self._allowed_values(field)}
            if value.startswith("["):
                try:
                    ids = json.loads(value)
                except json.JSONDecodeError:
                    return None
                return ", ".join(labels.get(str(i), str(i)) for i in ids)
            return labels.get(value)
        return None

    def render_properties(self, project_id: int, object_type: str, values: Mapping[str, str]) -> list[Json]:
        """Every active field of the type (empty ones with ``field_value: ""``), in field order."""
        out: list[Json] = []
        for field in self._fields(project_id, object_type):
            if not field["is_active"] or field.get("attribute"):
                continue
            value = values.get(str(field["id"]), "")
            prop: Json = {"field_id": field["id"], "field_name": field["label"], "field_value": value}
            name = self._value_name(field, value)
            if name is not None:
                prop["field_value_name"] = name
            out.append(prop)
        return out

    def _index_properties(self, kind: str, project_id: int, oid: int, values: Mapping[str, str]) -> None:
        """Rewrite the search index rows of one object: one row per value (each id of a multi-select)."""
        self.conn.execute("DELETE FROM prop_index WHERE object_id = ?", (oid,))
        fields = self._field_map(project_id, PROPERTY_TYPE[kind])
        rows: list[tuple[int, int, str, int, str]] = []
        for key, value in values.items():
            if value == "":
                continue
            field = fields.get(int(key))
            if (
                field is not None
                and value.startswith("[")
                and (field["multiple"] or field["data_type"] in MULTIPLE_TYPES)
            ):
                try:
                    parts = [str(v) for v in json.loads(value)]
                except json.JSONDecodeError:
                    parts = [value]
            else:
                parts = [value]
            rows.extend((oid, project_id, kind, int(key), part.lower()) for part in parts)
        if rows:
            self.conn.executemany(
                "INSERT INTO prop_index (object_id, project_id, kind, field_id, value_norm) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
