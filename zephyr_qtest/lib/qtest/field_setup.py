"""The fields the migration brings: read from the mapping marts, created where the qTest project lacks them,
before any object is written.

A new qTest site has only its default template (REAL_SHAPES qTest 5): the fields a migration invents (the
Zephyr key that makes a resumed run exactly-once, labels, Jira links, executed-by, Zephyr's custom fields)
do not exist until a client creates them through ``POST .../settings/{objectType}/fields``. Without them
every property using them is dropped and the lookups by Zephyr key are off. So each publishing stage first
calls `ensure_fields` with `migration_fields`: the fields the marts' properties set (with the closest qTest
data type, and the values a picklist needs) plus the Zephyr key wherever qTest objects take properties. It
creates what is missing and adds the allowed values missing from the project's picklists, system ones
included (a priority or an environment the site lacks), and says what it did; when everything exists it
costs one read per object type and one pass of the database over the marts. When the token may not change
field settings (403), it stops with a `FieldSetupError` naming each field to create by hand, and nothing
has been written. With creation off (``ZEPHYR_QTEST_CREATE_FIELDS=0``, "report only") it makes only the
Zephyr key fields (the run's own bookkeeping, which exactly-once needs) and lists what else it would have
made; each value that needs it is then a ledger line naming the field.

System fields (the vendor's "Editing System Field Types", qasymphony.zendesk.com article 201616149): "for
all System Fields as Combo box, you can add, edit, and delete values", except those qTest fills itself
(`SELF_FILLED_SYSTEM_FIELDS`), whose values are left alone. A test run's Environment is inherited from the
test suite's ("Project Field Settings", documentation.tricentis.com: its values are added and edited on the
Test Suite), so missing environments go to the test-suites field when the project has one. The swagger's
createProjectFieldAllowedValues names no exception for system fields; should a site still refuse one, the
refusal is logged and its values stay ledger lines naming the field and the value to add.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from zephyr_qtest.lib.http import AmbiguousWriteError, ApiError
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.fields import (
    COMBO_BOX,
    DATA_TYPE_NAMES,
    DATE,
    DATE_TIME,
    MULTI_SELECT,
    MULTIPLE_TYPES,
    NUMBER,
    PICKLIST_TYPES,
    TEXT_AREA,
    TEXT_BOX,
    USER_LIST,
)
from zephyr_qtest.lib.qtest.kinds.base import ZEPHYR_KEY_LABEL
from zephyr_qtest.lib.qtest.kinds.vocabulary import RELEASE, TEST_CASE, TEST_CASE_VERSION, TEST_LOG, TEST_RUN

log = logging.getLogger(__name__)

# The field-settings object types whose objects take properties: each gets the Zephyr key field.
TEST_SUITES = "test-suites"
ZEPHYR_KEY_OBJECT_TYPES: tuple[str, ...] = (
    TEST_CASE.api_segment,
    TEST_RUN.api_segment,
    TEST_SUITES,
    RELEASE.api_segment,
)
# The marts whose rows carry properties, and the object type whose fields they set (a test log takes the
# fields of test runs; an older version of a case, the fields of test cases).
PROPERTY_MARTS: tuple[tuple[str, str], ...] = (
    (str(TEST_CASE.mart), TEST_CASE.api_segment),
    (str(TEST_CASE_VERSION.mart), TEST_CASE.api_segment),
    (str(TEST_RUN.mart), TEST_RUN.api_segment),
    (str(TEST_LOG.mart), TEST_RUN.api_segment),
)
# The closest data type of the Zephyr fields the marts map (``custom_field_map``); Zephyr's custom fields
# (``customFields.<name>``) get theirs from their values' JSON type (`VALUE_TYPES`).
ZEPHYR_FIELD_TYPES: dict[str, int] = {
    "key": TEXT_BOX,
    "automationContent": TEXT_BOX,
    "component": TEXT_BOX,
    "issueLinks": TEXT_AREA,
    "webLinks": TEXT_AREA,
    # An unrun execution's comment, on its run (a log's is its note).
    "comment": TEXT_AREA,
    "labels": MULTI_SELECT,
    "owner": USER_LIST,
    "executedById": USER_LIST,
    "assignedToId": USER_LIST,
    "estimatedTime": NUMBER,
    "jiraProjectVersion": NUMBER,
    "createdOn": DATE_TIME,
    "priority": COMBO_BOX,
    "status": COMBO_BOX,
    "environment": COMBO_BOX,
    "automated": COMBO_BOX,
}
# Zephyr fields whose text values are a picklist's values (read distinct from the marts).
PICKLIST_ZEPHYR_FIELDS: tuple[str, ...] = tuple(
    name for name, data_type in ZEPHYR_FIELD_TYPES.items() if data_type == COMBO_BOX
)
# By the JSON type of the values (a day: "date", a declared single choice: "choice", the marts' marks on
# their text). A day is a date picker (qTest answers it as a date-time at midnight, which the proof compares
# as the same instant).
VALUE_TYPES: dict[str, int] = {
    "date": DATE,
    # A custom field custom_field_map declares a single choice (Zephyr sends the option's name as text).
    "choice": COMBO_BOX,
    "number": NUMBER,
    "boolean": COMBO_BOX,
    "array": MULTI_SELECT,
    "object": TEXT_AREA,
    "string": TEXT_BOX,
}
# System combo boxes whose values qTest fills itself (releases, builds, modules): only their default can be
# set, so values are never added to them.
SELF_FILLED_SYSTEM_FIELDS = frozenset(
    {"module", "target release/build", "affected release/build", "fixed release/build"}
)
# A system field of one object type whose values are edited on another's (test runs inherit the test
# suite's Environment).
INHERITED_VALUES: dict[tuple[str, str], str] = {(TEST_RUN.api_segment, "environment"): TEST_SUITES}
# At most this many allowed values per call (the swagger's createProjectFieldAllowedValues).
VALUES_PER_CALL = 100
# Allowed values named in a message per field; the others are counted.
VALUES_NAMED = 20
PERMISSION_DENIED = 403
# The setting that turns creation off (settings.MappingSettings.create_fields), named in messages.
CREATE_FIELDS_SETTING = "ZEPHYR_QTEST_CREATE_FIELDS"


def _key(label: Any) -> str:
    return str(label or "").strip().lower()


class PropertySource(Protocol):
    """Where the properties the marts set are read from (``mapping.MartRows``)."""

    def property_uses(
        self, table: str, project_key: str, listed_fields: Sequence[str]
    ) -> list[tuple[str, str | None, str, str | None]]: ...


@dataclass(frozen=True)
class FieldNeed:
    """A field the migration sets: on which object type, its label, the closest qTest data type, and the
    allowed values (labels) a picklist must hold."""

    object_type: str
    label: str
    data_type: int
    values: tuple[str, ...] = ()

    @property
    def type_name(self) -> str:
        return DATA_TYPE_NAMES.get(self.data_type, str(self.data_type))

    def body(self) -> dict[str, Any]:
        """The create call's body (the first allowed values with it; the others are added after)."""
        body: dict[str, Any] = {"label": self.label, "data_type": self.data_type}
        if self.data_type in MULTIPLE_TYPES:
            body["multiple"] = True  # the swagger: required for data types 8 and 17
        if self.data_type in PICKLIST_TYPES:
            body["allowed_values"] = [{"label": value} for value in self.values[:VALUES_PER_CALL]]
        return body

    def describe(self) -> str:
        """``test-cases field 'Labels' (Multiple selection combobox; values: api, smoke)`` for messages."""
        text = f"{self.object_type} field '{self.label}' ({self.type_name}"
        if self.values:
            text += f"; values: {name_values(self.values)}"
        return text + ")"


def name_values(values: Sequence[str]) -> str:
    named = ", ".join(values[:VALUES_NAMED])
    return named + (f" and {len(values) - VALUES_NAMED} more" if len(values) > VALUES_NAMED else "")


def _data_type(zephyr_fields: Iterable[str | None], value_types: Iterable[str]) -> int:
    known = sorted({ZEPHYR_FIELD_TYPES[name] for name in zephyr_fields if name in ZEPHYR_FIELD_TYPES})
    if known:
        return known[0]
    types = {value_type for value_type in value_types if value_type != "null"}
    # Values of several JSON types (or none but nulls) keep their text.
    return VALUE_TYPES.get(types.pop(), TEXT_BOX) if len(types) == 1 else TEXT_BOX


def needed_fields(uses: Iterable[tuple[str, str, str | None, str, str | None]]) -> list[FieldNeed]:
    """The fields to hold from what the marts set: (object type, field label, Zephyr field, JSON type of the
    value, item) rows, as `PropertySource.property_uses` reads them with the object type in front; plus
    the Zephyr key on every object type that takes properties. One field per object type and label (the
    label as first written), in object type and label order."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for object_type, label, zephyr_field, value_type, item in uses:
        if not _key(label):
            continue
        group = groups.setdefault(
            (object_type, _key(label)), {"label": label, "zephyr": set(), "types": set(), "items": {}}
        )
        group["zephyr"].add(zephyr_field)
        group["types"].add(value_type)
        if item is not None and _key(item):
            group["items"].setdefault(_key(item), item)
    for object_type in ZEPHYR_KEY_OBJECT_TYPES:
        group = groups.setdefault(
            (object_type, _key(ZEPHYR_KEY_LABEL)),
            {"label": ZEPHYR_KEY_LABEL, "zephyr": set(), "types": set(), "items": {}},
        )
        group["zephyr"].add("key")
    needs = []
    for (object_type, _), group in sorted(groups.items()):
        data_type = _data_type(group["zephyr"], group["types"])
        values = tuple(sorted(group["items"].values(), key=_key)) if data_type in PICKLIST_TYPES else ()
        needs.append(FieldNeed(object_type, group["label"], data_type, values))
    return needs


def migration_fields(source: PropertySource, project_key: str) -> list[FieldNeed]:
    """The fields one project's migration sets, read from its mapping marts (see `needed_fields`)."""
    uses = [
        (object_type, *row)
        for table, object_type in PROPERTY_MARTS
        for row in source.property_uses(table, project_key, PICKLIST_ZEPHYR_FIELDS)
    ]
    return needed_fields(uses)


@dataclass
class FieldSetup:
    """What `ensure_fields` did: how many fields it checked, those it created (with their qTest ids), the
    allowed values it added to existing fields."""

    checked: int = 0
    created: list[tuple[FieldNeed, int]] = field(default_factory=list)
    values_added: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    # Report only (creation off): what would have been created or added, nothing of it written.
    not_created: list[FieldNeed] = field(default_factory=list)
    values_not_added: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    # Allowed values the site refused to add (object type, label, values, its answer).
    refused: list[tuple[str, str, tuple[str, ...], str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.values_added)

    def lines(self) -> list[str]:
        """One line per change (and per change left to do), for the log."""
        lines = [f"created {need.describe()} (id {field_id})" for need, field_id in self.created]
        lines += [
            f"added to {object_type} field '{label}' the allowed values {name_values(values)}"
            for object_type, label, values in self.values_added
        ]
        lines += [
            f"report only ({CREATE_FIELDS_SETTING}=0): not created {need.describe()}"
            for need in self.not_created
        ]
        lines += [
            f"report only ({CREATE_FIELDS_SETTING}=0): not added to {object_type} field '{label}' the "
            f"allowed values {name_values(values)}"
            for object_type, label, values in self.values_not_added
        ]
        lines += [
            f"qTest refused to add to {object_type} field '{label}' the allowed values {name_values(values)} "
            f"({answer}): add them in Field Settings"
            for object_type, label, values, answer in self.refused
        ]
        return lines

    def markdown(self) -> str:
        rows = [
            "| object type | field | data type | qTest id | allowed values added |",
            "|---|---|---|---:|---|",
        ]
        rows += [
            f"| {need.object_type} | {need.label} | {need.type_name} | {field_id} | {name_values(need.values)} |"
            for need, field_id in self.created
        ]
        rows += [
            f"| {object_type} | {label} | (existing) | | {name_values(values)} |"
            for object_type, label, values in self.values_added
        ]
        return "\n".join(rows)


class FieldSetupError(Exception):
    """The migration's fields could not be made: the message names each field (and value) to create by
    hand, and where."""

    def __init__(
        self,
        project_id: int,
        to_create: Sequence[FieldNeed],
        values_to_add: Sequence[tuple[str, str, tuple[str, ...]]],
        cause: str,
    ) -> None:
        self.project_id = project_id
        self.to_create = list(to_create)
        self.values_to_add = list(values_to_add)
        wanted = [need.describe() for need in self.to_create]
        wanted += [
            f"{object_type} field '{label}': the allowed values {name_values(values)}"
            for object_type, label, values in self.values_to_add
        ]
        super().__init__(
            f"qTest project {project_id}: {cause}. Nothing was migrated. Create these in qTest "
            "(Project Settings > Field Settings) or use the token of a project admin (QTEST_API_TOKEN), "
            f"then run again: {'; '.join(wanted)}"
        )


async def _fields_by_label(client: QtestClient, project_id: int, object_type: str) -> dict[str, Mapping]:
    resources = await client.get_fields(project_id, object_type, include_inactive=True)
    return {_key(resource.get("label")): resource for resource in resources}


def _missing_values(resource: Mapping[str, Any], values: Iterable[str]) -> tuple[str, ...]:
    have = {_key(value.get("label")) for value in resource.get("allowed_values") or []}
    return tuple(value for value in values if _key(value) not in have)


async def _create_field(client: QtestClient, project_id: int, need: FieldNeed) -> Mapping[str, Any]:
    try:
        return await client.create_field(project_id, need.object_type, need.body())
    except AmbiguousWriteError:
        # The answer was lost: a label is unique among an object type's fields, so it tells.
        found = (await _fields_by_label(client, project_id, need.object_type)).get(_key(need.label))
        if found is not None:
            return found
        return await client.create_field(project_id, need.object_type, need.body())


async def _add_values(
    client: QtestClient, project_id: int, object_type: str, field_id: int, label: str, values: Sequence[str]
) -> None:
    for start in range(0, len(values), VALUES_PER_CALL):
        chunk = values[start : start + VALUES_PER_CALL]
        try:
            await client.add_allowed_values(project_id, object_type, field_id, chunk)
        except AmbiguousWriteError:
            # Added or not: the field's values tell, and only the missing ones are sent again.
            resource = (await _fields_by_label(client, project_id, object_type)).get(_key(label)) or {}
            missing = _missing_values(resource, chunk)
            if missing:
                await client.add_allowed_values(project_id, object_type, field_id, missing)


def _values_field(
    existing: Mapping[str, Mapping[str, Mapping[str, Any]]], need: FieldNeed, resource: Mapping[str, Any]
) -> tuple[str, Mapping[str, Any]] | None:
    """Where the allowed values `need` lacks are added: (object type, field), None when nowhere (not a
    picklist, or a system field qTest fills itself). An inherited system field's values are added where it
    inherits them from, when the project has that field."""
    data_type = int(resource.get("data_type") or 0)
    if data_type not in PICKLIST_TYPES:
        return None
    if not resource.get("system_field"):
        return need.object_type, resource
    if _key(need.label) in SELF_FILLED_SYSTEM_FIELDS:
        return None
    source_type = INHERITED_VALUES.get((need.object_type, _key(need.label)))
    source = existing.get(source_type or "", {}).get(_key(need.label)) if source_type else None
    if source_type and source is not None and source.get("system_field"):
        return source_type, source
    return need.object_type, resource


async def ensure_fields(
    client: QtestClient, project_id: int, needs: Sequence[FieldNeed], *, create: bool = True
) -> FieldSetup:
    """Creates the `needs` the project lacks, and the allowed values its picklists lack (system ones
    included, see the module's docstring); returns what it did. `create` False (report only): creates only
    the Zephyr key fields and returns what else it would have done. Raises `FieldSetupError` naming what is left to do by
    hand when the token may not (403), or when the Zephyr key field exists but is inactive; nothing else is
    written before."""
    setup = FieldSetup(checked=len(needs))
    object_types = dict.fromkeys(need.object_type for need in needs)
    object_types.update(
        dict.fromkeys(
            source for (object_type, _), source in INHERITED_VALUES.items() if object_type in object_types
        )
    )
    existing = {
        object_type: await _fields_by_label(client, project_id, object_type) for object_type in object_types
    }
    to_create: list[FieldNeed] = []
    # (the need, the object type and id of the field that takes its values, the values it lacks)
    to_extend: list[tuple[FieldNeed, str, int, str, tuple[str, ...]]] = []
    for need in needs:
        resource = existing[need.object_type].get(_key(need.label))
        if resource is None:
            to_create.append(need)
            continue
        if resource.get("is_active", True) is False:
            if _key(need.label) == _key(ZEPHYR_KEY_LABEL):
                raise FieldSetupError(
                    project_id,
                    [],
                    [],
                    f"the {need.object_type} field '{resource.get('label')}' (id {resource.get('id')}) is "
                    "inactive, and a resumed run finds what it created by it: activate it",
                )
            continue  # left as the site has it: its values are reported as not set
        where = _values_field(existing, need, resource) if need.values else None
        if where is not None:
            values_type, values_resource = where
            missing = _missing_values(values_resource, need.values)
            if missing:
                label = str(values_resource.get("label") or need.label)
                to_extend.append((need, values_type, int(values_resource["id"]), label, missing))
    if not create:
        # Report only: of what Zephyr's values need, nothing is made. The Zephyr key is the run's own
        # bookkeeping, not a Zephyr value: without it a create whose answer was lost cannot be found again
        # and would be made twice, so it is created all the same.
        setup.not_created = [need for need in to_create if _key(need.label) != _key(ZEPHYR_KEY_LABEL)]
        to_create = [need for need in to_create if _key(need.label) == _key(ZEPHYR_KEY_LABEL)]
        setup.values_not_added = [
            (values_type, label, missing) for _, values_type, _, label, missing in to_extend
        ]
        to_extend = []
        for line in setup.lines():
            log.warning("qTest project %s: %s", project_id, line)
    done_creating = 0
    extended = 0
    try:
        for need in to_create:
            resource = await _create_field(client, project_id, need)
            field_id = int(resource["id"])
            rest = _missing_values(resource, need.values) if need.data_type in PICKLIST_TYPES else ()
            if rest:
                await _add_values(client, project_id, need.object_type, field_id, need.label, rest)
            setup.created.append((need, field_id))
            done_creating += 1
            log.info("qTest project %s: created the %s", project_id, need.describe())
        for _, values_type, field_id, label, missing in to_extend:
            try:
                await _add_values(client, project_id, values_type, field_id, label, missing)
            except ApiError as error:
                system = existing[values_type][_key(label)].get("system_field")
                if error.status == PERMISSION_DENIED or not system:
                    raise
                # One system field the site keeps closed stops nothing else: its values are ledger lines.
                setup.refused.append((values_type, label, missing, f"{error.status} {error.message}"))
                log.warning("qTest project %s: %s", project_id, setup.lines()[-1])
                extended += 1
                continue
            setup.values_added.append((values_type, label, missing))
            extended += 1
            log.info(
                "qTest project %s: added to %s field '%s' the allowed values %s",
                project_id,
                values_type,
                label,
                name_values(missing),
            )
    except ApiError as error:
        if error.status != PERMISSION_DENIED:
            raise
        raise FieldSetupError(
            project_id,
            to_create[done_creating:],
            [(values_type, label, missing) for _, values_type, _, label, missing in to_extend[extended:]],
            f"the qTest user of this token may not change the project's field settings ({error.message})",
        ) from error
    return setup
