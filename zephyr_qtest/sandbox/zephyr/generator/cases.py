"""Test cases: names, fields and links, steps (inline and call-to-test), plain and BDD scripts, cross-project
calls, older versions.
"""

from __future__ import annotations

from typing import Any

from zephyr_qtest.sandbox.zephyr.generator.core import GeneratorCore, ProjectState
from zephyr_qtest.sandbox.zephyr.generator.words import (
    API,
    CASE_SUBJECTS,
    CASE_VERBS,
    EXPECTED,
    INLINE_IMAGE_2,
    JIRA,
    LABELS,
    OBJECTIVES,
    ODD_CASE_NAMES,
    PRECONDITIONS,
    STEP_ACTIONS,
    TEST_DATA,
    TIMELINE_DAYS,
    iso,
)

CASE_FIELDS = (
    ("Reference", "text", ()),
    ("Notes", "multiline", ()),
    ("Build Number", "number", ()),
    ("Risk Score", "decimal", ()),
    ("Release Date", "date", ()),
    ("Implemented", "checkbox", ()),
    ("Component Area", "select", ("Frontend", "Backend", "Mobile", "Données")),
    ("Category", "multiselect", ("Performance", "Regression", "Security", "Usability")),
    ("Tester", "user", ()),
)


class CaseFamily(GeneratorCore):
    """Phases that add test cases, their steps and scripts, cross-project calls and older versions."""

    def add_cases(self, project: ProjectState) -> None:
        count = self.sizes["cases"]
        # A few cases with more than 100 steps exercise step paging; the rest keep the mean near 4.
        big = set(self.rng.sample(range(count), min(count, max(1, min(5, count // 100))))) if count else set()
        for number in range(1, count + 1):
            case_id = self.ids.take("case")
            key = f"{project.key}-T{number}"
            roll = self.rng.random()
            if number - 1 in big:
                script, step_count = "steps", self.rng.randint(101, 140)
            elif roll < 0.78:
                script, step_count = "steps", min(12, 1 + int(self.rng.expovariate(1 / 3)))
            elif roll < 0.81:
                script, step_count = "steps", 0
            elif roll < 0.89:
                script, step_count = "plain", 0
            elif roll < 0.95:
                script, step_count = "bdd", 0
            else:
                script, step_count = "none", 0
            if self.chance(0.08):
                name = self.rng.choice(ODD_CASE_NAMES)
            elif number == 7:
                name = ("Very long name " + "x" * 255)[:255]
            else:
                name = f"{self.rng.choice(CASE_VERBS)} {self.rng.choice(CASE_SUBJECTS)}"
            created = self.moment(0, TIMELINE_DAYS * 0.6)
            folder = self.rng.choice(project.folders["TEST_CASE"]) if self.chance(0.95) else None
            priority = self.rng.choice(project.priorities)
            status = self.rng.choice(list(project.statuses["TEST_CASE"].values())[:3])
            case: dict[str, Any] = {
                "id": case_id,
                "key": key,
                "name": name,
                "project": project.link,
                "createdOn": iso(created),
                "objective": self.fill(self.rng.choice(OBJECTIVES), project) if self.chance(0.75) else None,
                "precondition": self.rng.choice(PRECONDITIONS) if self.chance(0.5) else None,
                "estimatedTime": self.rng.randrange(30_000, 3_600_000, 1000) if self.chance(0.7) else None,
                "labels": self.rng.sample(LABELS, self.rng.choice((0, 0, 1, 2, 3))),
                "component": (
                    {
                        "id": (cid := self.rng.choice(project.components)),
                        "self": f"{JIRA}/rest/api/2/component/{cid}",
                    }
                    if self.chance(0.4)
                    else None
                ),
                "priority": {"id": priority["id"], "self": f"{API}/priorities/{priority['id']}"},
                "status": self.status_link(status),
                "folder": {"id": folder["id"], "self": f"{API}/folders/{folder['id']}"} if folder else None,
                "owner": self.user_link(project) if self.chance(0.85) else None,
            }
            # Step-by-step cases link /teststeps, plain and BDD ones /testscript (REAL_SHAPES.md, Zephyr
            # Scale Cloud 2: tested against a real tenant).
            if script == "steps":
                case["testScript"] = {"self": f"{API}/testcases/{key}/teststeps"}
            elif script in ("plain", "bdd"):
                case["testScript"] = {"self": f"{API}/testcases/{key}/testscript"}
            case["customFields"] = self.custom_fields(project, CASE_FIELDS)
            case["links"] = self.links(project, f"{API}/testcases/{key}/links")
            case["_plan"] = (script, step_count, created)  # removed before the case is stored
            project.cases.append(case)
            project.case_numbers[key] = number
            self.case_by_key[key] = case

    def inline_step(self, project: ProjectState) -> dict[str, Any]:
        test_data = (
            self.fill(self.rng.choice(TEST_DATA), project)
            if self.chance(0.35)
            else self.rng.choice((None, ""))
        )
        custom: dict[str, Any] = {}
        if self.chance(0.3):
            custom = {
                "Step type": self.rng.choice(("Setup", "Action", "Check")),
                "Critical": self.chance(0.2),
            }
        return {
            "id": self.ids.take("step"),
            "inline": {
                "description": self.fill(self.rng.choice(STEP_ACTIONS), project),
                "testData": test_data,
                "expectedResult": self.rng.choice(EXPECTED) if self.chance(0.9) else None,
                "customFields": custom,
                "reflectRef": None,
            },
        }

    def call_step(self, callee_key: str) -> dict[str, Any]:
        parameters = []
        for name in self.rng.sample(("username", "password", "locale", "amount"), self.rng.randint(0, 3)):
            kind = self.rng.choice(("DEFAULT_VALUE", "MANUAL_INPUT"))
            value = (
                self.rng.choice(("admin", "s3cr3t!", "de_DE", "19.99", "Jörg"))
                if kind == "DEFAULT_VALUE"
                else ""
            )
            parameters.append({"name": name, "type": kind, "value": value})
        return {
            "id": self.ids.take("step"),
            "testCase": {
                "self": f"{API}/testcases/{callee_key}",
                "testCaseKey": callee_key,
                "parameters": parameters,
            },
        }

    def add_steps(self, project: ProjectState) -> None:
        callable_keys: list[str] = []
        for case in project.cases:
            script, step_count, _ = case["_plan"]
            key = case["key"]
            if script == "steps":
                steps = [self.inline_step(project) for _ in range(step_count)]
                if 1 <= step_count <= 12 and callable_keys and self.chance(0.1):
                    # Call an earlier case of the same project: calls never form a cycle.
                    steps.insert(
                        self.rng.randint(0, len(steps)), self.call_step(self.rng.choice(callable_keys))
                    )
                self.doc["teststeps"][key] = steps
                if 1 <= step_count <= 8:
                    callable_keys.append(key)
            elif script in ("plain", "bdd"):
                self.doc["testscripts"][key] = {
                    "id": self.ids.take("step"),
                    "type": script,
                    "text": self.script_text(script),
                }

    def script_text(self, script: str) -> str:
        if script == "bdd":
            subject = self.rng.choice(CASE_SUBJECTS)
            return (
                f'Feature: {subject}\n  Scenario: works for a signed-in user\n    Given a user "Jörg" is logged in\n'
                f'    When they open the {subject}\n    Then no error is shown\n    And the page title is "Übersicht"'
            )
        return self.rng.choice(
            (
                "1. Open the app<br>2. Log in as <b>admin</b><br>3. Check the dashboard " + INLINE_IMAGE_2,
                "<p>Vérifier l'écran d'accueil.</p><ul><li>Logo</li><li>Menu</li></ul>",
                "Run the nightly export and compare the CSV with the golden file.",
            )
        )

    def add_cross_project_calls(self) -> None:
        """One or two cases per later project call a case of the first project."""
        if len(self.projects) < 2:
            return
        first = self.projects[0]
        targets = [
            key
            for key in (c["key"] for c in first.cases)
            if 1 <= len(self.doc["teststeps"].get(key, [])) <= 8
        ]
        if not targets:
            return
        for project in self.projects[1:]:
            callers = [
                c["key"] for c in project.cases if 1 <= len(self.doc["teststeps"].get(c["key"], [])) <= 12
            ]
            for caller in callers[: self.rng.randint(1, 2)]:
                self.doc["teststeps"][caller].append(self.call_step(self.rng.choice(targets)))

    def add_versions(self, project: ProjectState) -> None:
        for case in project.cases:
            self.case_versions[case["key"]] = [case]
            if not self.chance(0.12):
                continue
            older = []
            for generation in range(self.rng.randint(1, 2)):
                version = {
                    **case,
                    "id": self.ids.take("version"),
                    "name": f"{case['name'][:240]} (v{generation + 1})",
                }
                version["status"] = self.status_link(project.statuses["TEST_CASE"]["Draft"])
                version.pop("_plan", None)
                older.append(version)
            self.doc["testcase_versions"][case["key"]] = older
            self.case_versions[case["key"]] = [*older, case]
        for case in project.cases:
            case.pop("_plan", None)
            self.doc["testcases"].append(case)
