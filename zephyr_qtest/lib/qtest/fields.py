"""Field settings of a qTest project, read once per run, and the rule that turns the mapping's
``{field_label, value}`` properties into qTest's ``{field_id, field_value}``.

qTest identifies a field by id and a picklist value by its numeric ``value``; the mapping marts name
both by label (the same mapping then works on every site). A label that the project lacks, or a value
that a constrained field does not allow, is not sent: it is returned as a `PropertyProblem` naming the
object, the field and the value, for the run to record and report.
"""

from __future__ import annotations

import json
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
_PICKLISTS = frozenset({COMBO_BOX, MULTI_SELECT, CHECK_BOX})


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
            or int(resource.get("data_type") or 0) in _PICKLISTS,
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
                continue
            encoded.append({"field_id": field.id, "field_value": field_value})
        encoded.sort(key=lambda item: item["field_id"])
        return encoded, problems

    def _encode_value(self, field: Field, value: Any) -> tuple[str, str | None]:
        if field.data_type == USER_LIST:
            names = value if isinstance(value, list) else [value]
            ids = [self.users.get(str(name).lower()) for name in names]
            if any(user_id is None for user_id in ids):
                return (
                    "",
                    f"no qTest user named {', '.join(str(n) for n, i in zip(names, ids, strict=True) if i is None)}",
                )
            return (json.dumps(ids) if field.multiple else str(ids[0])), None
        if field.data_type in _PICKLISTS or (field.constrained and field.allowed):
            labels = value if isinstance(value, list) else [value]
            if field.data_type == CHECK_BOX and isinstance(value, bool):
                labels = ["true" if value else "false"]
            values = [field.allowed.get(_label(item)) for item in labels]
            missing = [str(item) for item, found in zip(labels, values, strict=True) if found is None]
            if missing:
                return "", f"not an allowed value of this field: {', '.join(missing)}"
            if field.multiple or field.data_type == MULTI_SELECT:
                return json.dumps(values), None
            if len(values) != 1:
                return "", "several values for a single-value field"
            return str(values[0]), None
        if isinstance(value, bool):
            return ("true" if value else "false"), None
        if isinstance(value, list | dict):
            return (", ".join(map(str, value)) if isinstance(value, list) else json.dumps(value)), None
        return str(value), None


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()
