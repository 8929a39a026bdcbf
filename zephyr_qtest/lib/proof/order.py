"""A folder's position among its siblings, Zephyr against qTest: carried as a relative order.

Zephyr numbers a folder's place among its siblings (``index``, 0-based); qTest gives a module or test cycle
a display order (``order``) that counts creations, not positions (``kinds/base.sibling_order``). The two
numbers never match, but the ranks do: a folder is where Zephyr put it when its rank among its Zephyr
siblings (by index, then id) is its rank among the same siblings in qTest (by order, then id). Only
siblings that are in qTest on both sides are ranked: a folder qTest does not hold has its own line and
moves nobody else's rank.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# What the user does about a folder out of place: qTest's API has no documented call that sets a module's or
# cycle's position (``kinds/base.sibling_order``), and a re-run does not move what exists.
REORDER = (
    "drag the folder to its Zephyr position in qTest (Test Design for a module, Test Execution for a test "
    "cycle); qTest's API cannot set a position and a re-run does not move it, or accept it in the "
    "acceptance file (ZEPHYR_QTEST_ACCEPTANCE)"
)


@dataclass(frozen=True)
class Sibling:
    """One folder of a group of siblings, as both sides hold it."""

    key: str
    # Zephyr's index and the folder's id
    zephyr: tuple[int, int]
    # qTest's order (None when qTest gives none: ranked after the others) and the object's id
    qtest: tuple[int | None, int]


@dataclass(frozen=True)
class OutOfPlace:
    """A folder whose rank in qTest is not its rank in Zephyr (ranks are 1-based, among `of` siblings)."""

    key: str
    zephyr_rank: int
    qtest_rank: int
    of: int


def _qtest_rank(sibling: Sibling) -> tuple[bool, int, int]:
    order, qtest_id = sibling.qtest
    return order is None, order or 0, qtest_id


def out_of_place(siblings: Iterable[Sibling]) -> list[OutOfPlace]:
    """The siblings whose rank in Zephyr (by index, then id) differs from their rank in qTest (by order,
    then id), in Zephyr's order."""
    group = list(siblings)
    in_qtest = {sibling.key: rank for rank, sibling in enumerate(sorted(group, key=_qtest_rank), start=1)}
    return [
        OutOfPlace(sibling.key, rank, in_qtest[sibling.key], len(group))
        for rank, sibling in enumerate(sorted(group, key=lambda sibling: sibling.zephyr), start=1)
        if in_qtest[sibling.key] != rank
    ]
