"""Switchable misbehaviour for the Zephyr sandbox: rate limit, latency, 5xx, drops, malformed pages.

The real API rate-limits without publishing numbers, answers 5xx now and then and sometimes drops
connections; the migration client must survive all of it. Every switch here can be set when the
sandbox starts and changed while it runs (``POST /_sandbox/faults``). Random decisions come from a
``random.Random(seed)`` so a single-client run sees the same faults each time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from zephyr_qtest.sandbox.common import (
    RETRY_AFTER_MODES,
    FaultConfigError,
    FaultInjectorBase,
    RetryAfterMode,
    SwitchCheck,
    apply_switches,
    check_non_negative,
    check_rate,
    check_retry_after_mode,
    check_seed,
    check_share,
)

__all__ = [
    "MALFORMED_KINDS",
    "RETRY_AFTER_MODES",
    "EditRule",
    "FaultConfig",
    "FaultConfigError",
    "FaultInjector",
    "MalformedKind",
    "MalformedRule",
    "RetryAfterMode",
    "apply_changes",
]

MalformedKind = Literal["invalid_json", "missing_values"]
MALFORMED_KINDS: tuple[str, ...] = ("invalid_json", "missing_values")


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
class EditRule:
    """Edit one object between two offset pages of a listing that holds it, once.

    Offset pages are slices of the listing as it is at each request, so they are not stable while
    people edit (API_NOTES.md Z-2: only the cursor endpoints are). Once the page holding the object is
    served, the object is edited (``set``, as ``/_sandbox/mutate`` does), and the listing holds it a
    second time right after that page, as a listing ordered by last change re-lists an edited object
    further on: the next page starts with it, edited, and ``total`` counts it twice. (A real re-listing
    would also shift one object back onto the page already read; the sandbox spares that, so the repeat
    is all a test meets.) Spent when that listing's last page is served. Deterministic: no clock, no
    chance.
    """

    key: str
    set: dict[str, Any]
    kind: str = "testcases"
    # Where the edited copy sits in the listing (None until the object was served); done once spent.
    insert_at: int | None = None
    done: bool = False

    @classmethod
    def from_json(cls, raw: Any) -> EditRule:
        if not isinstance(raw, dict) or not isinstance(raw.get("key"), str) or not raw["key"]:
            raise FaultConfigError(f"edited_between_pages: each rule needs a 'key', got {raw!r}")
        changes = raw.get("set")
        if not isinstance(changes, dict) or not changes:
            raise FaultConfigError("edited_between_pages.set must be a non-empty object of field changes")
        kind = raw.get("kind", "testcases")
        if kind not in EDITABLE_KINDS:
            raise FaultConfigError(f"edited_between_pages.kind must be one of {EDITABLE_KINDS}, got {kind!r}")
        return cls(key=raw["key"], set=dict(changes), kind=kind)


EDITABLE_KINDS: tuple[str, ...] = (
    "testcases",
    "testcycles",
    "testplans",
    "testexecutions",
    "folders",
    "statuses",
    "priorities",
    "environments",
)


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
    # Nextgen (cursor) pages leave `next` out entirely instead of sending it null on the last page, as
    # SmartBear's own client tests show they may (REAL_SHAPES.md, Zephyr Scale Cloud 3); the client
    # must then stop on `nextStartAtId` alone.
    nextgen_omit_next: bool = False
    malformed: list[MalformedRule] = field(default_factory=list)
    # Objects edited between two offset pages of a listing, so served twice with different content.
    edited_between_pages: list[EditRule] = field(default_factory=list)
    # The tenant has no cursor ("nextgen") endpoints: each answers 404, as on tenants from before 2026
    # (API_NOTES.md Z-2: clients fall back to the offset endpoints).
    nextgen_missing: bool = False
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _check_page_cap(name: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise FaultConfigError(f"{name} must be an integer >= 1 or null, got {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise FaultConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _check_malformed(name: str, value: Any) -> list[MalformedRule]:
    rules = value if isinstance(value, list) else [value]
    return [MalformedRule.from_json(rule) for rule in rules if rule is not None]


def _check_edits(name: str, value: Any) -> list[EditRule]:
    rules = value if isinstance(value, list) else [value]
    return [EditRule.from_json(rule) for rule in rules if rule is not None]


_CHECKS: dict[str, SwitchCheck] = {
    "rate_limit": check_rate,
    "retry_after_mode": check_retry_after_mode,
    "latency_ms": check_non_negative,
    "fault_rate": check_share,
    "drop_rate": check_share,
    "rate_limited_rate": check_share,
    "page_cap": _check_page_cap,
    "nextgen_omit_next": _check_bool,
    "malformed": _check_malformed,
    "edited_between_pages": _check_edits,
    "nextgen_missing": _check_bool,
    "seed": check_seed,
}


def apply_changes(config: FaultConfig, changes: dict[str, Any]) -> FaultConfig:
    """Return ``config`` with ``changes`` applied, after checking each value. Unknown keys are errors."""
    return apply_switches(config, changes, _CHECKS)


class FaultInjector(FaultInjectorBase[FaultConfig]):
    """Holds the live switches and makes the per-request decisions."""

    def __init__(
        self, config: FaultConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(config or FaultConfig(), clock=clock)

    def apply_changes(self, config: FaultConfig, changes: dict[str, Any]) -> FaultConfig:
        return apply_changes(config, changes)

    def rate_limit_wait(self, token: str) -> float | None:
        """None when the request may proceed, else the wait in seconds before it could (0.0: a random 429)."""
        if self.draw(self.config.rate_limited_rate):
            return 0.0
        rate = self.config.rate_limit
        if rate is None:
            return None
        # One second's burst: the bucket holds at most max(1, rate) tokens.
        wait = self.bucket_wait(token, rate, max(1.0, rate))
        return wait if wait > 0 else None

    def take_malformed(self, path: str) -> MalformedKind | None:
        """Consume one use of the first rule matching ``path`` (only called for 200 JSON answers)."""
        for rule in self.config.malformed:
            if rule.count > 0 and path.startswith(rule.prefix):
                rule.count -= 1
                return rule.kind
        return None
