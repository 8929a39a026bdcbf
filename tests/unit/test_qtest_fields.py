"""Properties by field label become qTest {field_id, field_value}; what cannot be set is named, not sent."""

from __future__ import annotations

from zephyr_qtest.lib.qtest.fields import FieldCatalog

FIELDS = [
    {"id": 9101, "label": "Priority", "data_type": 3, "multiple": False, "constrained": True,
     "allowed_values": [{"value": 7701, "label": "Low"}, {"value": 7702, "label": "Medium"}]},
    {"id": 9102, "label": "Zephyr Key", "data_type": 1, "multiple": False},
    {"id": 9103, "label": "Labels", "data_type": 17, "multiple": True,
     "allowed_values": [{"value": 7801, "label": "Smoke"}, {"value": 7802, "label": "API"}]},
    {"id": 9104, "label": "Assigned To", "data_type": 5, "multiple": False},
    {"id": 9105, "label": "Estimated Time (ms)", "data_type": 7, "multiple": False},
    {"id": 9106, "label": "Retired", "data_type": 1, "is_active": False},
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
        ]
    )
    assert problems == []
    assert encoded == [
        {"field_id": 9101, "field_value": "7702"},
        {"field_id": 9102, "field_value": "SHOP-T1"},
        {"field_id": 9103, "field_value": "[7802, 7801]"},
        {"field_id": 9104, "field_value": "501"},
        {"field_id": 9105, "field_value": "60000"},
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
