"""Which Zephyr projects there are to migrate, and what a Zephyr project key looks like."""

from __future__ import annotations

import logging
import re

from zephyr_qtest.lib.zephyr.client import ZephyrClient

log = logging.getLogger(__name__)

# Jira's project-key rule, which Zephyr Scale's keys follow: a capital letter, then capitals, digits or _.
PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*")


def project_key_problem(key: str) -> str | None:
    """Why `key` is not a Zephyr project key, or None when it is one."""
    if PROJECT_KEY.fullmatch(key):
        return None
    return (
        f"{key!r} is not a Zephyr project key (a capital letter, then capitals, digits or _, e.g. SHOP): "
        "use the key Zephyr shows, not the project's name"
    )


async def discover_project_keys(client: ZephyrClient) -> list[str]:
    """The keys of every enabled project the token can read, sorted (disabled projects are left alone,
    and so is anything that is not a project key, with a warning: it would stay behind as a partition)."""
    keys: set[str] = set()
    async for project in client.iter_projects():
        key = project.get("key")
        if not key or not project.get("enabled", True):
            continue
        if (problem := project_key_problem(str(key))) is not None:
            log.warning("Zephyr project %s left out: %s", project.get("id"), problem)
            continue
        keys.add(str(key))
    return sorted(keys)
