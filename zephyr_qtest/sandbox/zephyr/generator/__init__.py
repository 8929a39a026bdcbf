"""Deterministic Zephyr Scale Cloud data for the sandbox, in the fixture format.

``generate(seed, size)`` builds a whole tenant: projects with users, statuses of all four types,
priorities, environments, folder trees several levels deep, test cases (step-by-step with 0 to
over 100 steps, call-to-test steps with parameters, plain and BDD scripts, a few without any
script, older versions), cycles in folders, plans linked to cycles, executions (several per
cycle item, oldest to newest, plus ad-hoc and automated ones) with step results, custom fields of
every type, labels, issue and web links, attachments with awkward names, unicode, HTML and nulls
wherever the 2026 spec allows them.

The same seed and size always give the same document, byte for byte (one ``random.Random``,
seeded with a string, drives everything; no clock is read).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zephyr_qtest.sandbox.zephyr.generator.attachments import AttachmentFamily
from zephyr_qtest.sandbox.zephyr.generator.cases import CaseFamily
from zephyr_qtest.sandbox.zephyr.generator.cycles import CycleFamily
from zephyr_qtest.sandbox.zephyr.generator.executions import ExecutionFamily
from zephyr_qtest.sandbox.zephyr.generator.projects import ProjectFamily

__all__ = ["SIZE_PRESETS", "generate", "resolve_size"]

SIZE_PRESETS: dict[str, dict[str, int]] = {
    # Fast tests.
    "tiny": {"projects": 2, "cases": 25, "executions": 80},
    # The demo.
    "small": {"projects": 2, "cases": 150, "executions": 600},
    # The benchmark.
    "bench": {"projects": 1, "cases": 5000, "executions": 20000},
}
_SIZE_FIELDS = ("projects", "cases", "executions")


def resolve_size(size: str | Mapping[str, Any]) -> dict[str, int]:
    """Turn a preset name or a dict of overrides into ``{projects, cases, executions}``.

    A dict may name a base preset (``{"preset": "tiny", "cases": 40}``); the default base is small.
    ``cases`` and ``executions`` are per project.
    """
    if isinstance(size, str):
        if size not in SIZE_PRESETS:
            raise ValueError(f"unknown size {size!r}; presets are {', '.join(SIZE_PRESETS)}")
        return dict(SIZE_PRESETS[size])
    preset = str(size.get("preset", "small"))
    resolved = resolve_size(preset)
    for name, value in size.items():
        if name == "preset":
            continue
        if name not in _SIZE_FIELDS:
            raise ValueError(f"unknown size field {name!r}; use {', '.join(_SIZE_FIELDS)} (and preset)")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "projects" else 0):
            raise ValueError(
                f"size field {name!r} must be a non-negative integer (projects >= 1), got {value!r}"
            )
        resolved[name] = value
    return resolved


class Generator(ProjectFamily, CaseFamily, CycleFamily, ExecutionFamily, AttachmentFamily):
    """A whole tenant, built phase by phase (the order of the phases is the order of the draws)."""

    def build(self) -> dict[str, Any]:
        shared_users = [self.account_id() for _ in range(2)]
        for index in range(self.sizes["projects"]):
            self.add_project(index, shared_users)
        for project in self.projects:
            self.add_folders(project)
            self.add_cases(project)
        for project in self.projects:
            self.add_steps(project)
        self.add_cross_project_calls()
        for project in self.projects:
            self.add_versions(project)
            self.add_cycles_and_plans(project)
            self.add_executions(project)
        self.add_attachments()
        return self.doc


def generate(seed: int = 0, size: str | Mapping[str, Any] = "small") -> dict[str, Any]:
    """A whole Zephyr tenant for ``seed`` and ``size`` (a preset name or a dict of overrides), in
    the fixture format; the same arguments always give the same document."""
    return Generator(seed, resolve_size(size)).build()
