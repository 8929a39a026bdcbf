"""The one HTTP layer of both API clients: async httpx, an adaptive rate limit, safe retries.

Neither vendor publishes its rate limit, so `AdaptiveRateLimiter` finds it: it paces sends at a rate
that starts low, doubles while nothing is refused (slow start), then grows additively and shrinks
by a gentle factor on each 429 (AIMD), settling just below the rate it measured once a probe finds
the limit, and pausing every send while the server asks for a pause.

`ApiClient` owns one `httpx.AsyncClient` (keep-alive, a timeout on every call), caps the requests in
flight, shares one limiter among the clients of a token (`shared_rate_limiter`), retries what is safe to retry (408, 429, 5xx, transport errors) with capped, jittered
exponential backoff, and refuses to resend a write that may already have reached the server
(`AmbiguousWriteError`): qTest has no idempotency keys, so the loader resolves those with its id map.
Errors carry method, path, status and a short body excerpt, never a header or the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import httpx

from zephyr_qtest.lib import progress
from zephyr_qtest.lib.redaction import install_redaction, redact, register_secret

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Params = Mapping[str, Any]
Validator = Callable[[Any], None]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Transport failures raised before any byte of the request left: always safe to resend.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport failures worth another try; anything else (a bad URL, a local protocol error) is our bug.
_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_EXCERPT_CHARS = 200
_RETRY_AFTER_CAP = 120.0
# The loggers of the libraries a client drives (and ours) get the redacting filter.
_CLIENT_LOGGERS = ("httpx", "httpcore", "zephyr_qtest")


# --------------------------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An API call failed. The message names method, path and status; it never holds a secret."""

    def __init__(self, method: str, url: str, status: int | None, message: str) -> None:
        self.method = method
        self.url = redact(url)
        self.status = status
        self.message = redact(message)
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type[ApiError], tuple[str, str, int | None, str]]:
        # Picklable across processes (the arguments are not the single message Exception assumes).
        return type(self), (self.method, self.url, self.status, self.message)


class NotFoundError(ApiError):
    """404: the object does not exist (or is not visible to this token)."""


class AuthError(ApiError):
    """401 or 403: the token is missing, invalid, expired or lacks a permission."""


class RateLimitedError(ApiError):
    """429 answers outlasted the retry budget."""


class ServerError(ApiError):
    """5xx (or 408) answers outlasted the retry budget."""


class TransportError(ApiError):
    """No usable answer: connection refused or dropped, a timeout, an incomplete body."""


class MalformedResponseError(ApiError):
    """The answer arrived but its body is not the JSON shape the caller expects."""


class AmbiguousWriteError(ApiError):
    """A non-idempotent request failed after it may have reached the server.

    Resending could create a duplicate, so it is not retried; the caller must find out whether the
    write happened (qTest loader: look the object up by its Zephyr key, see DESIGN §6).
    """


class ForeignUrlError(ApiError):
    """An absolute URL (say a `next` link) points at another origin: the token is never sent there."""


# ---------------------------------------------------------------------------------------------- stats


@dataclass
class CallStats:
    """What a client did, for asset metadata. `seconds` is wall time with at least one request in flight."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    seconds: float = 0.0
    rate: float = 0.0

    def as_metadata(self) -> dict[str, int | float]:
        values = asdict(self)
        values["seconds"] = round(self.seconds, 3)
        values["rate"] = round(self.rate, 2)
        return values


# ------------------------------------------------------------------------------------- rate limiting


@dataclass(frozen=True, slots=True)
class Slot:
    """A granted send: when, and at what rate requests were going out then. Hand it back with the answer."""

    sent_at: float
    rate: float


class AdaptiveRateLimiter:
    """Paces sends at a rate it discovers from the server's 429 answers.

    - Slow start: begin at `initial_rate` and double it each window (a round trip, a few sends and at
      least `slow_start_window` seconds) in which nothing was refused.
    - Congestion avoidance, entered at the first refusal: every success adds a fixed step, sized so
      the rate regains the last decrease within `recovery_requests` successes; each fresh 429
      multiplies the rate by `decrease_factor` (by 0.5 when it ends slow start).
    - Once the limit is known the sawtooth flattens: when a probe is refused after a calm stretch (at
      least 50 answers since the last decrease, under 5% of them refused), the accepted answers per
      second from that decrease to this refusal measure the server's rate, and the rate settles at 97%
      of it instead of a whole factor below the probe's peak. At both ends a refusal says the burst
      allowance was spent, so the burst does not inflate the measure. Above the measured rate the
      step ramps up from nothing over 3 * `recovery_requests` successes (a convex probe, as TCP
      CUBIC's): the probe drains the allowance slowly at first, so it is refused less often, and a limit that
      has risen is still found at the usual speed.
    - A 429 is fresh when its request was sent after the last decrease: answers to requests already in
      flight at the old rate say nothing about the new one, so the rate drops at most once per window.
    - Far above the limit one gentle step per window would take long (slow start overshoots while the
      server's burst allowance hides the limit), so a decrease goes further when the recent answers
      show it: the mean over the last answers of (send rate if accepted, else 0) estimates the server's
      rate whatever the mix of rates; the new rate is never above it (nor below 60% of the gentle step).
    - Pauses: `Retry-After` pauses every send until then (capped). When it is 0 or missing the
      limiter still pauses, for 1, 2, 4, … send intervals (jittered, capped) by the number of
      consecutive fresh 429s.
    - Growth needs evidence: in slow start the callers must send at least half the rate, and later
      the rate may not outgrow 1.5 times the answers actually accepted per second over the last few
      seconds. Without that a pacing rate nobody uses (few callers, a slow server) would climb
      forever, and so would one fed by the burst the server grants after each `Retry-After` pause.

    `clock`, `sleep` and `rng` are injectable so tests drive it in simulated time.
    """

    def __init__(
        self,
        *,
        initial_rate: float = 4.0,
        min_rate: float = 0.2,
        max_rate: float = 5000.0,
        decrease_factor: float = 0.8,
        recovery_requests: int = 100,
        slow_start_sends: int = 2,
        slow_start_window: float = 0.25,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        retry_after_cap: float = _RETRY_AFTER_CAP,
        backoff_cap: float = 30.0,
    ) -> None:
        if not 0 < decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")
        self._rate = min(max(initial_rate, min_rate), max_rate)
        self._min_rate = min_rate
        self._max_rate = max_rate
        self._factor = decrease_factor
        self._recovery_requests = recovery_requests
        self._slow_start_sends = slow_start_sends
        self._slow_start_window = slow_start_window
        self._retry_after_cap = retry_after_cap
        self._backoff_cap = backoff_cap
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

        self.slow_start = True
        self._step = 0.0
        self._next_slot = -math.inf
        self._paused_until = -math.inf
        self._started = clock()
        self._last_change = self._started  # last rate change of any kind (doubling or decrease)
        self._last_decrease = -math.inf
        self._consecutive_429 = 0
        self._pause_decided = -math.inf  # when the last pause of our own (no Retry-After) was set
        self._srtt: float | None = None
        # Recent send times: the rate requests actually go out at.
        self._grants: deque[float] = deque(maxlen=64)
        # Accepted answers of the last `_DELIVERY_WINDOW` seconds: the rate the server really grants.
        self._accepted: deque[float] = deque()
        # Per answer: the send rate if accepted, else 0. The mean estimates the server's rate.
        self._samples: deque[float] = deque(maxlen=32)
        # Answers to the requests sent since the last decrease (the current regime). Above a real limit
        # the accepted throughput stays at the limit whatever we send, and a lower rate is refused less
        # often; when refusals come at random (other tenants, a throttling proxy) throughput falls in
        # proportion to our rate and the refused share stays put. Comparing the regimes before and
        # after a decrease tells the two apart.
        self._regime_ok = 0
        self._regime_refused = 0
        self._regime_started = self._started
        # The regime before the current one: (throughput, refused share), None when not comparable
        # (slow start's regime is paid from the server's burst allowance).
        self._previous_regime: tuple[float, float] | None = None
        self._rate_before_decrease = self._rate
        # Whether the current run of decreases began by ending slow start.
        self._chain_from_slow_start = True
        # Refusals proved independent of the rate: their share, and until when that finding holds.
        self._background = 0.0
        self._rate_independent_until = -math.inf
        self._measured_rate: float | None = None
        self._probe_successes = 0
        # Clients on several threads may share one limiter (one per token and origin).
        self._lock = threading.Lock()

    _DELIVERY_WINDOW = 4.0

    @property
    def rate(self) -> float:
        """The current pacing rate, in requests per second."""
        return self._rate

    @property
    def paused_until(self) -> float:
        return self._paused_until

    async def acquire(self) -> Slot:
        """Wait for the next send slot."""
        while (slot := self.try_acquire()) is None:
            await self._sleep(self.wait_time())
        return slot

    def try_acquire(self) -> Slot | None:
        """Take a send slot now, or None if the caller must wait `wait_time()` first."""
        with self._lock:
            return self._try_acquire()

    def _try_acquire(self) -> Slot | None:
        now = self._clock()
        if self._paused_until > now or self._next_slot > now:
            return None
        interval = 1.0 / self._rate
        # A caller woken a little late (timer slack) keeps the schedule, so the achieved rate is the
        # set rate; after an idle spell the schedule restarts from now rather than allowing a burst.
        late = now - self._next_slot
        start = self._next_slot if late < interval else now
        self._next_slot = start + interval
        if late > max(1.0, 4.0 * interval):
            # After a pause or a quiet spell (another asset's database work) the send rate is
            # measured afresh: the gap says nothing about how fast requests go out.
            self._grants.clear()
        self._grants.append(now)
        return Slot(now, min(self._rate, self._sending_rate()))

    def wait_time(self) -> float:
        return max(self._next_slot, self._paused_until) - self._clock()

    def on_success(self, slot: Slot, *, budget_exhausted: bool = False) -> None:
        """The request of `slot` was answered (not 429). `budget_exhausted`: the server said 0 left."""
        with self._lock:
            self._on_success(slot, budget_exhausted)

    def _on_success(self, slot: Slot, budget_exhausted: bool) -> None:
        now = self._clock()
        rtt = max(now - slot.sent_at, 0.0)
        self._srtt = rtt if self._srtt is None else 0.875 * self._srtt + 0.125 * rtt
        self._samples.append(slot.rate)
        self._accepted.append(now)
        if slot.sent_at >= self._pause_decided:
            self._consecutive_429 = 0
        if slot.sent_at < self._last_decrease:
            return  # an answer to the old, faster regime
        self._regime_ok += 1
        if budget_exhausted:
            # Every answer until the budget renews says 0 left: like a refusal, the word of a handful of
            # answers at the new rate does not lower it again (only slow start's overshoot does).
            if self.slow_start or self._regime_ok + self._regime_refused >= self._REGIME_ANSWERS:
                self._decrease(now)
        elif slot.sent_at >= self._last_change and self._may_grow(now):
            if self.slow_start:
                window = max(self._srtt, self._slow_start_sends / self._rate, self._slow_start_window)
                if now - self._last_change >= window:
                    self._set_rate(self._rate * 2.0)
                    self._last_change = now
            else:
                self._set_rate(self._rate + self._growth_step())

    def on_rate_limited(self, slot: Slot, retry_after: float | None) -> None:
        """The request of `slot` was answered 429, with `Retry-After` in seconds if given."""
        with self._lock:
            self._on_rate_limited(slot, retry_after)

    def _on_rate_limited(self, slot: Slot, retry_after: float | None) -> None:
        now = self._clock()
        self._samples.append(0.0)
        if retry_after is not None and retry_after > 0:
            # The server's word holds whenever it arrives, even for a stale answer.
            self._pause_until(now + min(retry_after, self._retry_after_cap))
        if slot.sent_at < self._last_decrease:
            return
        self._regime_refused += 1
        background = now < self._rate_independent_until and not self._above_background()
        if self._should_decrease(now):
            self._decrease(now)
        if background or (retry_after is not None and retry_after > 0) or slot.sent_at < self._pause_decided:
            # A refusal of the known background kind is retried without holding everyone back; one
            # sent before the last pause was decided is already answered by that pause.
            return
        # Without a wait from the server, pause 1, 2, 4, ... send intervals by the number of pauses in
        # a row whose following sends were refused too.
        self._consecutive_429 += 1
        slots = 2.0 ** min(self._consecutive_429 - 1, 30)
        pause = min(slots / self._rate, self._backoff_cap) * (1.0 - 0.25 * self._rng())
        self._pause_until(now + pause)
        self._pause_decided = now

    def _sending_rate(self) -> float:
        """Sends per second over the recent sends (infinite until there are two)."""
        span = self._grants[-1] - self._grants[0] if len(self._grants) >= 2 else 0.0
        return (len(self._grants) - 1) / span if span > 0 else math.inf

    def _delivered_rate(self, now: float) -> float:
        """Accepted answers per second over the last few seconds (infinite until a second has passed)."""
        while self._accepted and self._accepted[0] < now - self._DELIVERY_WINDOW:
            self._accepted.popleft()
        span = min(now - self._started, self._DELIVERY_WINDOW)
        return len(self._accepted) / span if span >= 1.0 else math.inf

    def _may_grow(self, now: float) -> bool:
        if self.slow_start:
            return self._sending_rate() >= self._rate / 2.0
        return self._rate < 1.5 * self._delivered_rate(now)

    _REGIME_ANSWERS = 20  # answers needed before a regime's 429 share means anything
    _MEASURED_ANSWERS = 50  # answers needed before a regime's throughput stands for the server's rate
    _SETTLE = 0.97  # after a probe is refused, the rate settles at this share of the measured rate
    _PROBE_RAMP = 3  # above the measured rate the step ramps up over this many `recovery_requests`
    _MEANINGFUL_SHARE = 0.05  # below this share of refusals, a decrease is never questioned
    _RATE_INDEPENDENT_HOLD = 30.0  # seconds the finding "refusals do not depend on the rate" holds
    # A larger share of refusals is never taken for background: misjudging a real limit would be costly.
    _MAX_BACKGROUND = 0.35

    def _should_decrease(self, now: float) -> bool:
        """Decide whether this fresh 429 lowers the rate (it pauses the sends either way)."""
        if now < self._rate_independent_until:
            # Refusals come whatever the rate: only a share clearly above theirs says "too fast", and
            # then the finding itself is in doubt (it may have been the dregs of a real overload).
            if not self._above_background():
                return False
            self._rate_independent_until = -math.inf
            return True
        if self.slow_start:
            return True
        answers = self._regime_ok + self._regime_refused
        if answers < self._REGIME_ANSWERS:
            # Too few answers at this rate to say it is too fast, unless nearly all are refusals (far
            # above a limit, which no background share explains).
            return self._regime_refused >= 8 and self._regime_refused >= 0.75 * answers
        share = self._regime_refused / answers
        throughput = self._regime_throughput(now)
        rate_ratio = self._rate / self._rate_before_decrease
        if (
            self._previous_regime is not None
            and rate_ratio < 0.95
            and self._MEANINGFUL_SHARE <= share <= self._MAX_BACKGROUND
            and throughput <= self._previous_regime[0] * rate_ratio * 1.1
            and share >= 0.8 * self._previous_regime[1]
        ):
            # The last decrease cost throughput in proportion and refusals came as often: they do not
            # depend on our rate. Stop decreasing, grow again (by doubling if the refusals ended slow
            # start) and for a while decrease only when refusals clearly exceed this background share.
            self.slow_start = self.slow_start or self._chain_from_slow_start
            self._background = share
            self._rate_independent_until = now + self._RATE_INDEPENDENT_HOLD
            self._start_regime(now, None)
            return False
        return True

    def _above_background(self) -> bool:
        """Whether this regime's answers are refused clearly more often than the background share."""
        n = self._regime_ok + self._regime_refused
        if n < self._REGIME_ANSWERS:
            return False
        background = self._background
        margin = 2.0 * math.sqrt(background * (1.0 - background) / n) + self._MEANINGFUL_SHARE
        return self._regime_refused / n > background + margin

    def _regime_throughput(self, now: float) -> float:
        span = now - self._regime_started
        return self._regime_ok / span if span > 0 else 0.0

    def _start_regime(self, now: float, previous: tuple[float, float] | None) -> None:
        self._previous_regime = previous
        self._regime_ok = self._regime_refused = 0
        self._regime_started = now
        self._last_decrease = self._last_change = now

    def _decrease(self, now: float) -> None:
        answers = self._regime_ok + self._regime_refused
        previous = None
        if answers >= self._REGIME_ANSWERS and not self.slow_start:
            share = self._regime_refused / answers
            previous = (self._regime_throughput(now), share)
            if share < self._MEANINGFUL_SHARE:
                self._chain_from_slow_start = False  # a calm regime: a new run of decreases starts
        elif self.slow_start:
            self._chain_from_slow_start = True
        self._rate_before_decrease = self._rate
        if self.slow_start:
            # The rate one doubling ago saw no refusal (the measured send rate lags the doublings).
            # Slow start's answers were largely paid from the server's burst allowance: they would
            # make the limit look higher than it is.
            new_rate = min(self._rate * 0.5, self._sending_rate())
            self.slow_start = False
            self._samples.clear()
        else:
            # Decrease from the rate requests actually went out at: a pacing rate the callers do not
            # use binds nothing, and shrinking it would change nothing.
            new_rate = min(self._rate, self._sending_rate() * 1.25) * self._factor
            if len(self._samples) >= 8:
                estimate = sum(self._samples) / len(self._samples)
                new_rate = max(min(new_rate, estimate), new_rate * 0.6)
            if (
                previous is not None
                and answers >= self._MEASURED_ANSWERS
                and previous[1] < self._MEANINGFUL_SHARE
            ):
                # A calm regime that ended in a refusal: a probe found the ceiling. Its throughput,
                # from the last decrease to this refusal, measures the server's rate: at both ends a
                # refusal says the server's burst allowance was spent, so the burst does not inflate it
                # (what the allowance regained during the pause is counted over the pause). Settle just
                # below it rather than a whole factor below the probe's peak.
                new_rate = max(new_rate, min(previous[0], self._rate) * self._SETTLE)
                self._measured_rate = previous[0]
            else:
                self._measured_rate = None  # a rate measured before may no longer hold
            self._probe_successes = 0
        self._set_rate(new_rate)
        self._step = self._rate * (1.0 / self._factor - 1.0) / self._recovery_requests
        self._start_regime(now, previous)

    def _growth_step(self) -> float:
        """The additive step of one success: the whole step up to the server's rate as last measured,
        then a ramp from nothing to the whole step over `_PROBE_RAMP` times `recovery_requests`
        successes. Probes above a rate known to be the server's drain its burst allowance slowly at
        first, so they are refused less often, and a limit that has risen (another client of the token
        stopped) is still found at the usual speed once the ramp is up."""
        if self._measured_rate is None or self._rate < self._measured_rate:
            return self._step
        self._probe_successes += 1
        return self._step * min(1.0, self._probe_successes / (self._PROBE_RAMP * self._recovery_requests))

    def _set_rate(self, rate: float) -> None:
        self._rate = min(max(rate, self._min_rate), self._max_rate)

    def _pause_until(self, until: float) -> None:
        self._paused_until = max(self._paused_until, until)


_shared_limiters: dict[str, AdaptiveRateLimiter] = {}
_shared_lock = threading.Lock()


def shared_rate_limiter(key: str) -> AdaptiveRateLimiter:
    """The process-wide limiter for `key` (an origin and a credential fingerprint).

    The server counts requests per token, so every client of one token shares what was learnt: the
    assets of a run each open their own client, and none should start from slow start again.
    """
    with _shared_lock:
        limiter = _shared_limiters.get(key)
        if limiter is None:
            limiter = _shared_limiters[key] = AdaptiveRateLimiter()
        return limiter


def limiter_key(base_url: str, credential: str) -> str:
    """A registry key for `shared_rate_limiter` that does not hold the credential itself."""
    fingerprint = hashlib.sha256(credential.encode("utf-8")).hexdigest()[:16]
    scheme, host, port = _origin(httpx.URL(base_url))
    return f"{scheme}://{host}:{port}#{fingerprint}"


# --------------------------------------------------------------------------------------------- auth


class AuthProvider:
    """Supplies the `Authorization` header. Subclasses may fetch or refresh a token (qTest OAuth)."""

    async def authorization(self) -> str | None:
        return None

    async def refresh(self) -> bool:
        """Called on a 401; return True when a new credential is ready and the request may be resent."""
        return False


class BearerToken(AuthProvider):
    """A fixed token, sent as ``<scheme> <token>`` (Zephyr: ``Bearer``, qTest: ``bearer``)."""

    def __init__(self, token: str, scheme: str = "Bearer") -> None:
        register_secret(token)
        self._value = f"{scheme} {token}"

    async def authorization(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "BearerToken(***)"


# ------------------------------------------------------------------------------------------- client


class ApiClient:
    """An async JSON API client for one origin; use as ``async with``.

    `retry` on each call overrides idempotency: None decides by method (GET/HEAD/OPTIONS/PUT/DELETE
    are idempotent), True says "safe to resend", False says "resend only if it never reached the server"
    (a connection that was never made, or a 429).

    Pacing comes from `rate_limiter`, else from the process-wide limiter of `rate_limit_key` (clients
    of one token share what was learnt), else from a limiter of its own. `clock` and `sleep` make
    time injectable for tests; `transport` plugs in `httpx.MockTransport` or an ASGI app.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: AuthProvider | None = None,
        timeout: float | httpx.Timeout = 60.0,
        max_in_flight: int = 16,
        max_retries: int = 8,
        max_rate_limit_retries: int = 50,
        rate_limiter: AdaptiveRateLimiter | None = None,
        rate_limit_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self._auth = auth or AuthProvider()
        self._max_retries = max_retries
        self._max_rate_limit_retries = max_rate_limit_retries
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._clock = clock
        self._sleep = sleep
        if rate_limiter is None:
            if rate_limit_key is not None:
                rate_limiter = shared_rate_limiter(rate_limit_key)
            else:
                rate_limiter = AdaptiveRateLimiter(clock=clock, sleep=sleep)
        self.limiter = rate_limiter
        install_redaction(_CLIENT_LOGGERS)
        self.stats = CallStats(rate=self.limiter.rate)
        self._semaphore = asyncio.Semaphore(max_in_flight)
        self._in_flight = 0
        self._busy_since = 0.0
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(timeout, 15.0))
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_in_flight, max_keepalive_connections=max_in_flight, keepalive_expiry=30.0
            ),
            transport=transport,
            headers={"Accept": "application/json", **(headers or {})},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def url(self, path_or_url: str, params: Params | None = None) -> str:
        """The absolute URL a call would use (refusing other origins), for logs and page records."""
        return str(self._resolve(path_or_url).copy_merge_params(dict(params or {})))

    # -------------------------------------------------------------------------------- conveniences

    async def get_json(
        self, path_or_url: str, params: Params | None = None, *, validate: Validator | None = None
    ) -> Any:
        """GET and decode JSON. `validate` raises ValueError for a wrong shape (retried like a bad body)."""
        return await self.request_json("GET", path_or_url, params=params, validate=validate)

    async def get_bytes(self, path_or_url: str, params: Params | None = None) -> tuple[bytes, httpx.Headers]:
        """GET a binary body. Redirects are followed (httpx drops the token when they leave the origin)."""
        response = await self.request("GET", path_or_url, params=params, follow_redirects=True)
        return response.content, response.headers

    async def request_json(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        validate: Validator | None = None,
        retry: bool | None = None,
    ) -> Any:
        """`request` then decode the body as JSON and check its shape.

        A body that is not JSON, or fails `validate`, is fetched again for idempotent calls (a truncated
        answer is usually a transient fault), then raises `MalformedResponseError`.
        """
        method = method.upper()
        idempotent = _is_idempotent(method, retry)
        attempt = 0
        while True:
            response = await self.request(
                method, path_or_url, params=params, json_body=json_body, retry=retry
            )
            try:
                data = json.loads(response.content) if response.content else None
                if validate is not None:
                    validate(data)
                return data
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                error = MalformedResponseError(
                    method,
                    str(response.request.url),
                    response.status_code,
                    f"{_describe(method, response.request.url)} -> {response.status_code}: "
                    f"unexpected body ({_short(str(exc))}): {_excerpt(response)}",
                )
            attempt += 1
            if not idempotent or attempt > self._max_retries:
                raise error
            self.stats.retries += 1
            log.debug("Retrying %s after a malformed answer (attempt %d)", error.url, attempt)
            await self._sleep(self._backoff(attempt))

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Params | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """Send a request with pacing and retries; return the 2xx response or raise an `ApiError`."""
        method = method.upper()
        target = self._resolve(path_or_url, method)
        idempotent = _is_idempotent(method, retry)
        errors = rate_limited = 0
        refreshed = False
        while True:
            request = self._http.build_request(
                method, target, params=params, json=json_body, content=content, headers=headers
            )
            described = _describe(method, request.url)
            authorization = await self._auth.authorization()
            if authorization:
                request.headers["Authorization"] = authorization
            async with self._semaphore:
                slot = await self.limiter.acquire()
                self.stats.requests += 1
                progress.requested()
                self._enter()
                try:
                    response = await self._http.send(request, follow_redirects=follow_redirects)
                except httpx.RequestError as exc:
                    failure: httpx.RequestError | None = exc
                else:
                    failure = None
                finally:
                    self._leave()

            if failure is not None:
                # A transport failure says nothing about the rate limit: leave the limiter alone.
                self.stats.transport_errors += 1
                text = f"{described}: {type(failure).__name__}: {_short(str(failure))}"
                url = str(request.url)
                if not isinstance(failure, _RETRYABLE_TRANSPORT):
                    raise TransportError(method, url, None, text) from failure
                if not idempotent and not isinstance(failure, _NOT_SENT):
                    raise AmbiguousWriteError(
                        method, url, None, f"{text} (may have reached the server)"
                    ) from failure
                errors += 1
                if errors > self._max_retries:
                    raise TransportError(method, url, None, f"{text} (after {errors} attempts)") from failure
                await self._retry_sleep(described, text, errors, None)
                continue

            status = response.status_code
            if status == 429:
                self.stats.rate_limited += 1
                progress.rate_limited()
                self.limiter.on_rate_limited(slot, _retry_after(response.headers))
                self.stats.rate = self.limiter.rate
                rate_limited += 1
                if rate_limited > self._max_rate_limit_retries:
                    raise _status_error(RateLimitedError, method, response, f"after {rate_limited} attempts")
                self.stats.retries += 1
                log.debug("Retrying %s after 429 (attempt %d)", described, rate_limited)
                continue  # the limiter holds every send back for the pause

            if status < 500:  # a server in trouble is no evidence that a faster rate is welcome
                self.limiter.on_success(slot, budget_exhausted=_budget_exhausted(response.headers))
                self.stats.rate = self.limiter.rate
            if response.is_success:
                return response
            if status == 401 and not refreshed and await self._auth.refresh():
                refreshed = True
                continue
            if status == 408 or status >= 500:
                self.stats.server_errors += 1
                if not idempotent:
                    raise _status_error(AmbiguousWriteError, method, response, "may have reached the server")
                errors += 1
                if errors > self._max_retries:
                    raise _status_error(ServerError, method, response, f"after {errors} attempts")
                await self._retry_sleep(described, str(status), errors, _retry_after(response.headers))
                continue
            raise _status_error(_ERRORS_BY_STATUS.get(status, ApiError), method, response)

    # ------------------------------------------------------------------------------------ internals

    def _resolve(self, path_or_url: str, method: str = "GET") -> httpx.URL:
        url = httpx.URL(path_or_url)
        if url.is_absolute_url:
            if _origin(url) != _origin(self.base_url):
                where = f"{url.scheme}://{url.host}"
                raise ForeignUrlError(
                    method,
                    where,
                    None,
                    f"{method} refused: {where} is not the API's origin {self.base_url.host}",
                )
            return url
        # Relative paths join the base path ("/testcases" and "testcases" both mean <base>/testcases).
        return self.base_url.join(path_or_url.lstrip("/"))

    async def _retry_sleep(
        self, described: str, reason: str, attempt: int, retry_after: float | None
    ) -> None:
        self.stats.retries += 1
        # A server-directed delay wins when it is a real one; 0 or none still backs off.
        delay = min(retry_after, _RETRY_AFTER_CAP) if retry_after else self._backoff(attempt)
        log.debug("Retrying %s in %.2fs after %s (attempt %d)", described, delay, reason, attempt)
        await self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        delay = min(self._backoff_initial * 2.0 ** (attempt - 1), self._backoff_max)
        return delay * (1.0 - 0.25 * random.random())

    def _enter(self) -> None:
        if self._in_flight == 0:
            self._busy_since = self._clock()
        self._in_flight += 1

    def _leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self.stats.seconds += self._clock() - self._busy_since


_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {401: AuthError, 403: AuthError, 404: NotFoundError}


def _is_idempotent(method: str, retry: bool | None) -> bool:
    return method in IDEMPOTENT_METHODS if retry is None else retry


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default_port = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default_port


def _describe(method: str, url: httpx.URL) -> str:
    return f"{method} {url.raw_path.decode('ascii', 'replace')}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


def _excerpt(response: httpx.Response) -> str:
    if not response.content:
        return "(empty body)"
    return _short(response.content[: _EXCERPT_CHARS * 4].decode("utf-8", "replace"))


def _status_error(
    kind: type[ApiError], method: str, response: httpx.Response, note: str | None = None
) -> ApiError:
    text = f"{_describe(method, response.request.url)} -> {response.status_code}: {_excerpt(response)}"
    if note:
        text = f"{text} ({note})"
    return kind(method, str(response.request.url), response.status_code, text)


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from `Retry-After` (or `retry-after-ms`); None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:  # the HTTP-date form
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _budget_exhausted(headers: httpx.Headers) -> bool:
    """qTest's `x-ratelimit-remaining-minute` / `-month`: 0 left means slow down now."""
    for name, value in headers.items():
        if name.startswith("x-ratelimit-remaining"):
            try:
                if float(value) <= 0:
                    return True
            except ValueError:
                continue
    return False
