"""What the reconciliation counts and how it compares: results per object type, mismatches, pairing of
expected rows with the objects qTest holds, and the normal forms values are compared in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Mismatch:
    source_key: str
    field: str
    expected: Any
    actual: Any


@dataclass
class TypeResult:
    object_type: str
    expected: int = 0
    found: int = 0
    matched: int = 0
    missing: list[str] = field(default_factory=list)
    unaccounted: list[int] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.missing
            and not self.unaccounted
            and not self.mismatches
            and self.expected == self.matched
        )


@dataclass
class Reconciliation:
    project_key: str
    qtest_project_id: int | None
    results: dict[str, TypeResult] = field(default_factory=dict)
    skipped_attachments: list[dict[str, Any]] = field(default_factory=list)
    # The target: the qTest site (as the id map names it) and the qTest project's name.
    target_site: str = ""
    qtest_project_name: str | None = None

    @property
    def target(self) -> str:
        """The target in words, for the report: site and qTest project."""
        if self.qtest_project_id is None:
            return (
                f"qTest site {self.target_site or '(none)'}, no qTest project yet (nothing published there)"
            )
        name = f"'{self.qtest_project_name}' " if self.qtest_project_name else ""
        return f"qTest site {self.target_site}, project {name}(id {self.qtest_project_id})"

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results.values())


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def iso(value: datetime | None) -> str | None:
    """qTest date-times: ISO-8601 in UTC (the marts hold UTC timestamps without a zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def text(value: Any) -> str:
    return "" if value is None else str(value)


def instant(value: Any) -> datetime | None:
    """A date-time as compared: to the millisecond qTest keeps, in UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return datetime.fromisoformat(iso(value).replace("Z", "+00:00"))  # type: ignore[union-attr]
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def same_instant(left: str | None, right: str | None) -> bool:
    """Two qTest date-time strings name the same instant (qTest may answer in another offset)."""
    if not left or not right:
        return left == right
    try:
        return datetime.fromisoformat(left.replace("Z", "+00:00")) == datetime.fromisoformat(
            right.replace("Z", "+00:00")
        )
    except ValueError:
        return left == right


def property_value(value: Any) -> Any:
    """A property value as compared: multi-select ids as a sorted list (qTest writes "[1, 2]" or "[1,2]"),
    a date picker's date-time as its instant (sent "...Z", answered "...+00:00")."""
    value_text = text(value).strip()
    if value_text.startswith("["):
        try:
            return sorted(str(item) for item in json.loads(value_text))
        except ValueError:
            return value_text
    if _DATE_TIME.match(value_text):
        try:
            return instant(value_text).isoformat()  # type: ignore[union-attr]
        except ValueError:
            return value_text
    return value_text


def expected_properties(encoded: Iterable[Mapping[str, Any]]) -> dict[int, Any]:
    """The properties the migration sets on an object ({field_id, field_value} as sent), as compared."""
    return {int(prop["field_id"]): property_value(prop["field_value"]) for prop in encoded}


def held_properties(found: Mapping[str, Any], expected: Mapping[int, Any]) -> dict[int, Any]:
    """qTest's values of the fields the migration set (other fields are not ours to compare)."""
    return {
        int(prop["field_id"]): property_value(prop.get("field_value"))
        for prop in found.get("properties") or []
        if prop.get("field_id") is not None and int(prop["field_id"]) in expected
    }


def compare(result: TypeResult, key: str, pairs: Iterable[tuple[str, Any, Any]]) -> None:
    """Counts the object as equal, or records each field that differs."""
    bad = [Mismatch(key, name, expected, actual) for name, expected, actual in pairs if expected != actual]
    result.mismatches.extend(bad)
    if not bad:
        result.matched += 1


def pair(
    result: TypeResult, rows: list[Mapping[str, Any]], ids: Mapping[str, int], found: Mapping[int, Any]
) -> list[tuple[Mapping[str, Any], Any]]:
    """Expected rows with their qTest objects; records the missing and the unaccounted-for. Adds to what
    `result` holds, so that several kinds (releases and test cycles) can count in one result."""
    result.expected += len(rows)
    result.found += len(found)
    paired = []
    used: set[int] = set()
    for row in rows:
        qtest_id = ids.get(str(row["source_key"]))
        if qtest_id is None or qtest_id not in found:
            result.missing.append(str(row["source_key"]))
            continue
        used.add(qtest_id)
        paired.append((row, found[qtest_id]))
    result.unaccounted = sorted([*result.unaccounted, *(set(found) - used)])
    return paired


def flatten(items: Iterable[Mapping[str, Any]], child_keys: tuple[str, ...]) -> Iterable[Mapping[str, Any]]:
    """A tree qTest answers nested, as a flat sequence (parents before their children)."""
    for item in items:
        yield item
        for child_key in child_keys:
            yield from flatten(item.get(child_key) or [], child_keys)
