"""Paginators as strategy objects (the dlt pattern) and one `paginate` loop that drives them.

A paginator knows one response shape: it sets the first request's parameters, checks that a page
has the expected shape (`validate`, run inside the HTTP layer so a malformed page is fetched again),
takes the items out and decides whether there is a next page (`update_state`), and sets the next
request's parameters (`update_request`). `paginate` yields `Page` objects; callers iterate items.

Shapes:
- Zephyr offset `PagedList` ``{next, startAt, maxResults, total, isLast, values}``: `OffsetPaginator`.
- Zephyr cursor ("NextGen") ``{next, nextStartAtId, limit, values}``: `CursorPaginator`.
- qTest plain arrays paged by ``page``/``pageSize`` (or ``size``): `PageNumberPaginator`.
- qTest wrapped pages ``{page, page_size, total, items}``: `WrappedPagePaginator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class JsonGetter(Protocol):
    """The part of `ApiClient` that `paginate` needs."""

    def url(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> str: ...

    async def get_json(
        self, path_or_url: str, params: Mapping[str, Any] | None = None, *, validate: Any = None
    ) -> Any: ...


class Paginator(ABC):
    """One pagination scheme. Methods raise ValueError for a page of the wrong shape."""

    def __init__(self) -> None:
        self.has_next_page = True

    @abstractmethod
    def init_request(self, params: dict[str, Any]) -> None:
        """Set the first request's parameters."""

    @abstractmethod
    def validate(self, data: Any) -> None:
        """Raise ValueError when `data` is not a page of this shape."""

    @abstractmethod
    def update_state(self, data: Any) -> list[Any]:
        """Read a validated page: return its items and set `has_next_page`."""

    @abstractmethod
    def update_request(self, params: dict[str, Any]) -> None:
        """Set the next request's parameters."""


def _require_dict_list(data: Any, key: str) -> list[Any]:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object with a {key!r} list, got {type(data).__name__}")
    items = data.get(key)
    if not isinstance(items, list):
        raise ValueError(f"{key!r} is {'missing' if key not in data else type(items).__name__}, not a list")
    return items


def int_or_none(value: Any) -> int | None:
    """A JSON integer as int; anything else (a bool, a string of digits, a float, null) None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class OffsetPaginator(Paginator):
    """Zephyr ``PagedList``: ``{"next", "startAt", "maxResults", "total", "isLast", "values": [...]}``.

    `startAt` advances by the number of values that came back, never by the page size asked for: the
    server may serve fewer ("reserves the right to impose a maxResults limit lower than the value a
    client provides"). When it does, later requests ask for its size, so `startAt` stays a multiple of
    `maxResults` as the API expects. Stops on ``isLast: true``, an empty page, or `startAt >= total`.
    `total` keeps the count the API reported.
    """

    def __init__(
        self, page_size: int = 1000, *, offset_param: str = "startAt", limit_param: str = "maxResults"
    ):
        super().__init__()
        self.page_size = page_size
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.offset = 0
        self.total: int | None = None

    def init_request(self, params: dict[str, Any]) -> None:
        self.offset = int(params.get(self.offset_param, 0))
        params[self.offset_param] = self.offset
        params[self.limit_param] = self.page_size

    def validate(self, data: Any) -> None:
        _require_dict_list(data, "values")
        served_from = int_or_none(data.get("startAt"))
        if served_from is not None and served_from != self.offset:
            # Accepting it would repeat or skip items silently.
            raise ValueError(f"asked for startAt={self.offset}, the page starts at {served_from}")

    def update_state(self, data: Any) -> list[Any]:
        items: list[Any] = data["values"]
        self.total = int_or_none(data.get("total"))
        served = int_or_none(data.get("maxResults"))
        if served is not None and 0 < served < self.page_size:
            self.page_size = served
        self.offset += len(items)
        self.has_next_page = not (
            data.get("isLast") is True or not items or (self.total is not None and self.offset >= self.total)
        )
        return items

    def update_request(self, params: dict[str, Any]) -> None:
        params[self.offset_param] = self.offset
        params[self.limit_param] = self.page_size


class CursorPaginator(Paginator):
    """Zephyr NextGen: ``{"next", "nextStartAtId", "limit", "values": [...]}``.

    Continues with ``startAtId = nextStartAtId``; stops when `nextStartAtId` is null, `next` is
    null, or the page is empty. A cursor that does not move is an error (it would loop forever).
    """

    def __init__(self, page_size: int = 1000, *, cursor_param: str = "startAtId", limit_param: str = "limit"):
        super().__init__()
        self.page_size = page_size
        self.cursor_param = cursor_param
        self.limit_param = limit_param
        self.cursor: Any = None

    def init_request(self, params: dict[str, Any]) -> None:
        self.cursor = params.get(self.cursor_param)
        params[self.limit_param] = self.page_size

    def validate(self, data: Any) -> None:
        items = _require_dict_list(data, "values")
        following = data.get("nextStartAtId")
        if items and following is not None and following == self.cursor:
            raise ValueError(f"nextStartAtId {following!r} repeats the cursor just used")

    def update_state(self, data: Any) -> list[Any]:
        items: list[Any] = data["values"]
        following = data.get("nextStartAtId")
        ended = following is None or ("next" in data and data["next"] is None) or not items
        self.has_next_page = not ended
        self.cursor = following
        return items

    def update_request(self, params: dict[str, Any]) -> None:
        params[self.cursor_param] = self.cursor


class PageNumberPaginator(Paginator):
    """qTest plain arrays paged by number (1-based): stops on a short or empty page.

    `size_param` is ``pageSize`` on most endpoints and ``size`` on test cases and requirements.
    """

    def __init__(self, page_size: int = 100, *, page_param: str = "page", size_param: str = "pageSize"):
        super().__init__()
        self.page_size = page_size
        self.page_param = page_param
        self.size_param = size_param
        self.page = 1

    def init_request(self, params: dict[str, Any]) -> None:
        self.page = int(params.get(self.page_param, 1))
        params[self.page_param] = self.page
        params[self.size_param] = self.page_size

    def validate(self, data: Any) -> None:
        if not isinstance(data, list):
            raise ValueError(f"expected a JSON array, got {type(data).__name__}")

    def update_state(self, data: Any) -> list[Any]:
        self.has_next_page = len(data) >= self.page_size
        self.page += 1
        return list(data)

    def update_request(self, params: dict[str, Any]) -> None:
        params[self.page_param] = self.page


class WrappedPagePaginator(PageNumberPaginator):
    """qTest wrapped pages ``{"page", "page_size", "total", "items": [...]}``.

    Stops on a short or empty page, or once `total` items have been served.
    """

    def __init__(self, page_size: int = 100, *, page_param: str = "page", size_param: str = "pageSize"):
        super().__init__(page_size, page_param=page_param, size_param=size_param)
        self.served = 0
        self.total: int | None = None

    def validate(self, data: Any) -> None:
        _require_dict_list(data, "items")

    def update_state(self, data: Any) -> list[Any]:
        items: list[Any] = data["items"]
        self.total = int_or_none(data.get("total"))
        self.served += len(items)
        self.page += 1
        self.has_next_page = len(items) >= self.page_size and (self.total is None or self.served < self.total)
        return items


@dataclass(frozen=True, slots=True)
class Page:
    """One page: its items, the URL it came from, and the paginator (its state after this page)."""

    items: list[Any]
    url: str
    paginator: Paginator


async def paginate(
    client: JsonGetter, path: str, params: Mapping[str, Any] | None, paginator: Paginator
) -> AsyncIterator[Page]:
    """Fetch `path` page after page with `paginator`; a wrongly shaped page raises `MalformedResponseError`."""
    request_params = dict(params or {})
    paginator.init_request(request_params)
    while True:
        url = client.url(path, request_params)
        data = await client.get_json(path, request_params, validate=paginator.validate)
        items = paginator.update_state(data)
        yield Page(items=items, url=url, paginator=paginator)
        if not paginator.has_next_page:
            return
        paginator.update_request(request_params)
