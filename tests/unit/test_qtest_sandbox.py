"""The qTest Manager sandbox, exercised through a real uvicorn server on a free port.

Every answer a migration reads is validated against the vendor swagger's own definitions (the copy in
``zephyr_qtest/sandbox/qtest/spec/``, Swagger 2.0 definitions checked as JSON Schema draft 4), and every
create answers the status code the swagger declares. The rest checks the behaviour the swagger describes
in prose or leaves open (paging shapes, versions, call-to-test, 413, search, the bulk queue, restart on
the same state directory) and the switches (429 with budget headers, 5xx, drops, lost answers).
"""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft4Validator

import zephyr_qtest.sandbox.qtest as qtest_package
from zephyr_qtest.sandbox.qtest.search import QueryError, parse_query
from zephyr_qtest.sandbox.qtest.serve import QTestSandboxHandle, start_qtest_in_thread
from zephyr_qtest.sandbox.qtest.template import DEFAULT_TEMPLATE, RICH_TEMPLATE, USERS

SPEC = Path(qtest_package.__file__).parent / "spec" / "qtest-manager-v3.swagger.yaml"
CAP = 2048  # a small attachment cap, so the 413 test uploads kilobytes, not 50 MB
Json = dict[str, Any]


# ---------------------------------------------------------------------------- the vendor schemas


@functools.cache
def _swagger() -> Json:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader)


@functools.cache
def _validator(definition: str) -> Draft4Validator:
    return Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": _swagger()["definitions"]})


def assert_valid(instance: Any, definition: str, where: str = "") -> None:
    errors = sorted(_validator(definition).iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, f"{where or definition}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
    )


def assert_valid_items(items: Any, definition: str, where: str = "") -> None:
    assert isinstance(items, list), f"{where}: expected a plain array, got {type(items).__name__}"
    for index, item in enumerate(items):
        assert_valid(item, definition, f"{where}[{index}]")


def declared_statuses(method: str, template: str) -> set[int]:
    operation = _swagger()["paths"][template][method.lower()]
    return {int(code) for code in operation["responses"]}


def assert_status(response: httpx.Response, expected: int, method: str, template: str) -> None:
    """The answer's code is the expected one, and the swagger declares it for the operation."""
    assert response.status_code == expected, (
        f"{method} {template}: {response.status_code} {response.text[:300]}"
    )
    assert expected in declared_statuses(method, template), f"{method} {template} does not declare {expected}"


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def qtest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QTestSandboxHandle]:
    """A sandbox shared by the tests that do not flip switches. The rich template: these tests write the
    fields a migration would otherwise create first (Zephyr Key, Labels...)."""
    state = tmp_path_factory.mktemp("qtest_state")
    # Bulk jobs finish by polls only here, so a slow machine cannot skip the IN_PROCESSING answer.
    with start_qtest_in_thread(
        state,
        seed=5,
        attachment_max_bytes=CAP,
        queue_delay_s=None,
        projects=["Sandbox A"],
        template="rich",
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def api(qtest: QTestSandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=qtest.api_url, headers=qtest.headers, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def project_id(api: httpx.Client) -> int:
    return next(p["id"] for p in api.get("/projects").json() if p["name"] == "Sandbox A")


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[QTestSandboxHandle]:
    """A sandbox of its own (rich template), for tests that flip switches or restart."""
    with start_qtest_in_thread(tmp_path / "state", seed=11, projects=["Fresh"], template="rich") as handle:
        yield handle


class Project:
    """Field and status lookups of one project, by label (as a migration resolves them)."""

    def __init__(self, api: httpx.Client, project_id: int) -> None:
        self.api = api
        self.id = project_id
        self.fields = {
            object_type: {
                f["label"]: f for f in api.get(f"/projects/{project_id}/settings/{object_type}/fields").json()
            }
            for object_type in ("test-cases", "test-runs", "test-suites", "releases")
        }
        self.statuses = {
            s["name"]: s["id"] for s in api.get(f"/projects/{project_id}/test-runs/execution-statuses").json()
        }

    def field(self, object_type: str, label: str) -> int:
        return self.fields[object_type][label]["id"]

    def value(self, object_type: str, label: str, value_label: str) -> int:
        field = self.fields[object_type][label]
        return next(v["value"] for v in field["allowed_values"] if v["label"] == value_label)

    def prop(self, object_type: str, label: str, value: str) -> Json:
        return {"field_id": self.field(object_type, label), "field_value": value}

    def case(self, name: str, zephyr_key: str, **extra: Any) -> Json:
        body = {"name": name, "properties": [self.prop("test-cases", "Zephyr Key", zephyr_key)], **extra}
        response = self.api.post(f"/projects/{self.id}/test-cases", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def cycle(self, name: str, parent_id: int = 0, parent_type: str = "root") -> Json:
        response = self.api.post(
            f"/projects/{self.id}/test-cycles",
            params={"parentId": parent_id, "parentType": parent_type},
            json={"name": name},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def run(self, case: Json, parent_id: int, parent_type: str = "test-cycle", **extra: Any) -> Json:
        response = self.api.post(
            f"/projects/{self.id}/test-runs",
            params={"parentId": parent_id, "parentType": parent_type},
            json={
                "name": f"Run of {case['pid']}",
                "test_case": {"id": case["id"]},
                "properties": [],
                **extra,
            },
        )
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture(scope="module")
def proj(api: httpx.Client, project_id: int) -> Project:
    return Project(api, project_id)


def client_for(handle: QTestSandboxHandle) -> httpx.Client:
    return httpx.Client(base_url=handle.api_url, headers=handle.headers, timeout=10)


def basic(name: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:".encode()).decode()


# ---------------------------------------------------------------------------- auth


def test_auth_api_token_oauth_grants_status_and_revoke(qtest: QTestSandboxHandle, api: httpx.Client) -> None:
    with httpx.Client(base_url=qtest.base_url, timeout=10) as raw:
        assert raw.get("/api/v3/projects").status_code == 401
        assert raw.get("/api/v3/projects", headers={"Authorization": "bearer nope"}).status_code == 401
        assert raw.get("/api/v3/projects", headers={"Authorization": qtest.token}).status_code == 401
        # The scheme is matched case-insensitively.
        assert (
            raw.get("/api/v3/projects", headers={"Authorization": f"Bearer {qtest.token}"}).status_code == 200
        )

        status = raw.get("/oauth/status", headers=qtest.headers)
        assert status.status_code == 200
        assert_valid(status.json(), "OAuthTokenStatusVM")
        assert status.json()["expiration"] == 0  # the API token never expires

        form = {"grant_type": "password", "username": qtest.username, "password": qtest.password}
        assert raw.post("/oauth/token", data=form).status_code == 401  # no Basic header
        assert raw.post("/oauth/token", data=form, headers={"Authorization": "Basic !!"}).status_code == 401
        wrong = raw.post(
            "/oauth/token", data={**form, "password": "nope"}, headers={"Authorization": basic("acme")}
        )
        assert wrong.status_code == 400
        login = raw.post("/oauth/token", data=form, headers={"Authorization": basic("acme")})
        assert login.status_code == 200, login.text
        assert_valid(login.json(), "OAuthResponse")
        tokens = login.json()
        assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
        bearer = {"Authorization": f"bearer {tokens['access_token']}"}
        assert raw.get("/api/v3/projects", headers=bearer).status_code == 200
        expiring = raw.get("/oauth/status", headers=bearer).json()
        assert expiring["expiration"] > time.time() * 1000 and expiring["validityInMilliseconds"] > 0

        refreshed = raw.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers={"Authorization": basic("qtest-api")},
        )
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refresh_token"] == tokens["refresh_token"]
        new_bearer = {"Authorization": f"bearer {refreshed.json()['access_token']}"}
        assert raw.get("/api/v3/projects", headers=new_bearer).status_code == 200
        assert raw.get("/api/v3/projects", headers=bearer).status_code == 401  # replaced
        assert raw.post("/oauth/revoke", headers=new_bearer).status_code == 200
        assert raw.get("/api/v3/projects", headers=new_bearer).status_code == 401
        again = raw.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers={"Authorization": basic("qtest-api")},
        )
        assert again.status_code == 400  # revoking logged the refresh token out too
    # The API token still works after all that.
    assert api.get("/projects").status_code == 200


# ---------------------------------------------------------------------------- projects, users, fields


def test_projects_users_and_paging_shapes(api: httpx.Client, project_id: int) -> None:
    projects = api.get("/projects")
    assert projects.headers["X-Item-Total"] == str(len(projects.json()))
    assert_valid_items(projects.json(), "ProjectResource", "projects")
    created = api.post("/projects", json={"name": "Second project", "description": "made by a test"})
    assert_status(created, 201, "POST", "/api/v3/projects")
    assert_valid(created.json(), "ProjectResource")
    assert api.get(f"/projects/{created.json()['id']}").json() == created.json()
    duplicate = api.post("/projects", json={"name": "second PROJECT"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["message"]
    missing = api.get("/projects/1")
    assert missing.status_code == 404 and missing.json() == {"message": "Project 1 does not exist"}
    assert api.get("/projects", params={"page": 0}).status_code == 400  # pages are 1-based

    users = api.get(f"/projects/{project_id}/users").json()
    assert_valid_items(users, "UserResource", "users")
    assert len(users) == len(USERS) and any(u["status"] == 2 for u in users)
    active_only = api.get(f"/projects/{project_id}/users", params={"inactive": "false"}).json()
    assert len(active_only) == len(USERS) - 1
    found = api.get("/users/search", params={"username": "alice"})
    assert_valid(found.json(), "SearchUserResourceExtensionResponse")
    assert [u["username"] for u in found.json()["items"]] == ["alice.tester@sandbox.local"]


def test_template_fields_and_statuses_have_site_specific_ids(api: httpx.Client, proj: Project) -> None:
    for object_type, specs in RICH_TEMPLATE.items():
        fields = api.get(f"/projects/{proj.id}/settings/{object_type}/fields").json()
        assert_valid_items(fields, "FieldResource", object_type)
        assert [f["label"] for f in fields] == [spec.label for spec in specs]
    case_fields = proj.fields["test-cases"]
    for label in (
        "Priority",
        "Status",
        "Type",
        "Assigned To",
        "Zephyr Key",
        "Component",
        "Labels",
        "Jira Issues",
    ):
        assert label in case_fields
    assert [v["label"] for v in case_fields["Priority"]["allowed_values"]] == [
        "Low",
        "Medium",
        "High",
        "Urgent",
    ]
    assert [v["label"] for v in case_fields["Status"]["allowed_values"]] == [
        "New",
        "In Review",
        "Approved",
        "Obsolete",
    ]
    assert case_fields["Labels"]["data_type"] == 17 and case_fields["Labels"]["multiple"] is True
    assert {"Environment", "Executed By", "Planned Start Date", "Zephyr Key"} <= set(proj.fields["test-runs"])
    ids = [f["id"] for f in case_fields.values()] + [
        v["value"] for v in case_fields["Priority"]["allowed_values"]
    ]
    assert min(ids) > 1_000_000  # not 1, 2, 3

    statuses = api.get(f"/projects/{proj.id}/test-runs/execution-statuses").json()
    assert_valid_items(statuses, "StatusResource", "execution-statuses")
    assert [s["name"] for s in statuses] == ["Passed", "Failed", "Incomplete", "Blocked", "Unexecuted"]
    assert not {s["id"] for s in statuses} & set(range(601, 606))
    # Another project gets its own ids for the same labels.
    other = api.post("/projects", json={"name": "Ids differ"}).json()["id"]
    other_fields = {
        f["label"]: f["id"] for f in api.get(f"/projects/{other}/settings/test-cases/fields").json()
    }
    assert other_fields["Zephyr Key"] != case_fields["Zephyr Key"]["id"]

    allowed = api.get(
        f"/projects/{proj.id}/settings/test-cases/fields/{case_fields['Labels']['id']}/allowed-values"
    )
    assert_valid_items(allowed.json(), "AllowedValueResource")
    assert allowed.headers["X-Item-Total"] == "5"


def test_custom_fields_and_allowed_values_can_be_created(api: httpx.Client, proj: Project) -> None:
    base = f"/projects/{proj.id}/settings/test-cases/fields"
    created = api.post(
        base, json={"label": "Risk", "data_type": 3, "allowed_values": [{"label": "Low"}, {"label": "High"}]}
    )
    assert_status(created, 201, "POST", "/api/v3/projects/{projectId}/settings/{objectType}/fields")
    assert_valid(created.json(), "FieldResource")
    field_id = created.json()["id"]
    assert [v["label"] for v in created.json()["allowed_values"]] == ["Low", "High"]
    more = api.post(f"{base}/{field_id}/allowed-values", json=[{"label": "Critical"}])
    assert more.status_code == 201, more.text
    assert_valid(more.json(), "AllowedValueResponseResource")
    labels = [v["label"] for v in api.get(f"{base}/{field_id}/allowed-values").json()]
    assert labels == ["Low", "High", "Critical"]
    assert_valid(api.get(f"{base}/{field_id}").json(), "FieldResourceSwagger")

    assert api.post(base, json={"label": "Risk", "data_type": 1}).status_code == 400  # label taken
    assert api.post(base, json={"label": "Odd", "data_type": 99}).status_code == 400
    assert api.post(base, json={"label": "Multi", "data_type": 17, "multiple": False}).status_code == 400
    assert api.post(f"{base}/{field_id}/allowed-values", json=[{"label": "high"}]).status_code == 400
    assert (
        api.post(
            f"/projects/{proj.id}/settings/test-steps/fields", json={"label": "X", "data_type": 1}
        ).status_code
        == 400
    )
    dup = api.post(f"{base}/{proj.field('test-cases', 'Zephyr Key')}/allowed-values", json=[{"label": "x"}])
    assert dup.status_code == 400 and "Zephyr Key" in dup.json()["message"]


def test_property_values_are_checked_against_the_field(api: httpx.Client, proj: Project) -> None:
    url = f"/projects/{proj.id}/test-cases"

    def create(properties: list[Json]) -> httpx.Response:
        return api.post(url, json={"name": "Props", "properties": properties})

    unknown = create([{"field_id": 42, "field_value": "x"}])
    assert unknown.status_code == 400 and "field_id 42" in unknown.json()["message"]
    wrong_value = create([proj.prop("test-cases", "Priority", "999")])
    assert wrong_value.status_code == 400 and "'Priority'" in wrong_value.json()["message"]
    by_label = create([proj.prop("test-cases", "Priority", "High")])  # labels are not values
    assert by_label.status_code == 400 and "Priority" in by_label.json()["message"]
    assert create([proj.prop("test-cases", "Assigned To", "12")]).status_code == 400
    assert api.post(url, json={"name": "No properties"}).status_code == 400  # required by the swagger

    smoke, ui = proj.value("test-cases", "Labels", "smoke"), proj.value("test-cases", "Labels", "ui")
    high = proj.value("test-cases", "Priority", "High")
    admin = api.get(f"/projects/{proj.id}/users").json()[0]["id"]
    for encoding in (f"[{smoke},{ui}]", f"{smoke},{ui}", f'["{smoke}", "{ui}"]'):
        case = create(
            [
                proj.prop("test-cases", "Labels", encoding),
                proj.prop("test-cases", "Priority", str(high)),
                proj.prop("test-cases", "Assigned To", str(admin)),
            ]
        ).json()
        props = {p["field_name"]: p for p in case["properties"]}
        assert props["Labels"]["field_value"] == f"[{smoke},{ui}]"
        assert props["Labels"]["field_value_name"] == "smoke, ui"
        assert (
            props["Priority"]["field_value"] == str(high) and props["Priority"]["field_value_name"] == "High"
        )
        assert props["Status"]["field_value_name"] == "New"  # the template default
    bad_multi = create([proj.prop("test-cases", "Labels", f"[{smoke},{high}]")])
    assert bad_multi.status_code == 400 and "'Labels'" in bad_multi.json()["message"]


# The fields the rich template adds: on a new qTest site they do not exist (REAL_SHAPES qTest 5).
MIGRATION_FIELDS = {"Zephyr Key", "Component", "Labels", "Jira Issues", "Executed By"}


def login(handle: QTestSandboxHandle, username: str) -> dict[str, str]:
    """The bearer header of a user logged in with the password grant."""
    form = {"grant_type": "password", "username": username, "password": handle.password}
    answer = httpx.post(
        f"{handle.base_url}/oauth/token", data=form, headers={"Authorization": basic("site")}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"bearer {answer.json()['access_token']}"}


def test_a_new_site_has_the_default_template_until_a_client_creates_fields(tmp_path: Path) -> None:
    with start_qtest_in_thread(tmp_path / "bare", seed=4, projects=["Bare"]) as bare, client_for(bare) as api:
        assert bare.info()["settings"]["template"] == "default"
        project_id = api.get("/projects").json()[0]["id"]
        base = f"/projects/{project_id}/settings"
        for object_type, specs in DEFAULT_TEMPLATE.items():
            fields = api.get(f"{base}/{object_type}/fields").json()
            assert_valid_items(fields, "FieldResource", object_type)
            assert [f["label"] for f in fields] == [spec.label for spec in specs]
            assert (
                all(f["system_field"] for f in fields) and not {f["label"] for f in fields} & MIGRATION_FIELDS
            )
        # A client brings its own: the field, then a property and a search by it.
        created = api.post(f"{base}/test-cases/fields", json={"label": "Zephyr Key", "data_type": 1})
        assert_status(created, 201, "POST", "/api/v3/projects/{projectId}/settings/{objectType}/fields")
        assert created.json()["system_field"] is False
        labels = api.post(
            f"{base}/test-cases/fields",
            json={
                "label": "Labels",
                "data_type": 17,
                "multiple": True,
                "allowed_values": [{"label": "smoke"}],
            },
        ).json()
        added = api.post(f"{base}/test-cases/fields/{labels['id']}/allowed-values", json=[{"label": "ui"}])
        assert added.status_code == 201, added.text
        values = {
            v["label"]: v["value"]
            for v in api.get(f"{base}/test-cases/fields/{labels['id']}/allowed-values").json()
        }
        case = api.post(
            f"/projects/{project_id}/test-cases",
            json={
                "name": "Keyed",
                "properties": [
                    {"field_id": created.json()["id"], "field_value": "BARE-T1"},
                    {"field_id": labels["id"], "field_value": f"[{values['smoke']},{values['ui']}]"},
                ],
            },
        )
        assert case.status_code == 200, case.text
        found = api.post(
            f"/projects/{project_id}/search",
            json={"object_type": "test-cases", "query": "'Zephyr Key' = 'BARE-T1'"},
        ).json()
        assert [item["id"] for item in found["items"]] == [case.json()["id"]]

        # Field settings are a project admin's to change: another member gets qTest's 403.
        alice = login(bare, "alice.tester@sandbox.local")
        refused = api.post(
            f"{base}/test-runs/fields", json={"label": "Zephyr Key", "data_type": 1}, headers=alice
        )
        assert refused.status_code == 403 and refused.json() == {"message": "No permission"}
        refused_values = api.post(
            f"{base}/test-cases/fields/{labels['id']}/allowed-values", json=[{"label": "api"}], headers=alice
        )
        assert_status(
            refused_values,
            403,
            "POST",
            "/api/v3/projects/{projectId}/settings/{objectType}/fields/{fieldId}/allowed-values",
        )
        assert "Zephyr Key" not in {f["label"] for f in api.get(f"{base}/test-runs/fields").json()}
        # A project she created is hers to set up.
        own = api.post("/projects", json={"name": "Alice's"}, headers=alice).json()["id"]
        mine = api.post(
            f"/projects/{own}/settings/test-runs/fields",
            json={"label": "Zephyr Key", "data_type": 1},
            headers=alice,
        )
        assert mine.status_code == 201, mine.text


def test_the_rich_template_is_a_switch(tmp_path: Path) -> None:
    with (
        start_qtest_in_thread(tmp_path / "rich", projects=["Rich"], template="rich") as rich,
        client_for(rich) as api,
    ):
        project_id = api.get("/projects").json()[0]["id"]
        labels = {
            f["label"]
            for object_type in ("test-cases", "test-runs")
            for f in api.get(f"/projects/{project_id}/settings/{object_type}/fields").json()
        }
        assert labels >= MIGRATION_FIELDS
    with pytest.raises(ValueError, match="unknown qTest sandbox template 'fancy'"):
        start_qtest_in_thread(tmp_path / "fancy", template="fancy")


# ---------------------------------------------------------------------------- modules and test cases


def test_modules_tree(api: httpx.Client, proj: Project) -> None:
    base = f"/projects/{proj.id}/modules"
    root = api.post(base, json={"name": "Payments", "description": "root"})
    assert_status(root, 201, "POST", "/api/v3/projects/{projectId}/modules")
    assert_valid(root.json(), "ModuleResource")
    assert root.json()["pid"].startswith("MD-")
    child = api.post(base, params={"parentId": root.json()["id"]}, json={"name": "Refunds"}).json()
    grandchild = api.post(base, params={"parentId": child["id"]}, json={"name": "Partial"}).json()
    assert child["parent_id"] == root.json()["id"]

    assert [m["name"] for m in api.get(base, params={"parentId": root.json()["id"]}).json()] == ["Refunds"]
    tree = api.get(base, params={"expand": "descendants"}).json()
    assert_valid_items(tree, "ModuleResource", "modules")
    payments = next(m for m in tree if m["id"] == root.json()["id"])
    assert payments["children"][0]["children"][0]["id"] == grandchild["id"]
    assert [m["id"] for m in api.get(base, params={"search": "partial"}).json()] == [grandchild["id"]]

    # The swagger takes the parent as the parentId query parameter (qTest 6+); a body's parent_id, the
    # pre-6 way, is not read: that module lands under the root.
    in_body = api.post(base, json={"name": "Body parent", "parent_id": root.json()["id"]})
    assert in_body.status_code == 201 and "parent_id" not in in_body.json()
    assert "Body parent" not in [
        m["name"] for m in api.get(base, params={"parentId": root.json()["id"]}).json()
    ]

    renamed = api.put(f"{base}/{child['id']}", json={"name": "Refunds (all)"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Refunds (all)"
    proj.case("In a module", "MOD-T1", parent_id=grandchild["id"])
    blocked = api.delete(f"{base}/{root.json()['id']}")
    assert blocked.status_code == 400 and "force=true" in blocked.json()["message"]
    deleted = api.delete(f"{base}/{root.json()['id']}", params={"force": "true"})
    assert deleted.status_code == 200
    assert_valid(deleted.json(), "Message")
    assert api.get(f"{base}/{grandchild['id']}").status_code == 404


def test_siblings_are_ordered_by_creation_and_only_a_drag_moves_one(
    api: httpx.Client, proj: Project, qtest: QTestSandboxHandle
) -> None:
    """A module's and a test cycle's ``order`` counts its creation among its siblings (an ``order`` in the
    body is not read: no source says qTest takes one); the admin drag, a user's move in qTest's tree,
    numbers the siblings again."""
    base = f"/projects/{proj.id}/modules"
    parent = api.post(base, json={"name": "Ordered"}).json()
    made = [
        api.post(base, params={"parentId": parent["id"]}, json={"name": name, "order": 9 - n}).json()
        for n, name in enumerate(("first", "second", "third"))
    ]
    assert [m["order"] for m in made] == [1, 2, 3]
    qtest.drag(proj.id, "module", made[2]["id"], 1)
    listed = api.get(base, params={"parentId": parent["id"]}).json()
    assert [m["name"] for m in listed] == ["third", "first", "second"]
    assert [m["order"] for m in listed] == [1, 2, 3]

    cycles = f"/projects/{proj.id}/test-cycles"
    root = api.post(
        cycles, params={"parentId": 0, "parentType": "root"}, json={"name": "Ordered cycles"}
    ).json()
    under = {"parentId": root["id"], "parentType": "test-cycle"}
    a, b = (api.post(cycles, params=under, json={"name": name}).json() for name in ("a", "b"))
    assert (a["order"], b["order"]) == (1, 2)
    qtest.drag(proj.id, "test-cycle", b["id"], 1)
    held = {c["name"]: c["order"] for c in api.get(cycles, params=under).json()}
    assert held == {"b": 1, "a": 2}


def test_test_case_round_trip_versions_and_approve(api: httpx.Client, proj: Project) -> None:
    base = f"/projects/{proj.id}/test-cases"
    created = api.post(
        base,
        json={
            "name": "Login works",
            "description": "objective",
            "precondition": "a user exists",
            "properties": [proj.prop("test-cases", "Zephyr Key", "SHOP-T100")],
            "test_steps": [
                {"description": "Open [~page]", "expected": "Shown", "order": 1},
                {"description": "Sign in", "expected": "Signed in", "order": 2},
            ],
        },
    )
    assert_status(created, 200, "POST", "/api/v3/projects/{projectId}/test-cases")
    case = created.json()
    assert_valid(case, "TestCaseWithCustomFieldResource")
    assert case["version"] == "0.1" and case["pid"].startswith("TC-")
    assert [s["order"] for s in case["test_steps"]] == [1, 2] and all(s["id"] for s in case["test_steps"])
    module = api.get(f"/projects/{proj.id}/modules/{case['parent_id']}").json()
    assert module["name"] == "Created via API"

    by_pid = api.get(f"{base}/{case['pid']}", params={"expand": "teststep"}).json()
    assert by_pid == case
    assert "test_steps" not in api.get(f"{base}/{case['id']}").json()
    listed = api.get(base, params={"parentId": case["parent_id"], "size": 500, "expandSteps": "true"}).json()
    assert_valid_items(listed, "TestCaseWithCustomFieldResource", "test-cases")
    assert case["id"] in {c["id"] for c in listed}
    assert len(api.get(base).json()) <= 20  # the default page size
    page_two = api.get(base, params={"page": 2, "size": 1}).json()
    assert len(page_two) == 1 and page_two[0]["id"] != api.get(base, params={"size": 1}).json()[0]["id"]

    draft_edit = api.put(f"{base}/{case['id']}", json={"name": "Login still works"}).json()
    assert (
        draft_edit["version"] == "0.1" and draft_edit["test_case_version_id"] == case["test_case_version_id"]
    )
    approved = api.put(f"{base}/{case['id']}/approve")
    assert_status(approved, 200, "PUT", "/api/v3/projects/{projectId}/test-cases/{testCaseId}/approve")
    assert approved.json()["version"] == "1.0"
    assert approved.json()["test_case_version_id"] != case["test_case_version_id"]
    edited = api.put(
        f"{base}/{case['id']}", json={"properties": [proj.prop("test-cases", "Component", "auth")]}
    )
    assert edited.json()["version"] == "1.1"
    versions = api.get(f"{base}/{case['id']}/versions").json()
    assert_valid_items(versions, "TestCaseWithCustomFieldResource", "versions")
    assert [v["version"] for v in versions] == ["1.0", "1.1"]
    old = api.get(
        f"{base}/{case['id']}", params={"versionId": approved.json()["test_case_version_id"]}
    ).json()
    assert old["version"] == "1.0" and old["name"] == "Login still works"

    added = api.post(
        f"{base}/{case['id']}/test-steps", json={"description": "Sign out", "expected": "Signed out"}
    )
    assert_status(added, 200, "POST", "/api/v3/projects/{projectId}/test-cases/{testCaseId}/test-steps")
    assert_valid(added.json(), "TestStepResource")
    steps = api.get(f"{base}/{case['id']}/test-steps").json()
    assert_valid_items(steps, "TestStepResource", "test-steps")
    assert [s["description"] for s in steps] == ["Open [~page]", "Sign in", "Sign out"]
    approved_steps = api.get(
        f"{base}/{case['id']}/versions/{approved.json()['test_case_version_id']}/test-steps"
    )
    assert len(approved_steps.json()) == 2
    sign_out = added.json()["id"]
    changed = api.put(
        f"{base}/{case['id']}/test-steps/{sign_out}", json={"description": "Log out", "expected": "Out"}
    )
    assert changed.status_code == 200 and changed.json()["id"] == sign_out  # the 1.1 draft is edited in place
    assert api.delete(f"{base}/{case['id']}/test-steps/{sign_out}").status_code == 200
    assert [s["order"] for s in api.get(f"{base}/{case['id']}/test-steps").json()] == [1, 2]
    no_expected = api.put(f"{base}/{case['id']}", json={"test_steps": [{"description": "no expected"}]})
    assert no_expected.status_code == 400 and "expected" in no_expected.json()["message"]

    removed = api.delete(f"{base}/{case['id']}")
    assert removed.status_code == 200
    assert api.get(f"{base}/{case['id']}").status_code == 404


def test_call_to_test_steps_must_name_existing_cases(api: httpx.Client, proj: Project) -> None:
    callee = proj.case(
        "Sign in (shared)", "SHOP-T200", test_steps=[{"description": "Sign in", "expected": "ok"}]
    )
    missing = api.post(
        f"/projects/{proj.id}/test-cases",
        json={
            "name": "Caller",
            "properties": [],
            "test_steps": [{"description": "call", "expected": "", "called_test_case_id": 999}],
        },
    )
    assert missing.status_code == 400 and "called_test_case_id 999" in missing.json()["message"]
    caller = proj.case(
        "Checkout",
        "SHOP-T201",
        test_steps=[{"description": "call", "expected": "", "called_test_case_id": callee["id"]}],
    )
    step = caller["test_steps"][0]
    assert step["called_test_case_id"] == callee["id"] and step["called_test_case_name"] == "Sign in (shared)"
    loop = api.put(
        f"/projects/{proj.id}/test-cases/{callee['id']}",
        json={
            "test_steps": [{"description": "call back", "expected": "", "called_test_case_id": caller["id"]}]
        },
    )
    assert loop.status_code == 400 and "call itself" in loop.json()["message"]
    in_use = api.delete(f"/projects/{proj.id}/test-cases/{callee['id']}")
    assert in_use.status_code == 400 and caller["pid"] in in_use.json()["message"]


# ---------------------------------------------------------------------------- execution


def test_releases_cycles_suites_and_runs(api: httpx.Client, proj: Project) -> None:
    pid = proj.id
    release = api.post(
        f"/projects/{pid}/releases",
        json={
            "name": "R1",
            "properties": [proj.prop("releases", "Zephyr Key", "SHOP-P1")],
            "start_date": "2026-01-01",
        },
    )
    assert_status(release, 201, "POST", "/api/v3/projects/{projectId}/releases")
    assert_valid(release.json(), "ReleaseWithCustomFieldResource")
    assert_valid_items(api.get(f"/projects/{pid}/releases").json(), "ReleaseWithCustomFieldResource")
    cycle = api.post(
        f"/projects/{pid}/test-cycles",
        params={"parentId": release.json()["id"], "parentType": "release"},
        json={"name": "Sprint 1"},
    )
    assert_status(cycle, 201, "POST", "/api/v3/projects/{projectId}/test-cycles")
    assert_valid(cycle.json(), "TestCycleResource")
    assert cycle.json()["target_release_id"] == release.json()["id"] and cycle.json()["pid"].startswith("CL-")
    sub = proj.cycle("Smoke", cycle.json()["id"], "test-cycle")
    suite = api.post(
        f"/projects/{pid}/test-suites",
        params={"parentId": sub["id"], "parentType": "test-cycle"},
        json={"name": "Suite A", "properties": [proj.prop("test-suites", "Zephyr Key", "SHOP-S1")]},
    )
    assert_status(suite, 200, "POST", "/api/v3/projects/{projectId}/test-suites")
    assert_valid(suite.json(), "TestSuiteWithCustomFieldResource")
    assert suite.json()["parentId"] == sub["id"] and suite.json()["parentType"] == "test-cycle"

    case = proj.case("Runnable", "SHOP-T300", test_steps=[{"description": "a", "expected": "b"}])
    run = api.post(
        f"/projects/{pid}/test-runs",
        params={"parentId": suite.json()["id"], "parentType": "test-suite"},
        json={
            "name": "Run 1",
            "test_case": {"id": case["id"]},
            "properties": [proj.prop("test-runs", "Zephyr Key", "SHOP-E1")],
        },
    )
    assert_status(run, 201, "POST", "/api/v3/projects/{projectId}/test-runs")
    body = run.json()
    assert_valid(body, "TestRunWithCustomFieldResource")
    assert (body["parentId"], body["parentType"], body["testCaseId"]) == (
        suite.json()["id"],
        "test-suite",
        case["id"],
    )
    assert body["test_case_version_id"] == case["test_case_version_id"] and body["test_case_version"] == "0.1"
    assert "latest_test_log" not in body
    direct = proj.run(case, sub["id"])

    tree = api.get(
        f"/projects/{pid}/test-cycles",
        params={"parentId": release.json()["id"], "parentType": "release", "expand": "descendants"},
    ).json()
    assert_valid_items(tree, "TestCycleResource", "test-cycles")
    assert tree[0]["test-cycles"][0]["id"] == sub["id"]
    assert tree[0]["test-cycles"][0]["test-suites"][0]["id"] == suite.json()["id"]
    assert api.get(f"/projects/{pid}/test-cycles/{cycle.json()['id']}").json()["name"] == "Sprint 1"
    suites = api.get(
        f"/projects/{pid}/test-suites", params={"parentId": sub["id"], "parentType": "test-cycle"}
    ).json()
    assert_valid_items(suites, "TestSuiteWithCustomFieldResource")

    page = api.get(
        f"/projects/{pid}/test-runs", params={"parentId": sub["id"], "parentType": "test-cycle"}
    ).json()
    assert_valid(page, "TestRunListResource")
    assert set(page) == {"links", "page", "page_size", "total", "items"}
    assert [r["id"] for r in page["items"]] == [direct["id"]]
    deep = api.get(
        f"/projects/{pid}/test-runs",
        params={
            "parentId": release.json()["id"],
            "parentType": "release",
            "expand": "descendants",
            "pageSize": 1,
        },
    ).json()
    assert deep["total"] == 2 and deep["page_size"] == 1 and len(deep["items"]) == 1
    expanded = api.get(
        f"/projects/{pid}/test-runs/{body['id']}", params={"expand": "testcase.teststep"}
    ).json()
    assert expanded["test_case"]["test_steps"][0]["description"] == "a"
    moved = api.put(f"/projects/{pid}/test-runs/{direct['id']}", params={"parentId": 0, "parentType": "root"})
    assert moved.json()["parentType"] == "root"
    bad_parent = api.post(
        f"/projects/{pid}/test-runs",
        params={"parentId": case["id"], "parentType": "test-cycle"},
        json={"test_case": {"id": case["id"]}, "properties": []},
    )
    assert bad_parent.status_code == 400
    assert (
        api.post(f"/projects/{pid}/test-runs", json={"test_case": {"id": 5}, "properties": []}).status_code
        == 400
    )
    assert api.delete(f"/projects/{pid}/test-runs/{direct['id']}").status_code == 200


def test_manual_test_logs_and_latest(api: httpx.Client, proj: Project) -> None:
    pid = proj.id
    case = proj.case(
        "Logged",
        "SHOP-T400",
        test_steps=[{"description": "a", "expected": "b"}, {"description": "c", "expected": "d"}],
    )
    approved = api.put(f"/projects/{pid}/test-cases/{case['id']}/approve").json()
    run = proj.run(case, proj.cycle("Logs")["id"])
    assert run["test_case_version_id"] == approved["test_case_version_id"]  # the latest approved version
    steps = approved["test_steps"]
    passed, failed = proj.statuses["Passed"], proj.statuses["Failed"]
    url = f"/projects/{pid}/test-runs/{run['id']}/test-logs"
    log_body = {
        "status": {"id": failed},
        "exe_start_date": "2026-05-29T10:00:00Z",
        "exe_end_date": "2026-05-29T10:05:00Z",
        "note": "first try",
        "properties": [proj.prop("test-runs", "Zephyr Key", "SHOP-E400")],
        "test_step_logs": [
            {"test_step_id": steps[0]["id"], "status": {"id": passed}, "actual_result": "ok", "order": 1},
            {"test_step_id": steps[1]["id"], "status": {"id": failed}, "actual_result": "boom", "order": 2},
        ],
    }
    created = api.post(url, json=log_body)
    assert_status(created, 201, "POST", "/api/v3/projects/{projectId}/test-runs/{testRunId}/test-logs")
    log = created.json()
    assert_valid(log, "TestLogResource")
    assert (
        log["status"]["name"] == "Failed" and log["test_case_version_id"] == approved["test_case_version_id"]
    )
    assert [s["actual_result"] for s in log["test_step_logs"]] == ["ok", "boom"]

    for broken, needle in (
        ({**log_body, "exe_end_date": None}, "exe_end_date"),
        ({**log_body, "status": "PASSED"}, "status"),
        ({**log_body, "status": {"id": 601}}, "601"),
        (
            {
                **log_body,
                "test_step_logs": [{"test_step_id": case["test_steps"][0]["id"], "status": {"id": passed}}],
            },
            "test_step_id",
        ),
    ):
        answer = api.post(url, json=broken)
        assert answer.status_code == 400 and needle in answer.json()["message"], answer.text

    later = api.post(
        url,
        json={
            **log_body,
            "status": {"id": passed},
            "exe_start_date": "2026-06-01T09:00:00Z",
            "exe_end_date": "2026-06-01T09:01:00Z",
            "test_step_logs": [],
        },
    ).json()
    older = api.post(
        url,
        json={
            **log_body,
            "exe_start_date": "2026-01-01T09:00:00Z",
            "exe_end_date": "2026-01-01T09:01:00Z",
            "test_step_logs": [],
        },
    ).json()
    fetched = api.get(f"/projects/{pid}/test-runs/{run['id']}").json()
    assert (
        fetched["latest_test_log"]["id"] == later["id"] and fetched["latest_test_log"]["status"] == "Passed"
    )
    run_status = next(p for p in fetched["properties"] if p["field_name"] == "Status")
    assert run_status["field_value_name"] == "Passed"
    last = api.get(f"{url}/last-run")
    assert_valid(last.json(), "TestLogResource")
    assert last.json()["id"] == later["id"]
    page = api.get(url, params={"pageSize": 2}).json()
    assert_valid(page, "TestLogListResource")
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == [log["id"], later["id"]]
    assert api.get(url, params={"page": 2, "pageSize": 2}).json()["items"][0]["id"] == older["id"]
    assert api.get(f"{url}/{log['id']}").json() == log

    # Editing the oldest log so it ends last makes it the latest.
    edited = api.put(
        f"{url}/{older['id']}",
        json={
            "status": {"id": failed},
            "exe_start_date": "2026-07-01T00:00:00Z",
            "exe_end_date": "2026-07-01T00:10:00Z",
            "note": "re-run",
        },
    )
    assert edited.status_code == 200 and edited.json()["note"] == "re-run"
    assert api.get(f"/projects/{pid}/test-runs/{run['id']}").json()["latest_test_log"]["id"] == older["id"]


def test_step_logs_of_called_steps_and_of_every_data_row_are_kept(api: httpx.Client, proj: Project) -> None:
    """A log's step logs may name a called case's steps with the called case and the calling step (swagger,
    submitTestLog: "the called_test_case_id and parent_test_step_id must be included"), and the same step
    more than once (a data-driven execution's rows): qTest reads them back as they were sent, in order."""
    pid = proj.id
    callee = proj.case("Sign in (logs)", "SHOP-T410", test_steps=[{"description": "sign", "expected": "in"}])
    caller = proj.case(
        "Checkout (logs)",
        "SHOP-T411",
        test_steps=[
            {"description": "open", "expected": "shop"},
            {"description": "call", "expected": "", "called_test_case_id": callee["id"]},
        ],
    )
    run = proj.run(caller, proj.cycle("Called logs")["id"])
    own, call = caller["test_steps"]
    called = callee["test_steps"][0]
    passed, failed = proj.statuses["Passed"], proj.statuses["Failed"]
    url = f"/projects/{pid}/test-runs/{run['id']}/test-logs"

    def step_log(step: Json, order: int, status: int, *, via: Json | None = None) -> Json:
        body = {
            "test_step_id": step["id"],
            "status": {"id": status},
            "actual_result": f"r{order}",
            "order": order,
        }
        if via is not None:
            body |= {"called_test_case_id": callee["id"], "parent_test_step_id": via["id"]}
        return body

    rows = [step_log(own, 1, passed), step_log(called, 2, passed, via=call)]
    rows += [step_log(own, 3, passed), step_log(called, 4, failed, via=call)]
    created = api.post(
        url,
        json={
            "status": {"id": failed},
            "exe_start_date": "2026-05-29T10:00:00Z",
            "exe_end_date": "2026-05-29T10:05:00Z",
            "test_step_logs": rows,
        },
    )
    assert created.status_code == 201, created.text
    read = api.get(f"{url}/{created.json()['id']}").json()
    assert [
        (s["test_step_id"], s.get("called_test_case_id"), s.get("parent_test_step_id"), s["actual_result"])
        for s in sorted(read["test_step_logs"], key=lambda s: s["order"])
    ] == [
        (own["id"], None, None, "r1"),
        (called["id"], callee["id"], call["id"], "r2"),
        (own["id"], None, None, "r3"),
        (called["id"], callee["id"], call["id"], "r4"),
    ]
    # A called step whose calling step does not call that case is refused.
    wrong = api.post(
        url,
        json={
            "status": {"id": passed},
            "exe_start_date": "2026-05-29T10:00:00Z",
            "exe_end_date": "2026-05-29T10:05:00Z",
            "test_step_logs": [step_log(called, 1, passed, via=own)],
        },
    )
    assert wrong.status_code == 400 and "parent_test_step_id" in wrong.json()["message"]


def test_bulk_automation_logs_are_queued_then_applied(api: httpx.Client, proj: Project) -> None:
    pid = proj.id
    cycle = proj.cycle("Nightly")

    def item(content: str, *, status: str = "PASSED", orders: tuple[int, ...] = (0, 1)) -> Json:
        return {
            "name": f"auto {content}",
            "automation_content": content,
            "status": status,
            "exe_start_date": "2026-05-29T10:00:00Z",
            "exe_end_date": "2026-05-29T10:01:00Z",
            "module_names": ["Automation", "Checkout"],
            "test_step_logs": [
                {
                    "description": f"step {o}",
                    "expected_result": "ok",
                    "actual_result": "ok",
                    "status": status,
                    "order": o,
                }
                for o in orders
            ],
        }

    def submit(body: Json) -> Json:
        answer = api.post(f"/projects/{pid}/auto-test-logs", params={"type": "automation"}, json=body)
        assert_status(answer, 201, "POST", "/api/v3/projects/{projectId}/auto-test-logs")
        assert_valid(answer.json(), "QueueProcessingResponse")
        assert answer.json()["state"] == "PENDING"  # REAL_SHAPES.md qTest item 1
        return answer.json()

    def poll(job: Json) -> Json:
        states = []
        for _ in range(10):
            state = api.get(f"/projects/queue-processing/{job['id']}").json()
            assert_valid(state, "QueueProcessingResponse")
            states.append(state["state"])
            if state["state"] in ("SUCCESS", "FAILED"):
                assert states[0] == "IN_PROCESSING"
                return state
        raise AssertionError(f"the job never finished: {states}")

    done = poll(
        submit(
            {
                "test_cycle": cycle["pid"],
                "test_logs": [item("com.shop.Login"), item("com.shop.Pay", status="FAILED")],
            }
        )
    )
    assert done["state"] == "SUCCESS", done
    # The content is a JSON string of summary counts only: no log, run or case ids (REAL_SHAPES.md item 1).
    counts = json.loads(done["content"])
    assert set(counts) == {"testSuiteId", "testSuiteName", "totalTestCases", "totalTestRuns", "totalTestLogs"}
    assert (counts["totalTestCases"], counts["totalTestRuns"], counts["totalTestLogs"]) == (2, 2, 2)
    assert counts["testSuiteId"] > 0 and counts["testSuiteName"] == "Checkout"
    again = poll(
        submit({"test_cycle": str(cycle["id"]), "test_logs": [item("com.shop.Login", status="FAILED")]})
    )
    assert again["state"] == "SUCCESS"
    assert json.loads(again["content"])["totalTestLogs"] == 1

    found = api.post(
        f"/projects/{pid}/search",
        json={"object_type": "test-cases", "query": "'Automation Content' = 'com.shop.Login'"},
    ).json()
    assert found["total"] == 1  # the fingerprint is reused, not duplicated
    case = found["items"][0]
    assert case["version"] == "1.0"
    module = api.get(f"/projects/{pid}/modules/{case['parent_id']}").json()
    assert module["name"] == "Checkout"
    subcycle = api.get(
        f"/projects/{pid}/test-cycles",
        params={"parentId": cycle["id"], "parentType": "test-cycle", "expand": "descendants"},
    ).json()
    assert [c["name"] for c in subcycle] == ["Automation"] and subcycle[0]["test-cycles"][0][
        "name"
    ] == "Checkout"
    runs = api.get(
        f"/projects/{pid}/test-runs",
        params={"parentId": cycle["id"], "parentType": "test-cycle", "expand": "descendants"},
    ).json()
    assert runs["total"] == 2 and all(r["automation"] == "Yes" for r in runs["items"])
    login_run = next(r for r in runs["items"] if r["testCaseId"] == case["id"])
    logs = api.get(f"/projects/{pid}/test-runs/{login_run['id']}/test-logs").json()
    assert logs["total"] == 2 and [s["order"] for s in logs["items"][0]["test_step_logs"]] == [1, 2]

    gap = poll(submit({"test_cycle": cycle["pid"], "test_logs": [item("com.shop.Gap", orders=(0, 2))]}))
    # A failed job's content is the error text itself, not JSON (REAL_SHAPES.md qTest item 1).
    assert gap["state"] == "FAILED" and "continuous" in gap["content"]
    assert gap["content"].startswith("test_logs[0].test_step_logs: order must be")
    unmapped = poll(
        submit(
            {
                "test_cycle": cycle["pid"],
                "test_logs": [item("com.shop.X"), item("com.shop.Y", status="WEIRD")],
            }
        )
    )
    assert unmapped["state"] == "FAILED" and "test_logs[1].status" in unmapped["content"]
    nothing = api.post(
        f"/projects/{pid}/search",
        json={"object_type": "test-cases", "query": "'Automation Content' = 'com.shop.X'"},
    ).json()
    assert nothing["total"] == 0  # all or nothing
    assert (
        api.post(
            f"/projects/{pid}/auto-test-logs", json={"test_cycle": cycle["pid"], "test_logs": [item("a")]}
        ).status_code
        == 400
    )
    missing_cycle = poll(submit({"test_cycle": "CL-99999", "test_logs": [item("com.shop.Lost")]}))
    assert missing_cycle["state"] == "FAILED" and "CL-99999" in missing_cycle["content"]

    # test_cycle is optional (the swagger's AutomationRequest requires only test_logs): the first folder
    # then becomes a test cycle at the root of the Test Execution tree.
    rootless = poll(submit({"test_logs": [item("com.shop.Rootless")]}))
    assert rootless["state"] == "SUCCESS", rootless
    roots = api.get(f"/projects/{pid}/test-cycles", params={"parentId": 0, "parentType": "root"}).json()
    automation_root = next(c for c in roots if c["name"] == "Automation")
    assert json.loads(rootless["content"])["testSuiteName"] == "Checkout"
    assert poll(submit({"test_logs": [item("com.shop.Rootless")]}))["state"] == "SUCCESS"
    roots = api.get(f"/projects/{pid}/test-cycles", params={"parentId": 0, "parentType": "root"}).json()
    assert [c["id"] for c in roots if c["name"] == "Automation"] == [automation_root["id"]]  # not twice
    rootless_runs = api.get(
        f"/projects/{pid}/test-runs",
        params={"parentId": automation_root["id"], "parentType": "test-cycle", "expand": "descendants"},
    ).json()
    assert rootless_runs["total"] == 1  # the second submission reused the run

    single = api.post(f"/projects/{pid}/test-runs/0/auto-test-logs", json=item("com.shop.Single"))
    assert_status(single, 201, "POST", "/api/v3/projects/{projectId}/test-runs/{testRunId}/auto-test-logs")
    assert_valid(single.json(), "AutomationTestLogResourceResponse")
    suites = api.get(f"/projects/{pid}/test-suites", params={"parentId": 0, "parentType": "root"}).json()
    assert "Automation Test Suite" in [s["name"] for s in suites]


def test_an_automation_log_is_modified_through_its_own_put_keeping_its_step_logs(
    api: httpx.Client, proj: Project
) -> None:
    """``PUT .../auto-test-logs/{id}`` (swagger modifyAutomationLog): status by Automation Settings string,
    dates, note, and each step log's actual result named by test_step_log_id, in the order it was submitted
    (another order is refused); step logs keep their ids. A manual log has its own PUT: refused here."""
    pid = proj.id
    case = proj.case("Automated", "SHOP-T450", test_steps=[{"description": "a", "expected": "b"}] * 2)
    api.put(f"/projects/{pid}/test-cases/{case['id']}/approve").raise_for_status()
    run = proj.run(case, proj.cycle("Modified")["id"])
    body = {
        "name": "auto", "automation_content": "com.shop.Modified", "status": "FAILED",
        "exe_start_date": "2026-05-29T10:00:00Z", "exe_end_date": "2026-05-29T10:01:00Z",
        "test_step_logs": [
            {"description": "a", "expected_result": "b", "actual_result": "old", "status": "PASSED", "order": 0},
            {"description": "a", "expected_result": "b", "actual_result": "old", "status": "FAILED", "order": 1},
        ],
    }  # fmt: skip
    made = api.post(f"/projects/{pid}/test-runs/{run['id']}/auto-test-logs", json=body)
    assert made.status_code == 201, made.text
    url = f"/projects/{pid}/test-runs/{run['id']}/test-logs/{made.json()['id']}"
    before = api.get(url).json()["test_step_logs"]
    ids = [step["test_step_log_id"] for step in before]
    change = {
        "status": "PASSED", "exe_start_date": "2026-05-29T10:00:00Z", "exe_end_date": "2026-05-29T10:02:00Z",
        "note": '<img src="https://q/att/1">',
        "test_step_logs": [{"test_step_log_id": ids[1], "order": 1, "actual_result": "new", "status": "PASSED"}],
    }  # fmt: skip
    modify = f"/projects/{pid}/test-runs/{run['id']}/auto-test-logs/{made.json()['id']}"
    answer = api.put(modify, params={"encodeNote": "false"}, json=change)
    assert_status(
        answer, 200, "PUT", "/api/v3/projects/{projectId}/test-runs/{testRunId}/auto-test-logs/{id}"
    )
    after = api.get(url).json()
    assert after["note"] == change["note"] and after["status"]["id"] == proj.statuses["Passed"]
    assert [step["test_step_log_id"] for step in after["test_step_logs"]] == ids
    assert [step["actual_result"] for step in after["test_step_logs"]] == ["old", "new"]
    moved = {**change, "test_step_logs": [{**change["test_step_logs"][0], "order": 0}]}
    assert "different order" in api.put(modify, json=moved).json()["message"]
    unknown = {**change, "test_step_logs": [{"test_step_log_id": 1, "actual_result": "x"}]}
    assert api.put(modify, json=unknown).status_code == 400
    manual = api.post(
        f"/projects/{pid}/test-runs/{run['id']}/test-logs",
        json={"status": {"id": proj.statuses["Passed"]}, "exe_start_date": "2026-05-29T11:00:00Z",
              "exe_end_date": "2026-05-29T11:01:00Z"},
    )  # fmt: skip
    refused = api.put(
        f"/projects/{pid}/test-runs/{run['id']}/auto-test-logs/{manual.json()['id']}", json=change
    )
    assert refused.status_code == 400 and "not an automation test log" in refused.json()["message"]
    # A release takes attachments (swagger blob-handles' objectType enum): a plan's pictures go there.
    release = api.post(f"/projects/{pid}/releases", json={"name": "R", "properties": []}).json()
    uploaded = api.post(
        f"/projects/{pid}/releases/{release['id']}/blob-handles",
        content=b"png", headers={"File-Name": "p.png", "Content-Type": "image/png"},
    )  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    assert api.get(f"/projects/{pid}/releases/{release['id']}/attachments").json()[0]["name"] == "p.png"


# ---------------------------------------------------------------------------- attachments and search


def test_attachments_upload_read_and_limits(api: httpx.Client, proj: Project) -> None:
    pid = proj.id
    case = proj.case("With files", "SHOP-T500", test_steps=[{"description": "a", "expected": "b"}])
    url = f"/projects/{pid}/test-cases/{case['id']}"
    payload = bytes(range(256)) * 4
    uploaded = api.post(
        f"{url}/blob-handles",
        content=payload,
        headers={"File-Name": "dump.bin", "Content-Type": "application/octet-stream"},
    )
    assert_status(uploaded, 201, "POST", "/api/v3/projects/{projectId}/{objectType}/{objectId}/blob-handles")
    assert_valid(uploaded.json(), "AttachmentResource")
    listed = api.get(f"{url}/attachments").json()
    assert_valid_items(listed, "AttachmentResource")
    assert [a["name"] for a in listed] == ["dump.bin"]
    content = api.get(f"{url}/attachments/{uploaded.json()['id']}")
    assert content.content == payload and content.headers["content-type"] == "application/octet-stream"

    step_id = case["test_steps"][0]["id"]
    on_step = api.post(
        f"/projects/{pid}/test-steps/{step_id}/blob-handles",
        content=b"x",
        headers={"File-Name": "s.txt", "Content-Type": "text/plain"},
    )
    assert on_step.status_code == 201
    step_file = api.get(f"/projects/{pid}/test-steps/{step_id}/attachments/{on_step.json()['id']}")
    assert step_file.content == b"x" and step_file.headers["content-type"] == "text/plain"  # exactly as sent
    too_big = api.post(
        f"{url}/blob-handles",
        content=b"x" * (CAP + 1),
        headers={"File-Name": "big.bin", "Content-Type": "application/octet-stream"},
    )
    assert too_big.status_code == 413 and "too large" in too_big.json()["message"]
    run = proj.run(case, 0, "root")
    on_run = api.post(
        f"/projects/{pid}/test-runs/{run['id']}/blob-handles",
        content=b"x",
        headers={"File-Name": "r.txt", "Content-Type": "text/plain"},
    )
    assert on_run.status_code == 400 and "test-runs" in on_run.json()["message"]
    nameless = api.post(f"{url}/blob-handles", content=b"x", headers={"Content-Type": "text/plain"})
    assert nameless.status_code == 400 and "File-Name" in nameless.json()["message"]
    assert (
        api.post(
            f"/projects/{pid}/test-cases/1/blob-handles",
            content=b"x",
            headers={"File-Name": "a", "Content-Type": "text/plain"},
        ).status_code
        == 404
    )

    search = api.get(f"/projects/{pid}/attachments", params={"type": "test-cases", "ids": case["id"]})
    assert_valid(search.json(), "PagedResourceAttachmentResource")
    assert search.json()["total"] == 1
    deleted = api.delete(f"{url}/blob-handles/{uploaded.json()['id']}")
    assert deleted.status_code == 200 and api.get(f"{url}/attachments").json() == []


def test_search_finds_objects_by_the_zephyr_key_they_were_written_with(
    api: httpx.Client, proj: Project
) -> None:
    pid = proj.id
    target = proj.case("Key one", "KEY-T1")
    proj.case("Key ten", "KEY-T10")
    proj.case("Key one again?", "key-t1x")

    def search(object_type: str, query: str, **params: Any) -> Json:
        answer = api.post(
            f"/projects/{pid}/search",
            params=params,
            json={"object_type": object_type, "fields": ["*"], "query": query},
        )
        assert answer.status_code == 200, answer.text
        assert_valid(answer.json(), "PagedResource")
        return answer.json()

    exact = search("test-cases", "'Zephyr Key' = 'KEY-T1'")
    assert exact["total"] == 1 and exact["items"][0]["id"] == target["id"]
    assert_valid(exact["items"][0], "TestCaseWithCustomFieldResource")
    assert (
        search("test-cases", f"'{proj.field('test-cases', 'Zephyr Key')}' = 'KEY-T1'")["total"] == 1
    )  # by field id
    assert search("test-cases", "'Zephyr Key' ~ 'KEY-T1'")["total"] == 3
    assert search("test-cases", "'Zephyr Key' ~ 'KEY-T' and Name ~ 'again'")["total"] == 1
    assert search("test-cases", "'Zephyr Key' = 'KEY-T1' or 'Zephyr Key' = 'KEY-T10'")["total"] == 2
    assert search("test-cases", "'Zephyr Key' = 'KEY-T1' and Priority = 'Medium'")["total"] == 1
    assert search("test-cases", "'Zephyr Key' = 'KEY-T1' and Priority = 'High'")["total"] == 0
    assert search("test-cases", f"pid = '{target['pid']}'")["items"][0]["id"] == target["id"]
    paged = search("test-cases", "'Zephyr Key' ~ 'KEY-T'", page=2, pageSize=2)
    assert paged["total"] == 3 and paged["page"] == 2 and paged["page_size"] == 2 and len(paged["items"]) == 1
    stepless = search("test-cases", "'Zephyr Key' = 'KEY-T1'")["items"][0]
    assert "test_steps" not in stepless
    assert "test_steps" in search("test-cases", "'Zephyr Key' = 'KEY-T1'", appendTestSteps="true")["items"][0]

    run = proj.run(target, 0, "root", properties=[proj.prop("test-runs", "Zephyr Key", "KEY-E1")])
    runs = search("test-runs", "'Zephyr Key' = 'KEY-E1'")
    assert [r["id"] for r in runs["items"]] == [run["id"]]
    assert_valid(runs["items"][0], "TestRunWithCustomFieldResource")
    api.post(
        f"/projects/{pid}/test-runs/{run['id']}/test-logs",
        json={
            "status": {"id": proj.statuses["Blocked"]},
            "exe_start_date": "2026-03-01T00:00:00Z",
            "exe_end_date": "2026-03-01T00:01:00Z",
        },
    )
    # A test-runs hit as a recorded real answer has it (REAL_SHAPES.md qTest item 4): parent, automation
    # "Yes"/"No", the case id, a TR- pid, a dated created_date, the latest log's status as a string, and
    # every property value a string (a user field's name in field_value_name).
    hit = search("test-runs", "'Zephyr Key' = 'KEY-E1'")["items"][0]
    assert hit["parentId"] == 0 and hit["parentType"] == "root" and hit["testCaseId"] == target["id"]
    assert hit["automation"] in ("Yes", "No") and hit["pid"].startswith("TR-")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([.]\d+)?([+-]\d\d:\d\d|Z)", hit["created_date"])
    assert hit["latest_test_log"]["status"] == "Blocked"
    assert hit["properties"] and all(isinstance(p["field_value"], str) for p in hit["properties"])
    logs = search("test-logs", f"'Test Run' = '{run['pid']}' and Status = 'Blocked'")
    assert logs["total"] == 1 and "properties" not in logs["items"][0]
    assert search("test-runs", "Status = 'Blocked' and 'Zephyr Key' = 'KEY-E1'")["total"] == 1
    assert search("test-cycles", "Name = 'no such cycle'")["total"] == 0
    assert search("requirements", "")["total"] == 0

    unknown = api.post(
        f"/projects/{pid}/search", json={"object_type": "test-cases", "query": "'Colour' = 'red'"}
    )
    assert unknown.status_code == 400 and "'Colour'" in unknown.json()["message"]
    assert api.post(f"/projects/{pid}/search", json={"object_type": "widgets"}).status_code == 400
    assert (
        api.post(
            f"/projects/{pid}/search", json={"object_type": "test-cases", "query": "Name = "}
        ).status_code
        == 400
    )


def test_query_parser() -> None:
    assert parse_query("'Zephyr Key' = 'A-1' and Name ~ login or Status is 'not empty'") == [
        [parse_query("'Zephyr Key' = 'A-1'")[0][0], parse_query("Name ~ login")[0][0]],
        [parse_query("Status is 'not empty'")[0][0]],
    ]
    assert parse_query("Name = 'it''s'")[0][0].value == "it's"
    assert parse_query(r"Name = 'it\'s'")[0][0].value == "it's"
    assert parse_query("Zephyr Key = X")[0][0].field == "Zephyr Key"
    assert parse_query("") == [[]]
    for broken in ("Name", "Name =", "Name = 'a' and", "= 'a'", "Name is maybe", "Name = 'a' 'b'"):
        with pytest.raises(QueryError):
            parse_query(broken)


# ---------------------------------------------------------------------------- state and switches


def test_state_survives_a_restart_on_the_same_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "persisted"
    with (
        start_qtest_in_thread(state, seed=3, projects=["Kept"], template="rich") as first,
        client_for(first) as api,
    ):
        token = first.token
        project_id = api.get("/projects").json()[0]["id"]
        proj = Project(api, project_id)
        case = proj.case("Survivor", "KEEP-T1", test_steps=[{"description": "a", "expected": "b"}])
        run = proj.run(case, proj.cycle("Kept cycle")["id"])
        api.post(
            f"/projects/{project_id}/test-runs/{run['id']}/test-logs",
            json={
                "status": {"id": proj.statuses["Passed"]},
                "exe_start_date": "2026-01-01T00:00:00Z",
                "exe_end_date": "2026-01-01T00:00:01Z",
            },
        )
        queued = api.post(
            f"/projects/{project_id}/auto-test-logs",
            params={"type": "automation"},
            json={
                "test_cycle": run["parentId"],
                "test_logs": [
                    {
                        "name": "queued",
                        "automation_content": "keep.queued",
                        "status": "PASSED",
                        "exe_start_date": "2026-01-01T00:00:00Z",
                        "exe_end_date": "2026-01-01T00:00:01Z",
                        "module_names": ["Queued"],
                    }
                ],
            },
        ).json()
        before = first.dump(project_id)
        with pytest.raises(RuntimeError, match="in use"):
            start_qtest_in_thread(state)  # one server per state directory
    with (
        start_qtest_in_thread(state, seed=99, queue_delay_s=None, projects=["Kept"]) as second,
        client_for(second) as api,
    ):
        assert second.token == token  # the site's token, not the new seed's
        assert [p["id"] for p in api.get("/projects").json()] == [project_id]
        after = second.dump(project_id)
        port_free = {k: v for k, v in after.items() if k not in ("project",)}
        assert str(port_free).replace(second.base_url, "X") == str(
            {k: v for k, v in before.items() if k != "project"}
        ).replace(first.base_url, "X")
        newer = Project(api, project_id).case("After restart", "KEEP-T2")
        assert newer["id"] > queued["id"] and newer["pid"] == "TC-2"
        # A submission queued before the restart is still processed after it.
        states = [api.get(f"/projects/queue-processing/{queued['id']}").json()["state"] for _ in range(2)]
        assert states == ["IN_PROCESSING", "SUCCESS"]  # the PENDING job resumed


def test_rate_limit_answers_429_with_budget_headers(fresh: QTestSandboxHandle) -> None:
    with client_for(fresh) as api:
        first = api.get("/projects")
        assert int(first.headers["x-ratelimit-remaining-minute"]) > 0
        assert int(first.headers["x-ratelimit-remaining-month"]) > 0
        unauthorized = httpx.get(f"{fresh.api_url}/projects", timeout=10)
        assert unauthorized.status_code == 401 and "x-ratelimit-remaining-month" in unauthorized.headers

        for mode, expected in (("seconds", "1"), ("zero", "0"), ("absent", None)):
            fresh.set_faults(rate_limit=1, burst=1, retry_after_mode=mode)
            answers = [api.get("/projects") for _ in range(4)]
            limited = [a for a in answers if a.status_code == 429]
            assert limited, [a.status_code for a in answers]
            for answer in answers:
                assert (
                    "x-ratelimit-remaining-minute" in answer.headers
                    and "x-ratelimit-remaining-month" in answer.headers
                )
            assert limited[0].headers.get("retry-after") == expected, mode
            assert limited[0].json() == {"message": "API rate limit exceeded"}

        # A per-minute quota: what this minute has used so far is read back from the header.
        fresh.set_faults(rate_limit=None, minute_quota=10_000, retry_after_mode="seconds")
        minute = int(time.time() // 60)
        used = 10_000 - int(api.get("/projects").headers["x-ratelimit-remaining-minute"])
        fresh.set_faults(minute_quota=used + 2)
        answers = [api.get("/projects") for _ in range(4)]
        if int(time.time() // 60) == minute:  # a new calendar minute starts a new quota
            assert [a.status_code for a in answers] == [200, 200, 429, 429]
            assert answers[2].headers["x-ratelimit-remaining-minute"] == "0"
            assert 0 <= int(answers[2].headers["retry-after"]) <= 60
        fresh.set_faults(minute_quota=None)
        assert fresh.stats()["rate_limited"] >= 5


def test_a_lost_answer_still_applies_the_write(fresh: QTestSandboxHandle) -> None:
    with client_for(fresh) as api:
        project_id = api.get("/projects").json()[0]["id"]
        proj = Project(api, project_id)
        fresh.set_faults(lose_next=1, lost_answer_match="/test-cases")
        body = {"name": "Timed out", "properties": [proj.prop("test-cases", "Zephyr Key", "LOST-T1")]}
        with pytest.raises(httpx.TransportError):
            api.post(f"/projects/{project_id}/test-cases", json=body)
        # The client cannot know; the search by the key it wrote finds the object, exactly once.
        found = api.post(
            f"/projects/{project_id}/search",
            json={"object_type": "test-cases", "query": "'Zephyr Key' = 'LOST-T1'"},
        )
        assert found.json()["total"] == 1
        assert fresh.counts(project_id)["test-cases"] == 1
        assert fresh.stats()["lost_answers"] == 1
        # Reads never lose answers, and the switch was for one write only.
        assert (
            api.post(f"/projects/{project_id}/test-cases", json={**body, "name": "Second"}).status_code == 200
        )


def test_faults_and_drops_are_not_applied(fresh: QTestSandboxHandle) -> None:
    with client_for(fresh) as api:
        project_id = api.get("/projects").json()[0]["id"]
        body = {"name": "Never", "properties": []}
        fresh.set_faults(fault_rate=1.0)
        assert api.post(f"/projects/{project_id}/test-cases", json=body).status_code in (500, 502, 503)
        fresh.set_faults(fault_rate=0.0, drop_rate=1.0)
        with pytest.raises(httpx.TransportError):
            api.post(f"/projects/{project_id}/test-cases", json=body)
        fresh.set_faults(drop_rate=0.0)
        assert fresh.counts(project_id)["test-cases"] == 0
        stats = fresh.stats()
        assert stats["injected_faults"] == 1 and stats["drops"] == 1
        assert stats["by_path"]["POST /api/v3/projects/{projectId}/test-cases"] == 2
        bad = httpx.post(f"{fresh.base_url}/_sandbox/faults", json={"fault_rate": 2}, timeout=10)
        assert bad.status_code == 400 and "fault_rate" in bad.json()["message"]


def test_the_refuse_switch_answers_400_to_the_create_calls_it_names(tmp_path: Path) -> None:
    """One object of each kind refused by what names it (a module's name, a property value, a word of a
    cycle's description, a file name): 400 with qTest's error shape, nothing stored; a neighbour whose text
    merely contains the refused one is created."""
    refuse = {
        "modules": ["Payments"],
        "test-cases": ["SHOP-T1"],
        "test-cycles": ["SHOP-R1"],
        "test-runs": ["SHOP-R2|SHOP-T2"],
        "test-logs": ["SHOP-E1"],
        "attachments": ["refused.pdf"],
    }
    with (
        start_qtest_in_thread(
            tmp_path / "state", seed=3, projects=["Refusing"], template="rich", refuse=refuse
        ) as handle,
        client_for(handle) as api,
    ):
        pid = api.get("/projects").json()[0]["id"]
        proj = Project(api, pid)
        before = handle.counts(pid)

        def refused(response: httpx.Response, text: str) -> None:
            assert response.status_code == 400, response.text
            body = response.json()
            assert set(body) == {"message"} and f"'{text}'" in body["message"], body

        refused(api.post(f"/projects/{pid}/modules", json={"name": "Payments"}), "Payments")
        assert api.post(f"/projects/{pid}/modules", json={"name": "Payments v2"}).status_code == 201
        key = proj.prop("test-cases", "Zephyr Key", "SHOP-T1")
        refused(api.post(f"/projects/{pid}/test-cases", json={"name": "A", "properties": [key]}), "SHOP-T1")
        case = proj.case("B", "SHOP-T10", test_steps=[{"description": "a", "expected": "b"}])
        cycle_url = f"/projects/{pid}/test-cycles?parentId=0&parentType=root"
        refused(
            api.post(cycle_url, json={"name": "S", "description": "x<br>Zephyr test cycle SHOP-R1"}),
            "SHOP-R1",
        )
        cycle = api.post(cycle_url, json={"name": "S", "description": "Zephyr test cycle SHOP-R10"})
        assert cycle.status_code == 201
        run_body = {
            "name": "Run",
            "test_case": {"id": case["id"]},
            "properties": [proj.prop("test-runs", "Zephyr Key", "SHOP-R2|SHOP-T2")],
        }
        runs_url = f"/projects/{pid}/test-runs?parentId={cycle.json()['id']}&parentType=test-cycle"
        refused(api.post(runs_url, json=run_body), "SHOP-R2|SHOP-T2")
        run = api.post(runs_url, json={**run_body, "properties": []}).json()
        log_body = {
            "status": {"id": proj.statuses["Passed"]},
            "exe_start_date": "2026-05-29T10:00:00Z",
            "exe_end_date": "2026-05-29T10:05:00Z",
            "properties": [proj.prop("test-runs", "Zephyr Key", "SHOP-E1")],
        }
        refused(api.post(f"/projects/{pid}/test-runs/{run['id']}/test-logs", json=log_body), "SHOP-E1")
        blob = f"/projects/{pid}/test-cases/{case['id']}/blob-handles"
        for name, status in (("refused.pdf", 400), ("not refused.pdf", 201)):
            answer = api.post(
                blob, content=b"%PDF", headers={"File-Name": name, "Content-Type": "application/pdf"}
            )
            assert answer.status_code == status, answer.text
        after = handle.counts(pid)
        # What was created: the neighbours only.
        made = {kind: after[kind] - before[kind] for kind in ("test-cases", "test-cycles", "test-runs")}
        assert made == {"test-cases": 1, "test-cycles": 1, "test-runs": 1}
        modules = {module["name"] for module in api.get(f"/projects/{pid}/modules").json()}
        assert "Payments v2" in modules and "Payments" not in modules
        assert (after["test-logs"], after["attachments"]) == (0, 1)
        # The switch can be changed while the sandbox runs; a bad value names it.
        handle.set_faults(refuse={})
        assert api.post(f"/projects/{pid}/modules", json={"name": "Payments"}).status_code == 201
        bad = httpx.post(f"{handle.base_url}/_sandbox/faults", json={"refuse": {"tests": ["x"]}}, timeout=10)
        assert bad.status_code == 400 and "refuse" in bad.json()["message"]


def test_admin_counts_dump_and_reset(fresh: QTestSandboxHandle) -> None:
    with client_for(fresh) as api:
        project_id = api.get("/projects").json()[0]["id"]
        proj = Project(api, project_id)
        case = proj.case("Dumped", "DUMP-T1", test_steps=[{"description": "a", "expected": "b"}])
        api.put(f"/projects/{project_id}/test-cases/{case['id']}/approve")
        counts = fresh.counts(project_id)
        assert counts["test-cases"] == 1 and counts["test-case-versions"] == 2 and counts["modules"] == 1
        dump = fresh.dump(project_id)
        assert [v["version"] for v in dump["test_cases"][0]["versions"]] == ["0.1", "1.0"]
        assert dump["modules"][0]["name"] == "Created via API"
        fresh.reset()
        projects = api.get("/projects").json()
        assert [p["name"] for p in projects] == ["Fresh"] and projects[0]["id"] != project_id
        assert fresh.counts()["projects"] == 1
        assert api.get("/projects").status_code == 200  # the token survives a reset


def test_the_cli_serves_qtest_beside_zephyr() -> None:
    from zephyr_qtest.cli import build_parser

    args = build_parser().parse_args(
        ["sandbox", "serve", "--qtest-port", "0", "--qtest-state", "/tmp/q", "--qtest-project", "A",
         "--qtest-project", "B", "--qtest-lost-answer-rate", "0.1"]
    )  # fmt: skip
    assert (args.qtest_port, str(args.qtest_state), args.qtest_project) == (0, "/tmp/q", ["A", "B"])
    assert args.qtest_template == "default"
    assert (
        build_parser().parse_args(["sandbox", "serve", "--qtest-template", "rich"]).qtest_template == "rich"
    )
    assert args.qtest_lost_answer_rate == 0.1 and args.no_qtest is False
    assert build_parser().parse_args(["sandbox", "serve", "--no-qtest"]).no_qtest is True


def test_a_queued_submission_finishes_in_time_without_polls(fresh: QTestSandboxHandle) -> None:
    with client_for(fresh) as api:
        project_id = api.get("/projects").json()[0]["id"]
        cycle = Project(api, project_id).cycle("Timed")
        fresh.set_faults(queue_polls=1000, queue_delay_s=0.2)
        item = {
            "name": "timed",
            "automation_content": "timed.one",
            "status": "PASSED",
            "exe_start_date": "2026-01-01T00:00:00Z",
            "exe_end_date": "2026-01-01T00:00:01Z",
            "module_names": ["Timed"],
        }
        job = api.post(
            f"/projects/{project_id}/auto-test-logs",
            params={"type": "automation"},
            json={"test_cycle": cycle["pid"], "test_logs": [item]},
        ).json()
        time.sleep(0.3)
        assert fresh.counts(project_id)["test-logs"] == 1  # processed on the next request, unpolled
        assert api.get(f"/projects/queue-processing/{job['id']}").json()["state"] == "SUCCESS"
