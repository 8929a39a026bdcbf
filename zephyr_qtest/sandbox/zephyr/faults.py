"""Switchable misbehaviour for the Zephyr sandbox: rate limit, latency, 5xx, drops, malformed pages.

The real API rate-limits without publishing numbers, answers 5xx now and then and sometimes drops
connections; the migration client must survive all of it. Every switch here can be set when the
sandbox starts and changed while it runs (``POST /_sandbox/faults``). Random decisions come from a
``random.Random(seed)`` so a single-client run sees the same faults each time.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

RetryAfterMode = Literal["seconds", "zero", "absent"]
MalformedKind = Literal["invalid_json", "missing_values"]

RETRY_AFTER_MODES: tuple[str, ...] = ("seconds", "zero", "absent")
MALFORMED_KINDS: tuple[str, ...] = ("invalid_json", "missing_values")
FAULT_STATUSES: tuple[int, ...] = (500, 502, 503)


class FaultConfigError(ValueError):
    """A switch was given a value it cannot take (the message names the switch)."""


@dataclass(slots=True)
class MalformedRule:
    """Break the next ``count`` successful JSON responses whose path starts with ``prefix``."""

    prefix: str
    count: int
    kind: MalformedKind = "invalid_json"

    @classmethod
    def from_json(cls, raw: Any) -> MalformedRule:
        if not isinstance(raw, dict):
            raise FaultConfigError(f"malformed: each rule must be an object, got {raw!r}")
        prefix = raw.get("prefix", "/v2/")
        count = raw.get("count", 1)
        kind = raw.get("kind", "invalid_json")
        if not isinstance(prefix, str) or not prefix:
            raise FaultConfigError(f"malformed.prefix must be a non-empty path, got {prefix!r}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise FaultConfigError(f"malformed.count must be an integer >= 0, got {count!r}")
        if kind not in MALFORMED_KINDS:
            raise FaultConfigError(f"malformed.kind must be one of {MALFORMED_KINDS}, got {kind!r}")
        # Accept API-relative prefixes ("/testcases") as well as full ones ("/v2/testcases").
        if not prefix.startswith("/"):
            prefix = "/" + prefix
        if not prefix.startswith("/v2"):
            prefix = "/v2" + prefix
        return cls(prefix=prefix, count=count, kind=kind)


@dataclass(slots=True)
class FaultConfig:
    """Every switch of the sandbox. Defaults: a perfectly behaved server."""

    rate_limit: float | None = None  # requests per second per token; None = unlimited
    retry_after_mode: RetryAfterMode = "seconds"
    latency_ms: float = 0.0  # mean added latency; jitter is +-20 %
    fault_rate: float = 0.0  # fraction of requests answered 500/502/503
    drop_rate: float = 0.0  # fraction of requests whose connection is cut mid-response
    # fraction of requests answered 429 at random, beside the bucket: throttling the client cannot
    # predict (other clients of the same tenant), sent with a wait of 0 so "Retry-After: 0" is exercised
    rate_limited_rate: float = 0.0
    page_cap: int | None = None  # lowers every endpoint's maxResults/limit cap further
    malformed: list[MalformedRule] = field(default_factory=list)
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


def apply_changes(config: FaultConfig, changes: dict[str, Any]) -> FaultConfig:
    """Return ``config`` with ``changes`` applied, after checking each value. Unknown keys are errors."""
    updated = FaultConfig(**{name: getattr(config, name) for name in config.__dataclass_fields__})
    updated.malformed = list(config.malformed)
    for name, value in changes.items():
        if name == "rate_limit":
            updated.rate_limit = None if value is None else _number(name, value, low=0.001)
        elif name == "retry_after_mode":
            if value not in RETRY_AFTER_MODES:
                raise FaultConfigError(f"retry_after_mode must be one of {RETRY_AFTER_MODES}, got {value!r}")
            updated.retry_after_mode = value
        elif name == "latency_ms":
            updated.latency_ms = _number(name, value, low=0.0)
        elif name in ("fault_rate", "drop_rate", "rate_limited_rate"):
            setattr(updated, name, _number(name, value, low=0.0, high=1.0))
        elif name == "page_cap":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise FaultConfigError(f"page_cap must be an integer >= 1 or null, got {value!r}")
            updated.page_cap = value
        elif name == "malformed":
            rules = value if isinstance(value, list) else [value]
            updated.malformed = [MalformedRule.from_json(rule) for rule in rules if rule is not None]
        elif name == "seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise FaultConfigError(f"seed must be an integer, got {value!r}")
            updated.seed = value
        else:
            known = ", ".join(FaultConfig.__dataclass_fields__)
            raise FaultConfigError(f"unknown fault switch {name!r} (known: {known})")
    return updated


class TokenBucket:
    """Classic token bucket: ``rate`` tokens a second, holding at most one second's worth."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token; return 0.0 on success, else the seconds until a token is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FaultInjector:
    """Holds the live switches and makes the per-request decisions."""

    def __init__(self, config: FaultConfig | None = None, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._buckets: dict[str, TokenBucket] = {}

    def update(self, changes: dict[str, Any]) -> FaultConfig:
        """Apply run-time changes; a new rate or seed starts fresh buckets / a fresh random stream."""
        new = apply_changes(self.config, changes)
        if "rate_limit" in changes:
            self._buckets.clear()
        if "seed" in changes:
            self._rng = random.Random(new.seed)
        self.config = new
        return new

    def rate_limit_wait(self, token: str) -> float | None:
        """None when the request may proceed, else the wait in seconds before it could (0.0: a random 429)."""
        if self.config.rate_limited_rate > 0 and self._rng.random() < self.config.rate_limited_rate:
            return 0.0
        rate = self.config.rate_limit
        if rate is None:
            return None
        now = self._clock()
        bucket = self._buckets.get(token)
        if bucket is None:
            bucket = self._buckets[token] = TokenBucket(rate, now)
        wait = bucket.take(now)
        return wait if wait > 0 else None

    def retry_after_header(self, wait: float) -> str | None:
        """The Retry-After value to send for a 429, by mode (None = send no header)."""
        mode = self.config.retry_after_mode
        if mode == "absent":
            return None
        if mode == "zero":
            return "0"
        return str(max(0, math.ceil(wait)))

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

    def take_malformed(self, path: str) -> MalformedKind | None:
        """Consume one use of the first rule matching ``path`` (only called for 200 JSON answers)."""
        for rule in self.config.malformed:
            if rule.count > 0 and path.startswith(rule.prefix):
                rule.count -= 1
                return rule.kind
        return None
