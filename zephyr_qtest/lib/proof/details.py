"""What a Zephyr test cycle or test plan must show in the "Zephyr details" block of its qTest description,
from its raw payload: the values qTest has no field for (qTest test cycles take no properties; a release
has no status, owner, labels or folder of Zephyr's kind), each as the user reads it there.

The dbt mart ``qtest_test_cycles`` writes the block (macro ``details_block``); ``compare.py`` reads it back
from qTest (``lib/details_block.py``) and checks each value listed here. Labels are the block's; paths are
the payload's, as the ledger names a value that did not arrive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from zephyr_qtest.lib.proof.source import Payload, RawObject

PLANNED_START = "Planned start"
PLANNED_END = "Planned end"
STATUS = "Status"
OWNER = "Owner"
JIRA_VERSION = "Jira version"
FOLDER = "Folder"
LABEL = "Label"
ISSUE = "Jira issue"
WEB_LINK = "Web link"
ALSO_IN_PLANS = "Also in test plans"
CUSTOM_FIELD = "Custom field "

# The longest folder path followed (dbt var folder_depth_cap's default): a deeper one is cut, as the mart
# cuts it.
FOLDER_DEPTH_CAP = 50


@dataclass(frozen=True)
class Detail:
    """One value the block must hold: its payload path (the ledger's field), its label, the value as Zephyr
    gave it, and whether it is an instant (compared as one)."""

    path: str
    label: str
    value: Any
    instant: bool = False


def folder_chains(folders: Iterable[RawObject]) -> dict[int, list[int]]:
    """Zephyr folder id -> the ids from it up to its root, walked until the parent is not a folder of the
    project or the chain comes back to a folder already seen (a loop)."""
    by_id = {int(folder.id): folder.payload for folder in folders if folder.id is not None}
    chains: dict[int, list[int]] = {}
    for folder_id in by_id:
        chain: list[int] = []
        current: int | None = folder_id
        while current is not None and current in by_id and current not in chain:
            if len(chain) >= FOLDER_DEPTH_CAP:
                break
            chain.append(current)
            parent = by_id[current].get("parentId")
            current = int(parent) if parent is not None else None
        chains[folder_id] = chain
    return chains


def folder_paths(folders: Iterable[RawObject]) -> dict[int, str]:
    """Zephyr folder id -> its path from its root ("Parent / Child"), as the mart writes it."""
    folders = list(folders)
    names = {
        int(folder.id): str(folder.payload.get("name") or "") for folder in folders if folder.id is not None
    }
    return {
        folder_id: " / ".join(names[item] for item in reversed(chain))
        for folder_id, chain in folder_chains(folders).items()
    }


def custom_field_text(value: Any) -> Any:
    """A custom-field value as the block shows it: a list as its items joined with ', ' (others as they
    are: same_value compares numbers and booleans in their normal form)."""
    if isinstance(value, list):
        return ", ".join(_item_text(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _item_text(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, dict | list):
        return json.dumps(item, ensure_ascii=False)
    return str(item)


def link_details(payload: Payload) -> list[Detail]:
    """The issue links (each issue's URL) and web links (URL and description) of a cycle or plan."""
    links = payload.get("links") or {}
    details = [
        Detail(
            "links.issues",
            ISSUE,
            link.get("target") or (str(link["issueId"]) if link.get("issueId") is not None else None),
        )
        for link in links.get("issues") or []
        if isinstance(link, Mapping)
    ]
    for link in links.get("webLinks") or []:
        if isinstance(link, Mapping):
            shown = str(link.get("url") or "")
            if link.get("description"):
                shown += f" ({link['description']})"
            details.append(Detail("links.webLinks", WEB_LINK, shown))
    return details


def custom_field_details(payload: Payload) -> list[Detail]:
    return [
        Detail(f"customFields.{name}", CUSTOM_FIELD + str(name), custom_field_text(value))
        for name, value in (payload.get("customFields") or {}).items()
    ]


def cycle_details(
    payload: Payload,
    status_name: Callable[[Any], str | None],
    *,
    folder_path: str | None,
    other_plans: list[str],
) -> list[Detail]:
    """What a test cycle's block must hold. `folder_path`: the folder's path when the cycle is under a
    release rather than in its folder; `other_plans`: the plans it is linked to besides the one it is
    under."""
    details = [
        Detail("plannedStartDate", PLANNED_START, payload.get("plannedStartDate"), instant=True),
        Detail("plannedEndDate", PLANNED_END, payload.get("plannedEndDate"), instant=True),
        Detail("status", STATUS, status_name(payload.get("status"))),
        Detail("owner", OWNER, (payload.get("owner") or {}).get("accountId")),
        Detail("jiraProjectVersion", JIRA_VERSION, _id_of(payload.get("jiraProjectVersion"))),
        Detail("folder", FOLDER, folder_path),
        *(Detail("links.testPlans", ALSO_IN_PLANS, plan) for plan in other_plans),
        *custom_field_details(payload),
        *link_details(payload),
    ]
    return details


def plan_details(
    payload: Payload, status_name: Callable[[Any], str | None], folder_paths: Mapping[int, str]
) -> list[Detail]:
    """What a test plan's block must hold (in its release, or in its cycle with plans_as test_cycle)."""
    folder = _id_of(payload.get("folder"))
    return [
        Detail("status", STATUS, status_name(payload.get("status"))),
        Detail("owner", OWNER, (payload.get("owner") or {}).get("accountId")),
        Detail("folder", FOLDER, folder_paths.get(int(folder)) if folder is not None else None),
        *(Detail("labels", LABEL, label) for label in payload.get("labels") or []),
        *custom_field_details(payload),
        *link_details(payload),
    ]


def _id_of(reference: Any) -> Any:
    if isinstance(reference, Mapping):
        return reference.get("id")
    return reference
