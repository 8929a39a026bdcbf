"""Projects with their users, statuses, priorities and environments, and the folder trees."""

# ruff: noqa: RUF001 (the look-alike characters are the point: the data must carry real-world text)
from __future__ import annotations

from typing import Any

from zephyr_qtest.sandbox.zephyr.generator.core import GeneratorCore, ProjectState
from zephyr_qtest.sandbox.zephyr.generator.words import (
    CASE_FOLDER_CHILDREN,
    CASE_FOLDER_ROOTS,
    CYCLE_FOLDER_CHILDREN,
    CYCLE_FOLDER_ROOTS,
    PLAN_FOLDER_CHILDREN,
    PLAN_FOLDER_ROOTS,
    PROJECT_KEYS,
)


class ProjectFamily(GeneratorCore):
    """Phases that add projects (with users, statuses, priorities, environments) and folder trees."""

    def add_project(self, index: int, shared_users: list[str]) -> None:
        key = PROJECT_KEYS[index] if index < len(PROJECT_KEYS) else f"P{index + 1}"
        project = ProjectState(index, self.ids.take("project"), key)
        self.projects.append(project)
        self.doc["projects"].append(
            {"id": project.id, "jiraProjectId": self.ids.take("jira_project"), "key": key, "enabled": True}
        )
        # About 8 people per project, two of them working on every project.
        project.users = [*shared_users, *(self.account_id() for _ in range(6))]
        project.jira_versions = [self.ids.take("jira_version") for _ in range(4)]
        project.components = [self.ids.take("component") for _ in range(3)]

        status_specs = {
            "TEST_CASE": [("Draft", "#8B8B8B", True, False), ("Approved", "#00875A", False, False),
                          ("Deprecated", "#DE350B", False, False), ("Needs update", "#FF991F", False, True)],
            "TEST_PLAN": [("Draft", "#8B8B8B", True, False), ("Approved", "#00875A", False, False),
                          ("Done", "#0052CC", False, False)],
            "TEST_CYCLE": [("Not Executed", "#8B8B8B", True, False), ("In Progress", "#0052CC", False, False),
                           ("Done", "#00875A", False, False)],
            "TEST_EXECUTION": [("Not Executed", "#8B8B8B", True, False), ("In Progress", "#0052CC", False, False),
                               ("Pass", "#00875A", False, False), ("Fail", "#DE350B", False, False),
                               ("Blocked", "#FF991F", False, False), ("Retest", "#6554C0", False, True)],
        }  # fmt: skip
        for status_type, specs in status_specs.items():
            by_name: dict[str, dict[str, Any]] = {}
            for position, (name, color, default, archived) in enumerate(specs):
                status: dict[str, Any] = {
                    "id": self.ids.take("status"),
                    "project": project.link,
                    "name": name,
                    "index": position,
                    "color": color,
                    "archived": archived,
                    "default": default,
                }
                if self.chance(0.6):
                    status["description"] = f"{name} ({status_type.replace('_', ' ').lower()})"
                self.doc["statuses"].append(status)
                # The type is the filter the status answers under, not a field of it (REAL_SHAPES.md,
                # Zephyr Scale Cloud 1: the 2026 Status schema is strict and has no `statusType`).
                self.doc["status_types"].setdefault(status_type, []).append(status["id"])
                by_name[name] = status
            project.statuses[status_type] = by_name

        for position, (name, color, default) in enumerate(
            (("Critical ⚠", "#DE350B", False), ("High", "#FF991F", False), ("Normal", "#0052CC", True),
             ("Low", "#8B8B8B", False))
        ):  # fmt: skip
            priority = {
                "id": self.ids.take("priority"),
                "project": project.link,
                "name": name,
                "index": position,
                "color": color,
                "default": default,
            }
            self.doc["priorities"].append(priority)
            project.priorities.append(priority)

        for position, (name, archived) in enumerate(
            (("Chrome Latest Version", False), ("Firefox ESR", False), ("Safari 17 / macOS 14", False),
             ("Android 14 (Pixel 8)", False), ("iOS 17 – iPhone 15", False), ("IE 11", True))
        ):  # fmt: skip
            environment: dict[str, Any] = {
                "id": self.ids.take("environment"),
                "project": project.link,
                "name": name,
                "index": position,
                "archived": archived,
            }
            if self.chance(0.5):
                environment["description"] = f"Runs on {name}"
            self.doc["environments"].append(environment)
            if not archived:
                project.environments.append(environment)

    def add_folder_tree(
        self,
        project: ProjectState,
        folder_type: str,
        count: int,
        roots: tuple[str, ...],
        children: tuple[str, ...],
        max_depth: int,
    ) -> None:
        folders = project.folders[folder_type]
        depth_of: dict[int, int] = {}
        child_counts: dict[int | None, int] = {}

        sibling_names: dict[int | None, set[str]] = {}

        def add(parent: dict[str, Any] | None, name: str) -> dict[str, Any]:
            parent_id = parent["id"] if parent else None
            index = child_counts.get(parent_id, 0)
            child_counts[parent_id] = index + 1
            # Zephyr refuses two folders of the same name under one parent.
            taken = sibling_names.setdefault(parent_id, set())
            base, copy = name, 2
            while name in taken:
                name, copy = f"{base} ({copy})", copy + 1
            taken.add(name)
            folder = {
                "id": self.ids.take("folder"),
                "parentId": parent_id,
                "name": name,
                "index": index,
                "folderType": folder_type,
                "project": project.link,
            }
            depth_of[folder["id"]] = 1 if parent is None else depth_of[parent["id"]] + 1
            folders.append(folder)
            self.doc["folders"].append(folder)
            return folder

        root_count = max(1, min(len(roots), count // 4))
        for name in roots[:root_count]:
            add(None, name)
        # Grow one chain to the maximum depth first, so every tree is "several levels deep".
        chain = folders[0]
        while depth_of[chain["id"]] < max_depth and len(folders) < count:
            chain = add(chain, self.fill(self.rng.choice(children), project))
        while len(folders) < count:
            candidates = [f for f in folders if depth_of[f["id"]] < max_depth]
            parent = self.rng.choice(candidates)
            add(parent, self.fill(self.rng.choice(children), project))

    def add_folders(self, project: ProjectState) -> None:
        # About one test-case folder per dozen cases; cycle and plan trees scale with the cycles.
        case_folders = max(6, min(250, self.sizes["cases"] // 12))
        cycles = self.cycle_count()
        self.add_folder_tree(project, "TEST_CASE", case_folders, CASE_FOLDER_ROOTS, CASE_FOLDER_CHILDREN, 4)
        self.add_folder_tree(
            project,
            "TEST_CYCLE",
            max(4, min(60, cycles // 3)),
            CYCLE_FOLDER_ROOTS,
            CYCLE_FOLDER_CHILDREN,
            3,
        )
        self.add_folder_tree(
            project, "TEST_PLAN", max(3, min(20, cycles // 6)), PLAN_FOLDER_ROOTS, PLAN_FOLDER_CHILDREN, 3
        )
