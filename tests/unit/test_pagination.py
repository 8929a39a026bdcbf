"""Each paginator against the page shapes it expects, through `paginate` and a scripted MockTransport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from zephyr_qtest.lib.http import AdaptiveRateLimiter, ApiClient, MalformedResponseError
from zephyr_qtest.lib.pagination import (
    CursorPaginator,
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    Paginator,
    WrappedPagePaginator,
    paginate,
)

BASE = "http://zephyr.test/v2"
ITEMS = [{"id": n, "key": f"SA-T{n}"} for n in range(1, 51)]


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def collect(
    handler: Callable[[httpx.Request], httpx.Response],
    paginator: Paginator,
    params: dict[str, Any] | None = None,
) -> tuple[list[Page], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def main() -> list[Page]:
        limiter = AdaptiveRateLimiter(initial_rate=5000.0, sleep=_no_sleep)
        async with ApiClient(
            BASE,
            transport=httpx.MockTransport(recording),
            rate_limiter=limiter,
            max_retries=1,
            sleep=_no_sleep,
        ) as client:
            return [page async for page in paginate(client, "/testcases", params, paginator)]

    return asyncio.run(main()), seen


def offset_server(
    *, cap: int = 1000, with_is_last: bool = True, with_total: bool = True
) -> Callable[[httpx.Request], httpx.Response]:
    """A PagedList endpoint over ITEMS that serves at most `cap` a page."""

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("startAt", 0))
        size = min(int(request.url.params.get("maxResults", 10)), cap)
        chunk = ITEMS[start : start + size]
        last = start + size >= len(ITEMS)
        body: dict[str, Any] = {
            "next": None
            if last
            else f"{BASE}/testcases?{urlencode({'startAt': start + size, 'maxResults': size})}",
            "startAt": start,
            "maxResults": size,
            "values": chunk,
        }
        if with_total:
            body["total"] = len(ITEMS)
        if with_is_last:
            body["isLast"] = last
        return httpx.Response(200, json=body)

    return handler


def items(pages: list[Page]) -> list[Any]:
    return [item for page in pages for item in page.items]


# ------------------------------------------------------------------------------------------- offset


def test_offset_follows_a_lowered_max_results_without_gaps_or_repeats() -> None:
    pages, seen = collect(offset_server(cap=7), OffsetPaginator(1000), {"projectKey": "SA"})
    assert items(pages) == ITEMS
    assert [int(r.url.params["startAt"]) for r in seen] == list(range(0, 50, 7))
    # after the first answer the client asks for the size the server serves
    assert [r.url.params["maxResults"] for r in seen] == ["1000"] + ["7"] * 7
    assert all(r.url.params["projectKey"] == "SA" for r in seen)
    paginator = pages[-1].paginator
    assert isinstance(paginator, OffsetPaginator)
    assert paginator.total == 50
    assert not paginator.has_next_page


def test_offset_stops_at_total_when_is_last_is_missing() -> None:
    pages, seen = collect(offset_server(cap=10, with_is_last=False), OffsetPaginator(10))
    assert items(pages) == ITEMS
    assert len(seen) == 5


def test_offset_stops_on_an_empty_page_when_is_last_and_total_are_missing() -> None:
    pages, seen = collect(offset_server(cap=10, with_is_last=False, with_total=False), OffsetPaginator(10))
    assert items(pages) == ITEMS
    assert len(seen) == 6  # the sixth page is empty
    assert pages[-1].items == []


def test_offset_advances_by_values_returned_not_by_size_asked() -> None:
    # The server says maxResults=10 but serves only 4 values a page (say, filtered by permissions).
    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["startAt"])
        chunk = ITEMS[start : start + 4]
        return httpx.Response(
            200, json={"startAt": start, "maxResults": 10, "isLast": start + 4 >= 50, "values": chunk}
        )

    pages, _ = collect(handler, OffsetPaginator(10))
    assert items(pages) == ITEMS


def test_page_records_its_url() -> None:
    pages, _ = collect(offset_server(cap=25), OffsetPaginator(25), {"projectKey": "SA"})
    assert pages[0].url == f"{BASE}/testcases?projectKey=SA&startAt=0&maxResults=25"
    assert pages[1].url.endswith("startAt=25&maxResults=25")


@pytest.mark.parametrize(
    "body",
    [{"startAt": 0, "maxResults": 10, "total": 3}, {"values": None}, {"values": {"a": 1}}, [1, 2, 3]],
    ids=["missing", "null", "object", "array"],
)
def test_a_page_without_a_values_list_is_malformed_and_names_the_url(body: Any) -> None:
    with pytest.raises(MalformedResponseError) as caught:
        collect(lambda _: httpx.Response(200, json=body), OffsetPaginator(10), {"projectKey": "SA"})
    assert "/v2/testcases?projectKey=SA&startAt=0&maxResults=10" in str(caught.value)
    assert caught.value.url.startswith(f"{BASE}/testcases")


def test_a_page_that_starts_elsewhere_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"startAt": 0, "maxResults": 10, "isLast": False, "values": ITEMS[:10]}
        )

    with pytest.raises(MalformedResponseError, match="startAt=10"):
        collect(handler, OffsetPaginator(10))


# ------------------------------------------------------------------------------------------- cursor


def cursor_server(
    limit_cap: int = 1000, *, next_link: bool = True
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        start_id = int(request.url.params.get("startAtId", 0))
        limit = min(int(request.url.params["limit"]), limit_cap)
        remaining = [item for item in ITEMS if item["id"] >= start_id]
        chunk, rest = remaining[:limit], remaining[limit:]
        following = rest[0]["id"] if rest else None
        body: dict[str, Any] = {"nextStartAtId": following, "limit": limit, "values": chunk}
        if next_link:
            body["next"] = None if following is None else f"{BASE}/testcases/nextgen?startAtId={following}"
        return httpx.Response(200, json=body)

    return handler


@pytest.mark.parametrize("next_link", [True, False])
def test_cursor_follows_next_start_at_id(next_link: bool) -> None:
    pages, seen = collect(cursor_server(limit_cap=12, next_link=next_link), CursorPaginator(1000))
    assert items(pages) == ITEMS
    assert [r.url.params.get("startAtId") for r in seen] == [None, "13", "25", "37", "49"]
    assert all(r.url.params["limit"] == "1000" for r in seen)


def test_cursor_stops_when_next_is_null() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"next": None, "nextStartAtId": 99, "limit": 10, "values": ITEMS[:10]}
        )

    pages, seen = collect(handler, CursorPaginator(10))
    assert len(seen) == 1
    assert len(items(pages)) == 10


def test_cursor_stops_on_an_empty_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"next": "x", "nextStartAtId": 5, "limit": 10, "values": []})

    pages, seen = collect(handler, CursorPaginator(10))
    assert len(seen) == 1
    assert items(pages) == []


def test_a_cursor_that_does_not_move_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"next": "x", "nextStartAtId": 11, "limit": 10, "values": ITEMS[10:20]}
        )

    with pytest.raises(MalformedResponseError, match="repeats"):
        collect(handler, CursorPaginator(10))


# --------------------------------------------------------------------------------------------- qTest


def test_page_number_paginator_stops_on_a_short_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page, size = int(request.url.params["page"]), int(request.url.params["size"])
        return httpx.Response(200, json=ITEMS[(page - 1) * size : page * size])

    pages, seen = collect(handler, PageNumberPaginator(20, size_param="size"))
    assert items(pages) == ITEMS
    assert [r.url.params["page"] for r in seen] == ["1", "2", "3"]


def test_page_number_paginator_needs_an_empty_page_after_a_full_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        return httpx.Response(200, json=ITEMS[(page - 1) * 25 : page * 25])

    pages, seen = collect(handler, PageNumberPaginator(25))
    assert items(pages) == ITEMS
    assert len(seen) == 3


def test_wrapped_page_paginator_stops_at_total() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page, size = int(request.url.params["page"]), int(request.url.params["pageSize"])
        chunk = ITEMS[(page - 1) * size : page * size]
        return httpx.Response(
            200, json={"links": [], "page": page, "page_size": size, "total": 50, "items": chunk}
        )

    pages, seen = collect(handler, WrappedPagePaginator(25))
    assert items(pages) == ITEMS
    assert len(seen) == 2


def test_wrapped_page_without_items_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        collect(lambda _: httpx.Response(200, json={"page": 1, "total": 3}), WrappedPagePaginator(25))
