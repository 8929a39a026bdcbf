"""Properties by field label become qTest {field_id, field_value}; what cannot be set is named, not sent.
The fields the migration sets are read from the marts and created on a bare qTest site (the sandbox's
default template) before anything is written; a token that may not is stopped with each field named."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.field_setup import (
    ZEPHYR_KEY_OBJECT_TYPES,
    FieldNeed,
    FieldSetup,
    FieldSetupError,
    ensure_fields,
    migration_fields,
    needed_fields,
)
from zephyr_qtest.lib.qtest.fields import (
    COMBO_BOX,
    DATE,
    MULTI_SELECT,
    NUMBER,
    TEXT_AREA,
    TEXT_BOX,
    USER_LIST,
    FieldCatalog,
)
from zephyr_qtest.lib.qtest.kinds.base import payload_hash_on
from zephyr_qtest.lib.store import Store
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread

FIELDS = [
    {"id": 9101, "label": "Priority", "data_type": 3, "multiple": False, "constrained": True,
     "allowed_values": [{"value": 7701, "label": "Low"}, {"value": 7702, "label": "Medium"}]},
    {"id": 9102, "label": "Zephyr Key", "data_type": 1, "multiple": False},
    {"id": 9103, "label": "Labels", "data_type": 17, "multiple": True,
     "allowed_values": [{"value": 7801, "label": "Smoke"}, {"value": 7802, "label": "API"}]},
    {"id": 9104, "label": "Assigned To", "data_type": 5, "multiple": False},
    {"id": 9105, "label": "Estimated Time (ms)", "data_type": 7, "multiple": False},
    {"id": 9106, "label": "Retired", "data_type": 1, "is_active": False},
    {"id": 9107, "label": "Go-live", "data_type": 4, "multiple": False},
]  # fmt: skip


def catalog() -> FieldCatalog:
    return FieldCatalog(FIELDS, users={"jane.doe": 501})


def test_values_are_encoded_by_field_type() -> None:
    encoded, problems = catalog().encode(
        [
            {"field_label": "priority", "value": "Medium"},  # labels match without regard to case
            {"field_label": "Zephyr Key", "value": "SHOP-T1"},
            {"field_label": "Labels", "value": ["API", "Smoke"]},
            {"field_label": "Assigned To", "value": "Jane.Doe"},
            {"field_label": "Estimated Time (ms)", "value": 60000},
            {"field_label": "Go-live", "value": "2024-03-05", "data_type": "date"},
        ]
    )
    assert problems == []
    assert encoded == [
        {"field_id": 9101, "field_value": "7702"},
        {"field_id": 9102, "field_value": "SHOP-T1"},
        {"field_id": 9103, "field_value": "[7802, 7801]"},
        {"field_id": 9104, "field_value": "501"},
        {"field_id": 9105, "field_value": "60000"},
        {"field_id": 9107, "field_value": "2024-03-05T00:00:00Z"},  # a day, as a picker takes it
    ]


def test_what_cannot_be_set_is_named_and_left_out() -> None:
    encoded, problems = catalog().encode(
        [
            {"field_label": "Category", "value": "Security"},
            {"field_label": "Priority", "value": "Blocker"},
            {"field_label": "Assigned To", "value": "ghost"},
            {"field_label": "Retired", "value": "x"},
            {"field_label": "Zephyr Key", "value": None},
        ]
    )
    assert encoded == []
    assert [(p.field_label, p.value, p.reason) for p in problems] == [
        ("Category", "Security", "the qTest project has no field with this label"),
        ("Priority", "Blocker", "not an allowed value of this field: Blocker"),
        ("Assigned To", "ghost", "no qTest user named ghost"),
        ("Retired", "x", "the qTest project has no field with this label"),
    ]


def test_one_unknown_label_does_not_drop_the_others() -> None:
    encoded, problems = catalog().encode([{"field_label": "Labels", "value": ["API", "nightly", "smoke"]}])
    assert encoded == [{"field_id": 9103, "field_value": "[7802, 7801]"}]
    assert [(p.field_label, p.reason) for p in problems] == [
        ("Labels", "not an allowed value of this field: nightly")
    ]
    encoded, problems = catalog().encode([{"field_label": "Labels", "value": ["nightly"]}])
    assert encoded == [] and len(problems) == 1


# ---------------------------------------------------------------------------- the fields the migration sets


def test_the_fields_needed_come_from_what_the_marts_set() -> None:
    needs = needed_fields(
        [
            ("test-cases", "Zephyr Key", "key", "string", None),
            ("test-cases", "Labels", "labels", "array", "smoke"),
            ("test-cases", "Labels", "labels", "array", "Nightly"),
            ("test-cases", "labels", "labels", "array", "SMOKE"),  # one field, one value, whatever the case
            ("test-cases", "Jira Issues", "issueLinks", "string", None),
            ("test-cases", "Estimated Time (ms)", "estimatedTime", "number", None),
            ("test-cases", "Build Number", "customFields.Build Number", "number", None),
            ("test-cases", "Implemented", "customFields.Implemented", "boolean", "false"),
            ("test-cases", "Notes", "customFields.Notes", "string", None),
            ("test-cases", "Notes", "customFields.Notes", "null", None),
            ("test-cases", "Mixed", "customFields.Mixed", "number", None),
            ("test-cases", "Mixed", "customFields.Mixed", "string", None),
            ("test-cases", "Payload", "customFields.Payload", "object", None),
            # custom_field_map declares it a single choice: its text values are the combo box's values.
            ("test-cases", "Area", "customFields.Area", "choice", "Backend"),
            ("test-cases", "Area", "customFields.Area", "choice", "Données"),
            ("test-runs", "Executed By", "executedById", "string", None),
            ("test-runs", "Environment", "environment", "string", "Staging"),
        ]
    )
    by_key = {(need.object_type, need.label): need for need in needs}
    assert by_key[("test-cases", "Labels")] == FieldNeed(
        "test-cases", "Labels", MULTI_SELECT, ("Nightly", "smoke")
    )
    assert by_key[("test-cases", "Jira Issues")].data_type == TEXT_AREA
    assert by_key[("test-cases", "Estimated Time (ms)")].data_type == NUMBER
    assert by_key[("test-cases", "Build Number")].data_type == NUMBER
    assert by_key[("test-cases", "Implemented")] == FieldNeed(
        "test-cases", "Implemented", COMBO_BOX, ("false",)
    )
    assert by_key[("test-cases", "Notes")].data_type == TEXT_BOX
    assert by_key[("test-cases", "Area")] == FieldNeed(
        "test-cases", "Area", COMBO_BOX, ("Backend", "Données")
    )
    assert by_key[("test-cases", "Mixed")].data_type == TEXT_BOX  # several JSON types keep their text
    assert by_key[("test-cases", "Payload")].data_type == TEXT_AREA
    assert by_key[("test-runs", "Executed By")].data_type == USER_LIST
    assert by_key[("test-runs", "Environment")] == FieldNeed(
        "test-runs", "Environment", COMBO_BOX, ("Staging",)
    )
    # The Zephyr key wherever qTest objects take properties, whether or not a mart sets it there.
    assert {ot for ot, label in by_key if label == "Zephyr Key"} == set(ZEPHYR_KEY_OBJECT_TYPES)
    assert by_key[("releases", "Zephyr Key")].data_type == TEXT_BOX
    assert FieldNeed("test-cases", "Labels", MULTI_SELECT, ("a",)).body() == {
        "label": "Labels",
        "data_type": 17,
        "multiple": True,
        "allowed_values": [{"label": "a"}],
    }


def test_the_marts_are_read_in_one_pass_each(new_embedded_database: Callable[[str], str]) -> None:
    """``property_uses`` against real PostgreSQL: arrays give their items, picklist text (a declared single
    choice's too) and booleans theirs, other values only their type; another project's rows are not read."""
    url = new_embedded_database("zq_fields")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create schema qtest_mapping")
        for table in ("qtest_test_cases", "qtest_test_case_versions", "qtest_test_runs", "qtest_test_logs"):
            conn.execute(f"create table qtest_mapping.{table} (project_key text, properties jsonb)")
        conn.execute(
            "insert into qtest_mapping.qtest_test_cases values "
            """('P', '[{"field_label": "Zephyr Key", "value": "P-T1", "zephyr_field": "key"},
                     {"field_label": "Labels", "value": ["ui", "api"], "zephyr_field": "labels"},
                     {"field_label": "Priority", "value": "Normal", "zephyr_field": "priority"},
                     {"field_label": "Flag", "value": true, "zephyr_field": "customFields.Flag"},
                     {"field_label": "Go-live", "value": "2024-03-05", "zephyr_field": "customFields.Go-live",
                      "data_type": "date"},
                     {"field_label": "Area", "value": "Backend", "zephyr_field": "customFields.Area",
                      "data_type": "choice"},
                     {"field_label": "Reference", "value": "R-1", "zephyr_field": "customFields.Reference"}]'),
               ('P', null),
               ('Q', '[{"field_label": "Other", "value": "x", "zephyr_field": "customFields.Other"}]')"""
        )
        # An older version's values need the fields of test cases too (a label only it has).
        conn.execute(
            "insert into qtest_mapping.qtest_test_case_versions values "
            """('P', '[{"field_label": "Labels", "value": ["legacy"], "zephyr_field": "labels"}]')"""
        )
        conn.execute(
            "insert into qtest_mapping.qtest_test_logs values "
            """('P', '[{"field_label": "Executed By", "value": "alice", "zephyr_field": "executedById"}]')"""
        )
    with Store(url) as store:
        needs = migration_fields(store.marts(), "P")
    by_key = {(need.object_type, need.label): need for need in needs}
    assert by_key[("test-cases", "Labels")].values == ("api", "legacy", "ui")
    assert by_key[("test-cases", "Priority")].values == ("Normal",)
    assert by_key[("test-cases", "Flag")] == FieldNeed("test-cases", "Flag", COMBO_BOX, ("true",))
    assert by_key[("test-runs", "Executed By")].data_type == USER_LIST
    assert by_key[("test-cases", "Go-live")] == FieldNeed("test-cases", "Go-live", DATE)
    # A declared single choice: its text is the combo box's value; other text stays a text box.
    assert by_key[("test-cases", "Area")] == FieldNeed("test-cases", "Area", COMBO_BOX, ("Backend",))
    assert by_key[("test-cases", "Reference")] == FieldNeed("test-cases", "Reference", TEXT_BOX)
    assert ("test-cases", "Other") not in by_key


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[QTestSandboxHandle]:
    """A qTest site as a new one is: the default template only."""
    with start_qtest_in_thread(tmp_path / "bare", seed=8, projects=["Bare"]) as handle:
        yield handle


NEEDS = [
    FieldNeed("test-cases", "Zephyr Key", TEXT_BOX),
    FieldNeed("test-cases", "Labels", MULTI_SELECT, tuple(f"label-{n:03d}" for n in range(130))),
    FieldNeed("test-cases", "Priority", COMBO_BOX, ("Medium", "Blocker")),  # a system field: extended
    FieldNeed("test-runs", "Executed By", USER_LIST),
    FieldNeed("releases", "Zephyr Key", TEXT_BOX),
]


def _ensure(handle: QTestSandboxHandle, needs: list[FieldNeed], **credentials: str) -> FieldSetup:
    async def go() -> FieldSetup:
        async with QtestClient(handle.base_url, **credentials) as client:
            project_id = next(p["id"] for p in await client.list_projects() if p["name"] == "Bare")
            return await ensure_fields(client, project_id, needs)

    return asyncio.run(go())


def _labels(handle: QTestSandboxHandle, object_type: str) -> dict[str, dict]:
    """The project's fields of `object_type` by label, as the site shows them."""
    with httpx.Client(base_url=handle.api_url, headers=handle.headers, timeout=10) as api:
        project_id = api.get("/projects").json()[0]["id"]
        return {
            f["label"]: f for f in api.get(f"/projects/{project_id}/settings/{object_type}/fields").json()
        }


def test_a_bare_site_gets_the_fields_once(bare: QTestSandboxHandle) -> None:
    setup = _ensure(bare, NEEDS, api_token=bare.token)
    assert [(need.object_type, need.label) for need, _ in setup.created] == [
        ("test-cases", "Zephyr Key"),
        ("test-cases", "Labels"),
        ("test-runs", "Executed By"),
        ("releases", "Zephyr Key"),
    ]
    # A system combo box takes new values too: the priority arrives as itself, not as qTest's default.
    assert setup.values_added == [("test-cases", "Priority", ("Blocker",))]
    cases = _labels(bare, "test-cases")
    assert cases["Zephyr Key"]["data_type"] == TEXT_BOX and cases["Zephyr Key"]["system_field"] is False
    # 130 values: more than one call takes.
    assert [v["label"] for v in cases["Labels"]["allowed_values"]] == list(NEEDS[1].values)
    assert cases["Labels"]["multiple"] is True
    assert [v["label"] for v in cases["Priority"]["allowed_values"]][-1] == "Blocker"
    assert _labels(bare, "test-runs")["Executed By"]["data_type"] == USER_LIST
    assert "| releases | Zephyr Key | Text box |" in setup.markdown()

    # Again: nothing to do; a new label of the migration's own list is added, not the whole field.
    more = [*NEEDS[:1], FieldNeed("test-cases", "labels", MULTI_SELECT, ("LABEL-000", "nightly")), *NEEDS[2:]]
    again = _ensure(bare, more, api_token=bare.token)
    assert again.created == [] and again.values_added == [("test-cases", "Labels", ("nightly",))]
    assert again.checked == len(more)
    assert _ensure(bare, more, api_token=bare.token).changed is False


def test_a_token_that_may_not_create_fields_stops_naming_each(bare: QTestSandboxHandle) -> None:
    """Alice is a member of the project, not its admin: qTest answers 403 to her field settings."""
    with pytest.raises(FieldSetupError) as stopped:
        _ensure(bare, NEEDS, username="alice.tester@sandbox.local", password=bare.password)
    message = str(stopped.value)
    assert "may not change the project's field settings" in message and "No permission" in message
    assert "Nothing was migrated" in message
    for need in NEEDS:
        if need.label != "Priority":
            assert need.describe() in message
    assert "test-cases field 'Priority': the allowed values Blocker" in message
    assert "test-cases field 'Labels' (Multiple selection combobox; values: label-000" in message
    assert "and 110 more" in message
    assert [(n.object_type, n.label) for n in stopped.value.to_create] == [
        ("test-cases", "Zephyr Key"),
        ("test-cases", "Labels"),
        ("test-runs", "Executed By"),
        ("releases", "Zephyr Key"),
    ]
    assert "Zephyr Key" not in _labels(bare, "test-cases")  # nothing was made


def test_report_only_writes_nothing_and_names_what_is_missing(bare: QTestSandboxHandle) -> None:
    """Creation off (ZEPHYR_QTEST_CREATE_FIELDS=0): no field and no value for Zephyr's values is made (only
    the Zephyr key, the run's own bookkeeping); what would have been is returned (and logged) by name, so
    each value needing it can be reported."""
    environments = FieldNeed("test-runs", "Environment", COMBO_BOX, ("Staging", "Safari 17 / macOS 14"))

    async def go() -> FieldSetup:
        async with QtestClient(bare.base_url, api_token=bare.token) as client:
            project_id = next(p["id"] for p in await client.list_projects() if p["name"] == "Bare")
            return await ensure_fields(client, project_id, [*NEEDS, environments], create=False)

    before = {object_type: _labels(bare, object_type) for object_type in ("test-cases", "test-runs")}
    setup = asyncio.run(go())
    assert {object_type: set(_labels(bare, object_type)) for object_type in before} == {
        object_type: {*labels, "Zephyr Key"} if object_type == "test-cases" else set(labels)
        for object_type, labels in before.items()
    }
    assert [(need.object_type, need.label) for need, _ in setup.created] == [
        ("test-cases", "Zephyr Key"),
        ("releases", "Zephyr Key"),
    ]
    assert setup.values_added == []
    assert [(need.object_type, need.label) for need in setup.not_created] == [
        ("test-cases", "Labels"),
        ("test-runs", "Executed By"),
    ]
    assert setup.values_not_added == [
        ("test-cases", "Priority", ("Blocker",)),
        ("test-runs", "Environment", ("Safari 17 / macOS 14",)),
    ]
    lines = setup.lines()
    assert (
        "report only (ZEPHYR_QTEST_CREATE_FIELDS=0): not created test-runs field 'Executed By' (User list)"
        in lines
    )
    assert (
        "report only (ZEPHYR_QTEST_CREATE_FIELDS=0): not added to test-runs field 'Environment' the allowed "
        "values Safari 17 / macOS 14"
    ) in lines

    # Creation on: the run's Environment (a system field) gets the missing environment.
    made = _ensure(bare, [environments], api_token=bare.token)
    assert made.values_added == [("test-runs", "Environment", ("Safari 17 / macOS 14",))]
    assert "Safari 17 / macOS 14" in {
        v["label"] for v in _labels(bare, "test-runs")["Environment"]["allowed_values"]
    }


def test_a_row_is_sent_again_once_the_site_can_hold_what_it_could_not() -> None:
    """The hash a row is recorded with names what the project's fields could not hold: the same while that
    stays so (a re-run skips the row), another once the field or value exists (a re-run updates it), the
    mart's own hash when everything fits (rows that lacked nothing are never sent again)."""
    row = {
        "payload_hash": "h1",
        "properties": [
            {"field_label": "Priority", "value": "Medium", "zephyr_field": "priority"},
            {"field_label": "Risk", "value": 3, "zephyr_field": "customFields.Risk"},
        ],
    }
    lacking = payload_hash_on(catalog)(row)
    assert lacking.startswith("h1:unset:") and payload_hash_on(catalog)(row) == lacking
    with_risk = FieldCatalog([*FIELDS, {"id": 9108, "label": "Risk", "data_type": 7}])
    assert payload_hash_on(lambda: with_risk)(row) == "h1"
    row["properties"][0]["value"] = "Blocker"  # a value Priority does not allow
    assert payload_hash_on(lambda: with_risk)(row).startswith("h1:unset:")
