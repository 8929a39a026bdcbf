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

# ruff: noqa: RUF001 (the look-alike characters are the point: the data must carry real-world text)
from __future__ import annotations

import base64
import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

API = "https://api.zephyrscale.smartbear.com/v2"
JIRA = "https://acme-qa.atlassian.net"

SIZE_PRESETS: dict[str, dict[str, int]] = {
    # Fast tests.
    "tiny": {"projects": 2, "cases": 25, "executions": 80},
    # The demo.
    "small": {"projects": 2, "cases": 150, "executions": 600},
    # The benchmark.
    "bench": {"projects": 1, "cases": 5000, "executions": 20000},
}
_SIZE_FIELDS = ("projects", "cases", "executions")

_PROJECT_KEYS = ("SHOP", "PAY", "CRM", "OPS", "MOB", "DATA", "WEB", "API_GW", "HR2", "QA")
_BASE_TIME = datetime(2023, 1, 2, 8, 0, 0, tzinfo=UTC)
_TIMELINE_DAYS = 700

_CASE_SUBJECTS = (
    "login form", "password reset", "checkout with a saved card", "guest checkout", "cart totals",
    "discount codes", "invoice PDF export", "order history", "profile photo upload",
    "two-factor authentication", "session timeout", "search suggestions", "product filters",
    "wishlist sync", "refund flow", "currency conversion", "address autocomplete", "shipping rates",
    "newsletter opt-out", "GDPR data export", "audit log", "role permissions", "bulk CSV import",
    "API token rotation", "dark mode", "screen reader labels", "push notifications", "offline mode",
    "payment retries", "webhook delivery",
)  # fmt: skip
_CASE_VERBS = ("Verify", "Check", "Validate", "Ensure", "Confirm", "Regression:", "Smoke:", "Edge case:")
_ODD_CASE_NAMES = (
    "Überprüfen der Anmeldung mit SSO",
    "Vérifier l'export « factures » en PDF",
    "登录失败时显示错误信息",
    "Проверка восстановления пароля",
    "ログイン画面の表示確認",
    "Ödeme sayfası – kupon kodu",
    "🚀 Smoke: homepage loads under 2 s",
    'Check <b>bold</b> & "quoted" names render',
    "Emoji in search 🔍 returns results",
    "Tab\tseparated and trailing spaces   ",
)
_OBJECTIVES = (
    "<p>Ensure that the {subject} works for a signed-in user.</p>",
    "To ensure the {subject} behaves after the upgrade.<br>Covers REQ-{n}.",
    "Vérifier que « {subject} » fonctionne.",
    "Make sure {subject} handles <i>empty</i> input &amp; errors",
)
_PRECONDITIONS = (
    "User is logged in<br>Feature flag <code>new-ui</code> is on",
    "Test data set #3 is loaded",
    "Der Benutzer ist angemeldet.",
    "<ul><li>Admin account</li><li>Clean browser profile</li></ul>",
)
_STEP_ACTIONS = (
    "Open the <b>{screen}</b> page",
    "Enter {field} = <code>{value}</code>",
    "Click <i>Submit</i>",
    "Observe the toast message",
    "Log out and log back in",
    "Switch the language to Deutsch",
    "Rotate the device to landscape",
    "Wait 30 s for the background job to finish",
    "Open the e-mail «Willkommen»",
    "Type the user name {username} and the password {password}",
)
_STEP_SCREENS = ("Checkout", "Login", "Profile", "Admin › Users", "Bestellübersicht", "設定")
_STEP_FIELDS = ("quantity", "coupon", "e-mail", "IBAN", "Postleitzahl")
_STEP_VALUES = ("3", "SUMMER-25", "qa+1@example.com", "DE89 3704 0044 0532 0130 00", "10115")
_EXPECTED = (
    "The page loads without errors",
    "A confirmation appears:<br>“Saved”",
    "Totals are recalculated (incl. VAT 19 %)",
    "Error <code>E-401</code> is shown",
    "Nothing happens",
    "Das Formular wird gespeichert",
    "页面显示成功",
)
_TEST_DATA = (
    "username = {username}<br>password = {password}",
    "card = 4111 1111 1111 1111; cvv = 123",
    "locale=de_DE",
    "amount = 19.99 €",
)
_ACTUAL_OK = ("As expected", "Works", "OK – see screenshot")
_ACTUAL_BAD = (
    "Got HTTP 500 instead of 200<br>See the attached log",
    "Button stays disabled",
    "Total off by 0.01 €",
)
_LABELS = (
    "Regression",
    "Smoke",
    "Performance",
    "Automated",
    "Security",
    "UI",
    "API",
    "Mobile",
    "flaky",
    "needs-review",
    "Ünïcode",
)
_COMMENTS = (
    "Test failed: user could not log in",
    "Passed on second attempt<br>(network hiccup)",
    "Bloqué par l'environnement de recette",
    'See <a href="https://acme-qa.atlassian.net/browse/SHOP-12">SHOP-12</a>',
    "环境不稳定",
)
_CYCLE_NAMES = (
    "Sprint {k} regression",
    "Release 2.{k} – smoke",
    "Hotfix 2.{k}.1",
    "Nightly run #{k}",
    "Zyklus {k} (DE)",
    "回归测试 {k}",
)
_PLAN_NAMES = (
    "Release 2.{k} test plan",
    "Q{q} {year} regression plan",
    "Plan de test – lot {k}",
    "Security review {k}",
)
_CASE_FOLDER_ROOTS = (
    "Checkout",
    "Payments",
    "Accounts & Login",
    "Search",
    "Admin",
    "Mobile App",
    "Überprüfungen",
    "レガシー",
)
_CASE_FOLDER_CHILDREN = (
    "Happy path",
    "Edge cases",
    "Regression",
    "v2 API",
    "Legacy (pre-2022)",
    "Smoke",
    "Négatif",
    "Sprint {k}",
)
_CYCLE_FOLDER_ROOTS = ("Releases", "Sprints", "Hotfixes")
_CYCLE_FOLDER_CHILDREN = ("2023", "2024", "Q{q}", "Wave {k}", "Archive")
_PLAN_FOLDER_ROOTS = ("Plans", "Audits")
_PLAN_FOLDER_CHILDREN = ("2023", "2024", "Compliance", "Q{q}")

# (name, contentType, content kind) of generated attachments.
_ATTACHMENT_FILES = (
    ("screenshot.png", "image/png", "png"),
    ("Screenshot 2024-03-01 at 10.15.22.png", "image/png", "png"),
    ("console log (1).txt", "text/plain", "text"),
    ("résumé – test évidence.pdf", "application/pdf", "pdf"),
    ("测试报告.html", "text/html", "html"),
    ("empty.bin", "application/octet-stream", "empty"),
    ("data set [v2].csv", "text/csv", "csv"),
    ("trace.har", "application/json", "json"),
    ("archive (old).zip", "application/zip", "binary"),
    ("Ümlaut ößä.txt", "text/plain", "text"),
    ("no-extension", "application/octet-stream", "binary"),
)


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


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Ids:
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


class _Project:
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


class _Generator:
    def __init__(self, seed: int, sizes: dict[str, int]) -> None:
        self.seed = seed
        self.sizes = sizes
        self.rng = random.Random(f"zephyr-qtest-sandbox:{seed}")
        self.ids = _Ids()
        self.projects: list[_Project] = []
        self.doc: dict[str, Any] = {
            "_meta": {
                "generator": "zephyr_qtest.sandbox.zephyr.generator",
                "seed": seed,
                "size": sizes,
                "format": 1,
            },
            "projects": [],
            "folders": [],
            "statuses": [],
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
        return _BASE_TIME + timedelta(seconds=int(self.rng.uniform(start_day, end_day) * 86400))

    def user_link(self, project: _Project, account_id: str | None = None) -> dict[str, Any]:
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

    def fill(self, template: str, project: _Project) -> str:
        return template.format(
            subject=self.rng.choice(_CASE_SUBJECTS),
            n=self.rng.randint(1, 999),
            screen=self.rng.choice(_STEP_SCREENS),
            field=self.rng.choice(_STEP_FIELDS),
            value=self.rng.choice(_STEP_VALUES),
            username="{username}",
            password="{password}",
            k=self.rng.randint(1, 60),
            q=self.rng.randint(1, 4),
            year=self.rng.choice((2023, 2024)),
            key=project.key,
        )

    # ------------------------------------------------------------------ phases

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

    def add_project(self, index: int, shared_users: list[str]) -> None:
        key = _PROJECT_KEYS[index] if index < len(_PROJECT_KEYS) else f"P{index + 1}"
        project = _Project(index, self.ids.take("project"), key)
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
                    "statusType": status_type,
                }
                if self.chance(0.6):
                    status["description"] = f"{name} ({status_type.replace('_', ' ').lower()})"
                self.doc["statuses"].append(status)
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
        project: _Project,
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

    def add_folders(self, project: _Project) -> None:
        # About one test-case folder per dozen cases; cycle and plan trees scale with the cycles.
        case_folders = max(6, min(250, self.sizes["cases"] // 12))
        cycles = self.cycle_count()
        self.add_folder_tree(project, "TEST_CASE", case_folders, _CASE_FOLDER_ROOTS, _CASE_FOLDER_CHILDREN, 4)
        self.add_folder_tree(
            project,
            "TEST_CYCLE",
            max(4, min(60, cycles // 3)),
            _CYCLE_FOLDER_ROOTS,
            _CYCLE_FOLDER_CHILDREN,
            3,
        )
        self.add_folder_tree(
            project, "TEST_PLAN", max(3, min(20, cycles // 6)), _PLAN_FOLDER_ROOTS, _PLAN_FOLDER_CHILDREN, 3
        )

    def cycle_count(self) -> int:
        return max(2, min(250, round(self.sizes["executions"] / 40))) if self.sizes["executions"] else 0

    def custom_value(self, kind: str, project: _Project, options: tuple[str, ...] = ()) -> Any:
        rng = self.rng
        if self.chance(0.12):
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
            return (_BASE_TIME + timedelta(days=rng.randint(0, _TIMELINE_DAYS))).strftime("%Y-%m-%d")
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
        self, project: _Project, fields: tuple[tuple[str, str, tuple[str, ...]], ...]
    ) -> dict[str, Any]:
        return {name: self.custom_value(kind, project, options) for name, kind, options in fields}

    def links(self, project: _Project, owner_self: str, *, web: bool = True) -> dict[str, Any]:
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

    _CASE_FIELDS = (
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
    _CYCLE_FIELDS = (
        ("Sprint", "select", ("Sprint 1", "Sprint 2", "Sprint 3")),
        ("Build", "text", ()),
        ("Signed off", "checkbox", ()),
        ("Go-live", "date", ()),
    )
    _PLAN_FIELDS = (
        ("Budget hours", "decimal", ()),
        ("Stakeholders", "multiselect", ("QA", "Product", "Ops", "Legal")),
    )
    _EXECUTION_FIELDS = (
        ("Browser build", "text", ()),
        ("Defects found", "number", ()),
        ("Verified on", "date", ()),
        ("Flaky", "checkbox", ()),
        ("Reviewer", "user", ()),
        ("Run notes", "multiline", ()),
    )

    def add_cases(self, project: _Project) -> None:
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
                name = self.rng.choice(_ODD_CASE_NAMES)
            elif number == 7:
                name = ("Very long name " + "x" * 255)[:255]
            else:
                name = f"{self.rng.choice(_CASE_VERBS)} {self.rng.choice(_CASE_SUBJECTS)}"
            created = self.moment(0, _TIMELINE_DAYS * 0.6)
            folder = self.rng.choice(project.folders["TEST_CASE"]) if self.chance(0.95) else None
            priority = self.rng.choice(project.priorities)
            status = self.rng.choice(list(project.statuses["TEST_CASE"].values())[:3])
            case: dict[str, Any] = {
                "id": case_id,
                "key": key,
                "name": name,
                "project": project.link,
                "createdOn": _iso(created),
                "objective": self.fill(self.rng.choice(_OBJECTIVES), project) if self.chance(0.75) else None,
                "precondition": self.rng.choice(_PRECONDITIONS) if self.chance(0.5) else None,
                "estimatedTime": self.rng.randrange(30_000, 3_600_000, 1000) if self.chance(0.7) else None,
                "labels": self.rng.sample(_LABELS, self.rng.choice((0, 0, 1, 2, 3))),
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
            if script == "steps":
                case["testScript"] = {"self": f"{API}/testcases/{key}/teststeps"}
            elif script in ("plain", "bdd"):
                case["testScript"] = {"self": f"{API}/testcases/{key}/testscript"}
            case["customFields"] = self.custom_fields(project, self._CASE_FIELDS)
            case["links"] = self.links(project, f"{API}/testcases/{key}/links")
            case["_plan"] = (script, step_count, created)  # removed before the case is stored
            project.cases.append(case)
            project.case_numbers[key] = number
            self.case_by_key[key] = case

    def inline_step(self, project: _Project) -> dict[str, Any]:
        test_data = (
            self.fill(self.rng.choice(_TEST_DATA), project)
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
                "description": self.fill(self.rng.choice(_STEP_ACTIONS), project),
                "testData": test_data,
                "expectedResult": self.rng.choice(_EXPECTED) if self.chance(0.9) else None,
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

    def add_steps(self, project: _Project) -> None:
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
            subject = self.rng.choice(_CASE_SUBJECTS)
            return (
                f'Feature: {subject}\n  Scenario: works for a signed-in user\n    Given a user "Jörg" is logged in\n'
                f'    When they open the {subject}\n    Then no error is shown\n    And the page title is "Übersicht"'
            )
        return self.rng.choice(
            (
                "1. Open the app<br>2. Log in as <b>admin</b><br>3. Check the dashboard",
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

    def add_versions(self, project: _Project) -> None:
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

    def add_cycles_and_plans(self, project: _Project) -> None:
        count = self.cycle_count()
        span = _TIMELINE_DAYS / max(1, count)
        for number in range(1, count + 1):
            start = _BASE_TIME + timedelta(days=(number - 1) * span + self.rng.uniform(0, span / 3))
            end = start + timedelta(days=self.rng.randint(3, 14), hours=self.rng.randint(0, 20))
            cycle_id = self.ids.take("cycle")
            folder = self.rng.choice(project.folders["TEST_CYCLE"]) if self.chance(0.85) else None
            status_name = "Done" if number < count * 0.8 else self.rng.choice(("In Progress", "Not Executed"))
            version_id = self.rng.choice(project.jira_versions) if self.chance(0.6) else None
            cycle: dict[str, Any] = {
                "id": cycle_id,
                "key": f"{project.key}-R{number}",
                "name": self.fill(self.rng.choice(_CYCLE_NAMES), project),
                "project": project.link,
                "jiraProjectVersion": (
                    {"id": version_id, "self": f"{JIRA}/rest/api/2/version/{version_id}"}
                    if version_id
                    else None
                ),
                "status": self.status_link(project.statuses["TEST_CYCLE"][status_name]),
                "folder": {"id": folder["id"], "self": f"{API}/folders/{folder['id']}"} if folder else None,
                "description": self.rng.choice(
                    ("Regression before release<br>Scope: <b>all</b>", "Zyklus für die Abnahme", None)
                ),
                "plannedStartDate": _iso(start),
                "plannedEndDate": _iso(end),
                "owner": self.user_link(project) if self.chance(0.8) else None,
                "customFields": self.custom_fields(project, self._CYCLE_FIELDS),
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
                "name": self.fill(self.rng.choice(_PLAN_NAMES), project),
                "objective": self.rng.choice(
                    ("Cover every release blocker", "Audit <i>PCI-DSS</i> controls", None)
                ),
                "project": project.link,
                "status": self.status_link(self.rng.choice(list(project.statuses["TEST_PLAN"].values()))),
                "folder": {"id": folder["id"], "self": f"{API}/folders/{folder['id']}"} if folder else None,
                "owner": self.user_link(project) if self.chance(0.8) else None,
                "customFields": self.custom_fields(project, self._PLAN_FIELDS),
                "labels": self.rng.sample(_LABELS, self.rng.choice((0, 1, 2))),
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

    def add_executions(self, project: _Project) -> None:
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
            when = self.moment(10, _TIMELINE_DAYS)
            outcome = self.rng.choices(("Pass", "Fail", "Blocked"), (75, 20, 5))[0]
            planned.append((when, order, None, self.rng.choice(project.cases), outcome))
            order += 1
        # Oldest first: ids and keys grow with time, so "several per item, oldest to newest" holds.
        planned.sort(key=lambda item: (item[0], item[1]))
        statuses = project.statuses["TEST_EXECUTION"]
        timeline_end = _BASE_TIME + timedelta(days=_TIMELINE_DAYS)
        for number, (when, _, cycle, case, outcome) in enumerate(planned, start=1):
            execution_id = self.ids.take("execution")
            versions = self.case_versions[case["key"]]
            # Older runs executed older versions of the case.
            version_number = min(
                len(versions), 1 + int(len(versions) * (when - _BASE_TIME) / (timeline_end - _BASE_TIME))
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
                "actualEndDate": _iso(when) if finished or self.chance(0.2) else None,
                "estimatedTime": case.get("estimatedTime"),
                "executionTime": self.rng.randrange(5_000, 1_800_000, 1000)
                if finished and self.chance(0.85)
                else None,
                "executedById": None if automated or not finished else self.rng.choice(project.users),
                "assignedToId": self.rng.choice(project.users) if self.chance(0.6) else None,
                "comment": (
                    f"Automated run via CI #{self.rng.randint(100, 9999)}"
                    if automated
                    else self.rng.choice(_COMMENTS)
                    if self.chance(0.3)
                    else None
                ),
                "automated": automated,
                "testCycle": {"id": cycle["id"], "self": f"{API}/testcycles/{cycle['id']}"}
                if cycle
                else None,
                "customFields": self.custom_fields(project, self._EXECUTION_FIELDS),
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

    def execution_steps(
        self, case_key: str, outcome: str, statuses: dict[str, dict[str, Any]]
    ) -> list[dict[str, Any]]:
        flat = self.flattened_steps(case_key, {})
        if not flat:
            return []
        count = len(flat)
        stop = self.rng.randrange(count)  # where a failed / blocked / unfinished run stopped
        result = []
        for position, step in enumerate(flat):
            if outcome in ("Pass", "Retest"):
                status, actual = "Pass", self.rng.choice(_ACTUAL_OK) if self.chance(0.3) else None
            elif outcome == "Not Executed" or position > stop:
                status, actual = "Not Executed", None
            elif position < stop:
                status, actual = "Pass", None
            elif outcome in ("Fail", "Blocked"):
                status, actual = outcome, self.rng.choice(_ACTUAL_BAD)
            else:
                status, actual = "In Progress", None
            result.append(
                {
                    "id": self.ids.take("execution_step"),
                    "inline": {
                        **step,
                        "actualResult": actual,
                        "testDataRowNumber": None,
                        "reflectRef": None,
                        "status": self.status_link(statuses[status]),
                    },
                }
            )
        return result

    # ------------------------------------------------------------------ attachments

    def attachment_content(self, kind: str) -> bytes:
        rng = self.rng
        if kind == "empty":
            return b""
        size = rng.randint(60_000, 200_000) if self.chance(0.03) else rng.randint(20, 4000)
        if kind == "png":
            return b"\x89PNG\r\n\x1a\n" + rng.randbytes(size)
        if kind == "pdf":
            return b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rng.randbytes(size)
        if kind == "binary":
            return rng.randbytes(size)
        if kind == "csv":
            rows = [
                "id;name;amount",
                *(f"{i};Jörg {i};{rng.randint(1, 999)}.{rng.randint(0, 99):02d}" for i in range(size // 20)),
            ]
            return "\n".join(rows).encode("utf-8")
        if kind == "json":
            return (
                '{"log": {"version": "1.2", "entries": [' + ",".join("{}" for _ in range(size // 3)) + "]}}"
            ).encode()
        if kind == "html":
            return ("<html><body><h1>测试报告</h1>" + "<p>OK ✓</p>" * (size // 12) + "</body></html>").encode(
                "utf-8"
            )
        lines = [f"{i:05d} INFO step {i} passed – ü ✓" for i in range(max(1, size // 30))]
        return "\n".join(lines).encode("utf-8")

    def attach(self, owner: str, max_files: int) -> None:
        files = []
        for _ in range(self.rng.randint(1, max_files)):
            name, content_type, kind = self.rng.choice(_ATTACHMENT_FILES)
            data = self.attachment_content(kind)
            files.append(
                {
                    "id": self.ids.take("attachment"),
                    "name": name,
                    "contentType": content_type,
                    "base64": base64.b64encode(data).decode("ascii"),
                }
            )
        self.doc["attachments"][owner] = files

    def pick(self, items: list[Any], fraction: float) -> list[Any]:
        """A minority of ``items`` (at least one when there are any), in their original order."""
        if not items:
            return []
        count = max(1, round(len(items) * fraction))
        chosen = set(self.rng.sample(range(len(items)), min(count, len(items))))
        return [item for index, item in enumerate(items) if index in chosen]

    def add_attachments(self) -> None:
        for project in self.projects:
            for case in self.pick(project.cases, 0.06):
                self.attach(f"testcases/{case['key']}", 3)
            steps = [
                (case["key"], step["id"])
                for case in project.cases
                for step in self.doc["teststeps"].get(case["key"], [])
            ]
            for key, step_id in self.pick(steps, 0.01):
                self.attach(f"testcases/{key}/teststeps/{step_id}", 2)
            for cycle in self.pick(project.cycles, 0.15):
                self.attach(f"testcycles/{cycle['key']}", 2)
            for plan in self.pick(project.plans, 0.15):
                self.attach(f"testplans/{plan['key']}", 2)
            for execution in self.pick(project.executions, 0.03):
                self.attach(f"testexecutions/{execution['id']}", 2)
            with_steps = [e for e in project.executions if str(e["id"]) in self.doc["testexecution_steps"]]
            for execution in self.pick(with_steps, 0.005):
                step = self.rng.choice(self.doc["testexecution_steps"][str(execution["id"])])
                self.attach(f"testexecutions/{execution['key']}/teststeps/{step['id']}", 1)


def generate(seed: int = 0, size: str | Mapping[str, Any] = "small") -> dict[str, Any]:
    """A whole Zephyr tenant for ``seed`` and ``size`` (a preset name or a dict of overrides), in
    the fixture format; the same arguments always give the same document."""
    return _Generator(seed, resolve_size(size)).build()
