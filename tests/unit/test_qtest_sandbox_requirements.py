"""The qTest sandbox's requirements and object links, through a real server: the shapes the swagger
defines (RequirementResource, LinkedArtifactContainer), the status codes it declares, and what it says in
prose (linking ignores what cannot be linked; a link is a pair, never a copy)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.unit.test_qtest_sandbox import Project, assert_status, assert_valid, assert_valid_items
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread

REQUIREMENTS = "/api/v3/projects/{projectId}/requirements"
REQUIREMENT = "/api/v3/projects/{projectId}/requirements/{requirementId}"
LINK = "/api/v3/projects/{projectId}/{objectType}/{objectId}/link"
LINKED = "/api/v3/projects/{projectId}/linked-artifacts"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A sandbox of this module's own, with the rich template (the Zephyr Key field the cases carry)."""
    state = tmp_path_factory.mktemp("qtest_requirements")
    with (
        start_qtest_in_thread(state, seed=7, projects=["Links"], template="rich") as handle,
        httpx.Client(base_url=handle.api_url, headers=handle.headers, timeout=10) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def project_id(api: httpx.Client) -> int:
    return next(p["id"] for p in api.get("/projects").json() if p["name"] == "Links")


@pytest.fixture(scope="module")
def proj(api: httpx.Client, project_id: int) -> Project:
    return Project(api, project_id)


def description_field(api: httpx.Client, project_id: int) -> int:
    fields = api.get(f"/projects/{project_id}/settings/requirements/fields").json()
    return next(f["id"] for f in fields if f["label"] == "Description")


def create_requirement(api: httpx.Client, project_id: int, name: str, description: str = "") -> dict:
    body = {
        "name": name,
        "properties": [{"field_id": description_field(api, project_id), "field_value": description}],
    }
    response = api.post(f"/projects/{project_id}/requirements", json=body)
    assert_status(response, 200, "POST", REQUIREMENTS)
    assert_valid(response.json(), "RequirementResource")
    return response.json()


def test_requirements_are_created_read_updated_and_listed(api: httpx.Client, project_id: int) -> None:
    made = create_requirement(
        api, project_id, "Jira issue 10042", "<p>https://jira/rest/api/2/issue/10042</p>"
    )
    assert made["pid"].startswith("RQ-") and made["name"] == "Jira issue 10042"
    field_id = description_field(api, project_id)
    held = {p["field_id"]: p["field_value"] for p in made["properties"]}
    assert held[field_id] == "<p>https://jira/rest/api/2/issue/10042</p>"

    got = api.get(f"/projects/{project_id}/requirements/{made['id']}")
    assert_status(got, 200, "GET", REQUIREMENT)
    assert got.json() == made
    updated = api.put(
        f"/projects/{project_id}/requirements/{made['id']}",
        json={"name": "Jira issue 10042", "properties": [{"field_id": field_id, "field_value": "new"}]},
    )
    assert_status(updated, 200, "PUT", REQUIREMENT)
    assert {p["field_id"]: p["field_value"] for p in updated.json()["properties"]}[field_id] == "new"

    for index in range(25):
        create_requirement(api, project_id, f"Paged {index}")
    first = api.get(f"/projects/{project_id}/requirements")
    assert_status(first, 200, "GET", REQUIREMENTS)
    assert_valid_items(first.json(), "RequirementResource", "getRequirements")
    assert len(first.json()) == 20  # the swagger's default page size
    everything = api.get(f"/projects/{project_id}/requirements", params={"size": 999}).json()
    assert len(everything) == 26
    assert [r["id"] for r in everything] == sorted(r["id"] for r in everything)

    refused = api.post(f"/projects/{project_id}/requirements", json={"name": "no properties"})
    assert refused.status_code == 400 and "properties" in refused.json()["message"]
    missing = api.get(f"/projects/{project_id}/requirements/1")
    assert missing.status_code == 404


def test_links_are_pairs_read_back_from_both_ends(api: httpx.Client, proj: Project) -> None:
    requirement = create_requirement(api, proj.id, "Jira issue 20001")
    case = proj.case("Linked case", "LNK-T1")
    run = proj.run(case, proj.cycle("Linked cycle")["id"])
    url = f"/projects/{proj.id}/requirements/{requirement['id']}/link"

    linked = api.post(url, params={"type": "test-cases"}, json=[case["id"], 999999999])
    assert_status(linked, 200, "POST", LINK)
    assert_valid_items(linked.json(), "LinkedArtifactContainer", "linkArtifacts")
    # The id that is not a test case is ignored, not refused ("System will ignore those objects...").
    assert [(o["id"], o["pid"], o["link_type"]) for o in linked.json()[0]["objects"]] == [
        (case["id"], case["pid"], "is_covered_by")
    ]
    again = api.post(url, params={"type": "test-cases"}, json=[case["id"]])
    assert len(again.json()[0]["objects"]) == 1  # a pair, never a copy
    api.post(url, params={"type": "test-runs"}, json=[run["id"]]).raise_for_status()

    read = api.get(
        f"/projects/{proj.id}/linked-artifacts", params={"type": "requirements", "ids": [requirement["id"]]}
    )
    assert_status(read, 200, "GET", LINKED)
    assert_valid_items(read.json(), "LinkedArtifactContainer", "find")
    assert [(c["id"], [o["pid"] for o in c["objects"]]) for c in read.json()] == [
        (requirement["id"], [case["pid"], run["pid"]])
    ]
    from_case = api.get(
        f"/projects/{proj.id}/linked-artifacts", params={"type": "test-cases", "ids": [case["id"]]}
    ).json()
    assert [(o["id"], o["link_type"]) for o in from_case[0]["objects"]] == [(requirement["id"], "covers")]


@pytest.mark.parametrize(
    ("object_type", "linked_type", "message"),
    [("test-cases", "requirements", "objectType"), ("requirements", "nonsense", "type")],
)
def test_link_types_outside_the_swagger_enums_are_refused(
    api: httpx.Client, project_id: int, object_type: str, linked_type: str, message: str
) -> None:
    response = api.post(
        f"/projects/{project_id}/{object_type}/1/link", params={"type": linked_type}, json=[1]
    )
    assert response.status_code == 400 and message in response.json()["message"]


def test_jira_imported_requirements_show_external_properties_only_when_asked(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The admin import makes requirements as a site's Jira integration would; getRequirements and
    getRequirement return their ExternalPropertyResource only with includeExternalProperties=true."""
    state = tmp_path_factory.mktemp("qtest_jira_import")
    with (
        start_qtest_in_thread(state, seed=3, projects=["Imported"]) as handle,
        httpx.Client(base_url=handle.api_url, headers=handle.headers, timeout=10) as api,
    ):
        pid = next(p["id"] for p in api.get("/projects").json() if p["name"] == "Imported")
        [made, by_key] = handle.import_jira_issues(
            pid,
            [{"issue_id": 10100, "key": "SHOP-12", "summary": "Checkout"},
             {"issue_id": 10101, "id": "SHOP-13", "jira_url": "https://acme.atlassian.net"}],
        )  # fmt: skip
        assert made["name"] == "SHOP-12 Checkout" and by_key["name"] == "10101"
        assert made["external_properties"] == {
            "id": "10100",
            "link": "https://jira.example.invalid/rest/api/2/issue/10100",
            "unique_id": "SHOP-12",
        }
        assert by_key["external_properties"]["id"] == "SHOP-13"
        assert by_key["external_properties"]["link"] == "https://acme.atlassian.net/rest/api/2/issue/10101"
        create_requirement(api, pid, "Jira issue 7")

        plain = api.get(f"/projects/{pid}/requirements")
        assert all("external_properties" not in r for r in plain.json())
        asked = api.get(f"/projects/{pid}/requirements", params={"includeExternalProperties": "true"})
        assert_status(asked, 200, "GET", REQUIREMENTS)
        assert_valid_items(asked.json(), "RequirementResource")
        assert [r.get("external_properties", {}).get("id") for r in asked.json()] == [
            "10100",
            "SHOP-13",
            None,
        ]
        one = api.get(
            f"/projects/{pid}/requirements/{made['id']}", params={"includeExternalProperties": "true"}
        )
        assert_valid(one.json(), "RequirementResource")
        assert one.json() == made
        assert "external_properties" not in api.get(f"/projects/{pid}/requirements/{made['id']}").json()
