"""Field settings of a qTest project, read once per run, and the rule that turns the mapping's
``{field_label, value}`` properties into qTest's ``{field_id, field_value}`` (the fields the migration
brings to a bare site are created before that, by ``field_setup.py``).

qTest identifies a field by id and a picklist value by its numeric ``value``; the mapping marts name
both by label (the same mapping then works on every site). A label that the project lacks, or a value
that a constrained field does not allow, is not sent: it is returned as a `PropertyProblem` naming the
object, the field and the value, for the run to record and report. Of several values of a multi-valued
field, the allowed ones are sent and only the others reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# qTest field data_type codes (API_NOTES Q-4).
TEXT_BOX, TEXT_AREA, COMBO_BOX, DATE, USER_LIST, RICH_TEXT, NUMBER, CHECK_BOX, DATE_TIME = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
)
URL, MULTI_SELECT = 12, 17
PICKLIST_TYPES = frozenset({COMBO_BOX, MULTI_SELECT, CHECK_BOX})
MULTIPLE_TYPES = frozenset({CHECK_BOX, MULTI_SELECT})
# The vendor's names of the data types (the swagger's createCustomField), for messages.
DATA_TYPE_NAMES: dict[int, str] = {
    TEXT_BOX: "Text box",
    TEXT_AREA: "Text area",
    COMBO_BOX: "Combo box",
    DATE: "Date picker",
    USER_LIST: "User list",
    RICH_TEXT: "Rich text editor",
    NUMBER: "Number",
    CHECK_BOX: "Check box",
    DATE_TIME: "Date time picker",
    URL: "URL",
    MULTI_SELECT: "Multiple selection combobox",
}


@dataclass(frozen=True)
class PropertyProblem:
    field_label: str
    value: Any
    reason: str


@dataclass(frozen=True)
class Field:
    id: int
    label: str
    data_type: int
    multiple: bool
    constrained: bool
    # allowed value label (lower case) -> its numeric value
    allowed: Mapping[str, int]

    @classmethod
    def from_resource(cls, resource: Mapping[str, Any]) -> Field:
        allowed = {
            str(item.get("label", "")).strip().lower(): int(item["value"])
            for item in resource.get("allowed_values") or []
            if item.get("is_active", True) and item.get("value") is not None
        }
        return cls(
            id=int(resource["id"]),
            label=str(resource.get("label") or resource.get("original_name") or ""),
            data_type=int(resource.get("data_type") or TEXT_BOX),
            multiple=bool(resource.get("multiple")),
            constrained=bool(resource.get("constrained"))
            or int(resource.get("data_type") or 0) in PICKLIST_TYPES,
            allowed=allowed,
        )


class FieldCatalog:
    """The fields of one object type of one project, by label (case-insensitive)."""

    def __init__(self, fields: Iterable[Mapping[str, Any]], users: Mapping[str, int] | None = None) -> None:
        self.fields = {}
        for resource in fields:
            if resource.get("is_active", True) is False:
                continue
            field = Field.from_resource(resource)
            self.fields[field.label.strip().lower()] = field
        # qTest username (lower case) -> user id, for user-list fields.
        self.users = {name.lower(): user_id for name, user_id in (users or {}).items()}

    def get(self, label: str) -> Field | None:
        return self.fields.get(label.strip().lower())

    def encode(
        self, properties: Iterable[Mapping[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[PropertyProblem]]:
        """The mapping's properties as qTest ``properties``, and what could not be set (and why)."""
        encoded: list[dict[str, Any]] = []
        problems: list[PropertyProblem] = []
        for prop in properties:
            label, value = str(prop.get("field_label") or ""), prop.get("value")
            field = self.get(label)
            if field is None:
                problems.append(
                    PropertyProblem(label, value, "the qTest project has no field with this label")
                )
                continue
            if value is None:
                continue
            field_value, reason = self._encode_value(field, value)
            if reason:
                problems.append(PropertyProblem(label, value, reason))
            if field_value is not None:
                encoded.append({"field_id": field.id, "field_value": field_value})
        encoded.sort(key=lambda item: item["field_id"])
        return encoded, problems

    def _encode_value(self, field: Field, value: Any) -> tuple[str | None, str | None]:
        """The value as qTest takes it (None: nothing to send), and what could not be set of it (None: all
        of it was). A multi-valued field gets the values it allows even when others are missing."""
        if field.data_type == USER_LIST:
            names = value if isinstance(value, list) else [value]
            ids = [self.users.get(str(name).lower()) for name in names]
            if any(user_id is None for user_id in ids):
                return (
                    None,
                    f"no qTest user named {', '.join(str(n) for n, i in zip(names, ids, strict=True) if i is None)}",
                )
            return (json.dumps(ids) if field.multiple else str(ids[0])), None
        if field.data_type in PICKLIST_TYPES or (field.constrained and field.allowed):
            labels = value if isinstance(value, list) else [value]
            if field.data_type == CHECK_BOX and isinstance(value, bool):
                labels = ["true" if value else "false"]
            values = [field.allowed.get(_label(item)) for item in labels]
            missing = [str(item) for item, found in zip(labels, values, strict=True) if found is None]
            reason = f"not an allowed value of this field: {', '.join(missing)}" if missing else None
            known = [item for item in values if item is not None]
            if field.multiple or field.data_type == MULTI_SELECT:
                # One unknown label must not take the others with it (they are reported, not dropped).
                return (json.dumps(known) if known or not missing else None), reason
            if missing:
                return None, reason
            if len(values) != 1:
                return None, "several values for a single-value field"
            return str(values[0]), None
        if isinstance(value, bool):
            return ("true" if value else "false"), None
        if field.data_type in (DATE, DATE_TIME) and _DAY.match(str(value)):
            # A day (Zephyr's 'yyyy-MM-dd') as the date-time qTest's pickers take.
            return f"{value}T00:00:00Z", None
        if isinstance(value, list | dict):
            return (", ".join(map(str, value)) if isinstance(value, list) else json.dumps(value)), None
        return str(value), None


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()
