"""The generator's state and the helpers every object family uses.

``GeneratorCore`` holds the one ``random.Random`` that drives everything, the per-kind id
sequences and the document being built; each object family (``projects``, ``cases``, ``cycles``,
``executions``, ``attachments``) is a subclass adding its phases, and ``generator.Generator``
combines them. The order of the random draws is the data: a phase must not draw more, less or
earlier than it does, or every later object changes.
"""

# ruff: noqa: RUF001 (the look-alike characters are the point: the data must carry real-world text)
from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from zephyr_qtest.sandbox.zephyr.generator.words import (
    API,
    BASE_TIME,
    CASE_SUBJECTS,
    JIRA,
    STEP_FIELDS,
    STEP_SCREENS,
    STEP_VALUES,
    TIMELINE_DAYS,
)


class IdSequence:
    """Separate id ranges per kind, so a client mixing up ids of different kinds is caught."""

    def __init__(self) -> None:
        self.next = {
            "project": 10001, "jira_project": 10101, "folder": 20001, "status": 30001, "priority": 40001,
            "environment": 50001, "jira_version": 60001, "component": 70001, "issue": 80001, "case": 100001,
            "cycle": 200001, "plan": 300001, "execution": 400001, "version": 600001, "step": 700001,
            "attachment": 5001, "link": 1000001, "execution_step": 2000001,
        }  # fmt: skip

    def take(self, kind: str) -> int:
        value = self.next[kind]
        self.next[kind] = value + 1
        return value


class ProjectState:
    """What the generator needs to remember about one project while building it."""

    def __init__(self, index: int, pid: int, key: str) -> None:
        self.index = index
        self.id = pid
        self.key = key
        self.link = {"id": pid, "self": f"{API}/projects/{pid}"}
        self.users: list[str] = []
        self.statuses: dict[str, dict[str, dict[str, Any]]] = {}
        self.priorities: list[dict[str, Any]] = []
        self.environments: list[dict[str, Any]] = []
        self.folders: dict[str, list[dict[str, Any]]] = {"TEST_CASE": [], "TEST_CYCLE": [], "TEST_PLAN": []}
        self.jira_versions: list[int] = []
        self.components: list[int] = []
        self.cases: list[dict[str, Any]] = []
        self.case_numbers: dict[str, int] = {}
        self.cycles: list[dict[str, Any]] = []
        self.plans: list[dict[str, Any]] = []
        self.executions: list[dict[str, Any]] = []


class GeneratorCore:
    """The generator's state (one random stream, the id sequences, the document being built) and the
    small helpers every object family draws with."""

    def __init__(self, seed: int, sizes: dict[str, int]) -> None:
        self.seed = seed
        self.sizes = sizes
        self.rng = random.Random(f"zephyr-qtest-sandbox:{seed}")
        self.ids = IdSequence()
        self.projects: list[ProjectState] = []
        self.doc: dict[str, Any] = {
            "_meta": {
                "generator": "zephyr_qtest.sandbox.zephyr.generator",
                "seed": seed,
                "size": sizes,
                # 2: statuses no longer carry `statusType`; `status_types` says which filter serves each.
                "format": 2,
            },
            "projects": [],
            "folders": [],
            "statuses": [],
            "status_types": {},
            "priorities": [],
            "environments": [],
            "testcases": [],
            "testcase_versions": {},
            "teststeps": {},
            "testscripts": {},
            "testcycles": [],
            "testplans": [],
            "testexecutions": [],
            "testexecution_steps": {},
            "attachments": {},
        }
        self.case_by_key: dict[str, dict[str, Any]] = {}
        self.case_versions: dict[str, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ small helpers

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def moment(self, start_day: float, end_day: float) -> datetime:
        return BASE_TIME + timedelta(seconds=int(self.rng.uniform(start_day, end_day) * 86400))

    def user_link(self, project: ProjectState, account_id: str | None = None) -> dict[str, Any]:
        account = account_id or self.rng.choice(project.users)
        return {"self": f"{JIRA}/rest/api/2/user?accountId={account}", "accountId": account}

    def status_link(self, status: dict[str, Any]) -> dict[str, Any]:
        return {"id": status["id"], "self": f"{API}/statuses/{status['id']}"}

    def account_id(self) -> str:
        if self.chance(0.5):
            return "".join(self.rng.choice("0123456789abcdef") for _ in range(24))
        hexes = "".join(self.rng.choice("0123456789abcdef") for _ in range(32))
        uuid = f"{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"
        return f"712020:{uuid}"

    def fill(self, template: str, project: ProjectState) -> str:
        return template.format(
            subject=self.rng.choice(CASE_SUBJECTS),
            n=self.rng.randint(1, 999),
            screen=self.rng.choice(STEP_SCREENS),
            field=self.rng.choice(STEP_FIELDS),
            value=self.rng.choice(STEP_VALUES),
            username="{username}",
            password="{password}",
            k=self.rng.randint(1, 60),
            q=self.rng.randint(1, 4),
            year=self.rng.choice((2023, 2024)),
            key=project.key,
        )

    def cycle_count(self) -> int:
        return max(2, min(250, round(self.sizes["executions"] / 40))) if self.sizes["executions"] else 0

    def custom_value(
        self,
        kind: str,
        project: ProjectState,
        options: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> Any:
        rng = rng or self.rng
        if rng.random() < 0.12:
            return None
        if kind == "text":
            return rng.choice(("REQ-" + str(rng.randint(1, 500)), "Ünïcode ✓", "<b>html</b> & more", ""))
        if kind == "multiline":
            return rng.choice(("Line one<br>Line two", "Zeile 1<br>Zeile 2<br><br>Zeile 4", "single line"))
        if kind == "number":
            return rng.randint(0, 5000)
        if kind == "decimal":
            return round(rng.uniform(0, 10), 2)
        if kind == "date":
            return (BASE_TIME + timedelta(days=rng.randint(0, TIMELINE_DAYS))).strftime("%Y-%m-%d")
        if kind == "checkbox":
            return rng.random() < 0.5
        if kind == "select":
            return rng.choice(options)
        if kind == "multiselect":
            return rng.sample(options, rng.randint(0, min(3, len(options))))
        if kind == "user":
            return rng.choice(project.users)
        raise ValueError(kind)

    def custom_fields(
        self,
        project: ProjectState,
        fields: tuple[tuple[str, str, tuple[str, ...]], ...],
        rng: random.Random | None = None,
    ) -> dict[str, Any]:
        return {name: self.custom_value(kind, project, options, rng) for name, kind, options in fields}

    def links(self, project: ProjectState, owner_self: str, *, web: bool = True) -> dict[str, Any]:
        issues = []
        for _ in range(self.rng.choice((0, 0, 1, 1, 2, 3))):
            link_id = self.ids.take("link")
            issue_id = self.ids.take("issue")
            issues.append(
                {
                    "self": f"{API}/links/{link_id}",
                    "issueId": issue_id,
                    "id": link_id,
                    "target": f"{JIRA}/rest/api/2/issue/{issue_id}",
                    "type": self.rng.choice(("COVERAGE", "COVERAGE", "BLOCKS", "RELATED")),
                }
            )
        links: dict[str, Any] = {"self": owner_self, "issues": issues}
        if web:
            web_links = []
            for _ in range(self.rng.choice((0, 0, 0, 1, 2))):
                link_id = self.ids.take("link")
                web_link: dict[str, Any] = {
                    "self": f"{API}/links/{link_id}",
                    "url": self.rng.choice(
                        (
                            "https://atlassian.com",
                            "https://example.com/spec?id=42&lang=de",
                            "https://例え.jp/テスト",
                        )
                    ),
                    "id": link_id,
                    "type": self.rng.choice(("COVERAGE", "RELATED")),
                }
                if self.chance(0.7):
                    web_link["description"] = self.rng.choice(
                        ("Design doc", "Spezifikation – v2", "Ticket in <b>Jira</b>")
                    )
                web_links.append(web_link)
            links["webLinks"] = web_links
        return links
