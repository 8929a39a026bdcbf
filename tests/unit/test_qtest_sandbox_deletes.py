"""The qTest sandbox's DELETE endpoints the rollback uses beyond those served before: a requirement (with its
links, from either end), a custom field, and an allowed value (the swagger's deleteRequirementById,
deleteCustomField, deleteProjectFieldValue): 200 when done, 404 when already gone (what makes a rollback
run again finish), 400 for a system field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, int]]:
    with (
        start_qtest_in_thread(tmp_path, projects=["Deletes"]) as handle,
        httpx.Client(base_url=handle.api_url, headers=handle.headers, timeout=10) as client,
    ):
        project_id = next(p["id"] for p in client.get("/projects").json() if p["name"] == "Deletes")
        yield client, project_id


def test_a_requirement_goes_with_its_links(api: tuple[httpx.Client, int]) -> None:
    client, pid = api
    case = client.post(f"/projects/{pid}/test-cases", json={"name": "c", "properties": []}).json()
    requirement = client.post(f"/projects/{pid}/requirements", json={"name": "r", "properties": []}).json()
    linked = client.post(
        f"/projects/{pid}/requirements/{requirement['id']}/link",
        params={"type": "test-cases"},
        json=[case["id"]],
    )
    assert linked.status_code == 200 and linked.json()[0]["objects"]
    deleted = client.delete(f"/projects/{pid}/requirements/{requirement['id']}")
    assert deleted.status_code == 200 and deleted.json() == {}
    assert client.get(f"/projects/{pid}/requirements/{requirement['id']}").status_code == 404
    assert client.delete(f"/projects/{pid}/requirements/{requirement['id']}").status_code == 404
    seen_from_case = client.get(
        f"/projects/{pid}/linked-artifacts", params={"type": "test-cases", "ids": case["id"]}
    )
    assert seen_from_case.json()[0]["objects"] == []


def test_custom_fields_and_allowed_values_are_deleted_system_fields_are_not(
    api: tuple[httpx.Client, int],
) -> None:
    client, pid = api
    fields = f"/projects/{pid}/settings/test-cases/fields"
    made = client.post(fields, json={"label": "Labels", "data_type": 3, "allowed_values": [{"label": "a"}]})
    assert made.status_code == 201
    field_id = made.json()["id"]
    added = client.post(f"{fields}/{field_id}/allowed-values", json=[{"label": "b"}]).json()["items"][0]
    assert client.delete(f"{fields}/{field_id}/allowed-values/{added['value']}").status_code == 200
    assert client.delete(f"{fields}/{field_id}/allowed-values/{added['value']}").status_code == 404
    labels = [v["label"] for v in client.get(f"{fields}/{field_id}/allowed-values").json()]
    assert labels == ["a"]
    assert client.delete(f"{fields}/{field_id}").status_code == 200
    assert client.delete(f"{fields}/{field_id}").status_code == 404
    assert all(f["id"] != field_id for f in client.get(fields, params={"includeInactive": "true"}).json())
    system = next(f for f in client.get(fields).json() if f["system_field"])
    assert client.delete(f"{fields}/{system['id']}").status_code == 400
