"""Which Zephyr projects there are to migrate."""

from __future__ import annotations

from zephyr_qtest.lib.zephyr.client import ZephyrClient


async def discover_project_keys(client: ZephyrClient) -> list[str]:
    """The keys of every enabled project the token can read, sorted (disabled projects are left alone)."""
    keys = [
        project["key"]
        async for project in client.iter_projects()
        if project.get("key") and project.get("enabled", True)
    ]
    return sorted(set(keys))
