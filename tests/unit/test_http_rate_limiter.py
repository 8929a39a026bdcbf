"""`AdaptiveRateLimiter` as a state machine on a fake clock, and against a simulated token bucket.

The simulation is a deterministic discrete-event model of the benchmark's server (a token bucket holding
one second's worth of tokens, answering 429 with `Retry-After` when empty) and of 16 callers that send
whenever the limiter lets them. It checks the algorithm, not the wall clock: ~60 simulated seconds run
in a fraction of a real one.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass

import pytest

from zephyr_qtest.lib.http import AdaptiveRateLimiter, Slot, limiter_key, shared_rate_limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: FakeClock, **options: float) -> AdaptiveRateLimiter:
    return AdaptiveRateLimiter(clock=clock, rng=random.Random(1).random, **options)


def send(lim: AdaptiveRateLimiter, clock: FakeClock) -> Slot:
    """Wait (in simulated time) for a slot and take it."""
    while (slot := lim.try_acquire()) is None:
        clock.now += lim.wait_time()
    return slot


# ------------------------------------------------------------------------------------ state machine


def test_sends_are_paced_at_the_rate() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=10.0)
    times = [send(lim, clock).sent_at for _ in range(11)]
    assert times[-1] - times[0] == pytest.approx(1.0)
    assert all(b - a == pytest.approx(0.1) for a, b in itertools.pairwise(times))


def test_an_idle_spell_does_not_turn_into_a_burst() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=10.0)
    send(lim, clock)
    clock.now += 60.0
    first = send(lim, clock).sent_at
    second = send(lim, clock).sent_at
    assert second - first == pytest.approx(0.1)


def test_slow_start_doubles_once_per_window_on_answers_to_the_current_rate() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=4.0, slow_start_window=0.25)
    first = send(lim, clock)
    clock.now = 0.01
    lim.on_success(first)  # the first window has only begun
    assert lim.rate == 4.0
    more = [send(lim, clock) for _ in range(3)]  # callers keep up with the pacing: 0.25, 0.5, 0.75
    lim.on_success(more[-1])
    assert lim.rate == 8.0
    lim.on_success(more[0])  # sent before the doubling: says nothing about the new rate
    assert lim.rate == 8.0
    fresh = [send(lim, clock) for _ in range(8)]
    lim.on_success(fresh[-1])
    assert lim.rate == 16.0
    assert lim.slow_start


def test_first_429_ends_slow_start_at_half_the_rate() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=64.0)
    slot = send(lim, clock)
    clock.now += 0.01
    lim.on_rate_limited(slot, None)
    assert not lim.slow_start
    assert lim.rate == pytest.approx(32.0)


def test_429_decreases_gently_at_most_once_per_window() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=100.0)
    in_flight = [send(lim, clock) for _ in range(5)]
    clock.now += 0.01
    lim.on_rate_limited(in_flight[0], None)  # leaves slow start: 50
    after_exit = lim.rate
    for slot in in_flight[1:]:
        lim.on_rate_limited(slot, None)  # sent before the decrease: stale
    assert lim.rate == after_exit
    # A refusal among the first answers at the new rate says too little to lower it again.
    early = send(lim, clock)
    clock.now += 0.01
    lim.on_rate_limited(early, None)
    assert lim.rate == after_exit
    for _ in range(30):
        slot = send(lim, clock)
        clock.now += 0.001
        lim.on_success(slot)
    before = lim.rate
    fresh = send(lim, clock)
    clock.now += 0.01
    lim.on_rate_limited(fresh, None)
    assert 0.6 * 0.8 * before <= lim.rate <= 0.8 * before + 1e-9


def test_refusals_that_do_not_depend_on_the_rate_do_not_drive_it_down() -> None:
    """A server that refuses 20% of requests whatever the rate: the limiter must not collapse."""
    clock = FakeClock()
    rng = random.Random(7)
    lim = limiter(clock, initial_rate=50.0)
    sent = 0
    while clock.now < 120.0:
        slot = send(lim, clock)
        sent += 1
        clock.now += 0.0005
        if rng.random() < 0.2:
            lim.on_rate_limited(slot, 0.0)
        else:
            lim.on_success(slot)
    # Without the guard the rate halves again and again (to the 0.2/s floor); it must stay useful.
    assert lim.rate >= 10.0
    assert sent / clock.now >= 10.0


def test_successes_increase_the_rate_additively_after_slow_start() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=100.0, recovery_requests=100)
    slot = send(lim, clock)
    lim.on_rate_limited(slot, None)  # 100 -> 50, step = 50 * (1/0.8 - 1) / 100 = 0.125
    decreased = lim.rate
    increments = []
    for _ in range(10):
        slot = send(lim, clock)
        before = lim.rate
        clock.now += 0.001
        lim.on_success(slot)
        increments.append(lim.rate - before)
    assert increments == pytest.approx([0.125] * 10)
    assert lim.rate == pytest.approx(decreased + 1.25)


def test_recovery_regains_a_decrease_within_recovery_requests() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=100.0, recovery_requests=50)
    lim.on_rate_limited(send(lim, clock), None)
    decreased = lim.rate
    for _ in range(50):
        slot = send(lim, clock)
        lim.on_success(slot)
    assert lim.rate == pytest.approx(decreased / 0.8)


def test_retry_after_pauses_every_send_until_then() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=1000.0)
    slot = send(lim, clock)
    clock.now = 10.0
    lim.on_rate_limited(slot, 3.0)
    assert lim.try_acquire() is None
    assert lim.wait_time() == pytest.approx(3.0)
    clock.now = 12.9
    assert lim.try_acquire() is None
    clock.now = 13.0
    assert lim.try_acquire() is not None


def test_retry_after_from_a_stale_answer_is_still_honoured() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=1000.0)
    old = send(lim, clock)
    clock.now = 1.0
    lim.on_rate_limited(send(lim, clock), None)
    lim.on_rate_limited(old, 5.0)
    assert lim.paused_until == pytest.approx(6.0)


def test_retry_after_is_capped() -> None:
    clock = FakeClock()
    lim = limiter(clock, retry_after_cap=120.0)
    lim.on_rate_limited(send(lim, clock), 10_000.0)
    assert lim.paused_until == pytest.approx(120.0)


@pytest.mark.parametrize("retry_after", [0.0, None], ids=["zero", "absent"])
def test_without_a_wait_the_pause_grows_with_consecutive_429s_and_is_capped(
    retry_after: float | None,
) -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=10.0, min_rate=10.0, backoff_cap=2.0)
    pauses = []
    for _ in range(8):
        slot = send(lim, clock)
        clock.now += 0.001
        lim.on_rate_limited(slot, retry_after)
        pauses.append(lim.paused_until - clock.now)
    assert pauses[0] > 0
    assert pauses[1] > pauses[0] and pauses[2] > pauses[1]  # 1, 2, 4 send intervals (jittered)
    assert max(pauses) <= 2.0


def test_a_success_resets_the_consecutive_count() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=10.0, min_rate=10.0)
    for _ in range(4):
        slot = send(lim, clock)
        lim.on_rate_limited(slot, None)
    escalated = lim.paused_until - clock.now
    lim.on_success(send(lim, clock))
    slot = send(lim, clock)
    lim.on_rate_limited(slot, None)
    assert lim.paused_until - clock.now < escalated


def test_budget_exhausted_header_slows_down_without_a_429() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=50.0)
    lim.on_success(send(lim, clock), budget_exhausted=True)
    assert lim.rate == pytest.approx(25.0)
    assert lim.paused_until < clock.now + 1e-9  # slowing down, not stopping


def test_an_unused_rate_does_not_grow() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=100.0, slow_start_window=0.0)
    # One caller, one request every half second: far below the pacing rate.
    for _ in range(40):
        slot = send(lim, clock)
        clock.now += 0.5
        lim.on_success(slot)
    assert lim.rate <= 200.0


def test_rate_stays_within_bounds() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=1.0, min_rate=0.5)
    for _ in range(20):
        slot = send(lim, clock)
        lim.on_rate_limited(slot, None)
    assert lim.rate == 0.5


def test_a_probe_refused_after_a_calm_stretch_settles_just_below_the_measured_rate() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=100.0)
    lim.on_rate_limited(send(lim, clock), None)  # ends slow start: 50
    decreased_at = clock.now
    for _ in range(100):  # a calm stretch: the callers keep up with the pacing, nothing is refused
        slot = send(lim, clock)
        clock.now += 0.001
        lim.on_success(slot)
    peak = lim.rate
    probe = send(lim, clock)
    clock.now += 0.001
    measured = 100 / (clock.now - decreased_at)  # answers accepted per second since the decrease
    lim.on_rate_limited(probe, None)
    assert measured < peak
    assert lim.rate == pytest.approx(0.97 * measured)
    assert lim.rate > 0.8 * peak  # not the whole factor below the probe's peak


def test_above_the_measured_rate_the_probe_ramps_up() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=100.0, recovery_requests=100)
    lim.on_rate_limited(send(lim, clock), None)
    for _ in range(100):
        slot = send(lim, clock)
        clock.now += 0.001
        lim.on_success(slot)
    lim.on_rate_limited(send(lim, clock), None)
    settled = lim.rate
    step = settled * (1 / 0.8 - 1) / 100
    increments = []
    for _ in range(400):
        slot = send(lim, clock)
        before = lim.rate
        clock.now += 0.001
        lim.on_success(slot)
        increments.append(lim.rate - before)
    crossed = next(i for i, inc in enumerate(increments) if inc < 0.99 * step)
    assert crossed > 0
    assert increments[:crossed] == pytest.approx([step] * crossed)  # the whole step up to the measured rate
    ramp = increments[crossed:]
    assert ramp[0] < 0.01 * step  # then a probe that starts from nothing
    assert all(b >= a for a, b in itertools.pairwise(ramp))
    assert ramp[-1] == pytest.approx(step)  # and reaches the whole step


def test_a_spent_budget_lowers_the_rate_once_per_regime() -> None:
    clock = FakeClock()
    lim = limiter(clock, initial_rate=50.0)
    lim.on_success(send(lim, clock), budget_exhausted=True)
    assert lim.rate == pytest.approx(25.0)
    # Every answer until the budget renews says 0 left: the first few at the new rate say nothing new.
    for _ in range(10):
        slot = send(lim, clock)
        clock.now += 0.001
        lim.on_success(slot, budget_exhausted=True)
    assert lim.rate == pytest.approx(25.0)


def test_shared_limiters_are_per_key_and_keys_hide_the_token() -> None:
    key = limiter_key("https://api.zephyrscale.smartbear.com/v2", "secret-token-value")
    assert "secret-token-value" not in key
    assert shared_rate_limiter(key) is shared_rate_limiter(key)
    other = limiter_key("https://api.zephyrscale.smartbear.com/v2", "another-token")
    assert shared_rate_limiter(other) is not shared_rate_limiter(key)
    assert limiter_key("https://api.zephyrscale.smartbear.com:443/v2", "secret-token-value") == key


# --------------------------------------------------------------------------------------- simulation


@dataclass
class Outcome:
    accepted: int
    refused: int
    utilisation: float
    steady_utilisation: float

    @property
    def share_429(self) -> float:
        return self.refused / (self.accepted + self.refused)


def simulate(
    rate: float,
    retry_after: str,
    *,
    latency: float = 0.005,
    callers: int = 16,
    seconds: float = 60.0,
    steady_from: float = 20.0,
    minute_budget: bool = False,
) -> Outcome:
    """Callers that always have work, a token bucket of `rate`/s holding one second's worth.

    `minute_budget`: answers say when `rate` * 60 requests were accepted in the current minute, as the qTest
    sandbox's ``x-ratelimit-remaining-minute`` does (0 left: `budget_exhausted`)."""
    clock = FakeClock()
    rng = random.Random(7)
    lim = AdaptiveRateLimiter(clock=clock, rng=rng.random)
    capacity, tokens, refilled = max(1.0, rate), max(1.0, rate), 0.0
    events: list[tuple[float, int, str, object]] = []
    order = 0

    def at(when: float, kind: str, data: object = None) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (when, order, kind, data))

    for _ in range(callers):
        at(0.0, "ready")
    accepted = refused = steady_accepted = 0
    minute, used = -1, 0
    while events:
        when, _, kind, data = heapq.heappop(events)
        if when > seconds:
            break
        clock.now = when
        if kind == "ready":
            slot = lim.try_acquire()
            if slot is None:
                at(when + lim.wait_time(), "ready")
            else:
                trip = latency * (0.8 + 0.4 * rng.random())
                at(when + trip / 2, "arrive", (slot, trip))
        elif kind == "arrive":
            slot, trip = data  # type: ignore[misc]
            tokens = min(capacity, tokens + (when - refilled) * rate)
            refilled = when
            if int((when + 13.0) // 60) != minute:  # the server's minutes began before the callers
                minute, used = int((when + 13.0) // 60), 0
            if tokens >= 1.0:
                tokens -= 1.0
                used += 1
                answer: float | str | None = "spent" if minute_budget and used >= rate * 60 else "ok"
            else:
                wait = (1.0 - tokens) / rate
                answer = {"seconds": float(math.ceil(wait)), "zero": 0.0, "absent": None}[retry_after]
            at(slot.sent_at + trip, "answer", (slot, answer))
        else:
            slot, answer = data  # type: ignore[misc]
            if answer in ("ok", "spent"):
                accepted += 1
                steady_accepted += when >= steady_from
                lim.on_success(slot, budget_exhausted=answer == "spent")
            else:
                refused += 1
                lim.on_rate_limited(slot, answer)  # type: ignore[arg-type]
            at(when, "ready")
    return Outcome(
        accepted=accepted,
        refused=refused,
        utilisation=accepted / (rate * seconds),
        steady_utilisation=steady_accepted / (rate * (seconds - steady_from)),
    )


@pytest.mark.parametrize(
    ("rate", "retry_after"),
    [
        (200.0, "seconds"),  # the benchmark: Retry-After rounded up to whole seconds
        (200.0, "zero"),
        (50.0, "absent"),
        (20.0, "seconds"),
        (500.0, "zero"),
    ],
)
def test_simulated_token_bucket_is_used_well_with_few_429s(rate: float, retry_after: str) -> None:
    outcome = simulate(rate, retry_after)
    assert outcome.steady_utilisation >= 0.85, outcome
    assert outcome.utilisation >= 0.85, outcome
    assert outcome.share_429 < 0.03, outcome


def test_the_benchmarks_qtest_is_used_to_within_two_percent() -> None:
    """The tenant benchmark's qTest: 4 requests/s, Retry-After in whole seconds, the minute budget in the
    headers, 8 requests in flight, ten minutes. Once a probe has found the limit the rate settles just
    below it instead of a whole factor below the probe's peak (96.5% used with that factor)."""
    outcome = simulate(4.0, "seconds", callers=8, latency=0.02, seconds=600.0, minute_budget=True)
    assert outcome.utilisation >= 0.98, outcome
    assert outcome.share_429 < 0.015, outcome
