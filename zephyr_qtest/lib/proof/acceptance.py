"""The acceptance file and the verdict it gives.

A project is *complete* only when its ledger is empty, or when every ledger line is covered by a rule of
the acceptance file the user reviewed and checked into their configuration (``ZEPHYR_QTEST_ACCEPTANCE``).
A rule names a field (exactly, or as a glob: ``customFields.*``), a reason (the reason's text as the
ledger shows it, or ``*``), optionally an object type, and always a note saying what the user decided::

    [[accept]]
    field = "links.webLinks"
    reason = "not carried by design"
    note = "web links: accepted, kept in the description"

A file that is not TOML, a rule with an unknown key or reason, or a rule without a note is refused with an
error naming the file, the rule and the setting: a verdict must never rest on a rule nobody can read.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason

SETTING = "ZEPHYR_QTEST_ACCEPTANCE"
ANY_REASON = "*"
RULE_KEYS = frozenset({"field", "reason", "object_type", "note"})

# The ledger lines that account for an object missing in qTest (rather than for one of its values).
OBJECT_FIELD = "(object)"
OBJECT_REASONS = frozenset({Reason.OBJECT_MISSING, Reason.REFUSED})


class AcceptanceError(ValueError):
    """The acceptance file cannot be used as it is: a configuration error, not a per-object failure."""


@dataclass(frozen=True)
class AcceptanceRule:
    """One ``[[accept]]`` table: the ledger lines it covers and what the user decided about them."""

    # 1-based position in the file, as the user counts the tables.
    number: int
    field: str
    # None: any reason ("*").
    reason: Reason | None
    note: str
    # None: any object type.
    object_type: str | None = None

    def covers(self, line: LedgerLine) -> bool:
        if self.reason is not None and line.reason != self.reason:
            return False
        if self.object_type is not None and not fnmatchcase(
            type_key(line.object_type), type_key(self.object_type)
        ):
            return False
        return fnmatchcase(line.field, self.field)

    def describe(self) -> str:
        """The rule in one line: what it covers."""
        what = f"field {self.field!r}, reason {self.reason.value if self.reason else ANY_REASON!r}"
        if self.object_type is not None:
            what += f", object type {self.object_type!r}"
        return f"rule {self.number} ({what})"


@dataclass(frozen=True)
class Acceptance:
    """The reviewed acceptance file: where it is, and its rules in order (the first that covers a line
    accepts it)."""

    path: Path
    rules: tuple[AcceptanceRule, ...]

    def rule_for(self, line: LedgerLine) -> AcceptanceRule | None:
        return next((rule for rule in self.rules if rule.covers(line)), None)

    def cite(self, rule: AcceptanceRule) -> str:
        """How a line accepted by `rule` names it (the report's and the CSV's ``accepted_by``)."""
        return f"{self.path} rule {rule.number}: {rule.note}"


def type_key(object_type: str) -> str:
    # "test_case" and "test case" name the same type (the id map's names and the ledger's words).
    return " ".join(object_type.replace("_", " ").split()).lower()


def _error(path: Path, message: str, number: int | None = None) -> AcceptanceError:
    where = f"{path}" if number is None else f"{path}, rule {number} (the {_ordinal(number)} [[accept]])"
    return AcceptanceError(f"acceptance file {where}: {message} (the file named by {SETTING})")


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _rule(path: Path, number: int, table: object) -> AcceptanceRule:
    if not isinstance(table, dict):
        raise _error(path, "is not a table of field, reason, object_type and note", number)
    unknown = sorted(set(table) - RULE_KEYS)
    if unknown:
        raise _error(
            path, f"unknown key {', '.join(map(repr, unknown))}; a rule has {sorted(RULE_KEYS)}", number
        )
    for key in RULE_KEYS:
        if key in table and not isinstance(table[key], str):
            raise _error(path, f"{key} must be a string", number)
    note = str(table.get("note", "")).strip()
    if not note:
        raise _error(
            path, "has no note: say what was decided (e.g. 'accepted, kept in the description')", number
        )
    field_pattern = str(table.get("field", "")).strip()
    if not field_pattern:
        raise _error(path, "has no field (a field name, or a glob like 'customFields.*')", number)
    reason_text = str(table.get("reason", "")).strip()
    if reason_text == ANY_REASON:
        reason = None
    else:
        try:
            reason = Reason(reason_text)
        except ValueError:
            allowed = ", ".join(repr(r.value) for r in Reason)
            raise _error(path, f"unknown reason {reason_text!r}; one of {allowed} or '*'", number) from None
    object_type = str(table["object_type"]).strip() if "object_type" in table else None
    return AcceptanceRule(number, field_pattern, reason, note, object_type or None)


def parse_acceptance(text: str, path: Path) -> Acceptance:
    """The rules of an acceptance file's `text` (read from `path`, which every error names)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _error(path, f"is not valid TOML: {error}") from None
    unknown = sorted(set(document) - {"accept"})
    if unknown:
        raise _error(
            path, f"unknown top-level key {', '.join(map(repr, unknown))}; rules are [[accept]] tables"
        )
    tables = document.get("accept", [])
    if not isinstance(tables, list):
        raise _error(path, "'accept' must be an array of tables: write each rule as [[accept]]")
    return Acceptance(path, tuple(_rule(path, number, table) for number, table in enumerate(tables, 1)))


def load_acceptance(path: Path | None) -> Acceptance | None:
    """The acceptance file at `path` (None: no file, nothing accepted). A named file that cannot be read
    is an error too: a verdict must not silently lose the user's decisions."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _error(path, f"cannot be read: {error}") from None
    return parse_acceptance(text, path)


@dataclass(frozen=True)
class AcceptedLine:
    line: LedgerLine
    rule: AcceptanceRule


@dataclass
class Verdict:
    """A project's verdict: complete or not, why, and which lines the acceptance file covered."""

    complete: bool
    text: str
    open: list[LedgerLine] = field(default_factory=list)
    accepted: list[AcceptedLine] = field(default_factory=list)
    # Rules of the acceptance file that covered no line of this ledger (stale, or mistyped).
    unused_rules: list[AcceptanceRule] = field(default_factory=list)
    # Object types with fewer objects in qTest than in Zephyr that no ledger line accounts for.
    unexplained: dict[str, int] = field(default_factory=dict)
    acceptance: Acceptance | None = None
    # Every ledger line in the ledger's order, with the rule that accepted it, cited ("" when open): the
    # CSV's and the saved ledger's ``accepted_by``.
    lines: list[tuple[LedgerLine, str]] = field(default_factory=list)

    def open_fields(self) -> int:
        return len({(line.object_type, line.field) for line in self.open})


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def unexplained_shortfall(ledger: Ledger) -> dict[str, int]:
    """Object type -> how many of its Zephyr objects are not in qTest beyond those that ledger lines
    account for (a line for the object itself, or one saying it is missing or refused). Defensive: counts
    alone never make a project complete, and a short count no line explains makes it incomplete."""
    explained: dict[str, set[str]] = {}
    for line in ledger.lines:
        if line.field == OBJECT_FIELD or line.reason in OBJECT_REASONS:
            explained.setdefault(type_key(line.object_type), set()).add(line.object_key)
    short: dict[str, int] = {}
    for object_type, count in ledger.counts.items():
        # `accounted`: objects missing with a parent that has its line (steps, step results), or whose line
        # is on a field (an execution in a status qTest does not know): the comparison counts them.
        shortfall = (
            count.in_zephyr - count.in_qtest - count.accounted - len(explained.get(type_key(object_type), ()))
        )
        if shortfall > 0:
            short[object_type] = shortfall
    return short


def verdict(ledger: Ledger, acceptance: Acceptance | None = None) -> Verdict:
    """The ledger judged against the acceptance file: complete when every line is accepted (or there are
    none) and every object type's shortfall in qTest is accounted for by a line."""
    result = Verdict(complete=False, text="", acceptance=acceptance)
    used: set[int] = set()
    for line in ledger.lines:
        rule = acceptance.rule_for(line) if acceptance else None
        if rule is None or acceptance is None:
            result.open.append(line)
            result.lines.append((line, ""))
        else:
            result.accepted.append(AcceptedLine(line, rule))
            result.lines.append((line, acceptance.cite(rule)))
            used.add(rule.number)
    if acceptance is not None:
        result.unused_rules = [rule for rule in acceptance.rules if rule.number not in used]
    result.unexplained = unexplained_shortfall(ledger)
    if result.open:
        fields = result.open_fields()
        result.text = (
            f"incomplete: {plural(len(result.open), 'value')} in {plural(fields, 'field')} did not arrive"
        )
    elif result.unexplained:
        missing = ", ".join(f"{type_key(t)}: {count}" for t, count in sorted(result.unexplained.items()))
        result.text = f"incomplete: objects missing in qTest that the ledger does not explain ({missing})"
    elif result.accepted and acceptance is not None:
        result.text = f"complete: {plural(len(result.accepted), 'value')} accepted by {acceptance.path}"
        result.complete = True
    else:
        result.text = "complete"
        result.complete = True
    return result
