"""Test cycles in their timeline windows, and test plans linked to cycles."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from zephyr_qtest.sandbox.zephyr.generator.core import GeneratorCore, ProjectState
from zephyr_qtest.sandbox.zephyr.generator.words import (
    API,
    BASE_TIME,
    CYCLE_NAMES,
    DATA_IMAGE,
    INLINE_IMAGE,
    JIRA,
    LABELS,
    PLAN_NAMES,
    TIMELINE_DAYS,
    iso,
)

CYCLE_FIELDS = (
    ("Sprint", "select", ("Sprint 1", "Sprint 2", "Sprint 3")),
    ("Build", "text", ()),
    ("Signed off", "checkbox", ()),
    ("Go-live", "date", ()),
)

PLAN_FIELDS = (
    ("Budget hours", "decimal", ()),
    ("Stakeholders", "multiselect", ("QA", "Product", "Ops", "Legal")),
)


class CycleFamily(GeneratorCore):
    """The phase that adds test cycles and the test plans linked to them."""

    def add_cycles_and_plans(self, project: ProjectState) -> None:
        count = self.cycle_count()
        span = TIMELINE_DAYS / max(1, count)
        for number in range(1, count + 1):
            start = BASE_TIME + timedelta(days=(number - 1) * span + self.rng.uniform(0, span / 3))
            end = start + timedelta(days=self.rng.randint(3, 14), hours=self.rng.randint(0, 20))
            cycle_id = self.ids.take("cycle")
            folder = self.rng.choice(project.folders["TEST_CYCLE"]) if self.chance(0.85) else None
            status_name = "Done" if number < count * 0.8 else self.rng.choice(("In Progress", "Not Executed"))
            version_id = self.rng.choice(project.jira_versions) if self.chance(0.6) else None
            cycle: dict[str, Any] = {
                "id": cycle_id,
                "key": f"{project.key}-R{number}",
                "name": self.fill(self.rng.choice(CYCLE_NAMES), project),
                "project": project.link,
                "jiraProjectVersion": (
                    {"id": version_id, "self": f"{JIRA}/rest/api/2/version/{version_id}"}
                    if version_id
                    else None
                ),
                "status": self.status_link(project.statuses["TEST_CYCLE"][status_name]),
                "folder": {"id": folder["id"], "self": f"{API}/folders/{folder['id']}"} if folder else None,
                "description": self.rng.choice(
                    (
                        "Regression before release<br>Scope: <b>all</b>",
                        "Zyklus für die Abnahme " + INLINE_IMAGE,
                        None,
                    )
                ),
                "plannedStartDate": iso(start),
                "plannedEndDate": iso(end),
                "owner": self.user_link(project) if self.chance(0.8) else None,
                "customFields": self.custom_fields(project, CYCLE_FIELDS),
            }
            cycle["links"] = {**self.links(project, f"{API}/testcycles/{cycle_id}/links"), "testPlans": []}
            cycle["_window"] = (start, end)
            project.cycles.append(cycle)

        plan_count = max(1, min(40, count // 4)) if count else 0
        for number in range(1, plan_count + 1):
            plan_id = self.ids.take("plan")
            folder = self.rng.choice(project.folders["TEST_PLAN"]) if self.chance(0.8) else None
            plan: dict[str, Any] = {
                "id": plan_id,
                "key": f"{project.key}-P{number}",
                "name": self.fill(self.rng.choice(PLAN_NAMES), project),
                "objective": self.rng.choice(
                    ("Cover every release blocker", "Audit <i>PCI-DSS</i> controls " + DATA_IMAGE, None)
                ),
                "project": project.link,
                "status": self.status_link(self.rng.choice(list(project.statuses["TEST_PLAN"].values()))),
                "folder": {"id": folder["id"], "self": f"{API}/folders/{folder['id']}"} if folder else None,
                "owner": self.user_link(project) if self.chance(0.8) else None,
                "customFields": self.custom_fields(project, PLAN_FIELDS),
                "labels": self.rng.sample(LABELS, self.rng.choice((0, 1, 2))),
            }
            links = self.links(project, f"{API}/testplans/{plan_id}/links")
            linked_cycles = self.rng.sample(project.cycles, min(len(project.cycles), self.rng.randint(1, 6)))
            test_cycles = []
            for cycle in sorted(linked_cycles, key=lambda c: c["id"]):
                link_id = self.ids.take("link")
                test_cycles.append(
                    {
                        "id": link_id,
                        "self": f"{API}/links/{link_id}",
                        "testCycleId": cycle["id"],
                        "type": "RELATED",
                        "target": f"{API}/testcycles/{cycle['id']}",
                    }
                )
                cycle["links"]["testPlans"].append(
                    {
                        "id": link_id,
                        "self": f"{API}/links/{link_id}",
                        "testPlanId": plan_id,
                        "type": "RELATED",
                        "target": f"{API}/testplans/{plan_id}",
                    }
                )
            plan["links"] = {
                "webLinks": links.get("webLinks", []),
                "issues": links["issues"],
                "testCycles": test_cycles,
            }
            project.plans.append(plan)
            self.doc["testplans"].append(plan)
