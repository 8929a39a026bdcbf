"""The ledger of what did not arrive: every Zephyr value that qTest does not hold, with its reason and
its remedy, found by comparing the raw payloads with qTest read back (never with the marts the loader
used)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

# A value is shown shortened to this many characters (the CSV keeps the same form).
VALUE_SHOWN = 200


class Reason(StrEnum):
    """Why a value is not in qTest. Each has a remedy of its own on every line."""

    # The field has no place in qTest in this version of the tool (its fate says so).
    NOT_CARRIED = "not carried by design"
    # A value no seed of the mapping covers (a priority, a status, a user).
    NO_MAPPING = "no mapping"
    # The qTest project has no field with the label the mapping names.
    FIELD_MISSING = "field missing in qTest"
    # The qTest field does not allow the value (a list field without it).
    VALUE_NOT_ALLOWED = "value not allowed"
    # qTest answered the object's call with an error (the id map holds it as failed).
    REFUSED = "refused by qTest"
    # The object is not in qTest: never sent (skipped by the mapping, or still pending).
    OBJECT_MISSING = "object not in qTest"
    # qTest holds another value than the one carried.
    DIFFERS = "differs in qTest"
    # Characters PostgreSQL or qTest cannot hold (NUL, lone surrogates) were replaced by U+FFFD.
    REPLACED = "characters replaced"
    # The payload has a shape the comparison does not know: the object could not be compared.
    UNREADABLE = "could not be compared"


@dataclass(frozen=True)
class LedgerLine:
    """One Zephyr value that is not in qTest as it was in Zephyr."""

    # The Zephyr object type in words: "test case", "test step", "test cycle", "test plan",
    # "test execution", "execution step", "folder", "attachment".
    object_type: str
    # The Zephyr key (PAY-T1, PAY-E7, PAY-T1#2 for a step, folder:20032, the attachment's path).
    object_key: str
    # The Zephyr payload field, as the fates name it: "labels", "customFields.Risk Score", "links.webLinks".
    field: str
    # The Zephyr value, shortened to VALUE_SHOWN characters.
    value: str
    reason: Reason
    # What to change: the seed to edit, the setting, the qTest field to create, or that it must be accepted.
    remedy: str
    # What qTest holds instead, or what it answered (may be empty).
    detail: str = ""


def shorten(value: object, limit: int = VALUE_SHOWN) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class TypeCount:
    """Zephyr objects of one type against the qTest objects they became (paired through the id map)."""

    object_type: str
    in_zephyr: int = 0
    in_qtest: int = 0
    # Of those not in qTest, how many a line accounts for without a line of their own: the children of an
    # object missing with its one line (the steps of a case, the results of an execution), and an
    # execution whose line is on its status (qTest knows no such status, so no log was made).
    accounted: int = 0


@dataclass
class Ledger:
    """One project's proof: what was compared, and every value that did not arrive."""

    project_key: str
    # The target in words (site and qTest project) and the site as the id map names it.
    target: str
    target_site: str
    counts: dict[str, TypeCount] = field(default_factory=dict)
    lines: list[LedgerLine] = field(default_factory=list)
    # How many Zephyr values were compared with qTest (arrived or not).
    values_compared: int = 0

    def count(self, object_type: str) -> TypeCount:
        return self.counts.setdefault(object_type, TypeCount(object_type))

    def add(self, line: LedgerLine) -> None:
        self.lines.append(line)

    def by_field_and_reason(self) -> Counter[tuple[str, str, Reason]]:
        """(object type, field, reason) -> lines."""
        return Counter((line.object_type, line.field, line.reason) for line in self.lines)
