"""Switchable misbehaviour for the qTest sandbox: rate limits, latency, 5xx, drops and lost answers.

qTest SaaS throttles API calls with 429 and budget headers (``x-ratelimit-remaining-minute`` and
``x-ratelimit-remaining-month``; API_NOTES Q-2), answers 5xx now and then, and, like any server behind a
load balancer, sometimes applies a write whose answer never reaches the client. That last case is the one
a migration must survive without duplicates (DESIGN §6), so it has its own switches: ``lost_answer_rate``
(a share of writes), ``lose_next`` (the next N writes, deterministic) and ``lost_answer_match`` (only
paths containing this text).

Every switch can be set when the sandbox starts and changed while it runs (``POST /_sandbox/faults``).
Random decisions come from ``random.Random(seed)``, so a single-client run sees the same faults each time.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

RetryAfterMode = Literal["seconds", "zero", "absent"]
RETRY_AFTER_MODES: tuple[str, ...] = ("seconds", "zero", "absent")
FAULT_STATUSES: tuple[int, ...] = (500, 502, 503)
WRITE_METHODS: frozenset[str] = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# What the minute header counts down from when no quota or rate is configured (an unthrottled tenant).
UNTHROTTLED_MINUTE_BUDGET = 100_000


class FaultConfigError(ValueError):
    """A switch was given a value it cannot take (the message names the switch)."""


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
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(name: str, value: Any, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(f"{name} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise FaultConfigError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise FaultConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def apply_changes(config: FaultConfig, changes: dict[str, Any]) -> FaultConfig:
    """Return ``config`` with ``changes`` applied, after checking each value. Unknown keys are errors."""
    updated = FaultConfig(**config.to_json())
    for name, value in changes.items():
        if name in ("rate_limit", "burst"):
            setattr(updated, name, None if value is None else _number(name, value, low=0.001))
        elif name == "retry_after_mode":
            if value not in RETRY_AFTER_MODES:
                raise FaultConfigError(f"retry_after_mode must be one of {RETRY_AFTER_MODES}, got {value!r}")
            updated.retry_after_mode = value
        elif name == "minute_quota":
            updated.minute_quota = None if value is None else _integer(name, value, low=1)
        elif name == "month_quota":
            updated.month_quota = _integer(name, value, low=1)
        elif name == "latency_ms":
            updated.latency_ms = _number(name, value, low=0.0)
        elif name in ("fault_rate", "drop_rate", "rate_limited_rate", "lost_answer_rate"):
            setattr(updated, name, _number(name, value, low=0.0, high=1.0))
        elif name == "lose_next":
            updated.lose_next = _integer(name, value, low=0)
        elif name == "lost_answer_match":
            if not isinstance(value, str):
                raise FaultConfigError(f"lost_answer_match must be a string, got {value!r}")
            updated.lost_answer_match = value
        elif name == "seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise FaultConfigError(f"seed must be an integer, got {value!r}")
            updated.seed = value
        else:
            known = ", ".join(FaultConfig.__dataclass_fields__)
            raise FaultConfigError(f"unknown fault switch {name!r} (known: {known})")
    return updated


class TokenBucket:
    """Classic token bucket: ``rate`` tokens a second, holding at most ``capacity``."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token; return 0.0 on success, else the seconds until a token is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


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


class FaultInjector:
    """Holds the live switches and makes the per-request decisions."""

    def __init__(
        self,
        config: FaultConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._buckets: dict[str, TokenBucket] = {}
        self._budgets: dict[str, _Budget] = {}

    def update(self, changes: dict[str, Any]) -> FaultConfig:
        """Apply run-time changes; a new rate or seed starts fresh buckets / a fresh random stream."""
        new = apply_changes(self.config, changes)
        if "rate_limit" in changes or "burst" in changes:
            self._buckets.clear()
        if "seed" in changes:
            self._rng = random.Random(new.seed)
        self.config = new
        return new

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
        if config.rate_limited_rate > 0 and self._rng.random() < config.rate_limited_rate:
            return refused(0.0)
        if config.rate_limit is not None:
            bucket = self._buckets.get(key)
            if bucket is None:
                capacity = config.burst if config.burst is not None else max(1.0, config.rate_limit)
                bucket = self._buckets[key] = TokenBucket(config.rate_limit, capacity, self._clock())
            wait = bucket.take(self._clock())
            if wait > 0:
                return refused(wait)
        budget.minute_used += 1
        budget.month_used += 1
        return RateDecision(
            None, max(0, minute_budget - budget.minute_used), max(0, config.month_quota - budget.month_used)
        )

    def retry_after_header(self, wait: float) -> str | None:
        """The Retry-After value to send with a 429, by mode (None: send no header)."""
        mode = self.config.retry_after_mode
        if mode == "absent":
            return None
        if mode == "zero":
            return "0"
        return str(max(0, math.ceil(wait)))

    # -- other faults --------------------------------------------------------------------------------
    def latency_seconds(self) -> float:
        mean = self.config.latency_ms
        if mean <= 0:
            return 0.0
        return mean * self._rng.uniform(0.8, 1.2) / 1000.0

    def draw_fault_status(self) -> int | None:
        rate = self.config.fault_rate
        if rate <= 0 or self._rng.random() >= rate:
            return None
        return self._rng.choice(FAULT_STATUSES)

    def draw_drop(self) -> bool:
        rate = self.config.drop_rate
        return rate > 0 and self._rng.random() < rate

    def draw_lost_answer(self, method: str, path: str) -> bool:
        """Whether this write's answer is lost (the write itself is applied). Reads never lose answers."""
        config = self.config
        if method not in WRITE_METHODS or (config.lost_answer_match and config.lost_answer_match not in path):
            return False
        if config.lose_next > 0:
            config.lose_next -= 1
            return True
        return config.lost_answer_rate > 0 and self._rng.random() < config.lost_answer_rate
