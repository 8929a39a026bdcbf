"""A folder's position among its siblings, carried as a relative order: its rank among its Zephyr siblings
(by index, then id) against its rank among the same siblings in qTest (by order, then id)."""

from __future__ import annotations

from tests.unit.test_proof_compare import prove_offline, raw
from zephyr_qtest.lib.proof.ledger import Reason
from zephyr_qtest.lib.proof.order import OutOfPlace, Sibling, out_of_place
from zephyr_qtest.lib.qtest.kinds.base import sibling_order


def test_the_same_ranks_on_both_sides_are_in_place_whatever_the_numbers() -> None:
    # qTest's orders count creations (13, 40, 41), Zephyr's indexes are positions (0, 1, 2).
    siblings = [
        Sibling("a", (0, 5), (13, 900)),
        Sibling("b", (1, 3), (40, 901)),
        Sibling("c", (2, 4), (41, 902)),
    ]
    assert out_of_place(siblings) == []


def test_ties_go_by_id_on_both_sides() -> None:
    siblings = [Sibling("a", (1, 5), (7, 902)), Sibling("b", (1, 3), (7, 901))]
    assert out_of_place(siblings) == []
    assert out_of_place([Sibling("a", (1, 5), (7, 901)), Sibling("b", (1, 3), (7, 902))]) == [
        OutOfPlace("b", 1, 2, 2),
        OutOfPlace("a", 2, 1, 2),
    ]


def test_a_folder_added_between_two_others_is_out_of_place_and_so_is_the_one_it_pushed() -> None:
    # Zephyr: a, new, b. qTest made "new" last (a later run).
    siblings = [
        Sibling("a", (0, 1), (1, 900)),
        Sibling("new", (1, 9), (3, 950)),
        Sibling("b", (2, 2), (2, 901)),
    ]
    assert out_of_place(siblings) == [OutOfPlace("new", 2, 3, 3), OutOfPlace("b", 3, 2, 3)]


def test_an_order_qtest_does_not_give_ranks_last() -> None:
    siblings = [Sibling("a", (0, 1), (None, 900)), Sibling("b", (1, 2), (5, 901))]
    assert out_of_place(siblings) == [OutOfPlace("a", 1, 2, 2), OutOfPlace("b", 2, 1, 2)]


def folder(id_: int, index: int | None, parent: int | None = None, kind: str = "TEST_CASE") -> object:
    payload = {"id": id_, "name": f"F{id_}", "folderType": kind, "parentId": parent, "index": index}
    return raw(None, payload, id_=id_)


def module(id_: int, name: str, order: int, children: list[dict] | None = None) -> dict:
    return {"id": id_, "name": name, "order": order, "children": children or []}


def test_the_proof_compares_ranks_among_the_siblings_in_qtest_only() -> None:
    """Root folders 1, 2, 3 (indexes 0, 1, 2) and 4 (index 3, refused by qTest); children 5, 6 of folder 1.
    qTest holds the roots in order and the children swapped: two lines, on the children, with the remedy
    that says how to move them. The refused folder moves nobody's rank."""
    folders = [folder(1, 0), folder(2, 1), folder(3, 2), folder(4, 3), folder(5, 0, 1), folder(6, 1, 1)]
    children = [module(805, "F5", 2), module(806, "F6", 1)]
    modules = {
        801: module(801, "F1", 1, children),
        802: module(802, "F2", 2),
        803: module(803, "F3", 3),
        805: children[0],
        806: children[1],
    }
    ids = {"module": {"folder:1": 801, "folder:2": 802, "folder:3": 803, "folder:5": 805, "folder:6": 806}}
    ledger = prove_offline({"folders": folders}, {"module": modules}, ids)
    index_lines = [line for line in ledger.lines if line.field == "index"]
    assert [(line.object_key, line.value, line.reason) for line in index_lines] == [
        ("folder:5", "0", Reason.DIFFERS),
        ("folder:6", "1", Reason.DIFFERS),
    ]
    assert index_lines[0].detail == "of its 2 sibling folders that qTest holds, Zephyr puts it 1 and qTest 2"
    assert "drag the folder" in index_lines[0].remedy and "API cannot set a position" in index_lines[0].remedy
    # The refused folder is a line of its own; the others are in place.
    assert [line.object_key for line in ledger.lines if line.field != "index"] == ["folder:4"]


def test_cycle_folders_are_ranked_among_cycle_folders_and_plan_folders_not_at_all() -> None:
    folders = [
        folder(1, 0, kind="TEST_CYCLE"),
        folder(2, 1, kind="TEST_CYCLE"),
        folder(3, 1, kind="TEST_PLAN"),
        folder(4, 0, kind="TEST_PLAN"),
    ]
    cycles = {
        804: {"id": 804, "name": "F1", "order": 1, "test-cycles": []},
        # A cycle of Zephyr's (no folder) between them in qTest moves no folder's rank.
        805: {"id": 805, "name": "Sprint", "order": 2, "test-cycles": []},
        806: {"id": 806, "name": "F2", "order": 3, "test-cycles": []},
    }
    ids = {"test_cycle": {"folder:1": 804, "folder:2": 806}}
    ledger = prove_offline({"folders": folders}, {"test_cycle": cycles}, ids)
    # Folders of plans have no qTest object (their folders are named in their plans' details): no index
    # line either, only the line of each folder that holds no plan.
    assert [(line.object_key, line.field) for line in ledger.lines] == [
        ("folder:3", "(object)"),
        ("folder:4", "(object)"),
    ]
    assert ledger.values_compared >= 2

    cycles[804]["order"] = 4  # moved after F2 in qTest
    ledger = prove_offline({"folders": folders}, {"test_cycle": cycles}, ids)
    assert [(line.object_key, line.field) for line in ledger.lines if line.field == "index"] == [
        ("folder:1", "index"),
        ("folder:2", "index"),
    ]


def test_a_folder_row_is_sent_after_its_earlier_siblings() -> None:
    """The publishing side: a module or cycle-folder row goes in its parent's sequence, by Zephyr's index
    and then the folder's id; a row without an index (the automation module, a cycle) goes at any time."""
    row = {"parent_source_key": "folder:1", "module_order": 2, "folder_id": 7}
    assert sibling_order(row, "module_order", "folder_id") == ("folder:1", (2, 7))
    root = {"parent_source_key": None, "cycle_order": 0, "zephyr_id": 3}
    assert sibling_order(root, "cycle_order", "zephyr_id") == ("", (0, 3))
    assert (
        sibling_order({"parent_source_key": "folder:1", "cycle_order": None}, "cycle_order", "zephyr_id")
        is None
    )
