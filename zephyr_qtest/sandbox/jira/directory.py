"""The sandbox company's people: who each Atlassian account id of a Zephyr tenant is.

Zephyr Scale knows people only by Atlassian account id (``owner.accountId``, ``executedById``,
``assignedToId``, user custom fields); Jira knows their names and, where their profile lets it, their
e-mail addresses; qTest knows its own users by user name and e-mail. The generated tenant draws random
account ids, so the directory gives the accounts of a document, in sorted order, the people of
``PEOPLE`` in turn: the same tenant always gets the same people.

Most people are qTest users too (the qTest sandbox's template takes ``qtest_people()``), and match by
e-mail. Some do not, as on a real site, each for a reason a migration has to report:

- ``in_qtest=False``: nobody created them a qTest user (they left, or never tested in qTest);
- ``email_visible=False``: their Atlassian profile hides the e-mail address, so Jira leaves
  ``emailAddress`` out of its answer (the user privacy changes of 2019: Atlassian's deprecation notice
  and migration guide for the user privacy API; seen by clients as a user object without
  ``emailAddress``: pycontribs/jira issue #827, solidify/jira-azuredevops-migrator issues #220 and #274,
  apache/devlake issue #2270).

One person's e-mail is written in another case in Jira than in qTest: e-mail addresses match
case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DOMAIN = "acme.example"

# Atlassian account ids: 24 lower-case hex/alphanumerics (older accounts), or <digits>:<uuid>.
ACCOUNT_ID = re.compile(
    r"^(?:[0-9a-z]{24}|[0-9]+:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
# The payload keys that hold an account id in Zephyr Scale's v2 API.
_ACCOUNT_KEYS = frozenset({"accountId", "executedById", "assignedToId"})


@dataclass(frozen=True, slots=True)
class Person:
    display_name: str
    email: str
    in_qtest: bool = True
    email_visible: bool = True
    active: bool = True
    # How Jira writes the e-mail, where it differs from qTest's (case only).
    jira_email: str | None = None

    @property
    def first_name(self) -> str:
        return self.display_name.split(" ", 1)[0]

    @property
    def last_name(self) -> str:
        return self.display_name.split(" ", 1)[-1]


def _person(name: str, **flags: Any) -> Person:
    local = ".".join(part.lower() for part in re.sub(r"[^A-Za-z ]", "", name).split())
    return Person(name, f"{local}@{DOMAIN}", **flags)


PEOPLE: tuple[Person, ...] = (
    _person("Jane Doe"),
    _person("Ravi Kumar"),
    _person("Mei Lin"),
    _person("Tomasz Nowak"),
    _person("Grace Hopper", in_qtest=False),
    _person("Oluwaseun Adeyemi"),
    _person("Sofia Rossi", email_visible=False),
    _person("Lars Eriksen"),
    _person("Priya Raman", jira_email=f"Priya.Raman@{DOMAIN.upper()}"),
    _person("Diego Fernandez", in_qtest=False),
    _person("Hana Sato"),
    _person("Noah Schmidt"),
    _person("Amara Okafor", email_visible=False),
    _person("Elif Yilmaz"),
    _person("Jonas Berg"),
    _person("Chloe Martin"),
    _person("Mateo Silva"),
    _person("Aisha Rahman"),
    _person("Pavel Novak"),
    _person("Ingrid Holm"),
)


def person_for(index: int) -> Person:
    """The directory's person number ``index``; beyond the list, people who are not qTest users."""
    if index < len(PEOPLE):
        return PEOPLE[index]
    return Person(f"Person {index + 1}", f"person.{index + 1}@{DOMAIN}", in_qtest=False)


def qtest_people() -> tuple[Person, ...]:
    """The people who are qTest users (the qTest sandbox's template makes them site users)."""
    return tuple(person for person in PEOPLE if person.in_qtest)


def accounts_in(document: Mapping[str, Any]) -> list[str]:
    """Every Atlassian account id a Zephyr fixture document mentions, sorted: owners (``accountId``),
    executors, assignees, and custom-field values shaped like an account id."""
    found: set[str] = set()

    def walk(value: Any, key: str | None, custom: bool) -> None:
        if isinstance(value, dict):
            for child_key, child in value.items():
                walk(child, child_key, custom or child_key == "customFields")
        elif isinstance(value, list):
            for child in value:
                walk(child, key, custom)
        elif isinstance(value, str) and ACCOUNT_ID.match(value) and _is_account(key, value, custom):
            found.add(value)

    walk(document, None, False)
    return sorted(found)


def _is_account(key: str | None, value: str, custom: bool) -> bool:
    # A custom field's 24-letter text without a digit is a word, not an account (canonical's rule).
    return key in _ACCOUNT_KEYS or (custom and any(ch.isdigit() for ch in value))


def people_of(accounts: Iterable[str]) -> dict[str, Person]:
    """Account id -> person, the accounts in sorted order taking the directory's people in turn."""
    return {account: person_for(index) for index, account in enumerate(sorted(set(accounts)))}
