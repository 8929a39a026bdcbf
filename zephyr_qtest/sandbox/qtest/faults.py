"""Switchable misbehaviour for the qTest sandbox: rate limits, latency, 5xx, drops and lost answers.

qTest SaaS throttles API calls with 429 and budget headers (``x-ratelimit-remaining-minute`` and
``x-ratelimit-remaining-month``; API_NOTES Q-2), answers 5xx now and then, and, like any server behind a
load balancer, sometimes applies a write whose answer never reaches the client. That last case is the one
a migration must survive without duplicates (DESIGN §6), so it has its own switches: ``lost_answer_rate``
(a share of writes), ``lose_next`` (the next N writes, deterministic) and ``lost_answer_match`` (only
paths containing this text).

``refuse`` makes qTest answer one object's create call with a 400, as a real site may for a call it will not
take (the swagger declares 400 on every create call, API_NOTES Q-2, without saying when): per kind of object (the API
segment: ``modules``, ``test-cases``, ``test-cycles``, ``test-runs``, ``test-logs``, ``attachments``), the
texts that name the objects to refuse. A create call names a text when it is the object's ``name``, the
value of one of its properties (the migration's ``Zephyr Key``), a whole word of its ``description`` or
``note`` (a cycle's "Zephyr test cycle <key>"), or, for an attachment, its ``File-Name``. The answer is the
shape real qTest errors have, ``{"message": "..."}`` (REAL_SHAPES.md, qTest Manager 8); its text is the
sandbox's own (no public source records qTest's wording for such a refusal).

Every switch can be set when the sandbox starts and changed while it runs (``POST /_sandbox/faults``).
Random decisions come from ``random.Random(seed)``, so a single-client run sees the same faults each time.
The switch checks, the token bucket, latency, 5xx and drops are the ones every sandbox shares
(``sandbox/common.py``); the budgets and lost answers are qTest's own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from zephyr_qtest.sandbox.common import (
    COMMON_SWITCH_CHECKS,
    RETRY_AFTER_MODES,
    FaultConfigError,
    FaultInjectorBase,
    RetryAfterMode,
    SwitchCheck,
    check_integer,
    check_rate,
    check_share,
)

__all__ = [
    "RETRY_AFTER_MODES",
    "SWITCH_CHECKS",
    "UNTHROTTLED_MINUTE_BUDGET",
    "WRITE_METHODS",
    "FaultConfig",
    "FaultConfigError",
    "FaultInjector",
    "RateDecision",
    "RetryAfterMode",
]

WRITE_METHODS: frozenset[str] = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# What the minute header counts down from when no quota or rate is configured (an unthrottled tenant).
UNTHROTTLED_MINUTE_BUDGET = 100_000


@dataclass(slots=True)
class FaultConfig:
    """Every switch of the sandbox. Defaults: a perfectly behaved, unthrottled server."""

    rate_limit: float | None = None  # requests per second per token (token bucket); None = unlimited
    burst: float | None = None  # bucket capacity; default max(1, rate_limit)
    retry_after_mode: RetryAfterMode = "seconds"  # Retry-After on 429: ceil(wait) / "0" / no header
    minute_quota: int | None = None  # requests per token per calendar minute; None = not enforced
    month_quota: int = 10_000_000  # requests per token since the server started (the monthly budget)
    rate_limited_rate: float = 0.0  # share of requests answered 429 at random (other tenants' load)
    latency_ms: float = 0.0  # mean added latency; jitter +-20 %
    fault_rate: float = 0.0  # share of requests answered 500/502/503, not applied
    drop_rate: float = 0.0  # share of requests whose connection is closed before they are applied
    lost_answer_rate: float = 0.0  # share of writes applied and committed, then the connection closed
    lose_next: int = 0  # the next N writes (matching lost_answer_match) lose their answer
    lost_answer_match: str = ""  # only writes whose path contains this text; "" = every write
    # kind of object (API segment) -> texts naming the objects whose create call is answered 400
    refuse: dict[str, list[str]] = field(default_factory=dict)
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _check_minute_quota(name: str, value: Any) -> int | None:
    return None if value is None else check_integer(name, value, low=1)


def _check_month_quota(name: str, value: Any) -> int:
    return check_integer(name, value, low=1)


def _check_lose_next(name: str, value: Any) -> int:
    return check_integer(name, value, low=0)


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise FaultConfigError(f"{name} must be a string, got {value!r}")
    return value


# The kinds of object whose create call `refuse` can refuse (the API segments of their create calls).
REFUSABLE_KINDS: tuple[str, ...] = (
    "modules",
    "test-cases",
    "test-cycles",
    "test-runs",
    "test-logs",
    "attachments",
)


def _check_refuse(name: str, value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise FaultConfigError(f"{name} must be an object of kind -> list of texts, got {value!r}")
    checked: dict[str, list[str]] = {}
    for kind, texts in value.items():
        if kind not in REFUSABLE_KINDS:
            raise FaultConfigError(f"{name}: unknown kind {kind!r} (known: {', '.join(REFUSABLE_KINDS)})")
        if not isinstance(texts, list) or not all(isinstance(text, str) and text for text in texts):
            raise FaultConfigError(f"{name}[{kind!r}] must be a list of non-empty texts, got {texts!r}")
        checked[kind] = list(texts)
    return checked


# The check of every switch (a bad value or an unknown switch is a FaultConfigError naming it).
SWITCH_CHECKS: dict[str, SwitchCheck] = {
    **COMMON_SWITCH_CHECKS,
    "burst": check_rate,
    "minute_quota": _check_minute_quota,
    "month_quota": _check_month_quota,
    "lost_answer_rate": check_share,
    "lose_next": _check_lose_next,
    "lost_answer_match": _check_text,
    "refuse": _check_refuse,
}


@dataclass(slots=True)
class _Budget:
    """Requests a token made in the current calendar minute and since the server started."""

    minute: int = -1
    minute_used: int = 0
    month_used: int = 0


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of the rate-limit check: ``wait`` is None when the request may proceed."""

    wait: float | None
    remaining_minute: int
    remaining_month: int


class FaultInjector(FaultInjectorBase[FaultConfig]):
    """Holds the live switches and makes the per-request decisions: qTest's budgets (minute, month,
    token bucket) and lost answers on top of the shared latency, 5xx and drops."""

    bucket_switches: ClassVar[tuple[str, ...]] = ("rate_limit", "burst")
    switch_checks: ClassVar[Mapping[str, SwitchCheck]] = SWITCH_CHECKS

    def __init__(
        self,
        config: FaultConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config or FaultConfig(), clock=clock)
        self._wall_clock = wall_clock
        self._budgets: dict[str, _Budget] = {}

    # -- rate limits ---------------------------------------------------------------------------------
    def _minute_budget(self) -> int:
        config = self.config
        if config.minute_quota is not None:
            return config.minute_quota
        if config.rate_limit is not None:
            return max(1, int(config.rate_limit * 60))
        return UNTHROTTLED_MINUTE_BUDGET

    def remaining(self, key: str) -> tuple[int, int]:
        """The budget headers' values for ``key`` without spending anything."""
        budget = self._budgets.get(key) or _Budget()
        minute = int(self._wall_clock() // 60)
        used = budget.minute_used if budget.minute == minute else 0
        return max(0, self._minute_budget() - used), max(0, self.config.month_quota - budget.month_used)

    def check_rate(self, key: str) -> RateDecision:
        """Spend one request of ``key``'s budgets, or say how long to wait (a 429)."""
        config = self.config
        now_wall = self._wall_clock()
        minute = int(now_wall // 60)
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget()
        if budget.minute != minute:
            budget.minute, budget.minute_used = minute, 0
        minute_budget = self._minute_budget()

        def refused(wait: float) -> RateDecision:
            return RateDecision(
                wait,
                max(0, minute_budget - budget.minute_used),
                max(0, config.month_quota - budget.month_used),
            )

        if budget.month_used >= config.month_quota:
            # The month does not roll over inside a sandbox's life: say "a day" and let the client give up.
            return refused(86_400.0)
        if config.minute_quota is not None and budget.minute_used >= config.minute_quota:
            return refused((minute + 1) * 60 - now_wall)
        if self.draw(config.rate_limited_rate):
            return refused(0.0)
        if config.rate_limit is not None:
            capacity = config.burst if config.burst is not None else max(1.0, config.rate_limit)
            wait = self.bucket_wait(key, config.rate_limit, capacity)
            if wait > 0:
                return refused(wait)
        budget.minute_used += 1
        budget.month_used += 1
        return RateDecision(
            None, max(0, minute_budget - budget.minute_used), max(0, config.month_quota - budget.month_used)
        )

    # -- lost answers (latency, 5xx and drops: FaultInjectorBase) ---------------------------------
    def draw_lost_answer(self, method: str, path: str) -> bool:
        """Whether this write's answer is lost (the write itself is applied). Reads never lose answers."""
        config = self.config
        if method not in WRITE_METHODS or (config.lost_answer_match and config.lost_answer_match not in path):
            return False
        if config.lose_next > 0:
            config.lose_next -= 1
            return True
        return self.draw(config.lost_answer_rate)

    # -- refusals --------------------------------------------------------------------------------------
    def refusal(self, kind: str, body: Any = None, *, file_name: str | None = None) -> str | None:
        """The message of the 400 that refuses this create call of ``kind``, None when it is not refused."""
        texts = self.config.refuse.get(kind)
        if not texts:
            return None
        for text in texts:
            if _names(text, body, file_name):
                return f"{kind.rstrip('s').replace('-', ' ')} '{text}' was refused by this site (sandbox switch refuse)"
        return None


def _names(text: str, body: Any, file_name: str | None) -> bool:
    """Whether a create call names ``text``: its name, a property's value, a word of its description or
    note, or its file name."""
    if file_name is not None and file_name == text:
        return True
    if not isinstance(body, Mapping):
        return False
    if body.get("name") == text:
        return True
    for prop in body.get("properties") or []:
        if isinstance(prop, Mapping) and str(prop.get("field_value") or "") == text:
            return True
    word = re.compile(rf"(?<![\w-]){re.escape(text)}(?![\w-])")
    return any(
        isinstance(body.get(name), str) and word.search(body[name]) for name in ("description", "note")
    )
