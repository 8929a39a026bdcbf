"""The acceptance file and the verdict: which rules cover which ledger lines, what the verdict says, and
that a file nobody can read is refused with an error naming the file, the rule and the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from zephyr_qtest.lib.proof.acceptance import (
    SETTING,
    AcceptanceError,
    load_acceptance,
    parse_acceptance,
    verdict,
)
from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason

FILE = Path("/config/acceptance.toml")


def ledger(*lines: LedgerLine, counts: dict[str, tuple[int, int]] | None = None) -> Ledger:
    result = Ledger(
        "PAY", "qTest site https://acme.qtestnet.com, project 'PAY' (id 7)", "https://acme.qtestnet.com"
    )
    for object_type, (in_zephyr, in_qtest) in (counts or {}).items():
        count = result.count(object_type)
        count.in_zephyr, count.in_qtest = in_zephyr, in_qtest
    for line in lines:
        result.add(line)
    return result


def line(field: str, reason: Reason, key: str = "PAY-T1", object_type: str = "test case") -> LedgerLine:
    return LedgerLine(object_type, key, field, "some value", reason, "accept it, or create the field")


WEB_LINK = line("links.webLinks", Reason.NOT_CARRIED)
RISK = line("customFields.Risk Score", Reason.FIELD_MISSING)
OWNER = line("customFields.Owner", Reason.FIELD_MISSING, key="PAY-T2")
LABEL = line("labels", Reason.NO_MAPPING)
STEP = line("testScript.steps", Reason.DIFFERS, key="PAY-T1#2", object_type="test step")

RULES = """
[[accept]]
field = "links.webLinks"
reason = "not carried by design"
note = "web links: accepted, kept in the description"

[[accept]]
field = "customFields.*"
reason = "*"
object_type = "test case"
note = "custom fields: accepted, we drop them"

[[accept]]
field = "createdOn"
reason = "not carried by design"
note = "creation dates: accepted"
"""


def test_an_empty_ledger_is_complete() -> None:
    judged = verdict(ledger(counts={"test_case": (3, 3)}))
    assert judged.complete and judged.text == "complete"
    assert judged.open == [] and judged.accepted == []


def test_open_lines_make_it_incomplete_counting_values_and_distinct_fields() -> None:
    judged = verdict(ledger(RISK, OWNER, LABEL, line("labels", Reason.NO_MAPPING, key="PAY-T3"), STEP))
    assert not judged.complete
    # Five values in four fields: (test case, customFields.Risk Score), (.., Owner), (.., labels), (test step, ..).
    assert judged.text == "incomplete: 5 values in 4 fields did not arrive"
    assert verdict(ledger(LABEL)).text == "incomplete: 1 value in 1 field did not arrive"


def test_rules_accept_by_exact_field_glob_reason_and_object_type() -> None:
    acceptance = parse_acceptance(RULES, FILE)
    judged = verdict(ledger(WEB_LINK, RISK, OWNER, LABEL, STEP), acceptance)
    accepted = {(a.line.field, a.rule.number) for a in judged.accepted}
    assert accepted == {("links.webLinks", 1), ("customFields.Risk Score", 2), ("customFields.Owner", 2)}
    # labels: no rule; the test step: rule 2 is for test cases only.
    assert judged.open == [LABEL, STEP]
    assert [rule.number for rule in judged.unused_rules] == [3]
    # Every line keeps its place, cited by the rule that accepted it.
    assert [cited for _, cited in judged.lines] == [
        f"{FILE} rule 1: web links: accepted, kept in the description",
        f"{FILE} rule 2: custom fields: accepted, we drop them",
        f"{FILE} rule 2: custom fields: accepted, we drop them",
        "",
        "",
    ]
    assert judged.text == "incomplete: 2 values in 2 fields did not arrive"


def test_every_line_accepted_is_complete_naming_the_file() -> None:
    acceptance = parse_acceptance(RULES, FILE)
    judged = verdict(ledger(WEB_LINK, RISK, OWNER), acceptance)
    assert judged.complete and judged.text == f"complete: 3 values accepted by {FILE}"


def test_a_reason_must_match_unless_the_rule_says_any() -> None:
    acceptance = parse_acceptance(
        '[[accept]]\nfield = "links.webLinks"\nreason = "refused by qTest"\nnote = "only refusals"\n', FILE
    )
    assert verdict(ledger(WEB_LINK), acceptance).open == [WEB_LINK]


def test_an_object_type_rule_matches_the_words_and_the_id_map_names() -> None:
    acceptance = parse_acceptance(
        '[[accept]]\nfield = "*"\nreason = "*"\nobject_type = "test_step"\nnote = "steps: accepted"\n', FILE
    )
    assert verdict(ledger(STEP), acceptance).complete


def test_counts_alone_never_make_it_complete_a_shortfall_no_line_explains_is_incomplete() -> None:
    judged = verdict(ledger(counts={"test_case": (10, 8), "folder": (4, 4)}))
    assert not judged.complete and judged.unexplained == {"test_case": 2}
    assert (
        judged.text == "incomplete: objects missing in qTest that the ledger does not explain (test case: 2)"
    )
    # Lines for the missing objects explain the shortfall (accepted here, so complete).
    missing = [line("(object)", Reason.REFUSED, key=f"PAY-T{n}", object_type="test case") for n in (9, 10)]
    acceptance = parse_acceptance(
        '[[accept]]\nfield = "(object)"\nreason = "*"\nnote = "refused: ok"\n', FILE
    )
    judged = verdict(ledger(*missing, counts={"test_case": (10, 8)}), acceptance)
    assert judged.complete and judged.unexplained == {}
    # A value's line does not explain a missing object.
    assert not verdict(ledger(LABEL, counts={"test case": (2, 1)}), parse_acceptance(
        '[[accept]]\nfield = "*"\nreason = "*"\nnote = "everything"\n', FILE)).complete  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[accept]\nfield = 1", "is not valid TOML"),
        (
            '[[accept]]\nfield = "labels"\nreason = "lost somehow"\nnote = "x"\n',
            "unknown reason 'lost somehow'",
        ),
        ('[[accept]]\nfield = "labels"\nreason = "no mapping"\n', "rule 1 (the 1st [[accept]]): has no note"),
        (
            '[[accept]]\nfield = "labels"\nreason = "no mapping"\nnote = "  "\n',
            "rule 1 (the 1st [[accept]]): has no note",
        ),
        ('[[accept]]\nreason = "no mapping"\nnote = "x"\n', "has no field"),
        ('[[accept]]\nfield = "a"\nreason = "*"\nnote = "x"\nseverity = "low"\n', "unknown key 'severity'"),
        ('[[accept]]\nfield = ["a"]\nreason = "*"\nnote = "x"\n', "field must be a string"),
        ('accept = "everything"\n', "must be an array of tables"),
        ('[accepted]\nfield = "a"\n', "unknown top-level key 'accepted'"),
    ],
)
def test_a_bad_file_is_an_error_naming_the_file_and_the_setting(text: str, fragment: str) -> None:
    with pytest.raises(AcceptanceError) as raised:
        parse_acceptance(text, FILE)
    message = str(raised.value)
    assert fragment in message and str(FILE) in message and SETTING in message, message


def test_the_error_names_the_rule_by_its_number() -> None:
    text = RULES + '\n[[accept]]\nfield = "labels"\nreason = "no such reason"\nnote = "x"\n'
    with pytest.raises(AcceptanceError, match=r"rule 4 \(the 4th \[\[accept\]\]\): unknown reason"):
        parse_acceptance(text, FILE)


def test_no_file_accepts_nothing_and_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    assert load_acceptance(None) is None
    with pytest.raises(AcceptanceError, match="cannot be read") as raised:
        load_acceptance(tmp_path / "missing.toml")
    assert SETTING in str(raised.value)
    written = tmp_path / "acceptance.toml"
    written.write_text(RULES)
    acceptance = load_acceptance(written)
    assert acceptance is not None and acceptance.path == written and len(acceptance.rules) == 3
    assert acceptance.rules[1].object_type == "test case" and acceptance.rules[1].reason is None


def test_the_setting_points_at_the_file_and_the_default_is_acceptance_toml_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zephyr_qtest.settings import load_settings

    monkeypatch.delenv(SETTING, raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().paths.acceptance_file() is None
    (tmp_path / "acceptance.toml").write_text(RULES)
    assert load_settings().paths.acceptance_file() == (tmp_path / "acceptance.toml").resolve()
    monkeypatch.setenv(SETTING, str(tmp_path / "elsewhere.toml"))
    # Named but missing: the path is kept, and reading it fails loudly (never "nothing accepted").
    assert load_settings().paths.acceptance_file() == (tmp_path / "elsewhere.toml").resolve()


def test_each_object_type_check_answers_for_the_ledger_types_that_become_it() -> None:
    from zephyr_qtest.defs.publish.qtest import RECONCILED_TYPES, check_of, type_check
    from zephyr_qtest.lib.qtest.comparison import TypeResult

    assert {check_of(t) for t in ("folder", "test case", "test step", "test cycle", "test plan", "test execution",
                                  "execution step", "attachment")} <= set(RECONCILED_TYPES)  # fmt: skip
    execution = line("environment", Reason.NOT_CARRIED, key="PAY-E1", object_type="test execution")
    result = line("actualResult", Reason.NO_MAPPING, key="PAY-E1#1", object_type="execution step")
    acceptance = parse_acceptance(
        '[[accept]]\nfield = "environment"\nreason = "*"\nnote = "kept in a field"\n', FILE
    )
    judged = verdict(ledger(execution, result, LABEL), acceptance)
    loader = TypeResult("test_log", expected=2, found=2, matched=2)
    passed, description, metadata = type_check("test_log", judged, loader)
    assert not passed and metadata["open_lines"] == 1 and metadata["accepted_lines"] == 1
    assert description.startswith(
        "1 open ledger lines (no mapping 1); 1 accepted; loader check: 2 of 2 equal"
    )
    # Nothing open for the runs, and the loader's check equal: it passes; a loader difference fails it.
    assert type_check("test_run", judged, TypeResult("test_run", expected=1, found=1, matched=1))[0]
    assert not type_check(
        "test_run", judged, TypeResult("test_run", expected=1, found=1, matched=0, missing=["x"])
    )[0]
