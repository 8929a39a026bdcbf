"""Plumbing every sandbox shares: fault switches, request statistics, and serving with uvicorn.

A sandbox (``sandbox/zephyr/``, ``sandbox/qtest/``) keeps what is its vendor's own: which switches it
has (its ``FaultConfig``), how it answers (its middleware and routes), what its admin endpoints do.
What is the same for every vendor lives here:

- **Fault switches**: the checks a switch value must pass (``check_*``, ``apply_switches``), the
  token bucket, and ``FaultInjectorBase``, the base class holding the live switches and the seeded random
  stream every per-request decision (latency, 5xx, drop, random 429) is drawn from, so a
  single-client run sees the same faults each time.
- **Request statistics**: ``RequestStats``, what the server saw by route template and status.
- **Serving**: binding a socket, running uvicorn on a background thread (``start_server_thread``) or
  in the foreground (``serve_forever``), and ``SandboxHandle``, the base of the handles the tests, the
  demo and the benchmark get back (``.base_url``, ``.token``, ``.stop()``, the admin endpoints).
- Small helpers both middlewares and apps use: ``send_json``, ``content_disposition``,
  ``parse_iso_datetime``.

Nothing here imports ``zephyr_qtest.lib`` or ``zephyr_qtest.defs`` (see ``sandbox/__init__.py``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar
from urllib.parse import quote

import httpx
import uvicorn

# ---------------------------------------------------------------------------- fault switches

RetryAfterMode = Literal["seconds", "zero", "absent"]
RETRY_AFTER_MODES: tuple[str, ...] = ("seconds", "zero", "absent")
FAULT_STATUSES: tuple[int, ...] = (500, 502, 503)


class FaultConfigError(ValueError):
    """A switch was given a value it cannot take (the message names the switch)."""


def check_number(name: str, value: Any, *, low: float, high: float | None = None) -> float:
    """``value`` as a float in ``[low, high]``, else ``FaultConfigError`` naming the switch."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(f"{name} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise FaultConfigError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def check_integer(name: str, value: Any, *, low: int) -> int:
    """``value`` as an integer ``>= low`` (booleans refused), else ``FaultConfigError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise FaultConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def check_rate(name: str, value: Any) -> float | None:
    """A rate in requests per second (None: unlimited)."""
    return None if value is None else check_number(name, value, low=0.001)


def check_share(name: str, value: Any) -> float:
    """A share of requests, from 0 to 1."""
    return check_number(name, value, low=0.0, high=1.0)


def check_non_negative(name: str, value: Any) -> float:
    return check_number(name, value, low=0.0)


def check_retry_after_mode(name: str, value: Any) -> str:
    if value not in RETRY_AFTER_MODES:
        raise FaultConfigError(f"{name} must be one of {RETRY_AFTER_MODES}, got {value!r}")
    return str(value)


def check_seed(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultConfigError(f"{name} must be an integer, got {value!r}")
    return value


SwitchCheck = Callable[[str, Any], Any]
"""Checks one switch's value and returns what to store (raises ``FaultConfigError`` naming it)."""


class SwitchConfig(Protocol):
    """What every sandbox's ``FaultConfig`` (a dataclass) has."""

    retry_after_mode: str
    latency_ms: float
    fault_rate: float
    drop_rate: float
    seed: int

    def to_json(self) -> dict[str, Any]: ...


ConfigT = TypeVar("ConfigT", bound=SwitchConfig)


def apply_switches(config: ConfigT, changes: Mapping[str, Any], checks: Mapping[str, SwitchCheck]) -> ConfigT:
    """A copy of the dataclass ``config`` with ``changes`` applied, each value passed through its check.

    ``checks`` names a check per switch; a change to a switch without one is refused, naming the
    known switches (the dataclass's fields, in order). Lists are copied, so the copy's rules can be
    replaced without touching ``config``'s.
    """
    updated = dataclasses.replace(config)
    for field in dataclasses.fields(updated):
        value = getattr(updated, field.name)
        if isinstance(value, list):
            setattr(updated, field.name, list(value))
    for name, value in changes.items():
        check = checks.get(name)
        if check is None:
            known = ", ".join(field.name for field in dataclasses.fields(config))
            raise FaultConfigError(f"unknown fault switch {name!r} (known: {known})")
        setattr(updated, name, check(name, value))
    return updated


# The checks of the switches every sandbox has; a sandbox adds its own switches' checks to these.
COMMON_SWITCH_CHECKS: Mapping[str, SwitchCheck] = {
    "rate_limit": check_rate,
    "retry_after_mode": check_retry_after_mode,
    "rate_limited_rate": check_share,
    "latency_ms": check_non_negative,
    "fault_rate": check_share,
    "drop_rate": check_share,
    "seed": check_seed,
}


def read_switch_changes(raw: bytes) -> dict[str, Any]:
    """The switch changes a ``POST /_sandbox/faults`` body holds (an empty body changes nothing).

    Raises ``FaultConfigError`` when the body is not a JSON object; the admin route answers it as a 400.
    """
    try:
        changes = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        raise FaultConfigError(f"body is not valid JSON: {exc}") from None
    if not isinstance(changes, dict):
        raise FaultConfigError("body must be a JSON object of switches")
    return changes


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


class FaultInjectorBase(Generic[ConfigT]):
    """Holds the live switches and makes the per-request decisions every sandbox shares.

    A sandbox subclasses it with its own ``FaultConfig``, its switches' checks (``switch_checks``, or
    its own ``apply_changes``) and its own decisions
    (the Zephyr one's malformed pages, the qTest one's budgets and lost answers). Every random
    decision comes from one ``random.Random(seed)``, in the order the middleware asks.
    """

    # Switches whose change empties the token buckets (a new rate starts every client afresh).
    bucket_switches: ClassVar[tuple[str, ...]] = ("rate_limit",)
    # The check of every switch the sandbox has (``COMMON_SWITCH_CHECKS`` and its own).
    switch_checks: ClassVar[Mapping[str, SwitchCheck]] = COMMON_SWITCH_CHECKS

    def __init__(self, config: ConfigT, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.config = config
        self._rng = random.Random(config.seed)
        self._buckets: dict[str, TokenBucket] = {}

    def apply_changes(self, config: ConfigT, changes: dict[str, Any]) -> ConfigT:
        """``config`` with ``changes`` checked and applied (each sandbox has its own switches)."""
        return apply_switches(config, changes, self.switch_checks)

    def update(self, changes: dict[str, Any]) -> ConfigT:
        """Apply run-time changes; a new rate or seed starts fresh buckets / a fresh random stream."""
        new = self.apply_changes(self.config, changes)
        if any(name in changes for name in self.bucket_switches):
            self._buckets.clear()
        if "seed" in changes:
            self._rng = random.Random(new.seed)
        self.config = new
        return new

    def draw(self, share: float) -> bool:
        """True for a ``share`` of the calls (no random number is drawn when the share is 0)."""
        return share > 0 and self._rng.random() < share

    def bucket_wait(self, key: str, rate: float, capacity: float) -> float:
        """Take a token from ``key``'s bucket: 0.0 when there was one, else the seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, capacity, now)
        return bucket.take(now)

    def retry_after_header(self, wait: float) -> str | None:
        """The Retry-After value to send with a 429, by mode (None: send no header)."""
        mode = self.config.retry_after_mode
        if mode == "absent":
            return None
        if mode == "zero":
            return "0"
        return str(max(0, math.ceil(wait)))

    def latency_seconds(self) -> float:
        """The latency to add to this request: the mean, +-20 %."""
        mean = self.config.latency_ms
        if mean <= 0:
            return 0.0
        return mean * self._rng.uniform(0.8, 1.2) / 1000.0

    def draw_fault_status(self) -> int | None:
        """A 5xx status for a ``fault_rate`` share of requests, else None."""
        rate = self.config.fault_rate
        if rate <= 0 or self._rng.random() >= rate:
            return None
        return self._rng.choice(FAULT_STATUSES)

    def draw_drop(self) -> bool:
        """Whether this request's connection is closed (a ``drop_rate`` share of requests)."""
        return self.draw(self.config.drop_rate)


# ---------------------------------------------------------------------------- statistics


class RequestStats:
    """What the server saw, by route template and status: the benchmark and the tests read it.

    ``counters`` names the integer counters ``to_json`` reports, in order; a sandbox with more
    (malformed pages, lost answers, bytes sent) subclasses this and names them.
    """

    counters: ClassVar[tuple[str, ...]] = (
        "rate_limited",
        "unauthorized",
        "server_errors",
        "injected_faults",
        "drops",
    )
    rate_limited: int
    unauthorized: int
    server_errors: int
    injected_faults: int
    drops: int

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = time.time()
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_path_status: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for name in self.counters:
            setattr(self, name, 0)

    def record(self, key: str, status: int | str) -> None:
        """Count one answered (or dropped: a text status) request under its route ``key``."""
        self.requests += 1
        self.by_path[key] += 1
        self.by_status[str(status)] += 1
        self.by_path_status[key][str(status)] += 1
        if status == 429:
            self.rate_limited += 1
        elif status == 401:
            self.unauthorized += 1
        elif isinstance(status, int) and status >= 500:
            self.server_errors += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.started,
            "elapsed_s": round(time.time() - self.started, 3),
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": dict(self.by_status),
            "by_path_status": {path: dict(counts) for path, counts in self.by_path_status.items()},
            **{name: getattr(self, name) for name in self.counters},
        }


# ---------------------------------------------------------------------------- answering from ASGI


async def send_json(
    send: Any,
    status: int,
    body: bytes,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    content_type: bytes = b"application/json",
) -> None:
    """Answer a whole body at once from a pure-ASGI middleware (errors, 429s, preflights)."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name RFC 5987-encoded."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def parse_iso_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date or date-time (``Z`` or an offset; none means UTC), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------- serving

# What uvicorn logs when an app closes a connection on purpose (a drop, a lost answer).
_INTENTIONAL_DROP_TEXTS = (
    "ASGI callable returned without completing response.",
    "ASGI callable returned without starting response.",
)


class _IntentionalDropFilter(logging.Filter):
    """Closing connections is a feature of the sandboxes; uvicorn should not log it as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _INTENTIONAL_DROP_TEXTS


def quiet_intentional_drops() -> None:
    """Keep uvicorn from logging the sandboxes' deliberate drops as errors (idempotent)."""
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _IntentionalDropFilter) for f in error_log.filters):
        error_log.addFilter(_IntentionalDropFilter())


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket on ``host:port`` (port 0: a free one), for uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def url_host(host: str) -> str:
    """How a URL names the interface ``host`` (a wildcard is reached at 127.0.0.1)."""
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class ServerThread:
    """A uvicorn server running on a daemon thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_server_thread(
    asgi: Any,
    sock: socket.socket,
    *,
    name: str,
    description: str,
    url: str,
    http: Any = "auto",
    startup_timeout: float = 30.0,
) -> ServerThread:
    """Serve ``asgi`` on ``sock`` from a daemon thread called ``name``; return once it accepts connections.

    Raises ``RuntimeError`` ("<description> did not start on <url>") when the server does not start
    within ``startup_timeout`` seconds; the socket is closed then.
    """
    quiet_intentional_drops()
    config = uvicorn.Config(asgi, log_level="warning", access_log=False, lifespan="off", http=http)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"{description} did not start on {url}")
        time.sleep(0.01)
    return ServerThread(server, thread)


def serve_forever(asgi: Any, sock: socket.socket, *, log_level: str, http: Any = "auto") -> None:
    """Serve ``asgi`` on ``sock`` in the foreground until interrupted (access log at ``debug``)."""
    quiet_intentional_drops()
    config = uvicorn.Config(
        asgi, log_level=log_level, access_log=log_level == "debug", lifespan="off", http=http
    )
    uvicorn.Server(config).run(sockets=[sock])


class SandboxHandle:
    """A sandbox served on a background thread. Use as a context manager or call ``stop()``.

    Each sandbox's handle adds its own attributes (``base_url`` and the like) and admin helpers;
    the admin endpoints are called over HTTP, so the server's own thread does the work.
    """

    auth_scheme: ClassVar[str] = "Bearer"
    admin_timeout: ClassVar[float] = 10.0

    def __init__(self, server: ServerThread, *, token: str, admin_url: str) -> None:
        self.token = token
        self._server = server
        self._admin_url = admin_url.rstrip("/")  # e.g. http://127.0.0.1:41234/_sandbox
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for its thread (a second call does nothing)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stop(timeout)
        self._after_stop()

    def _after_stop(self) -> None:
        """What a sandbox releases once its server has stopped (nothing by default)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def headers(self) -> dict[str, str]:
        """The request headers a client needs: ``Authorization: <scheme> <token>``."""
        return {"Authorization": f"{self.auth_scheme} {self.token}"}

    # -- admin endpoints ------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self._admin_url}/{path}", json=body, timeout=self.admin_timeout)
        response.raise_for_status()
        return response.json()

    def info(self) -> dict[str, Any]:
        return self._admin("GET", "info")

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def reset_stats(self) -> dict[str, Any]:
        return self._admin("POST", "stats/reset")

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change switches at run time, e.g. ``set_faults(rate_limit=5, retry_after_mode="zero")``."""
        return self._admin("POST", "faults", changes)
