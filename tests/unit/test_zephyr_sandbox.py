"""The Zephyr Scale Cloud sandbox, exercised through a real uvicorn server on a free port.

Every answer the migration reads is checked against the vendor spec's own schemas (2026-widened,
see tests/sandbox_helpers.py); the rest checks the decisions the spec leaves open (paging, auth,
scripts, attachments) and the switches (429, 5xx, drops, malformed pages, page cap).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.sandbox_helpers import (
    ATTACHMENT_LIST_SCHEMA,
    EXECUTION_STEP_ID_SCHEMA,
    STEP_ID_SCHEMA,
    assert_valid,
    nextgen_page_schema,
)
from zephyr_qtest.sandbox.zephyr import auth
from zephyr_qtest.sandbox.zephyr.__main__ import main as sandbox_main
from zephyr_qtest.sandbox.zephyr.fixture import (
    FixtureError,
    fixture_bytes,
    load_fixture,
    save_fixture,
)
from zephyr_qtest.sandbox.zephyr.generator import generate
from zephyr_qtest.sandbox.zephyr.generator.hard_cases import (
    UNKNOWN_EXECUTION_STATUS,
    add_unknown_execution_status,
)
from zephyr_qtest.sandbox.zephyr.serve import ZephyrSandboxHandle, start_in_thread

SEED = 3
JIRA_HOST = "https://acme-qa.atlassian.net"


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_doc() -> dict[str, Any]:
    return generate(SEED, "tiny")


@pytest.fixture(scope="module")
def zephyr(tiny_doc: dict[str, Any]) -> Iterator[ZephyrSandboxHandle]:
    """A read-only sandbox shared by the tests that do not change it."""
    with start_in_thread(fixture=tiny_doc, seed=SEED) as handle:
        yield handle


@pytest.fixture(scope="module")
def api(zephyr: ZephyrSandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=zephyr.base_url, headers=zephyr.headers, timeout=10) as client:
        yield client


@pytest.fixture
def fresh(tiny_doc: dict[str, Any]) -> Iterator[ZephyrSandboxHandle]:
    """A sandbox of its own, for tests that flip switches or delete data."""
    with start_in_thread(fixture=tiny_doc, seed=SEED) as handle:
        yield handle


def client_for(handle: ZephyrSandboxHandle) -> httpx.Client:
    return httpx.Client(base_url=handle.base_url, headers=handle.headers, timeout=10)


def all_pages(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of an offset-paged list, advancing by the returned maxResults."""
    items: list[dict[str, Any]] = []
    start_at = 0
    while True:
        page = client.get(path, params={**(params or {}), "startAt": start_at, "maxResults": 1000})
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["values"])
        if body["isLast"]:
            return items
        start_at += body["maxResults"]


def flattened_step_count(doc: dict[str, Any], key: str, depth: int = 0) -> int:
    count = 0
    for step in doc["teststeps"].get(key, []):
        if "inline" in step:
            count += 1
        elif depth < 3:
            count += flattened_step_count(doc, step["testCase"]["testCaseKey"], depth + 1)
    return count


# ---------------------------------------------------------------------------- schema conformance


def test_every_answer_matches_the_vendor_schemas(api: httpx.Client, zephyr: ZephyrSandboxHandle) -> None:
    projects = all_pages(api, "/projects")
    assert_valid(api.get("/projects").json(), "ProjectList", "/projects")
    assert [p["key"] for p in projects] == ["SHOP", "PAY"]
    for project in projects:
        assert_valid(api.get(f"/projects/{project['id']}").json(), "Project")
        assert api.get(f"/projects/{project['key']}").json() == project
        key = project["key"]
        for path, schema, item_schema in (
            ("/folders", "FolderList", "Folder"),
            ("/statuses", "StatusList", "Status"),
            ("/priorities", "PriorityList", "Priority"),
            ("/environments", "EnvironmentList", "Environment"),
        ):
            page = api.get(path, params={"projectKey": key, "maxResults": 1000}).json()
            assert_valid(page, schema, path)
            assert page["values"], f"{path} of {key} is empty"
            first = page["values"][0]
            assert_valid(api.get(f"{path}/{first['id']}").json(), item_schema, f"{path}/{first['id']}")

        cases = all_pages(api, "/testcases", {"projectKey": key})
        assert_valid(api.get("/testcases", params={"projectKey": key}).json(), "TestCaseList")
        for case in cases:
            case_key = case["key"]
            assert_valid(case, "TestCase", case_key)
            assert_valid(api.get(f"/testcases/{case_key}").json(), "TestCase", case_key)
            assert_valid(api.get(f"/testcases/{case_key}/links").json(), "TestCaseLinkList", case_key)
            versions = api.get(f"/testcases/{case_key}/versions").json()
            assert_valid(versions, "TestCaseVersionLinkList", case_key)
            newest = versions["values"][0]["self"].rsplit("/", 1)[1]
            assert api.get(f"/testcases/{case_key}/versions/{newest}").json()["id"] == case["id"]
            steps = api.get(f"/testcases/{case_key}/teststeps", params={"maxResults": 100}).json()
            assert_valid(steps, "TestStepsList", case_key)
            for step in steps["values"]:
                assert_valid(step, STEP_ID_SCHEMA, f"{case_key} step")
            script = api.get(f"/testcases/{case_key}/testscript")
            if script.status_code == 200:
                assert_valid(script.json(), "TestScript", case_key)
            else:
                # 422 for a step-by-step case (REAL_SHAPES.md, Zephyr 2), 404 for a case with no script.
                assert script.status_code in (404, 422)
                assert_valid(script.json(), "Error")

        for path, list_schema, item_schema, links_schema in (
            ("/testcycles", "TestCycleList", "TestCycle", "TestCycleLinkList"),
            ("/testplans", "TestPlanList", "TestPlan", None),
        ):
            assert_valid(api.get(path, params={"projectKey": key}).json(), list_schema)
            for item in all_pages(api, path, {"projectKey": key}):
                assert_valid(item, item_schema, item["key"])
                assert api.get(f"{path}/{item['key']}").json() == item
                assert api.get(f"{path}/{item['id']}").json() == item
                if links_schema:
                    assert_valid(api.get(f"{path}/{item['id']}/links").json(), links_schema)

        executions = all_pages(api, "/testexecutions", {"projectKey": key})
        assert_valid(api.get("/testexecutions", params={"projectKey": key}).json(), "TestExecutionList")
        for execution in executions:
            assert_valid(execution, "TestExecution", execution["key"])
            steps = api.get(f"/testexecutions/{execution['id']}/teststeps", params={"maxResults": 100}).json()
            assert_valid(steps, "TestExecutionTestStepsList", execution["key"])
            for step in steps["values"]:
                assert_valid(step, EXECUTION_STEP_ID_SCHEMA)
        sample = executions[0]
        assert api.get(f"/testexecutions/{sample['key']}").json() == sample
        assert_valid(api.get(f"/testexecutions/{sample['id']}/links").json(), "TestExecutionLinkList")

        for path in (
            "/testcases/nextgen",
            "/testcycles/nextgen",
            "/testplans/nextgen",
            "/testexecutions/nextgen",
        ):
            page = api.get(path, params={"projectKey": key, "limit": 5}).json()
            assert_valid(page, nextgen_page_schema(), path)
            item_schema = {"testcases": "TestCase", "testcycles": "TestCycle", "testplans": "TestPlan"}.get(
                path.split("/")[1], "TestExecution"
            )
            for item in page["values"]:
                assert_valid(item, item_schema, path)

    # No link may still name the public API host: every self is on the sandbox or on Jira.
    for path in ("/testexecutions", "/testcases", "/testcycles", "/testplans", "/statuses"):
        page = api.get(path, params={"maxResults": 1000})
        assert "api.zephyrscale.smartbear.com" not in page.text
        for value in page.json()["values"]:
            assert value["project"]["self"] == f"{zephyr.base_url}/projects/{value['project']['id']}"


def test_test_script_link_decides_which_endpoint_answers(
    api: httpx.Client, zephyr: ZephyrSandboxHandle, tiny_doc: dict[str, Any]
) -> None:
    kinds = {"steps": 0, "plain": 0, "bdd": 0, "none": 0, "empty": 0}
    for case in tiny_doc["testcases"]:
        key = case["key"]
        served = api.get(f"/testcases/{key}").json()
        link = (served.get("testScript") or {}).get("self")
        steps = api.get(f"/testcases/{key}/teststeps")
        script = api.get(f"/testcases/{key}/testscript")
        assert steps.status_code == 200
        if key in tiny_doc["teststeps"]:
            # REAL_SHAPES.md, Zephyr Scale Cloud 2: the link names /teststeps, /testscript answers 422.
            assert link == f"{zephyr.base_url}/testcases/{key}/teststeps"
            assert script.status_code == 422 and script.json()["errorCode"] == 422
            assert f"/testcases/{key}/teststeps" in script.json()["message"]
            assert steps.json()["total"] == len(tiny_doc["teststeps"][key])
            kinds["steps" if tiny_doc["teststeps"][key] else "empty"] += 1
        elif key in tiny_doc["testscripts"]:
            assert link == f"{zephyr.base_url}/testcases/{key}/testscript"
            assert script.json()["type"] in ("plain", "bdd")
            assert steps.json()["values"] == [] and steps.json()["total"] == 0
            kinds[script.json()["type"]] += 1
        else:
            assert link is None
            assert script.status_code == 404
            assert steps.json()["values"] == []
            kinds["none"] += 1
    assert kinds["steps"] and kinds["plain"] + kinds["bdd"], kinds


# ---------------------------------------------------------------------------- auth and errors


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, auth.MISSING_HEADER),
        ("Bearer", auth.MISSING_HEADER),
        ("Bearer only.two", auth.NOT_THREE_PARTS),
        ("Bearer a.b.c.d", auth.NOT_THREE_PARTS),
        ("Bearer ab$c.def.ghi", auth.NOT_BASE64),
        (f"Bearer {_segment(b'not json')}.{_segment(b'{}')}.{_segment(b'sig')}", auth.NOT_JSON),
        ("BAD_SIGNATURE", auth.BAD_SIGNATURE),
    ],
)
def test_auth_failures_answer_401_with_the_2026_body(
    zephyr: ZephyrSandboxHandle, header: str | None, message: str
) -> None:
    if header == "BAD_SIGNATURE":
        header = f"Bearer {auth.mint_token(b'another sandbox secret')}"
    headers = {"Authorization": header} if header is not None else {}
    response = httpx.get(f"{zephyr.base_url}/testcases", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": message}
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_token_minted_with_the_sandbox_secret_is_accepted(zephyr: ZephyrSandboxHandle) -> None:
    token = auth.mint_token(zephyr.sandbox.secret, account_id="5b10a2844c20165700ede21g")
    assert token != zephyr.token
    response = httpx.get(f"{zephyr.base_url}/healthcheck", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-methods"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/folders/abc", {}, 400),
        ("/statuses/0", {}, 400),
        ("/testcases", {"maxResults": 0}, 400),
        ("/testcases", {"maxResults": "ten"}, 400),
        ("/testcases", {"startAt": -1}, 400),
        ("/testcases", {"projectKey": "lower"}, 400),
        ("/testcases", {"projectKey": "NOPE"}, 400),
        ("/testcases/nextgen", {"limit": 1001}, 400),
        ("/testcases/nextgen", {"updatedAfter": "yesterday"}, 400),
        ("/statuses", {"statusType": "TEST_RUN"}, 400),
        ("/testexecutions", {"onlyLastExecutions": "maybe"}, 400),
        ("/testcases/NOT-A-KEY", {}, 400),
        ("/testcases/SHOP-T9999", {}, 404),
        ("/testcycles/SHOP-R9999", {}, 404),
        ("/testexecutions/999999999", {}, 404),
        ("/testexecutions/SHOP-E1/teststeps/999/attachments", {}, 404),
        ("/nothing/here", {}, 404),
    ],
)
def test_errors_use_the_spec_error_body(
    api: httpx.Client, path: str, params: dict[str, Any], status: int
) -> None:
    response = api.get(path, params=params)
    assert response.status_code == status, response.text
    assert_valid(response.json(), "Error", path)
    assert response.json()["errorCode"] == status
    if status == 404 and path.startswith("/testcases/SHOP"):
        assert (
            response.json()["message"]
            == "Test case 'SHOP-T9999' does not exist or you do not have access to it"
        )


def test_cors_preflight_needs_no_token(zephyr: ZephyrSandboxHandle) -> None:
    response = httpx.options(f"{zephyr.base_url}/testcases")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in response.headers["access-control-allow-headers"]


# ---------------------------------------------------------------------------- paging


def test_offset_paging_under_a_lowered_cap_returns_every_item_once(tiny_doc: dict[str, Any]) -> None:
    with start_in_thread(fixture=tiny_doc, seed=SEED, page_cap=7) as handle, client_for(handle) as client:
        expected = sorted(e["id"] for e in tiny_doc["testexecutions"] if e["key"].startswith("SHOP-"))
        seen: list[int] = []
        start_at, pages = 0, 0
        while True:
            body = client.get(
                "/testexecutions", params={"projectKey": "SHOP", "startAt": start_at, "maxResults": 50}
            ).json()
            assert body["maxResults"] == 7  # the effective cap, not the requested 50
            assert body["total"] == len(expected)
            assert len(body["values"]) <= 7
            seen.extend(v["id"] for v in body["values"])
            pages += 1
            if body["isLast"]:
                assert body["next"] is None
                break
            assert body["next"].startswith(handle.base_url + "/testexecutions?")
            start_at += body["maxResults"]
        assert seen == expected
        assert pages == -(-len(expected) // 7)

        # Following the next links gives the same sequence; startAt need not be a multiple.
        via_next: list[int] = []
        url: str | None = f"{handle.base_url}/testexecutions?projectKey=SHOP&maxResults=50"
        while url:
            body = client.get(url).json()
            via_next.extend(v["id"] for v in body["values"])
            url = body["next"]
        assert via_next == expected
        odd = client.get(
            "/testexecutions", params={"projectKey": "SHOP", "startAt": 3, "maxResults": 5}
        ).json()
        assert [v["id"] for v in odd["values"]] == expected[3:8]


def test_step_pages_are_capped_at_100(api: httpx.Client, tiny_doc: dict[str, Any]) -> None:
    key, steps = max(tiny_doc["teststeps"].items(), key=lambda item: len(item[1]))
    assert len(steps) > 100
    first = api.get(f"/testcases/{key}/teststeps", params={"maxResults": 1000}).json()
    assert first["maxResults"] == 100 and len(first["values"]) == 100 and not first["isLast"]
    rest = api.get(f"/testcases/{key}/teststeps", params={"maxResults": 1000, "startAt": 100}).json()
    assert rest["isLast"] and rest["next"] is None
    # Served exactly as the fixture holds them, but for the inline images' CDN, which the sandbox serves.
    cdn = "https://cloudfront.tm4j.smartbear.com/tenant/"
    served_cdn = str(api.base_url).rstrip("/").removesuffix("/v2") + "/cdn/tenant/"
    assert first["values"] + rest["values"] == json.loads(json.dumps(steps).replace(cdn, served_cdn))

    execution_id, results = max(tiny_doc["testexecution_steps"].items(), key=lambda item: len(item[1]))
    assert len(results) > 100
    page = api.get(f"/testexecutions/{execution_id}/teststeps", params={"maxResults": 500}).json()
    assert page["maxResults"] == 100 and page["total"] == len(results)


def test_a_data_driven_execution_lists_every_rows_results(
    api: httpx.Client, tiny_doc: dict[str, Any]
) -> None:
    """The generated tenant has data-driven executions: their list holds the case's flattened steps once per
    data row, each result with its row's testDataRowNumber and the row's values in its text, and
    ?testDataRowNumber= answers one row's results."""
    driven = {
        execution_id: results
        for execution_id, results in tiny_doc["testexecution_steps"].items()
        if any(result["inline"]["testDataRowNumber"] for result in results)
    }
    assert driven
    execution_id, results = next(iter(driven.items()))
    rows = [result["inline"]["testDataRowNumber"] for result in results]
    numbers = sorted(set(rows))
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 1
    per_row = len(results) // len(numbers)
    assert rows == [number for number in numbers for _ in range(per_row)]
    # every row runs the same steps, with its own values in place of the case's parameters
    assert not any("{username}" in (result["inline"]["description"] or "") for result in results)
    listed = api.get(f"/testexecutions/{execution_id}/teststeps", params={"maxResults": 100}).json()
    assert [value["inline"]["testDataRowNumber"] for value in listed["values"]] == rows[:100]
    second = api.get(
        f"/testexecutions/{execution_id}/teststeps", params={"maxResults": 100, "testDataRowNumber": 2}
    ).json()
    assert [value["id"] for value in second["values"]] == [r["id"] for r in results[per_row : 2 * per_row]][
        :100
    ]


def test_cursor_paging_returns_every_item_once_in_id_order(tiny_doc: dict[str, Any]) -> None:
    with start_in_thread(fixture=tiny_doc, seed=SEED, page_cap=9) as handle, client_for(handle) as client:
        expected = sorted(e["id"] for e in tiny_doc["testexecutions"])
        seen: list[int] = []
        start_at_id = 0
        while True:
            body = client.get(
                "/testexecutions/nextgen", params={"limit": 25, "startAtId": start_at_id}
            ).json()
            assert body["limit"] == 9
            seen.extend(v["id"] for v in body["values"])
            if body["nextStartAtId"] is None:
                assert body["next"] is None
                break
            assert body["next"].startswith(handle.base_url + "/testexecutions/nextgen?")
            start_at_id = body["nextStartAtId"]
        assert seen == expected

        via_next: list[int] = []
        url: str | None = f"{handle.base_url}/testcases/nextgen?projectKey=PAY&limit=4"
        while url:
            body = client.get(url).json()
            via_next.extend(v["id"] for v in body["values"])
            url = body["next"]
        assert via_next == sorted(c["id"] for c in tiny_doc["testcases"] if c["key"].startswith("PAY-"))


def test_every_paged_endpoint_ends_with_next_null(
    api: httpx.Client, zephyr: ZephyrSandboxHandle, tiny_doc: dict[str, Any]
) -> None:
    """REAL_SHAPES.md, Zephyr Scale Cloud 3: the last page carries `"next": null` (present, not left out),
    every other page a `next` URL, on every offset and cursor list the sandbox serves."""
    steps_case = max(tiny_doc["teststeps"], key=lambda key: len(tiny_doc["teststeps"][key]))
    execution = next(
        e for e in tiny_doc["testexecutions"] if tiny_doc["testexecution_steps"].get(str(e["id"]))
    )
    offset_paths = [
        "/projects",
        "/folders?projectKey=SHOP",
        "/statuses?projectKey=SHOP",
        "/statuses?projectKey=SHOP&statusType=TEST_EXECUTION",
        "/priorities?projectKey=SHOP",
        "/environments?projectKey=SHOP",
        "/testcases?projectKey=SHOP",
        f"/testcases/{steps_case}/versions",
        f"/testcases/{steps_case}/teststeps",
        "/testcycles?projectKey=SHOP",
        "/testplans?projectKey=SHOP",
        "/testexecutions?projectKey=SHOP",
        f"/testexecutions/{execution['id']}/teststeps",
    ]
    cursor_paths = [
        "/testcases/nextgen",
        "/testcycles/nextgen",
        "/testplans/nextgen",
        "/testexecutions/nextgen",
    ]
    for path in offset_paths + cursor_paths:
        separator = "&" if "?" in path else "?"
        size = "limit=3" if path.endswith("/nextgen") else "maxResults=3"
        url: str | None = f"{zephyr.base_url}{path}{separator}{size}"
        pages = 0
        while url is not None:
            body = api.get(url).json()
            pages += 1
            assert "next" in body, path
            last = body["nextStartAtId"] is None if path.endswith("/nextgen") else body["isLast"]
            assert (body["next"] is None) == last, (path, pages, body["next"])
            url = body["next"]
        assert pages >= 1, path
    # An empty list is one last page too.
    empty = api.get("/testexecutions", params={"projectKey": "SHOP", "startAt": 100000}).json()
    assert empty["values"] == [] and empty["next"] is None


def test_nextgen_pages_may_leave_next_out(fresh: ZephyrSandboxHandle, tiny_doc: dict[str, Any]) -> None:
    """The switch for the other real shape (REAL_SHAPES.md, Zephyr 3): no `next` at all, only the cursor."""
    fresh.set_faults(nextgen_omit_next=True)
    with client_for(fresh) as client:
        seen: list[int] = []
        start_at_id: int | None = 0
        while start_at_id is not None:
            body = client.get("/testcases/nextgen", params={"limit": 4, "startAtId": start_at_id}).json()
            assert "next" not in body
            seen.extend(v["id"] for v in body["values"])
            start_at_id = body["nextStartAtId"]
        assert seen == sorted(c["id"] for c in tiny_doc["testcases"])
        assert (
            client.get("/testcases", params={"maxResults": 1000}).json()["next"] is None
        )  # offset: unchanged
    response = httpx.post(f"{fresh.root_url}/_sandbox/faults", json={"nextgen_omit_next": "yes"})
    assert response.status_code == 400 and "nextgen_omit_next" in response.json()["message"]


def test_a_case_edited_between_offset_pages_is_served_again_edited(fresh: ZephyrSandboxHandle) -> None:
    """The switch for an edit during an offset listing (API_NOTES.md Z-2: offset pages are not stable):
    the case comes on the page holding it, then again, edited, at the start of the next page; once."""
    with client_for(fresh) as client:
        before = all_pages(client, "/testcases", {"projectKey": "SHOP"})
        target = before[2]
        fresh.set_faults(
            page_cap=5, edited_between_pages=[{"key": target["key"], "set": {"name": "Edited mid-listing"}}]
        )
        pages, start_at = [], 0
        while True:
            body = client.get("/testcases", params={"projectKey": "SHOP", "startAt": start_at}).json()
            pages.append(body)
            if body["isLast"]:
                break
            start_at += body["maxResults"]
        served = [case for page in pages for case in page["values"]]
        copies = [case for case in served if case["id"] == target["id"]]
        assert [case["name"] for case in copies] == [target["name"], "Edited mid-listing"]
        assert pages[1]["values"][0]["name"] == "Edited mid-listing"
        assert [case["id"] for case in served if case["id"] != target["id"]] == [
            case["id"] for case in before if case["id"] != target["id"]
        ]
        assert pages[0]["total"] == len(before) and pages[-1]["total"] == len(before) + 1
        # Spent: the next listing serves every case once, the edit kept.
        again = all_pages(client, "/testcases", {"projectKey": "SHOP"})
        assert [case["id"] for case in again] == [case["id"] for case in before]
        assert again[2]["name"] == "Edited mid-listing"


def test_a_tenant_without_nextgen_answers_404_there(fresh: ZephyrSandboxHandle) -> None:
    fresh.set_faults(nextgen_missing=True)
    with client_for(fresh) as client:
        assert client.get("/testcases/nextgen").status_code == 404
        assert client.get("/testexecutions/nextgen").json() == {"errorCode": 404, "message": "Not found"}
        assert client.get("/testcases").status_code == 200


def test_lone_surrogates_and_nul_in_a_fixture_are_served_as_escapes(
    tiny_doc: dict[str, Any], tmp_path: Path
) -> None:
    """A fixture holds what a tenant can: half an emoji (a lone surrogate) and a NUL. The listing answers
    200 with them as JSON escapes, as a JVM service's JSON writer does, not 500."""
    document = json.loads(json.dumps(tiny_doc))
    case = document["testcases"][0]
    case["name"] = "cut emoji \ud83d here"
    case["objective"] = "nul \x00 here"
    saved = save_fixture(document, tmp_path / "odd.json")  # a file holds them as escapes too
    with start_in_thread(fixture=saved, seed=SEED) as handle, client_for(handle) as client:
        for path in ("/testcases", "/testcases/nextgen", f"/testcases/{case['key']}"):
            response = client.get(path, params={"maxResults": 1000} if path == "/testcases" else None)
            assert response.status_code == 200, response.text
            assert "cut emoji \\ud83d here" in response.text and "nul \\u0000 here" in response.text
        served = client.get(f"/testcases/{case['key']}").json()
        assert served["name"] == "cut emoji \ud83d here" and served["objective"] == "nul \x00 here"


def test_updated_after_returns_only_what_changed(fresh: ZephyrSandboxHandle) -> None:
    with client_for(fresh) as client:
        before = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 1))
        assert client.get("/testcases/nextgen", params={"updatedAfter": before}).json()["values"] == []
        fresh.mutate("testcase", "SHOP-T4", {"name": "Renamed in Zephyr ✎"})
        changed = client.get("/testcases/nextgen", params={"updatedAfter": before, "limit": 100}).json()
        assert [c["key"] for c in changed["values"]] == ["SHOP-T4"]
        assert changed["nextStartAtId"] is None
        assert client.get("/testcases/SHOP-T4").json()["name"] == "Renamed in Zephyr ✎"


# ---------------------------------------------------------------------------- filters


STATUS_KEYS = {"id", "project", "name", "description", "index", "color", "archived", "default"}


def test_statuses_carry_no_type_and_answer_under_their_one_type_filter(
    api: httpx.Client, tiny_doc: dict[str, Any]
) -> None:
    """REAL_SHAPES.md, Zephyr Scale Cloud 1: `{id, project, name, description, index, color, archived,
    default}` and nothing else; `statusType` is only the query filter, and each status answers under one."""
    project_id = tiny_doc["projects"][0]["id"]
    project_of = {s["id"]: s["project"]["id"] for s in tiny_doc["statuses"]}
    union: list[int] = []
    for status_type in ("TEST_CASE", "TEST_PLAN", "TEST_CYCLE", "TEST_EXECUTION"):
        values = all_pages(api, "/statuses", {"projectKey": "SHOP", "statusType": status_type})
        assert values, status_type
        assert all(set(v) <= STATUS_KEYS for v in values), values
        expected = [i for i in tiny_doc["status_types"][status_type] if project_of[i] == project_id]
        assert [v["id"] for v in values] == sorted(expected)
        union.extend(v["id"] for v in values)
    every = [s["id"] for s in tiny_doc["statuses"] if s["project"]["id"] == project_id]
    assert sorted(union) == sorted(every)  # every status once: the types are disjoint and complete
    unfiltered = all_pages(api, "/statuses")
    assert len(unfiltered) == len(tiny_doc["statuses"])
    assert not any("statusType" in status for status in unfiltered)
    sample = unfiltered[0]
    assert "statusType" not in api.get(f"/statuses/{sample['id']}").json()


def test_an_unknown_archived_execution_status_is_served_on_one_manual_execution(
    tiny_doc: dict[str, Any],
) -> None:
    """The hard case ``add_unknown_execution_status``: the archived status answers under its filter like any
    other, and one manual, executed execution without attachments points at it; nothing else changed."""
    doc = copy.deepcopy(tiny_doc)
    key = add_unknown_execution_status(doc, "SHOP")
    changed = [
        e["key"] for e, o in zip(doc["testexecutions"], tiny_doc["testexecutions"], strict=True) if e != o
    ]
    assert changed == [key]
    with start_in_thread(fixture=doc, seed=SEED) as handle, client_for(handle) as client:
        statuses = all_pages(client, "/statuses", {"projectKey": "SHOP", "statusType": "TEST_EXECUTION"})
        (old_skip,) = [s for s in statuses if s["name"] == UNKNOWN_EXECUTION_STATUS]
        assert old_skip["archived"] is True and set(old_skip) <= STATUS_KEYS
        execution = client.get(f"/testexecutions/{key}").json()
        assert execution["testExecutionStatus"]["id"] == old_skip["id"]
        assert execution["automated"] is False and execution["actualEndDate"]
        assert client.get(f"/testexecutions/{key}/attachments").json() == {"attachments": []}


def test_a_status_type_cannot_be_set_on_a_status(
    fresh: ZephyrSandboxHandle, tiny_doc: dict[str, Any]
) -> None:
    status_id = tiny_doc["statuses"][0]["id"]
    response = httpx.post(
        f"{fresh.root_url}/_sandbox/mutate",
        json={"type": "status", "key": str(status_id), "set": {"statusType": "TEST_PLAN"}},
    )
    assert response.status_code == 400 and "statusType" in response.json()["message"]


def test_folder_type_filter(api: httpx.Client) -> None:
    for folder_type in ("TEST_CASE", "TEST_CYCLE", "TEST_PLAN"):
        folders = all_pages(api, "/folders", {"projectKey": "PAY", "folderType": folder_type})
        assert folders and {f["folderType"] for f in folders} == {folder_type}
        roots = [f for f in folders if f["parentId"] is None]
        assert roots, folder_type


def test_execution_filters(api: httpx.Client, tiny_doc: dict[str, Any]) -> None:
    executions = [e for e in tiny_doc["testexecutions"] if e["key"].startswith("SHOP-")]
    cycle = next(e["testCycle"]["id"] for e in executions if e["testCycle"])
    cycle_key = next(c["key"] for c in tiny_doc["testcycles"] if c["id"] == cycle)
    in_cycle = all_pages(api, "/testexecutions", {"testCycle": cycle_key})
    assert {e["id"] for e in in_cycle} == {
        e["id"] for e in executions if (e["testCycle"] or {}).get("id") == cycle
    }

    case_key = executions[0]["testCase"]["self"].split("/testcases/")[1].split("/")[0]
    of_case = all_pages(api, "/testexecutions", {"testCase": case_key})
    assert of_case and all(f"/testcases/{case_key}/versions/" in e["testCase"]["self"] for e in of_case)

    last = all_pages(api, "/testexecutions", {"projectKey": "SHOP", "onlyLastExecutions": "true"})
    pairs = {
        (e["testCycle"]["id"], e["testCase"]["self"].split("/versions/")[0])
        for e in executions
        if e["testCycle"]
    }
    ad_hoc = [e for e in executions if e["testCycle"] is None]
    assert ad_hoc, "the generator makes ad-hoc executions"
    assert len(last) == len(pairs) + len(ad_hoc)

    dated = sorted(e["actualEndDate"] for e in executions if e["actualEndDate"])
    middle = dated[len(dated) // 2]
    after = all_pages(api, "/testexecutions", {"projectKey": "SHOP", "actualEndDateAfter": middle})
    before = all_pages(api, "/testexecutions", {"projectKey": "SHOP", "actualEndDateBefore": middle})
    assert len(after) + len(before) == len(dated)  # after is inclusive, before exclusive
    assert all(e["actualEndDate"] >= middle for e in after)


# ---------------------------------------------------------------------------- switches


@pytest.mark.parametrize(("mode", "expected_header"), [("seconds", "1"), ("zero", "0"), ("absent", None)])
def test_rate_limit_answers_429_with_retry_after(
    fresh: ZephyrSandboxHandle, mode: str, expected_header: str | None
) -> None:
    fresh.set_faults(rate_limit=2, retry_after_mode=mode)
    with client_for(fresh) as client:
        statuses = [client.get("/healthcheck") for _ in range(5)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]  # the burst is one second's worth
    limited = [r for r in statuses if r.status_code == 429]
    assert len(limited) >= 2
    for response in limited:
        assert response.json() == {"errorCode": 429, "message": "Rate limit exceeded"}
        assert response.headers.get("retry-after") == expected_header
    # Each token has its own bucket.
    other = auth.mint_token(fresh.sandbox.secret, account_id="another-user")
    assert (
        httpx.get(f"{fresh.base_url}/healthcheck", headers={"Authorization": f"Bearer {other}"}).status_code
        == 200
    )
    assert fresh.stats()["rate_limited"] == len(limited)
    if mode == "seconds":
        time.sleep(1.05)
        assert httpx.get(f"{fresh.base_url}/healthcheck", headers=fresh.headers).status_code == 200


def test_random_429s_beside_the_bucket_carry_retry_after_zero(fresh: ZephyrSandboxHandle) -> None:
    fresh.set_faults(rate_limited_rate=0.5, seed=1)
    with client_for(fresh) as client:
        responses = [client.get("/healthcheck") for _ in range(200)]
    limited = [r for r in responses if r.status_code == 429]
    assert 60 < len(limited) < 140
    assert {r.headers.get("retry-after") for r in limited} == {"0"}
    assert all(r.status_code == 200 for r in responses if r.status_code != 429)
    fresh.set_faults(rate_limited_rate=0.0)
    with client_for(fresh) as client:
        assert all(client.get("/healthcheck").status_code == 200 for _ in range(20))


def test_fault_rate_answers_5xx_with_the_spec_body(fresh: ZephyrSandboxHandle) -> None:
    fresh.set_faults(fault_rate=1.0)
    with client_for(fresh) as client:
        responses = [client.get("/projects") for _ in range(6)]
        for response in responses:
            assert response.status_code in (500, 502, 503)
            assert response.json() == {
                "errorCode": response.status_code,
                "message": "backend returned a 5xx or could not be reached",
            }
        fresh.set_faults(fault_rate=0.0)
        assert client.get("/projects").status_code == 200
    stats = fresh.stats()
    assert stats["injected_faults"] == 6 and stats["server_errors"] == 6


def test_faults_are_deterministic_for_a_seed(tiny_doc: dict[str, Any]) -> None:
    runs = []
    for _ in range(2):
        with (
            start_in_thread(fixture=tiny_doc, seed=42, fault_rate=0.5) as handle,
            client_for(handle) as client,
        ):
            runs.append([client.get("/healthcheck").status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert 200 in runs[0] and any(status >= 500 for status in runs[0])


def test_drop_rate_cuts_the_connection_mid_body(fresh: ZephyrSandboxHandle) -> None:
    fresh.set_faults(drop_rate=1.0)
    for _ in range(3):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{fresh.base_url}/testcases", headers=fresh.headers, params={"maxResults": 50})
    fresh.set_faults(drop_rate=0.0)
    assert httpx.get(f"{fresh.base_url}/testcases", headers=fresh.headers).status_code == 200
    assert fresh.stats()["drops"] == 3


@pytest.mark.parametrize("kind", ["invalid_json", "missing_values"])
def test_malformed_pages(fresh: ZephyrSandboxHandle, kind: str) -> None:
    fresh.set_faults(malformed=[{"prefix": "/testcases", "count": 2, "kind": kind}])
    with client_for(fresh) as client:
        assert "values" in client.get("/projects").json()  # other paths are untouched
        for _ in range(2):
            response = client.get("/testcases")
            assert response.status_code == 200
            if kind == "invalid_json":
                with pytest.raises(json.JSONDecodeError):
                    json.loads(response.content)
            else:
                body = response.json()
                assert "values" not in body and "total" in body
        assert "values" in client.get("/testcases").json()  # the rule is used up
    assert fresh.stats()["malformed"] == 2


def test_bad_switch_values_are_refused(fresh: ZephyrSandboxHandle) -> None:
    response = httpx.post(f"{fresh.root_url}/_sandbox/faults", json={"fault_rate": 2})
    assert response.status_code == 400 and "fault_rate" in response.json()["message"]
    response = httpx.post(f"{fresh.root_url}/_sandbox/faults", json={"latency": 5})
    assert response.status_code == 400 and "unknown fault switch" in response.json()["message"]
    with pytest.raises(ValueError, match="retry_after_mode"):
        start_in_thread(size="tiny", retry_after_mode="later")  # type: ignore[arg-type]


def test_latency_is_added(fresh: ZephyrSandboxHandle) -> None:
    fresh.set_faults(latency_ms=150)
    started = time.perf_counter()
    assert httpx.get(f"{fresh.base_url}/healthcheck", headers=fresh.headers).status_code == 200
    assert time.perf_counter() - started >= 0.11


def test_stats_count_requests_by_path_template(fresh: ZephyrSandboxHandle) -> None:
    fresh.reset_stats()
    with client_for(fresh) as client:
        client.get("/testcases/SHOP-T1")
        client.get("/testcases/SHOP-T2")
        client.get("/testcases/SHOP-T2/teststeps")
        client.get("/testcases/SHOP-T9999")
    httpx.get(f"{fresh.base_url}/projects")
    stats = fresh.stats()
    assert stats["requests"] == 5
    assert stats["by_path"]["/v2/testcases/{testCaseKey}"] == 3
    assert stats["by_path"]["/v2/testcases/{testCaseKey}/teststeps"] == 1
    assert stats["by_path_status"]["/v2/testcases/{testCaseKey}"] == {"200": 2, "404": 1}
    assert stats["unauthorized"] == 1


# ---------------------------------------------------------------------------- mutations


def test_a_case_deleted_mid_run_answers_404(fresh: ZephyrSandboxHandle, tiny_doc: dict[str, Any]) -> None:
    owner = next(
        o for o in tiny_doc["attachments"] if o.startswith("testcases/SHOP-") and "/teststeps/" not in o
    )
    key = owner.split("/")[1]
    attachment_id = tiny_doc["attachments"][owner][0]["id"]
    with client_for(fresh) as client:
        total = client.get("/testcases", params={"projectKey": "SHOP"}).json()["total"]
        assert client.get(f"/testcases/{key}/attachments").json()["attachments"]
        fresh.delete_test_case(key)
        for path in (
            f"/testcases/{key}",
            f"/testcases/{key}/teststeps",
            f"/testcases/{key}/testscript",
            f"/testcases/{key}/links",
            f"/testcases/{key}/versions",
            f"/testcases/{key}/attachments",
            f"/testcases/{key}/attachments/{attachment_id}",
        ):
            response = client.get(path)
            assert response.status_code == 404, path
            assert (
                response.json()["message"]
                == f"Test case '{key}' does not exist or you do not have access to it"
            )
        assert client.get("/testcases", params={"projectKey": "SHOP"}).json()["total"] == total - 1
        keys = {c["key"] for c in all_pages(client, "/testcases", {"projectKey": "SHOP"})}
        assert key not in keys
    assert httpx.delete(f"{fresh.root_url}/_sandbox/testcases/{key}").status_code == 404


def test_mutate_refuses_identity_changes(fresh: ZephyrSandboxHandle) -> None:
    response = httpx.post(
        f"{fresh.root_url}/_sandbox/mutate",
        json={"type": "testcase", "key": "SHOP-T1", "set": {"key": "SHOP-T2"}},
    )
    assert response.status_code == 400
    response = httpx.post(
        f"{fresh.root_url}/_sandbox/mutate",
        json={"type": "testcycle", "key": "SHOP-R1", "set": {"name": "Q"}},
    )
    assert response.status_code == 200 and response.json()["name"] == "Q"


# ---------------------------------------------------------------------------- attachments


def test_attachments_of_every_owner_kind(api: httpx.Client, tiny_doc: dict[str, Any]) -> None:
    kinds_seen = set()
    for owner, files in tiny_doc["attachments"].items():
        parts = owner.split("/")
        kinds_seen.add((parts[0], len(parts) > 2))
        listing = api.get(f"/{owner}/attachments")
        assert listing.status_code == 200, owner
        assert_valid(listing.json(), ATTACHMENT_LIST_SCHEMA, owner)
        assert listing.json() == {"attachments": [{"id": f["id"], "name": f["name"]} for f in files]}
        for item in files:
            content = api.get(f"/{owner}/attachments/{item['id']}")
            assert content.status_code == 200
            assert content.content == base64.b64decode(item["base64"])
            assert content.headers["content-type"].split(";")[0] == item["contentType"]
            assert int(content.headers["content-length"]) == len(content.content)
            disposition = content.headers["content-disposition"]
            assert disposition.startswith("attachment; filename=")
            assert unquote(disposition.split("filename*=UTF-8''")[1]) == item["name"]
    assert kinds_seen == {
        ("testcases", False),
        ("testcases", True),
        ("testcycles", False),
        ("testplans", False),
        ("testexecutions", False),
        ("testexecutions", True),
    }
    # A case's attachments answer by id as well as by key; unknown ids and steps answer 404.
    owner = next(o for o in tiny_doc["attachments"] if o.startswith("testcases/") and o.count("/") == 1)
    case = next(c for c in tiny_doc["testcases"] if c["key"] == owner.split("/")[1])
    assert api.get(f"/testcases/{case['id']}/attachments").json()["attachments"]
    assert api.get(f"/{owner}/attachments/999999").status_code == 404
    assert api.get(f"/testcases/{case['key']}/teststeps/1/attachments").status_code == 404


def test_owners_without_attachments_answer_an_empty_list(api: httpx.Client, tiny_doc: dict[str, Any]) -> None:
    key = next(
        c["key"] for c in tiny_doc["testcases"] if f"testcases/{c['key']}" not in tiny_doc["attachments"]
    )
    assert api.get(f"/testcases/{key}/attachments").json() == {"attachments": []}


# ---------------------------------------------------------------------------- data: generator and fixtures


def test_generator_is_deterministic_and_sized() -> None:
    first = fixture_bytes(generate(11, "tiny"))
    assert first == fixture_bytes(generate(11, "tiny"))
    assert first != fixture_bytes(generate(12, "tiny"))
    doc = generate(5, {"preset": "tiny", "projects": 3, "cases": 10, "executions": 20})
    assert len(doc["projects"]) == 3
    assert len(doc["testcases"]) == 30
    assert len(doc["testexecutions"]) == 60
    with pytest.raises(ValueError, match="unknown size"):
        generate(1, "huge")


def test_generated_data_covers_what_a_migration_meets(tiny_doc: dict[str, Any]) -> None:
    doc = generate(SEED, "small")
    # Statuses of all four types, the type beside the status, never in it (REAL_SHAPES.md, Zephyr 1).
    assert set(doc["status_types"]) == {"TEST_CASE", "TEST_PLAN", "TEST_CYCLE", "TEST_EXECUTION"}
    assert sorted(i for ids in doc["status_types"].values() for i in ids) == sorted(
        s["id"] for s in doc["statuses"]
    )
    assert not any("statusType" in status for status in doc["statuses"])
    by_id = {f["id"]: f for f in doc["folders"]}

    def depth(folder: dict[str, Any]) -> int:
        return 1 if folder["parentId"] is None else 1 + depth(by_id[folder["parentId"]])

    for folder_type in ("TEST_CASE", "TEST_CYCLE", "TEST_PLAN"):
        assert max(depth(f) for f in doc["folders"] if f["folderType"] == folder_type) >= 3
    step_counts = [len(steps) for steps in doc["teststeps"].values()]
    assert 0 in step_counts and max(step_counts) > 100
    assert sum(step_counts) / len(step_counts) < 6
    calls = [
        (key, s["testCase"]) for key, steps in doc["teststeps"].items() for s in steps if "testCase" in s
    ]
    assert any(call["parameters"] for _, call in calls)
    assert any(key.split("-")[0] != call["testCaseKey"].split("-")[0] for key, call in calls)
    assert {s["type"] for s in doc["testscripts"].values()} == {"plain", "bdd"}
    scriptless = [c for c in doc["testcases"] if c.get("testScript") is None]
    assert scriptless
    executions = doc["testexecutions"]
    assert any(e["testCycle"] is None for e in executions) and any(e["automated"] for e in executions)
    assert any(
        e["testCase"]["self"].endswith("/versions/1") and e["testCase"]["id"] >= 600001 for e in executions
    )
    values = [v for c in doc["testcases"] for v in c["customFields"].values()]
    for kind in (bool, int, float, list, str, type(None)):
        assert any(type(v) is kind for v in values), kind
    assert any("<br>" in str(v) for v in values)
    files = [f for fs in doc["attachments"].values() for f in fs]
    assert any(f["base64"] == "" for f in files)
    assert any(not f["name"].isascii() for f in files) and any(" " in f["name"] for f in files)
    assert any(len(base64.b64decode(f["base64"])) > 50_000 for f in files)
    users = {e["executedById"] for e in executions if e["executedById"]}
    assert len(users) >= 8
    for execution in tiny_doc["testexecutions"]:
        key = execution["testCase"]["self"].split("/testcases/")[1].split("/")[0]
        served = tiny_doc["testexecution_steps"].get(str(execution["id"]), [])
        # a data-driven execution runs the flattened steps once per data row
        rows = len({result["inline"]["testDataRowNumber"] for result in served}) or 1
        assert len(served) == rows * flattened_step_count(tiny_doc, key), execution["key"]


def test_fixture_round_trip_serves_the_same_data(tmp_path: Path, tiny_doc: dict[str, Any]) -> None:
    plain = save_fixture(tiny_doc, tmp_path / "tenant.json")
    packed = save_fixture(tiny_doc, tmp_path / "tenant.json.gz")
    assert plain.read_bytes() == fixture_bytes(tiny_doc)
    assert fixture_bytes(load_fixture(packed)) == fixture_bytes(tiny_doc)
    paths = [
        "/projects",
        "/folders?maxResults=1000",
        "/statuses?maxResults=1000",
        "/testcases?projectKey=PAY&maxResults=1000",
        "/testcases/PAY-T3/teststeps",
        "/testcycles?maxResults=1000",
        "/testplans",
        "/testexecutions?maxResults=1000",
        "/testexecutions/nextgen?limit=1000",
    ]
    bodies = []
    for source in (tiny_doc, plain, packed):
        with start_in_thread(fixture=source, seed=SEED) as handle, client_for(handle) as client:
            root = handle.base_url.removesuffix("/v2")
            bodies.append(
                [client.get(p).text.replace(handle.base_url, "<base>").replace(root, "<root>") for p in paths]
            )
    assert bodies[0] == bodies[1] == bodies[2]


def test_fixture_links_are_rewritten_and_odd_objects_served_as_given() -> None:
    project = {"id": 7, "jiraProjectId": 70, "key": "ODD", "enabled": True}
    case = {
        "id": 1,
        "key": "ODD-T1",
        "project": {"id": 7, "self": "https://eu.api.zephyrscale.smartbear.com/v2/projects/7"},
        "status": {"id": 5, "self": "https://<api-base-url>/statuses/5"},
        "owner": {"self": f"{JIRA_HOST}/rest/api/2/user?accountId=abc", "accountId": "abc"},
        "priority": {"id": 9, "self": "http://old-host:1234/v2/priorities/9"},
        "somethingNew": {"kept": True},
    }  # no name: deliberately bad
    odd_execution = {
        "id": 3,
        "project": {"id": 7},
        "testCase": {"id": 1},
        "testExecutionStatus": "PASSED_WEIRDLY",
    }
    fixture = {
        "projects": [project],
        "testcases": [case, {"id": 2, "key": "ODD-T2", "projectKey": "ODD", "name": "script"}],
        "teststeps": {"ODD-T1": [{"id": 11, "inline": {"description": "x"}}]},
        "testscripts": {"ODD-T2": {"id": 4, "type": "gherkin?", "text": "Given"}},
        "testexecutions": [odd_execution],
    }
    with start_in_thread(fixture=fixture) as handle, client_for(handle) as client:
        served = client.get("/testcases/ODD-T1").json()
        assert served["project"]["self"] == f"{handle.base_url}/projects/7"
        assert served["status"]["self"] == f"{handle.base_url}/statuses/5"
        assert served["priority"]["self"] == f"{handle.base_url}/priorities/9"
        assert served["owner"]["self"] == f"{JIRA_HOST}/rest/api/2/user?accountId=abc"
        assert served["somethingNew"] == {"kept": True} and "name" not in served
        assert served["testScript"] == {"self": f"{handle.base_url}/testcases/ODD-T1/teststeps"}
        script_case = client.get("/testcases", params={"projectKey": "ODD"}).json()["values"][1]
        assert script_case["testScript"]["self"].endswith("/testcases/ODD-T2/testscript")
        assert client.get("/testcases/ODD-T2/testscript").json()["type"] == "gherkin?"
        assert client.get("/testexecutions/3").json() == odd_execution
        assert client.get("/testexecutions", params={"projectKey": "ODD"}).json()["total"] == 1


@pytest.mark.parametrize(
    ("fixture", "problem"),
    [
        ({"testcase": []}, "unknown section 'testcase'"),
        ({"projects": [{"id": 1, "key": "A"}, {"id": 2, "key": "A"}]}, "duplicate key 'A'"),
        ({"projects": [{"key": "A"}]}, "'id' must be an integer"),
        ({"teststeps": {"X-T1": []}}, "teststeps['X-T1']: no test case with that key"),
        (
            {"attachments": {"testcases/X-T1": [{"name": "a", "base64": "AA=="}]}},
            "no object with id or key 'X-T1'",
        ),
        ({"attachments": {"folders/1": []}}, "owner must look like"),
        ({"testexecutions": "nope"}, "testexecutions: must be a list"),
        # A status that still carries `statusType` (the shape this sandbox once invented) is refused,
        # naming where the type goes (REAL_SHAPES.md, Zephyr Scale Cloud 1).
        (
            {"statuses": [{"id": 5, "name": "Pass", "statusType": "TEST_EXECUTION"}]},
            "statuses[0] (5): 'statusType' is not part of a Zephyr status (the API has it only as a query "
            "filter); list the status id under status_types.TEST_EXECUTION",
        ),
        ({"status_types": {"TEST_RUN": []}}, "status_types['TEST_RUN']: not a status type"),
        ({"status_types": {"TEST_CASE": [9]}}, "status_types['TEST_CASE']: no status with id 9"),
        (
            {"statuses": [{"id": 5}], "status_types": {"TEST_CASE": [5], "TEST_PLAN": [5]}},
            "status 5 is listed under TEST_CASE and TEST_PLAN",
        ),
    ],
)
def test_fixture_problems_are_named(fixture: dict[str, Any], problem: str) -> None:
    with pytest.raises(FixtureError, match=re.escape(problem)):
        load_fixture(fixture)


def test_module_cli_saves_a_fixture(tmp_path: Path) -> None:
    target = tmp_path / "saved.json"
    assert sandbox_main(["--seed", "2", "--size", "tiny", "--cases", "5", "--save-fixture", str(target)]) == 0
    expected = generate(2, {"preset": "tiny", "cases": 5})
    assert target.read_bytes() == fixture_bytes(expected)
    assert sandbox_main(["--fixture", str(tmp_path / "missing.json"), "--port", "0"]) == 2


def test_the_documented_fixture_example_is_servable() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "zephyr-sandbox.md").read_text(encoding="utf-8")
    example = json.loads(text.split("```json fixture-example", 1)[1].split("```", 1)[0])
    with start_in_thread(fixture=example) as handle, client_for(handle) as client:
        case = client.get("/testcases/SA-T1").json()
        assert case["project"]["self"] == f"{handle.base_url}/projects/10005"
        assert case["testScript"]["self"] == f"{handle.base_url}/testcases/SA-T1/teststeps"
        assert client.get("/testcases/SA-T2/testscript").json()["type"] == "bdd"
        assert client.get("/testexecutions/SA-E1/teststeps").json()["total"] == 2
        files = client.get("/testexecutions/300/attachments").json()["attachments"]
        assert [f["name"] for f in files] == ["log – ü.txt"]  # noqa: RUF001
        content = client.get(f"/testexecutions/300/attachments/{files[0]['id']}")
        assert content.content == b"all good\n" and content.headers["content-type"].startswith("text/plain")
        assert [s["name"] for s in all_pages(client, "/statuses", {"statusType": "TEST_EXECUTION"})] == [
            "Pass"
        ]


# The keys of an execution as the 2026 schema and a mock filled from a real tenant have them
# (REAL_SHAPES.md, Zephyr Scale Cloud 3).
EXECUTION_KEYS = {
    "id", "key", "project", "testCase", "environment", "jiraProjectVersion", "testExecutionStatus",
    "actualEndDate", "estimatedTime", "executionTime", "executedById", "assignedToId", "comment",
    "automated", "testCycle", "customFields", "links",
}  # fmt: skip


def test_executions_carry_the_real_keys(api: httpx.Client) -> None:
    executions = all_pages(api, "/testexecutions", {"projectKey": "SHOP"})
    assert executions
    for execution in executions:
        assert set(execution) == EXECUTION_KEYS, (execution["key"], set(execution) ^ EXECUTION_KEYS)
        assert re.search(r"/testcases/[A-Z]+-T\d+/versions/\d+$", execution["testCase"]["self"])
