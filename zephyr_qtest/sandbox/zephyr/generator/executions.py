"""Test executions (several per cycle item, oldest to newest, plus ad-hoc and automated ones) and their
step results.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from zephyr_qtest.sandbox.zephyr.generator.core import GeneratorCore, ProjectState
from zephyr_qtest.sandbox.zephyr.generator.words import (
    ACTUAL_BAD,
    ACTUAL_OK,
    API,
    BASE_TIME,
    COMMENTS,
    DATA_ROW_VALUES,
    TIMELINE_DAYS,
    iso,
)

EXECUTION_FIELDS = (
    ("Browser build", "text", ()),
    ("Defects found", "number", ()),
    ("Verified on", "date", ()),
    ("Flaky", "checkbox", ()),
    ("Reviewer", "user", ()),
    ("Run notes", "multiline", ()),
)
# The other types of field on executions too (decimal, single and multiple choice). They draw from a
# generator of their own per execution, so that every other value of the tenant stays what it was.
MORE_EXECUTION_FIELDS = (
    ("Effort (h)", "decimal", ()),
    ("Test phase", "select", ("Smoke", "Regression", "Acceptance")),
    ("Platforms", "multiselect", ("Web", "iOS", "Android", "Desktop")),
)


class ExecutionFamily(GeneratorCore):
    """The phase that adds test executions and their step results."""

    def flattened_steps(self, key: str, parameters: dict[str, str], depth: int = 0) -> list[dict[str, Any]]:
        """The inline steps an execution of ``key`` runs: call-to-test steps expand to the callee's."""
        flat: list[dict[str, Any]] = []
        for step in self.doc["teststeps"].get(key, []):
            if "inline" in step:
                inline = step["inline"]
                description = inline["description"] or ""
                test_data = inline["testData"]
                for name, value in parameters.items():
                    description = description.replace("{" + name + "}", value)
                    test_data = test_data.replace("{" + name + "}", value) if test_data else test_data
                flat.append(
                    {
                        "description": description,
                        "testData": test_data,
                        "expectedResult": inline["expectedResult"],
                    }
                )
            elif depth < 3:
                call = step["testCase"]
                values = {p["name"]: p["value"] for p in call["parameters"] if p["value"]}
                flat.extend(self.flattened_steps(call["testCaseKey"], {**parameters, **values}, depth + 1))
        return flat

    def add_executions(self, project: ProjectState) -> None:
        total = self.sizes["executions"]
        if not project.cases or total == 0:
            for cycle in project.cycles:
                cycle.pop("_window", None)
                self.doc["testcycles"].append(cycle)
            return
        ad_hoc = total if not project.cycles else round(total * 0.12)
        planned: list[tuple[datetime, int, dict[str, Any] | None, dict[str, Any], str]] = []
        order = 0
        in_cycles = total - ad_hoc
        for position, cycle in enumerate(project.cycles):
            quota = in_cycles // len(project.cycles) + (
                1 if position < in_cycles % len(project.cycles) else 0
            )
            if quota == 0:
                continue
            items = self.rng.sample(project.cases, min(len(project.cases), max(1, math.ceil(quota / 1.75))))
            runs = [1] * len(items)
            for _ in range(quota - len(items)):
                runs[self.rng.randrange(len(items))] += 1
            start, end = cycle["_window"]
            window = (end - start).total_seconds()
            for case, run_count in zip(items, runs, strict=True):
                moments = sorted(
                    start + timedelta(seconds=self.rng.uniform(0, window)) for _ in range(run_count)
                )
                for run, when in enumerate(moments):
                    last = run == run_count - 1
                    outcome = self.rng.choices(
                        ("Pass", "Fail", "Blocked", "In Progress", "Not Executed", "Retest"),
                        (60, 15, 5, 5, 14, 1),
                    )[0]
                    if not last and outcome in ("Not Executed", "In Progress"):
                        outcome = "Fail"  # only the newest run of an item may still be open
                    planned.append((when, order, cycle, case, outcome))
                    order += 1
        for _ in range(ad_hoc):
            when = self.moment(10, TIMELINE_DAYS)
            outcome = self.rng.choices(("Pass", "Fail", "Blocked"), (75, 20, 5))[0]
            planned.append((when, order, None, self.rng.choice(project.cases), outcome))
            order += 1
        # Oldest first: ids and keys grow with time, so "several per item, oldest to newest" holds.
        planned.sort(key=lambda item: (item[0], item[1]))
        statuses = project.statuses["TEST_EXECUTION"]
        timeline_end = BASE_TIME + timedelta(days=TIMELINE_DAYS)
        for number, (when, _, cycle, case, outcome) in enumerate(planned, start=1):
            execution_id = self.ids.take("execution")
            versions = self.case_versions[case["key"]]
            # Older runs executed older versions of the case.
            version_number = min(
                len(versions), 1 + int(len(versions) * (when - BASE_TIME) / (timeline_end - BASE_TIME))
            )
            version = versions[version_number - 1]
            automated = self.chance(0.15)
            finished = outcome not in ("Not Executed", "In Progress")
            environment = self.rng.choice(project.environments) if self.chance(0.7) else None
            version_link = cycle["jiraProjectVersion"] if cycle else None
            execution = {
                "id": execution_id,
                "key": f"{project.key}-E{number}",
                "project": project.link,
                "testCase": {
                    "id": version["id"],
                    "self": f"{API}/testcases/{case['key']}/versions/{version_number}",
                },
                "environment": (
                    {"id": environment["id"], "self": f"{API}/environments/{environment['id']}"}
                    if environment
                    else None
                ),
                "jiraProjectVersion": version_link,
                "testExecutionStatus": self.status_link(statuses[outcome]),
                "actualEndDate": iso(when) if finished or self.chance(0.2) else None,
                "estimatedTime": case.get("estimatedTime"),
                "executionTime": self.rng.randrange(5_000, 1_800_000, 1000)
                if finished and self.chance(0.85)
                else None,
                "executedById": None if automated or not finished else self.rng.choice(project.users),
                "assignedToId": self.rng.choice(project.users) if self.chance(0.6) else None,
                "comment": (
                    f"Automated run via CI #{self.rng.randint(100, 9999)}"
                    if automated
                    else self.rng.choice(COMMENTS)
                    if self.chance(0.3)
                    else None
                ),
                "automated": automated,
                "testCycle": {"id": cycle["id"], "self": f"{API}/testcycles/{cycle['id']}"}
                if cycle
                else None,
                "customFields": {
                    **self.custom_fields(project, EXECUTION_FIELDS),
                    **self.custom_fields(
                        project,
                        MORE_EXECUTION_FIELDS,
                        random.Random(f"zephyr-qtest-sandbox:{self.seed}:execution:{execution_id}"),
                    ),
                },
            }
            execution["links"] = self.links(project, f"{API}/testexecutions/{execution_id}/links", web=False)
            project.executions.append(execution)
            self.doc["testexecutions"].append(execution)
            steps = self.execution_steps(case["key"], outcome, statuses)
            if steps:
                self.doc["testexecution_steps"][str(execution_id)] = steps
        for cycle in project.cycles:
            cycle.pop("_window", None)
            self.doc["testcycles"].append(cycle)

    def data_rows(self, case_key: str, flat: list[dict[str, Any]]) -> list[dict[str, str]]:
        """The test data rows an execution of `case_key` runs: for about a quarter of the cases whose steps keep
        parameters no call fills ({username}, {password}), two or three rows of values; else none.
        A generator of its own decides, so the tenant's other values stay those of earlier versions."""
        texts = " ".join(f"{step['description']} {step.get('testData') or ''}" for step in flat)
        names = [name for name in DATA_ROW_VALUES if "{" + name + "}" in texts]
        rows_rng = random.Random(f"zephyr-qtest-sandbox:{self.seed}:data-rows:{case_key}")
        if not names or rows_rng.random() >= 0.25:
            return []
        return [
            {name: rows_rng.choice(DATA_ROW_VALUES[name]) for name in names}
            for _ in range(rows_rng.choice((2, 2, 3)))
        ]

    def execution_steps(
        self, case_key: str, outcome: str, statuses: dict[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        flat = self.flattened_steps(case_key, {})
        if not flat:
            return []
        rows = self.data_rows(case_key, flat)
        first = self.row_results(flat, outcome, statuses, rows[0] if rows else {}, 1 if rows else None)
        if len(rows) < 2:
            return first
        # A data-driven execution: Zephyr runs the whole list once per data row, and the results of every
        # row are in the execution's list, each with its row's testDataRowNumber (the v2 spec's
        # TestExecutionStep.inline.testDataRowNumber, "the id of the test data row"; the list filters by
        # it with ?testDataRowNumber=, and SmartBear's smartbear-mcp GetTestExecutionSteps tool asks for
        # "the test data row 1" so). Rows are numbered from 1 as in the spec's example.
        rows_rng = random.Random(f"zephyr-qtest-sandbox:{self.seed}:row-results:{case_key}:{len(first)}")
        results = first
        for number, values in enumerate(rows[1:], start=2):
            results += self.row_results(flat, outcome, statuses, values, number, rows_rng)
        return results

    def row_results(
        self,
        flat: list[dict[str, Any]],
        outcome: str,
        statuses: dict[str, dict[str, Any]],
        values: dict[str, str],
        row: int | None,
        rng: random.Random | None = None,
    ) -> list[dict[str, Any]]:
        """The results of one run through the flattened steps (one data row's, with its values)."""
        rng = rng or self.rng
        count = len(flat)
        stop = rng.randrange(count)  # where a failed / blocked / unfinished run stopped
        result = []
        for position, step in enumerate(flat):
            if outcome in ("Pass", "Retest"):
                status, actual = "Pass", rng.choice(ACTUAL_OK) if rng.random() < 0.3 else None
            elif outcome == "Not Executed" or position > stop:
                status, actual = "Not Executed", None
            elif position < stop:
                status, actual = "Pass", None
            elif outcome in ("Fail", "Blocked"):
                status, actual = outcome, rng.choice(ACTUAL_BAD)
            else:
                status, actual = "In Progress", None
            inline = dict(step)
            for name, value in values.items():
                for text in ("description", "testData"):
                    if inline.get(text):
                        inline[text] = inline[text].replace("{" + name + "}", value)
            result.append(
                {
                    "id": self.ids.take("execution_step"),
                    "inline": {
                        **inline,
                        "actualResult": actual,
                        "testDataRowNumber": row,
                        "reflectRef": None,
                        "status": self.status_link(statuses[status]),
                    },
                }
            )
        return result
