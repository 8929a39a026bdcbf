"""`ZephyrClient` against an in-memory fake of the Zephyr v2 API served through `httpx.MockTransport`.

The fake serves pages smaller than asked (as the vendor reserves the right to), absolute `next` links,
cursor and offset listings, steps capped at 100 a page, 404s and attachments, in the shapes real tenants
answer (REAL_SHAPES.md, Zephyr Scale Cloud): statuses without `statusType`, filtered by it; 422 from
`/testscript` of a step-by-step case; `next` null on last pages, or left out of nextgen pages.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode

import httpx
import pytest

from zephyr_qtest.lib.http import AdaptiveRateLimiter, AuthError, MalformedResponseError, NotFoundError
from zephyr_qtest.lib.zephyr import ZephyrClient
from zephyr_qtest.lib.zephyr.client import STATUS_TYPES

BASE = "http://127.0.0.1:8080/v2"
TOKEN = "header.payload.signature"
T = TypeVar("T")


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


class FakeZephyr:
    """Just enough of Zephyr Scale Cloud v2 for the client: pages, cursors, children, attachments."""

    def __init__(
        self, *, page_cap: int = 1000, step_cap: int = 100, nextgen: bool = True, omit_next: bool = False
    ) -> None:
        self.page_cap = page_cap
        self.step_cap = step_cap
        self.nextgen = nextgen
        self.omit_next = omit_next  # nextgen pages without `next` at all
        self.requests: list[httpx.Request] = []
        project = {"id": 10, "self": f"{BASE}/projects/10"}
        self.data: dict[str, list[dict[str, Any]]] = {
            "projects": [{"id": 10, "key": "SA", "enabled": True}, {"id": 11, "key": "OPS", "enabled": True}],
            "folders": [
                {"id": n, "name": f"f{n}", "folderType": "TEST_CASE", "project": project}
                for n in range(1, 24)
            ],
            "statuses": [
                {
                    "id": n,
                    "project": project,
                    "name": f"s{n}",
                    "index": n,
                    "color": "#000000",
                    "archived": False,
                    "default": n == 1,
                }
                for n in range(1, 10)
            ],
            "priorities": [{"id": n, "name": f"p{n}", "project": project} for n in range(1, 4)],
            "environments": [{"id": n, "name": f"e{n}", "project": project} for n in range(1, 3)],
            "testcases": [{"id": n, "key": f"SA-T{n}", "project": project} for n in range(1, 41)],
            "testcycles": [{"id": n, "key": f"SA-R{n}", "project": project} for n in range(1, 16)],
            "testplans": [{"id": n, "key": f"SA-P{n}", "project": project} for n in range(1, 5)],
            "testexecutions": [{"id": n, "key": f"SA-E{n}", "project": project} for n in range(100, 161)],
        }
        # The type of each status: only the `statusType` filter knows it.
        self.status_types = {n: STATUS_TYPES[n % 4] for n in range(1, 10)}
        self.steps = {"SA-T1": [{"id": n, "inline": {"description": f"step {n}"}} for n in range(1, 251)]}
        self.scripts = {"SA-T2": {"id": 5, "type": "plain", "text": "do it"}}
        self.execution_steps = {100: [{"id": n, "inline": {"actualResult": "ok"}} for n in range(1, 12)]}
        self.attachments = {
            "testcases/SA-T1": [{"id": 7, "name": "a.png"}],
            "testexecutions/100/teststeps/3": [],
        }
        self.files = {("testcases/SA-T1", 7): (b"\x89PNG...", "image/png")}

    def paths(self) -> Counter[str]:
        return Counter(request.url.path for request in self.requests)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "The signature of the token cannot be verified"})
        path = unquote(request.url.path.removeprefix("/v2/"))
        params = request.url.params
        if path in self.data:
            return self.offset(request, self._of_project(path, params), self.page_cap)
        if (match := re.fullmatch(r"(\w+)/nextgen", path)) and match.group(1) in self.data:
            if not self.nextgen:
                return self.not_found("Test case does not exist")
            return self.cursor(request, self._of_project(match.group(1), params))
        if match := re.fullmatch(r"projects/(\w+)", path):
            found = [p for p in self.data["projects"] if p["key"] == match.group(1)]
            return httpx.Response(200, json=found[0]) if found else self.not_found("Project not found")
        if match := re.fullmatch(r"testcases/(.+)/teststeps", path):
            if match.group(1) not in {c["key"] for c in self.data["testcases"]}:
                return self.not_found("Test case does not exist")
            return self.offset(request, self.steps.get(match.group(1), []), self.step_cap)
        if match := re.fullmatch(r"testcases/(.+)/testscript", path):
            script = self.scripts.get(match.group(1))
            if script is None and match.group(1) in self.steps:
                return httpx.Response(
                    422, json={"errorCode": 422, "message": "The test case has a step-by-step test script"}
                )
            return httpx.Response(200, json=script) if script else self.not_found("Test script not found")
        if match := re.fullmatch(r"testexecutions/(\d+)/teststeps", path):
            return self.offset(request, self.execution_steps.get(int(match.group(1)), []), self.step_cap)
        if match := re.fullmatch(r"(.+)/attachments/(\d+)", path):
            found = self.files.get((match.group(1), int(match.group(2))))
            if found is None:
                return self.not_found("Attachment not found")
            return httpx.Response(200, content=found[0], headers={"Content-Type": found[1]})
        if match := re.fullmatch(r"(.+)/attachments", path):
            if match.group(1) not in self.attachments:
                return self.not_found("Owner not found")
            return httpx.Response(200, json={"attachments": self.attachments[match.group(1)]})
        return self.not_found("No such endpoint")

    def _of_project(self, collection: str, params: httpx.QueryParams) -> list[dict[str, Any]]:
        items = self.data[collection]
        if collection == "statuses" and "statusType" in params:
            items = [item for item in items if self.status_types[item["id"]] == params["statusType"]]
        if "projectKey" in params and collection != "projects":
            return [item for item in items if params["projectKey"] == "SA"]
        return items

    @staticmethod
    def not_found(message: str) -> httpx.Response:
        return httpx.Response(404, json={"errorCode": 404, "message": message})

    def offset(self, request: httpx.Request, items: list[dict[str, Any]], cap: int) -> httpx.Response:
        start = int(request.url.params.get("startAt", 0))
        size = min(int(request.url.params.get("maxResults", 10)), cap)
        last = start + size >= len(items)
        following = (
            f"{BASE}/{request.url.path[4:]}?{urlencode({'startAt': start + size, 'maxResults': size})}"
        )
        return httpx.Response(
            200,
            json={
                "next": None if last else following,
                "startAt": start,
                "maxResults": size,
                "total": len(items),
                "isLast": last,
                "values": items[start : start + size],
            },
        )

    def cursor(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        start_id = int(request.url.params.get("startAtId", 0))
        limit = min(int(request.url.params.get("limit", 10)), self.page_cap)
        remaining = [item for item in items if item["id"] >= start_id]
        chunk, rest = remaining[:limit], remaining[limit:]
        following = rest[0]["id"] if rest else None
        link = (
            None
            if following is None
            else f"{BASE}/{request.url.path[4:]}?startAtId={following}&limit={limit}"
        )
        body = {"next": link, "nextStartAtId": following, "limit": limit, "values": chunk}
        if self.omit_next:
            del body["next"]
        return httpx.Response(200, json=body)


def run_with(
    fake: FakeZephyr | Callable[[httpx.Request], httpx.Response],
    work: Callable[[ZephyrClient], Awaitable[T]],
    **options: Any,
) -> T:
    async def main() -> T:
        async with ZephyrClient(
            BASE,
            options.pop("token", TOKEN),
            transport=httpx.MockTransport(fake),
            rate_limiter=AdaptiveRateLimiter(initial_rate=5000.0, sleep=_no_sleep),
            sleep=_no_sleep,
            **options,
        ) as client:
            return await work(client)

    return asyncio.run(main())


async def listed(iterator: AsyncIterator[dict]) -> list[dict]:
    return [item async for item in iterator]


# ------------------------------------------------------------------------------------------ listings


def test_projects_and_one_project() -> None:
    fake = FakeZephyr()
    projects = run_with(fake, lambda c: listed(c.iter_projects()))
    assert [p["key"] for p in projects] == ["SA", "OPS"]
    assert run_with(fake, lambda c: c.get_project("SA"))["id"] == 10
    assert fake.requests[0].url.params["maxResults"] == "1000"


@pytest.mark.parametrize("name", ["folders", "statuses", "priorities", "environments"])
def test_lookups_page_through_a_lowered_max_results_without_loss_or_repeats(name: str) -> None:
    fake = FakeZephyr(page_cap=7)
    items = run_with(fake, lambda c: listed(getattr(c, f"iter_{name}")("SA")))
    assert items == fake.data[name]
    assert all(r.url.params["projectKey"] == "SA" for r in fake.requests)
    assert all("folderType" not in r.url.params and "statusType" not in r.url.params for r in fake.requests)
    assert len(fake.requests) == -(-len(fake.data[name]) // 7)


@pytest.mark.parametrize("name", ["test_cases", "test_cycles", "test_plans", "test_executions"])
def test_big_collections_use_the_cursor_endpoint(name: str) -> None:
    fake = FakeZephyr(page_cap=7)
    collection = name.replace("_", "")
    items = run_with(fake, lambda c: listed(getattr(c, f"iter_{name}")("SA")))
    assert items == fake.data[collection]
    assert set(fake.paths()) == {f"/v2/{collection}/nextgen"}
    assert fake.requests[0].url.params["limit"] == "1000"


def test_nextgen_pages_without_next_stop_on_the_cursor() -> None:
    fake = FakeZephyr(page_cap=7, omit_next=True)
    assert run_with(fake, lambda c: listed(c.iter_test_executions("SA"))) == fake.data["testexecutions"]
    assert len(fake.requests) == -(-len(fake.data["testexecutions"]) // 7)  # no trailing empty page


def test_statuses_are_read_once_per_type_and_the_type_comes_from_the_filter() -> None:
    fake = FakeZephyr(page_cap=4)
    typed = run_with(fake, lambda c: _pairs(c.iter_typed_statuses("SA")))
    assert sorted((status["id"], status_type) for status_type, status in typed) == sorted(
        fake.status_types.items()
    )
    # The payload is the API's own: nothing is added to it.
    assert all(status in fake.data["statuses"] and "statusType" not in status for _, status in typed)
    asked = [r.url.params["statusType"] for r in fake.requests]
    assert sorted(set(asked), key=asked.index) == list(STATUS_TYPES)  # in order, each type's pages together
    assert all(r.url.params["projectKey"] == "SA" for r in fake.requests)
    with pytest.raises(ValueError, match="unknown statusType 'TEST_RUN'"):
        run_with(fake, lambda c: listed(c.iter_statuses("SA", "TEST_RUN")))


def test_a_typed_listing_total_is_not_taken_for_all_statuses() -> None:
    fake = FakeZephyr()

    async def work(client: ZephyrClient) -> int | None:
        await _pairs(client.iter_typed_statuses("SA"))
        return await client.reported_total("statuses", "SA")

    assert run_with(fake, work) == 9
    last = fake.requests[-1]
    assert last.url.params["maxResults"] == "1" and "statusType" not in last.url.params


async def _pairs(iterator: AsyncIterator[tuple[str, dict]]) -> list[tuple[str, dict]]:
    return [pair async for pair in iterator]


def test_no_nextgen_endpoint_falls_back_to_offset_once() -> None:
    fake = FakeZephyr(page_cap=7, nextgen=False)

    async def twice(client: ZephyrClient) -> tuple[list[dict], list[dict]]:
        return await listed(client.iter_test_cases("SA")), await listed(client.iter_test_cases("SA"))

    first, second = run_with(fake, twice)
    assert first == second == fake.data["testcases"]
    assert fake.paths()["/v2/testcases/nextgen"] == 1  # the second listing goes straight to offset
    assert fake.paths()["/v2/testcases"] == 2 * 6


def test_a_404_after_the_first_cursor_page_is_an_error_not_a_fallback() -> None:
    fake = FakeZephyr(page_cap=10)

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/nextgen") and "startAtId" in request.url.params:
            return FakeZephyr.not_found("gone")
        return fake(request)

    with pytest.raises(NotFoundError):
        run_with(flaky, lambda c: listed(c.iter_test_cases("SA")))
    assert "/v2/testcases" not in fake.paths()


def test_a_listing_yields_what_its_pages_hold_repeats_included() -> None:
    """Offset pages shift under an insert, so a page repeats an object; the listing passes it on (the raw
    writer tells a plain repeat from an edit between pages), and leaves nothing out."""
    fake = FakeZephyr(page_cap=10)
    before = [item["id"] for item in fake.data["folders"]]

    def inserting(request: httpx.Request) -> httpx.Response:
        # A folder created in front while the listing runs shifts later offset pages by one.
        if request.url.params.get("startAt") == "10" and fake.data["folders"][0]["id"] != 0:
            fake.data["folders"].insert(0, {"id": 0, "name": "new", "folderType": "TEST_CASE"})
        return fake(request)

    items = run_with(inserting, lambda c: listed(c.iter_folders("SA")))
    assert [item["id"] for item in items] == before[:10] + before[9:]


def test_a_step_listing_keeps_each_step_once_at_its_first_place() -> None:
    fake = FakeZephyr()
    steps = fake.steps["SA-T1"]

    def inserting(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("startAt") == "100" and steps[0]["id"] != 0:
            steps.insert(0, {"id": 0, "inline": {"description": "new"}})
        return fake(request)

    listed_steps = run_with(inserting, lambda c: c.get_test_steps("SA-T1"))
    assert [step["id"] for step in listed_steps] == list(range(1, 251))


# ------------------------------------------------------------------------------------ reported_total


def test_reported_total_is_one_call_with_max_results_1() -> None:
    fake = FakeZephyr()
    assert run_with(fake, lambda c: c.reported_total("testcases", "SA")) == 40
    assert len(fake.requests) == 1
    assert fake.requests[0].url.params["maxResults"] == "1"
    assert fake.requests[0].url.path == "/v2/testcases"


def test_reported_total_reuses_an_offset_listing() -> None:
    fake = FakeZephyr(page_cap=7)

    async def both(client: ZephyrClient) -> int | None:
        await listed(client.iter_statuses("SA"))
        return await client.reported_total("statuses", "SA")

    assert run_with(fake, both) == 9
    assert all(r.url.params["maxResults"] != "1" for r in fake.requests)


def test_reported_total_refuses_unknown_collections() -> None:
    with pytest.raises(ValueError, match="unknown collection"):
        run_with(FakeZephyr(), lambda c: c.reported_total("users", "SA"))


# ------------------------------------------------------------------------------------------ children


def test_steps_come_from_every_page_in_order() -> None:
    fake = FakeZephyr()
    steps = run_with(fake, lambda c: c.get_test_steps("SA-T1"))
    assert steps == fake.steps["SA-T1"]
    assert len(fake.requests) == 3  # 100 a page


def test_steps_survive_an_even_lower_cap() -> None:
    fake = FakeZephyr(step_cap=7)
    assert run_with(fake, lambda c: c.get_test_steps("SA-T1")) == fake.steps["SA-T1"]


def test_steps_of_a_missing_case_raise_not_found() -> None:
    with pytest.raises(NotFoundError) as caught:
        run_with(FakeZephyr(), lambda c: c.get_test_steps("SA-T999"))
    assert "/v2/testcases/SA-T999/teststeps" in str(caught.value)
    assert "Test case does not exist" in str(caught.value)


def test_test_script_or_none() -> None:
    fake = FakeZephyr()
    assert run_with(fake, lambda c: c.get_test_script("SA-T2")) == {"id": 5, "type": "plain", "text": "do it"}
    assert run_with(fake, lambda c: c.get_test_script("SA-T3")) is None  # 404: no script at all


def test_a_422_from_the_script_of_a_step_by_step_case_is_none_and_not_retried() -> None:
    fake = FakeZephyr()
    assert run_with(fake, lambda c: c.get_test_script("SA-T1")) is None
    assert fake.paths() == Counter({"/v2/testcases/SA-T1/testscript": 1})


def test_execution_steps_by_id() -> None:
    fake = FakeZephyr(step_cap=5)
    assert run_with(fake, lambda c: c.get_execution_steps(100)) == fake.execution_steps[100]


def test_attachments_listed_and_downloaded() -> None:
    fake = FakeZephyr()

    async def work(client: ZephyrClient) -> tuple[list[dict], tuple[bytes, str | None], list[dict]]:
        listed_files = await client.list_attachments("testcases/SA-T1")
        content = await client.download_attachment("testcases/SA-T1", listed_files[0]["id"])
        return listed_files, content, await client.list_attachments("testexecutions/100/teststeps/3")

    files, (content, content_type), none = run_with(fake, work)
    assert files == [{"id": 7, "name": "a.png"}]
    assert (content, content_type) == (b"\x89PNG...", "image/png")
    assert none == []
    assert fake.requests[1].url.path == "/v2/testcases/SA-T1/attachments/7"


def test_attachment_list_of_the_wrong_shape_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": 1}])

    with pytest.raises(MalformedResponseError):
        run_with(handler, lambda c: c.list_attachments("testcases/SA-T1"), max_retries=0)


@pytest.mark.parametrize("owner", ["", "testcases/../projects", "/", "testcases//x"])
def test_owner_paths_cannot_escape(owner: str) -> None:
    with pytest.raises(ValueError):
        run_with(FakeZephyr(), lambda c: c.list_attachments(owner))


def test_keys_are_escaped_as_one_path_segment() -> None:
    fake = FakeZephyr()
    with pytest.raises(NotFoundError):
        run_with(fake, lambda c: c.get_test_steps("SA-T1/../../projects"))
    assert fake.requests[0].url.raw_path.startswith(b"/v2/testcases/SA-T1%2F..%2F..%2Fprojects/teststeps")


# ------------------------------------------------------------------------------------------------ auth


def test_the_token_is_sent_as_a_bearer_header_and_a_bad_one_is_an_auth_error() -> None:
    fake = FakeZephyr()
    run_with(fake, lambda c: c.get_project("SA"))
    assert fake.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    with pytest.raises(AuthError) as caught:
        run_with(fake, lambda c: c.get_project("SA"), token="wrong.token.value")
    assert caught.value.status == 401
    assert "wrong.token.value" not in str(caught.value)


def test_stats_are_exposed() -> None:
    fake = FakeZephyr(page_cap=7)

    async def work(client: ZephyrClient) -> dict[str, Any]:
        await listed(client.iter_folders("SA"))
        return client.stats.as_metadata()

    assert run_with(fake, work)["requests"] == 4
