"""The exactly-once publishing protocol (DESIGN.md §6), for any kind of qTest object.

For each object, in load order (a level at a time: parents and callees first), against the id map:

- ``done`` with the same payload hash: skipped;
- ``done`` with another hash: updated in place (PUT is idempotent: retried by the HTTP layer);
- ``pending`` (a create that may or may not have happened): looked up in qTest; adopted if found,
  created otherwise;
- otherwise: ``pending`` is committed, the object is created, ``done`` and its id are committed.

Siblings whose display order qTest numbers by creation (modules, test-cycle folders) are sent one after
the other, in Zephyr's order (``ObjectKind.sequence``); everything else of a level goes side by side.

A kind may create some objects many to a call (qTest's bulk auto-test-logs): those of a level are
collected, marked ``pending`` together, handed to ``create_many`` at once, and recorded one by one.

A create whose answer is lost (`AmbiguousWriteError`) is looked up at once and adopted or created again.
Nothing is ever created again on a guess: a lookup that itself fails leaves the object ``pending`` (looked
for again by the next run), and a bulk submission whose answer was lost is looked for as long as qTest's
queue may still be working on it (``QUEUE_WINDOW_S``; see ``kinds/automated_test_log.py``).
A failure of one object is recorded with its reason and never stops the others; the summary lists them,
those that may exist in qTest (``pending``) apart from those that do not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from zephyr_qtest.lib import progress
from zephyr_qtest.lib.http import AmbiguousWriteError, ApiError
from zephyr_qtest.lib.qtest.id_map import Entry, IdMap

log = logging.getLogger(__name__)

Item = TypeVar("Item")

# How long after a bulk submission whose answer was lost qTest's queue may still make its objects (the
# default of ZEPHYR_QTEST_QUEUE_WINDOW_S). Neither the swagger nor API_NOTES says how long a job may
# wait in the queue (its states include IN_WAITING and PENDING): a submission of unknown fate is given the
# patience the loader has for a job it knows (``QtestClient.wait_for_queue``: an hour). Too short makes
# duplicates; too long only delays a re-run whose objects never come (a FAILED job), since an object that
# is found ends the wait at once.
QUEUE_WINDOW_S = 3600.0
# Failure lines a summary's text names (grouped by reason).
REASONS_SHOWN = 5


@dataclass(frozen=True)
class Created:
    """What a create, update or lookup yields: the qTest id, and what else the id map should keep."""

    qtest_id: int
    detail: Mapping[str, Any] = field(default_factory=dict)
    # Child objects created by the same call (a test case's steps): (object type, source key, id, hash).
    children: Sequence[tuple[str, str, int, str | None]] = ()


@dataclass
class Failure:
    source_key: str
    reason: str
    # The create may have happened (its answer was lost, or it could not be looked for): the id map keeps
    # it pending, and a re-run looks for it in qTest before sending anything again.
    pending: bool = False


@dataclass
class PublishSummary:
    object_type: str
    created: int = 0
    updated: int = 0
    adopted: int = 0
    skipped: int = 0
    # Of the created, those made many to a call (qTest's bulk auto-test-logs queue).
    created_in_batches: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    # Objects deliberately not sent (an attachment over qTest's size cap), with the reason.
    not_uploaded: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def absorb(self, other: PublishSummary) -> PublishSummary:
        """This summary with `other`'s counts, failures and unsent objects added (kinds of one stage)."""
        self.created += other.created
        self.updated += other.updated
        self.adopted += other.adopted
        self.skipped += other.skipped
        self.created_in_batches += other.created_in_batches
        self.failures.extend(other.failures)
        self.seconds += other.seconds
        self.not_uploaded.extend(other.not_uploaded)
        return self

    @property
    def pending(self) -> list[Failure]:
        return [failure for failure in self.failures if failure.pending]

    def failure_text(self, what: str) -> str:
        """What was not published, for the stage's failure: those refused (a re-run sends them again) apart
        from those qTest may hold (a re-run looks for them first), each reason once with its objects."""
        refused = [failure for failure in self.failures if not failure.pending]
        parts: list[str] = []
        if refused:
            parts.append(f"{len(refused)} failed (a re-run sends them again): {_by_reason(refused)}")
        if pending := self.pending:
            parts.append(
                f"{len(pending)} pending, which qTest may have made though its answer never came (a re-run "
                "looks for them in qTest first and sends again only what is not there, so nothing is made "
                f"twice): {_by_reason(pending)}"
            )
        return f"{self.failed} {what} were not published: " + "; ".join(parts)

    def as_metadata(self) -> dict[str, int | float]:
        return {
            "created": self.created,
            "updated": self.updated,
            "adopted": self.adopted,
            "skipped": self.skipped,
            "created_in_batches": self.created_in_batches,
            "failed": self.failed,
            "pending": len(self.pending),
            "not_sent": len(self.not_uploaded),
            "seconds": round(self.seconds, 3),
        }


def _by_reason(failures: Sequence[Failure]) -> str:
    """Failures grouped by reason, the most frequent first: "reason (n: key, key, ...)"."""
    keys: dict[str, list[str]] = defaultdict(list)
    for failure in failures:
        keys[failure.reason].append(failure.source_key)
    ranked = sorted(keys.items(), key=lambda item: -len(item[1]))
    lines = [
        f"{reason[:400]} ({len(names)}: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
        for reason, names in ranked[:REASONS_SHOWN]
    ]
    if len(ranked) > REASONS_SHOWN:
        lines.append(f"{len(ranked) - REASONS_SHOWN} other reasons in migration.id_map")
    return "; ".join(lines)


@dataclass(frozen=True)
class ObjectKind(Generic[Item]):
    """How one kind of object is published: its key, hash and level, and the three calls."""

    object_type: str
    source_key: Callable[[Item], str]
    payload_hash: Callable[[Item], str]
    level: Callable[[Item], int]
    create: Callable[[Item], Awaitable[Created]]
    update: Callable[[Item, Entry], Awaitable[Created]]
    # Finds the object a lost create made (by its stored Zephyr key, or name and parent); None if absent.
    lookup: Callable[[Item], Awaitable[Created | None]]
    # Which items are created many to a call, and that call: one result per item, in order, either what
    # was created or why not (an ApiError leaves the item pending when the outcome is unknown).
    batched: Callable[[Item], bool] | None = None
    create_many: Callable[[Sequence[Item]], Awaitable[list[Created | Exception]]] | None = None
    # Which items are sent one after the other: (group, rank), or None for an item that may go at any time.
    # The items of one group go in rank order, each call after the previous one's answer; the groups, and
    # the other items, still go side by side. (Siblings whose display order qTest numbers by creation.)
    sequence: Callable[[Item], tuple[str, tuple[Any, ...]] | None] | None = None


async def publish(
    kind: ObjectKind[Item], items: Sequence[Item], id_map: IdMap, *, concurrency: int = 8
) -> PublishSummary:
    """Publish `items` exactly once; returns what was created, updated, adopted, skipped and failed."""
    started = time.monotonic()
    summary = PublishSummary(kind.object_type)
    progress.expect(len(items), _unit(kind))
    known = await id_map.load(kind.object_type)
    levels: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        levels[kind.level(item)].append(item)
    semaphore = asyncio.Semaphore(concurrency)

    async def failed(item: Item, exc: Exception) -> None:
        key = kind.source_key(item)
        pending = isinstance(exc, AmbiguousWriteError)
        if isinstance(exc, ApiError):
            reason = str(exc)
            if not pending:
                await id_map.failed(kind.object_type, key, kind.payload_hash(item), reason)
        elif isinstance(exc, KeyError | ValueError):  # an object the mapping could not complete
            reason = f"{type(exc).__name__}: {exc}"
            await id_map.failed(kind.object_type, key, kind.payload_hash(item), reason)
        else:
            raise exc
        summary.failures.append(Failure(key, reason, pending))
        log.warning(
            "%s %s not published%s: %s", kind.object_type, key, " (pending)" if pending else "", reason
        )

    async def one(item: Item, batch: list[Item]) -> None:
        async with semaphore:
            try:
                await _publish_one(kind, item, known.get(kind.source_key(item)), id_map, summary, batch)
            except (ApiError, KeyError, ValueError) as exc:
                await failed(item, exc)
        progress.advance(1, _unit(kind))

    async def in_turn(items: list[Item], batch: list[Item]) -> None:
        for item in items:
            await one(item, batch)

    def new_batched(item: Item) -> bool:
        entry = known.get(kind.source_key(item))
        return kind.batched is not None and kind.batched(item) and (entry is None or entry.state == "failed")

    for level in sorted(levels):
        # New batched items go at once, beside the level's single calls (a queued batch takes seconds).
        direct: list[Item] = []
        single: list[Item] = []
        for item in levels[level]:
            (direct if new_batched(item) else single).append(item)
        batch: list[Item] = []  # batched items that were pending and are not in qTest after all
        free, sequences = _sequences(kind, single)
        await asyncio.gather(
            *(one(item, batch) for item in free),
            *(in_turn(items, batch) for items in sequences),
            *([_create_batch(kind, direct, id_map, summary, failed, counted=True)] if direct else []),
        )
        if batch:
            await _create_batch(kind, batch, id_map, summary, failed)
    summary.seconds = time.monotonic() - started
    return summary


def _sequences(kind: ObjectKind[Item], items: list[Item]) -> tuple[list[Item], list[list[Item]]]:
    """`items` split into those that may go at any time and the groups of ``kind.sequence``, each in
    rank order."""
    if kind.sequence is None:
        return items, []
    free: list[Item] = []
    groups: dict[str, list[tuple[tuple[Any, ...], Item]]] = defaultdict(list)
    for item in items:
        place = kind.sequence(item)
        if place is None:
            free.append(item)
        else:
            groups[place[0]].append((place[1], item))
    return free, [
        [item for _, item in sorted(group, key=lambda ranked: ranked[0])] for group in groups.values()
    ]


async def _create_batch(
    kind: ObjectKind[Item],
    items: list[Item],
    id_map: IdMap,
    summary: PublishSummary,
    failed: Callable[[Item, Exception], Awaitable[None]],
    *,
    counted: bool = False,
) -> None:
    """`items` created many to a call; `counted`: they are done as far as the stage's progress goes (the
    others were counted when they were found not to be in qTest)."""
    assert kind.create_many is not None
    await id_map.pending_many(
        kind.object_type, [(kind.source_key(item), kind.payload_hash(item)) for item in items]
    )
    results = await kind.create_many(items)
    for item, result in zip(items, results, strict=True):
        if isinstance(result, Created):
            await _record(kind, id_map, kind.source_key(item), kind.payload_hash(item), result)
            summary.created += 1
            summary.created_in_batches += 1
        else:
            await failed(item, result)
    if counted:
        progress.advance(len(items), _unit(kind))


async def _publish_one(
    kind: ObjectKind[Item],
    item: Item,
    entry: Entry | None,
    id_map: IdMap,
    summary: PublishSummary,
    batch: list[Item],
) -> None:
    key, payload_hash = kind.source_key(item), kind.payload_hash(item)
    if entry is not None and entry.state == "done" and entry.qtest_id is not None:
        if entry.payload_hash == payload_hash:
            summary.skipped += 1
            return
        result = await kind.update(item, entry)
        await _record(kind, id_map, key, payload_hash, result)
        summary.updated += 1
        return
    if entry is not None and entry.state == "pending":
        found = await _look_up(kind, item)
        if found is not None:
            await _adopt(kind, item, entry, found, id_map, summary)
            return
    if kind.batched is not None and kind.batched(item):
        batch.append(item)  # created with the rest of its level, in one call
        return
    await id_map.pending(kind.object_type, key, payload_hash)
    try:
        result = await kind.create(item)
    except AmbiguousWriteError:
        # The answer was lost, not necessarily the object: look before creating again. A single create is
        # synchronous (qTest answers after it committed), so a lookup that completes sees the object if it
        # exists: lookups list the parent's children (modules, cycles, runs, logs) or search by the Zephyr
        # key (test cases; a search index lagging behind its write would be missed: unverified on a real
        # site, no source says it lags). A lookup that fails leaves the object pending (`_look_up`).
        found = await _look_up(kind, item)
        if found is not None:
            await _record(kind, id_map, key, payload_hash, found)
            summary.adopted += 1
            return
        result = await kind.create(item)
    await _record(kind, id_map, key, payload_hash, result)
    summary.created += 1


def _unit(kind: ObjectKind[Any]) -> str:
    """What the terminal calls objects of `kind` (``test_case`` -> ``test cases``)."""
    return f"{kind.object_type.replace('_', ' ')}s"


async def _look_up(kind: ObjectKind[Item], item: Item) -> Created | None:
    """`kind.lookup`, but a lookup that fails is not "absent": the object stays pending (an
    `AmbiguousWriteError`, which `publish` never marks failed), so no run creates it on a guess."""
    try:
        return await kind.lookup(item)
    except AmbiguousWriteError:
        raise
    except ApiError as exc:
        raise AmbiguousWriteError(
            exc.method,
            exc.url,
            exc.status,
            f"it may be in qTest, but looking for it failed ({exc.message}): left pending, to be looked "
            "for again before anything is sent",
        ) from exc


async def _adopt(
    kind: ObjectKind[Item], item: Item, entry: Entry, found: Created, id_map: IdMap, summary: PublishSummary
) -> None:
    key, payload_hash = kind.source_key(item), kind.payload_hash(item)
    if entry.payload_hash != payload_hash:
        # Created from an older payload: bring it up to date.
        found = await kind.update(item, Entry(found.qtest_id, entry.payload_hash, "done", found.detail))
    await _record(kind, id_map, key, payload_hash, found)
    summary.adopted += 1


async def _record(kind: ObjectKind[Any], id_map: IdMap, key: str, payload_hash: str, result: Created) -> None:
    children: dict[str, list[tuple[str, int, str | None]]] = defaultdict(list)
    for object_type, child_key, child_id, child_hash in result.children:
        children[object_type].append((child_key, child_id, child_hash))
    for object_type, rows in children.items():
        await id_map.done_many(object_type, rows)
    await id_map.done(kind.object_type, key, result.qtest_id, payload_hash, result.detail)
