"""The dry run: what publishing a project would write into qTest, computed by the publishing code itself.

Every publishing stage runs as in a real run (``loader.publish_stage``: field setup, the registry of kinds,
the exactly-once protocol of ``exactly_once.py`` deciding skip / update / look up / create from the id map
and the payload hashes), with two things put in place of the ones that write:

- `PlanningClient`, a `QtestClient` whose reads go to qTest and whose writes are recorded, never sent: each
  write method answers with a made-up object (ids from `MADE_UP_ID_BASE` up, never a real qTest id) shaped
  as qTest answers, and the reads that later ask about a made-up object (a case's steps after its approval,
  a run's logs after a bulk submission, the fields after their creation) answer from what was made up. Any
  other write that reaches the HTTP layer is refused (`PlanWriteRefused`): a dry run sends no write, even
  from code written after this module.
- `PlannedIdMap`, the project's id map read once from ``migration.id_map`` and kept in memory: the protocol
  records pending / done / failed there, so nothing is written to the staging database either.

The plan is then the difference between the id map before and after (`ObjectPlan` per object type: created,
updated, adopted, unchanged, failed, left pending), the fields and allowed values the field setup would
make, and the write requests recorded (moves and uploads among them). Since the decisions are the real
run's, a real run after the plan, on the same marts and the same qTest, creates what the plan says.

What a plan cannot know: a qTest project that does not exist yet (the run would create it) has no fields
or statuses to read, so its plan assumes none (the plan says so); and where qTest's bulk auto-test-logs
queue would put a log whose run cannot be found, the plan leaves that log pending.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zephyr_qtest.lib.markdown import cell
from zephyr_qtest.lib.qtest.client import QtestClient, quote_search_value
from zephyr_qtest.lib.qtest.exactly_once import PublishSummary
from zephyr_qtest.lib.qtest.field_setup import FieldSetup
from zephyr_qtest.lib.qtest.id_map import Entry, site_of
from zephyr_qtest.lib.qtest.kinds import stages
from zephyr_qtest.lib.qtest.kinds.base import AUTOMATION_CONTENT_LABEL
from zephyr_qtest.lib.qtest.kinds.vocabulary import OBJECT_TYPES, PROJECT
from zephyr_qtest.lib.qtest.loader import publish_stage
from zephyr_qtest.lib.qtest.rollback import ALLOWED_VALUE, DEFAULT_MODULE, FIELD

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import Store

# Ids the planner makes up start here: far above any id a qTest site hands out (they are bigints).
MADE_UP_ID_BASE = 9_000_000_000_000
# Failures a plan names (the others are counted).
FAILURES_NAMED = 50


class PlanWriteRefused(RuntimeError):
    """A write reached the HTTP layer of a planning client: a dry run never sends one."""


def _pid(prefix: str, object_id: int) -> str:
    return f"{prefix}-{object_id}"


class PlanningClient(QtestClient):
    """A `QtestClient` that reads qTest and records, instead of sending, every write (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_id = MADE_UP_ID_BASE
        # "METHOD what" -> how many requests the real run would send.
        self.writes: Counter[str] = Counter()
        self.upload_bytes = 0
        self.made_projects: dict[int, str] = {}
        # (project, field object type) -> fields made up; (object type, field id) -> values added.
        self.made_fields: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
        self.added_values: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        # Test cases as the planned writes left them (made up, or real ones written): id -> case.
        self.cases: dict[int, dict[str, Any]] = {}
        self.case_by_content: dict[str, int] = {}
        # The test-case field Automation Content of each project (a system field, or one made up).
        self.content_fields: dict[int, int] = {}
        self.cycle_parent: dict[int, int] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.logs_by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.logs: dict[int, dict[str, Any]] = {}
        self.links: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.jobs: set[int] = set()
        self.statuses: dict[int, dict[str, int]] = {}

    # ------------------------------------------------------------------------------------ helpers

    def made_up(self, object_id: Any) -> bool:
        try:
            return int(object_id) >= MADE_UP_ID_BASE
        except (TypeError, ValueError):
            return False

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _write(self, method: str, what: str, count: int = 1) -> None:
        self.writes[f"{method} {what}"] += count

    async def request(self, method: str, path_or_url: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        # The search endpoint is a read sent as a POST; anything else but a GET would write.
        if method.upper() != "GET" and not str(path_or_url).rstrip("/").endswith("/search"):
            raise PlanWriteRefused(f"a dry run sends no {method.upper()} ({path_or_url})")
        return await super().request(method, path_or_url, **kwargs)

    # ----------------------------------------------------------------------------------- projects

    async def list_projects(self) -> list[dict]:
        made = [{"id": pid, "name": name} for pid, name in self.made_projects.items()]
        return [*(await super().list_projects()), *made]

    async def create_project(self, name: str, description: str = "") -> dict:
        self._write("POST", "projects")
        project_id = self._new_id()
        self.made_projects[project_id] = name
        return {"id": project_id, "name": name, "description": description}

    async def list_users(self, project_id: int) -> list[dict]:
        return [] if self.made_up(project_id) else await super().list_users(project_id)

    async def execution_statuses(self, project_id: int) -> list[dict]:
        if self.made_up(project_id):
            return []
        statuses = await super().execution_statuses(project_id)
        self.statuses[project_id] = {str(s["name"]).lower(): int(s["id"]) for s in statuses}
        return statuses

    # ----------------------------------------------------------------------------------- fields

    async def get_fields(
        self, project_id: int, object_type: str, *, include_inactive: bool = False
    ) -> list[dict]:
        real = (
            []
            if self.made_up(project_id)
            else await super().get_fields(project_id, object_type, include_inactive=include_inactive)
        )
        fields = []
        for resource in real:
            added = self.added_values.get((object_type, int(resource["id"])))
            if added:
                resource = {**resource, "allowed_values": [*(resource.get("allowed_values") or []), *added]}
            fields.append(resource)
        fields += [dict(made) for made in self.made_fields[(project_id, object_type)]]
        if object_type == "test-cases":
            for resource in fields:
                if str(resource.get("label") or "").strip().lower() == AUTOMATION_CONTENT_LABEL.lower():
                    self.content_fields[project_id] = int(resource["id"])
        return fields

    async def create_field(self, project_id: int, object_type: str, body: Mapping[str, Any]) -> dict:
        self._write("POST", f"settings/{object_type}/fields")
        resource = {
            "id": self._new_id(),
            "label": body["label"],
            "data_type": body["data_type"],
            "multiple": bool(body.get("multiple")),
            "system_field": False,
            "is_active": True,
            "allowed_values": [
                {"value": self._new_id(), "label": value["label"], "is_active": True}
                for value in body.get("allowed_values") or []
            ],
        }
        self.made_fields[(project_id, object_type)].append(resource)
        return dict(resource)

    async def add_allowed_values(
        self, project_id: int, object_type: str, field_id: int, labels: Sequence[str]
    ) -> None:
        self._write("POST", f"settings/{object_type}/fields/allowed-values")
        values = [{"value": self._new_id(), "label": label, "is_active": True} for label in labels]
        for made in self.made_fields[(project_id, object_type)]:
            if made["id"] == field_id:
                made["allowed_values"] = [*made["allowed_values"], *values]
                return
        self.added_values[(object_type, field_id)].extend(values)

    # ---------------------------------------------------------------------------------- modules

    async def list_modules(
        self, project_id: int, *, parent_id: int | None = None, descendants: bool = False
    ) -> list[dict]:
        if self.made_up(project_id) or self.made_up(parent_id):
            return []
        return await super().list_modules(project_id, parent_id=parent_id, descendants=descendants)

    async def create_module(self, project_id: int, body: Mapping[str, Any], parent_id: int | None) -> dict:
        self._write("POST", "modules")
        return {"id": self._new_id(), "name": body.get("name"), "parent_id": parent_id}

    async def update_module(self, project_id: int, module_id: int, body: Mapping[str, Any]) -> dict:
        self._write("PUT", "modules")
        return {"id": module_id, **body}

    # -------------------------------------------------------------------------------- test cases

    def _content_of(self, project_id: int, body: Mapping[str, Any]) -> str | None:
        """The Automation Content a case body sets (the bulk endpoint finds cases by it)."""
        field_id = self.content_fields.get(project_id)
        for prop in body.get("properties") or []:
            if field_id is not None and int(prop.get("field_id") or 0) == field_id:
                return str(prop.get("field_value"))
        return None

    def _case_answer(self, project_id: int, case_id: int, body: Mapping[str, Any], version: str) -> dict:
        steps = [
            {**step, "id": self._new_id(), "order": order}
            for order, step in enumerate(body.get("test_steps") or [], start=1)
        ]
        previous = self.cases.get(case_id, {})
        versions = [*previous.get("_versions", [])]
        case = {
            **{key: value for key, value in body.items() if key != "test_steps"},
            "id": case_id,
            "pid": _pid("TC", case_id),
            "version": version,
            "test_case_version_id": self._new_id(),
            "test_steps": steps,
        }
        versions.append({"test_case_version_id": case["test_case_version_id"], "version": version})
        case["_versions"] = versions
        self.cases[case_id] = case
        if (content := self._content_of(project_id, body)) is not None:
            self.case_by_content[content] = case_id
        return _public(case)

    async def create_test_case(self, project_id: int, body: Mapping[str, Any]) -> dict:
        self._write("POST", "test-cases")
        return self._case_answer(project_id, self._new_id(), body, "0.1")

    async def update_test_case(self, project_id: int, test_case_id: int, body: Mapping[str, Any]) -> dict:
        self._write("PUT", "test-cases")
        major = str(self.cases.get(test_case_id, {}).get("version") or "1.0").split(".")[0]
        return self._case_answer(project_id, test_case_id, body, f"{major}.1")

    async def approve_test_case(self, project_id: int, test_case_id: int) -> dict:
        self._write("PUT", "test-cases/approve")
        case = self.cases.get(test_case_id)
        if case is None:
            case = await super().get_test_case(project_id, test_case_id)
        major = int(str(case.get("version") or "0").split(".")[0] or 0) + 1
        return self._case_answer(project_id, test_case_id, case, f"{major}.0")

    async def get_test_case(
        self, project_id: int, test_case_id: int | str, *, with_steps: bool = True
    ) -> dict:
        if str(test_case_id).isdigit() and int(test_case_id) in self.cases:
            return _public(self.cases[int(test_case_id)])
        return await super().get_test_case(project_id, test_case_id, with_steps=with_steps)

    async def list_test_case_versions(self, project_id: int, test_case_id: int) -> list[dict]:
        if test_case_id in self.cases:
            real = (
                []
                if self.made_up(test_case_id)
                else await super().list_test_case_versions(project_id, test_case_id)
            )
            return [*real, *self.cases[test_case_id]["_versions"]]
        return await super().list_test_case_versions(project_id, test_case_id)

    # ----------------------------------------------------------------------- releases and cycles

    async def create_release(self, project_id: int, body: Mapping[str, Any]) -> dict:
        self._write("POST", "releases")
        release_id = self._new_id()
        return {"id": release_id, "pid": _pid("RL", release_id), "name": body.get("name")}

    async def update_release(self, project_id: int, release_id: int, body: Mapping[str, Any]) -> dict:
        self._write("PUT", "releases")
        return {"id": release_id, **body}

    async def list_releases(self, project_id: int) -> list[dict]:
        return [] if self.made_up(project_id) else await super().list_releases(project_id)

    async def create_test_cycle(
        self, project_id: int, body: Mapping[str, Any], *, parent_id: int, parent_type: str
    ) -> dict:
        self._write("POST", "test-cycles")
        cycle_id = self._new_id()
        self.cycle_parent[cycle_id] = parent_id
        return {"id": cycle_id, "pid": _pid("CL", cycle_id), "name": body.get("name")}

    async def update_test_cycle(
        self,
        project_id: int,
        cycle_id: int,
        body: Mapping[str, Any],
        *,
        parent_id: int | None = None,
        parent_type: str | None = None,
    ) -> dict:
        # With a parent the PUT places the cycle there (a move when its parent changed).
        self._write("PUT", "test-cycles" if parent_type is None else "test-cycles (placed)")
        if parent_id is not None:
            self.cycle_parent[cycle_id] = parent_id
        return {"id": cycle_id, **body}

    async def list_test_cycles(
        self, project_id: int, *, parent_id: int = 0, parent_type: str = "root", descendants: bool = False
    ) -> list[dict]:
        if self.made_up(project_id) or self.made_up(parent_id):
            return []
        return await super().list_test_cycles(
            project_id, parent_id=parent_id, parent_type=parent_type, descendants=descendants
        )

    # --------------------------------------------------------------------------------- test runs

    async def create_test_run(
        self, project_id: int, body: Mapping[str, Any], *, parent_id: int, parent_type: str
    ) -> dict:
        self._write("POST", "test-runs")
        run_id = self._new_id()
        case_id = (body.get("test_case") or {}).get("id")
        run = {"id": run_id, "pid": _pid("TR", run_id), "name": body.get("name"), "parentId": parent_id,
               "testCaseId": case_id}  # fmt: skip
        self.runs[run_id] = run
        return dict(run)

    async def update_test_run(self, project_id: int, run_id: int, body: Mapping[str, Any]) -> dict:
        self._write("PUT", "test-runs")
        return {"id": run_id, **body}

    async def move_test_run(self, project_id: int, run_id: int, parent_id: int, parent_type: str) -> dict:
        self._write("PUT", "test-runs (moved)")
        if run_id in self.runs:
            self.runs[run_id]["parentId"] = parent_id
        return {"id": run_id, "parentId": parent_id}

    async def iter_test_runs(
        self, project_id: int, *, parent_id: int = 0, parent_type: str = "root", descendants: bool = False
    ) -> AsyncIterator[dict]:
        if not (self.made_up(project_id) or self.made_up(parent_id)):
            async for run in super().iter_test_runs(
                project_id, parent_id=parent_id, parent_type=parent_type, descendants=descendants
            ):
                yield run
        for run in self.runs.values():
            if run["parentId"] == parent_id:
                yield dict(run)

    # --------------------------------------------------------------------------------- test logs

    def _log_answer(self, run_id: int, log_id: int, body: Mapping[str, Any]) -> dict:
        step_logs = [
            {**step, "id": self._new_id(), "test_step_log_id": None}
            for step in body.get("test_step_logs") or []
        ]
        for step in step_logs:
            step["test_step_log_id"] = step["id"]
        log = {**body, "id": log_id, "test_step_logs": step_logs}
        self.logs[log_id] = log
        if all(existing["id"] != log_id for existing in self.logs_by_run[run_id]):
            self.logs_by_run[run_id].append(log)
        return dict(log)

    async def create_test_log(self, project_id: int, run_id: int, body: Mapping[str, Any]) -> dict:
        self._write("POST", "test-logs")
        return self._log_answer(run_id, self._new_id(), body)

    async def update_test_log(
        self, project_id: int, run_id: int, log_id: int, body: Mapping[str, Any]
    ) -> dict:
        self._write("PUT", "test-logs")
        return self._log_answer(run_id, log_id, body)

    async def get_test_log(self, project_id: int, run_id: int, log_id: int) -> dict:
        if log_id in self.logs:
            return dict(self.logs[log_id])
        return await super().get_test_log(project_id, run_id, log_id)

    async def iter_test_logs(self, project_id: int, run_id: int) -> AsyncIterator[dict]:
        if not (self.made_up(project_id) or self.made_up(run_id)):
            async for log in super().iter_test_logs(project_id, run_id):
                yield log
        for log in self.logs_by_run.get(run_id, []):
            yield dict(log)

    async def _case_of_content(self, project_id: int, content: str) -> int | None:
        if content in self.case_by_content:
            return self.case_by_content[content]
        if self.made_up(project_id):
            return None
        query = f"'{AUTOMATION_CONTENT_LABEL}' = '{quote_search_value(content)}'"
        found = await self.search(project_id, "test-cases", query)
        return int(found[0]["id"]) if found else None

    def _under(self, cycle_id: Any, ancestor: int) -> bool:
        seen: set[int] = set()
        while cycle_id is not None and cycle_id not in seen:
            if cycle_id == ancestor:
                return True
            seen.add(cycle_id)
            cycle_id = self.cycle_parent.get(cycle_id)
        return False

    async def _run_for(self, project_id: int, test_cycle: int, case_id: int | None) -> int | None:
        """The run under `test_cycle` (at any depth) of the case: where the bulk endpoint puts its log."""
        for run in self.runs.values():
            if run["testCaseId"] == case_id and self._under(run["parentId"], test_cycle):
                return int(run["id"])
        if self.made_up(project_id) or self.made_up(test_cycle) or case_id is None:
            return None
        async for run in super().iter_test_runs(
            project_id, parent_id=test_cycle, parent_type="test-cycle", descendants=True
        ):
            if int(run.get("testCaseId") or (run.get("test_case") or {}).get("id") or 0) == case_id:
                return int(run["id"])
        return None

    async def submit_auto_test_logs(self, project_id: int, body: Mapping[str, Any]) -> dict:
        """Recorded; each log made up on the run qTest would put it on (found as the endpoint finds it:
        the case by its Automation Content, its run under the submission's cycle), status as the
        project's Automation Settings map the name (qTest's defaults: the status of the same name)."""
        self._write("POST", "auto-test-logs")
        statuses = self.statuses.get(project_id, {})
        for item in body.get("test_logs") or []:
            case_id = await self._case_of_content(project_id, str(item.get("automation_content")))
            run_id = await self._run_for(project_id, int(body["test_cycle"]), case_id)
            if run_id is None:
                continue  # left pending by the protocol: the plan cannot say where qTest puts it
            status_id = statuses.get(str(item.get("status")).lower())
            log = {**item, "status": {"id": status_id}, "automation": True}
            log["test_step_logs"] = [
                {**step, "status": {"id": statuses.get(str(step.get("status")).lower())}}
                for step in item.get("test_step_logs") or []
            ]
            self._log_answer(run_id, self._new_id(), log)
        job_id = self._new_id()
        self.jobs.add(job_id)
        return {"id": job_id, "type": "AUTOMATION_TEST_LOG", "state": "PENDING"}

    async def wait_for_queue(self, queue_id: int, **kwargs: Any) -> dict:
        if queue_id in self.jobs:
            return {"id": queue_id, "state": "SUCCESS", "content": "{}"}
        return await super().wait_for_queue(queue_id, **kwargs)

    # ------------------------------------------------------------------------------- attachments

    async def upload_attachment(
        self, project_id: int, object_type: str, object_id: int, name: str, content_type: str, content: bytes
    ) -> dict:
        self._write("POST", f"{object_type}/blob-handles")
        self.upload_bytes += len(content)
        attachment_id = self._new_id()
        # Shaped as qTest answers (swagger AttachmentResource): an inline image's text points at its web_url.
        web_url = (
            f"{self.site_url}/p/{project_id}/portal/attachment/{object_type}/attachmentId/{attachment_id}"
        )
        return {"id": attachment_id, "name": name, "content_type": content_type, "web_url": web_url}

    async def delete_attachment(
        self, project_id: int, object_type: str, object_id: int, blob_id: int
    ) -> None:
        self._write("DELETE", f"{object_type}/blob-handles")

    async def list_attachments(self, project_id: int, object_type: str, object_id: int) -> list[dict]:
        if self.made_up(project_id) or self.made_up(object_id):
            return []
        return await super().list_attachments(project_id, object_type, object_id)

    # ------------------------------------------------------------------------ requirements, links

    async def create_requirement(self, project_id: int, body: Mapping[str, Any]) -> dict:
        self._write("POST", "requirements")
        requirement_id = self._new_id()
        return {"id": requirement_id, "pid": _pid("RQ", requirement_id), "name": body.get("name")}

    async def update_requirement(self, project_id: int, requirement_id: int, body: Mapping[str, Any]) -> dict:
        self._write("PUT", "requirements")
        return {"id": requirement_id, **body}

    async def list_requirements(self, project_id: int, *, external_properties: bool = False) -> list[dict]:
        if self.made_up(project_id):
            return []
        return await super().list_requirements(project_id, external_properties=external_properties)

    async def link_artifacts(
        self, project_id: int, object_type: str, object_id: int, linked_type: str, linked_ids: Sequence[int]
    ) -> list[dict]:
        self._write("POST", f"{object_type}/link")
        prefix = {"test-cases": "TC", "test-runs": "TR"}.get(linked_type, "OB")
        for linked in linked_ids:
            self.links[object_id].append({"id": linked, "pid": _pid(prefix, linked)})
        return [{"id": object_id, "objects": list(self.links[object_id])}]

    async def linked_artifacts(self, project_id: int, object_type: str, ids: Sequence[int]) -> list[dict]:
        real_ids = [i for i in ids if not self.made_up(i)]
        answer = (
            await super().linked_artifacts(project_id, object_type, real_ids)
            if real_ids and not self.made_up(project_id)
            else []
        )
        by_id = {int(container["id"]): container for container in answer}
        for object_id in ids:
            if self.links.get(object_id):
                container = by_id.setdefault(object_id, {"id": object_id, "objects": []})
                container["objects"] = [*(container.get("objects") or []), *self.links[object_id]]
        return list(by_id.values())


def _public(case: Mapping[str, Any]) -> dict:
    return {key: value for key, value in case.items() if not key.startswith("_")}


class PlannedIdMap:
    """A project's id map read once from ``migration.id_map`` and kept in memory: what the protocol records
    during a plan stays here (the `IdMap` interface the loader and the kinds use)."""

    def __init__(self, project_key: str, target_site: str, rows: Mapping[tuple[str, str], Entry]) -> None:
        self.project_key = project_key
        self.target_site = target_site
        self.qtest_project_id: int | None = None
        self.before: dict[tuple[str, str], Entry] = dict(rows)
        self.entries: dict[tuple[str, str], Entry] = dict(rows)
        self.errors: dict[tuple[str, str], str] = {}

    @classmethod
    async def read(cls, store: Store, project_key: str, site_url: str) -> PlannedIdMap:
        site = site_of(site_url)
        rows: dict[tuple[str, str], Entry] = {}
        conn = await store.connect_async(autocommit=True)
        try:
            exists = await (await conn.execute("select to_regclass('migration.id_map')")).fetchone()
            if exists and exists[0]:
                cursor = await conn.execute(
                    "select object_type, source_key, qtest_id, payload_hash, state, detail "
                    "from migration.id_map where target_site = %s and project_key = %s",
                    (site, project_key),
                )
                for object_type, key, qtest_id, payload_hash, state, detail in await cursor.fetchall():
                    rows[(object_type, key)] = Entry(qtest_id, payload_hash, state, detail or {})
        finally:
            await conn.close()
        return cls(project_key, site, rows)

    # The IdMap interface (nothing is written anywhere).
    async def become_sole_writer(self, writer: Any) -> None:
        return None

    async def rows_without_site(self) -> tuple[int, Entry | None]:
        return 0, None

    async def adopt_rows_without_site(self) -> int:
        return 0

    async def close(self) -> None:
        return None

    async def load(self, object_type: str) -> dict[str, Entry]:
        return {key: entry for (kind, key), entry in self.entries.items() if kind == object_type}

    def _set(self, object_type: str, key: str, entry: Entry) -> None:
        self.entries[(object_type, key)] = entry

    async def pending(self, object_type: str, source_key: str, payload_hash: str) -> None:
        old = self.entries.get((object_type, source_key))
        self._set(object_type, source_key, Entry(old.qtest_id if old else None, payload_hash, "pending",
                                                 old.detail if old else {}))  # fmt: skip

    async def pending_many(self, object_type: str, rows: Sequence[tuple[str, str]]) -> None:
        for key, payload_hash in rows:
            await self.pending(object_type, key, payload_hash)

    async def note_pending(
        self, object_type: str, source_keys: Sequence[str], detail: Mapping[str, Any]
    ) -> None:
        for key in source_keys:
            old = self.entries.get((object_type, key))
            if old is not None and old.state == "pending":
                self._set(object_type, key, Entry(old.qtest_id, old.payload_hash, "pending",
                                                  {**old.detail, **detail}))  # fmt: skip

    async def done(
        self,
        object_type: str,
        source_key: str,
        qtest_id: int,
        payload_hash: str | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        old = self.entries.get((object_type, source_key))
        kept = dict(detail) if detail else (dict(old.detail) if old else {})
        self._set(object_type, source_key, Entry(qtest_id, payload_hash, "done", kept))

    async def done_many(self, object_type: str, rows: Sequence[tuple[str, int, str | None]]) -> None:
        for key, qtest_id, payload_hash in rows:
            await self.done(object_type, key, qtest_id, payload_hash)

    async def failed(self, object_type: str, source_key: str, payload_hash: str | None, error: str) -> None:
        self._set(object_type, source_key, Entry(None, payload_hash, "failed"))
        self.errors[(object_type, source_key)] = error


class _PlanningStore:
    """The store as ``publish_stage`` uses it, with the in-memory id map in place of the database's."""

    def __init__(self, store: Store, id_map: PlannedIdMap) -> None:
        self._store = store
        self._id_map = id_map

    def marts(self) -> Any:
        return self._store.marts()

    async def open_id_map(self, project_key: str, target_site: str) -> PlannedIdMap:
        return self._id_map


@dataclass
class ObjectPlan:
    """What the run would do to the objects of one id-map type."""

    create: int = 0
    update: int = 0
    # Pending in the id map and found in qTest: recorded, not sent again.
    adopt: int = 0
    unchanged: int = 0
    fail: int = 0
    # Left pending (the plan cannot tell whether qTest would make it: see the module).
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class ProjectPlan:
    """The plan of one project: its qTest target, the objects per type, the fields, the write requests."""

    project_key: str
    site: str
    qtest_project_id: int | None = None
    qtest_project_exists: bool = True
    objects: dict[str, ObjectPlan] = field(default_factory=dict)
    fields_to_create: list[dict[str, Any]] = field(default_factory=list)
    values_to_add: list[dict[str, Any]] = field(default_factory=list)
    fields_not_created: list[str] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=dict)
    upload_bytes: int = 0
    not_uploaded: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    failed_total: int = 0
    properties_not_set: list[dict[str, Any]] = field(default_factory=list)

    @property
    def creates(self) -> dict[str, int]:
        return {name: plan.create for name, plan in self.objects.items() if plan.create}

    @property
    def write_requests(self) -> int:
        return sum(self.writes.values())

    @property
    def moves(self) -> int:
        return self.writes.get("PUT test-runs (moved)", 0)

    @property
    def uploads(self) -> int:
        return sum(count for what, count in self.writes.items() if what.endswith("/blob-handles")
                   and what.startswith("POST"))  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "project_key": self.project_key,
            "qtest_site": self.site,
            "qtest_project_id": self.qtest_project_id,
            "qtest_project_exists": self.qtest_project_exists,
            "objects": {name: plan.as_dict() for name, plan in self.objects.items()},
            "fields_to_create": self.fields_to_create,
            "allowed_values_to_add": self.values_to_add,
            "fields_not_created": self.fields_not_created,
            "write_requests": dict(sorted(self.writes.items())),
            "moves": self.moves,
            "uploads": self.uploads,
            "upload_bytes": self.upload_bytes,
            "not_uploaded": self.not_uploaded,
            "failed": self.failed_total,
            "failures": self.failures,
            "properties_not_set": self.properties_not_set,
        }

    def lines(self) -> list[str]:
        """The plan as text, for the terminal."""
        target = (
            f"qTest project {self.qtest_project_id}"
            if self.qtest_project_exists
            else "a new qTest project (created by the run; its template's fields and statuses are unknown "
            "to the plan)"
        )
        out = [f"plan for {self.project_key} -> {target} on {self.site}: "
               f"{self.write_requests} write requests"]  # fmt: skip
        out.append(f"  {'object type':<20}{'create':>8}{'update':>8}{'adopt':>8}{'unchanged':>11}{'fail':>6}"
                   f"{'pending':>9}")  # fmt: skip
        for name, plan in self.objects.items():
            out.append(
                f"  {name:<20}{plan.create:>8}{plan.update:>8}{plan.adopt:>8}{plan.unchanged:>11}"
                f"{plan.fail:>6}{plan.pending:>9}"
            )
        out.append(f"  moves: {self.moves}; uploads: {self.uploads} ({self.upload_bytes} bytes); "
                   f"not uploaded (over qTest's cap, or no owner type): {self.not_uploaded}")  # fmt: skip
        for created in self.fields_to_create:
            values = f"; allowed values: {', '.join(created['values'])}" if created["values"] else ""
            out.append(f"  field to create: {created['object_type']} '{created['label']}' "
                       f"({created['data_type']}{values})")  # fmt: skip
        for added in self.values_to_add:
            out.append(f"  allowed values to add to {added['object_type']} '{added['label']}': "
                       f"{', '.join(added['values'])}")  # fmt: skip
        for line in self.fields_not_created:
            out.append(f"  {line}")
        for problem in self.properties_not_set:
            out.append(f"  not set: {problem['object_type']} '{problem['label']}' on {problem['objects']} "
                       f"objects ({problem['reason']})")  # fmt: skip
        for failure in self.failures[:10]:
            out.append(
                f"  would fail: {failure['object_type']} {failure['source_key']}: {failure['reason'][:200]}"
            )
        if self.failed_total > 10:
            out.append(f"  ... {self.failed_total - 10} more failures in the plan file")
        return out

    def markdown(self) -> str:
        rows = [f"## {cell(self.project_key)}", "",
                "| object type | create | update | adopt | unchanged | fail | pending |",
                "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        rows += [
            f"| {name} | {p.create} | {p.update} | {p.adopt} | {p.unchanged} | {p.fail} | {p.pending} |"
            for name, p in self.objects.items()
        ]
        rows += ["", "| write request | count |", "|---|---:|"]
        rows += [f"| {cell(what)} | {count} |" for what, count in sorted(self.writes.items())]
        return "\n".join(rows)


def _classify(before: Entry | None, after: Entry | None, made_up: Any) -> str | None:
    if after is None:
        return None
    if after.state == "failed":
        return "fail" if before is None or before != after else "unchanged"
    if after.state == "pending":
        return "pending"
    if before is not None and before.state == "done" and before.qtest_id is not None:
        return "unchanged" if before == after else "update"
    return "create" if made_up(after.qtest_id) else "adopt"


def plan_from(
    project_key: str,
    id_map: PlannedIdMap,
    client: PlanningClient,
    summaries: Sequence[PublishSummary],
    setups: Sequence[FieldSetup],
    problems: Counter[tuple[str, str, str]],
) -> ProjectPlan:
    """The plan: the id map before against after, the fields the setups made, the writes recorded."""
    plan = ProjectPlan(project_key, id_map.target_site, id_map.qtest_project_id)
    plan.qtest_project_exists = not client.made_up(id_map.qtest_project_id)
    by_type: dict[str, ObjectPlan] = {t.name: ObjectPlan() for t in OBJECT_TYPES if t is not PROJECT}
    for (object_type, key), after in id_map.entries.items():
        if object_type in (PROJECT.name, FIELD, ALLOWED_VALUE, DEFAULT_MODULE):
            continue  # the project is the target; the fields are planned apart (fields_to_create)
        action = _classify(id_map.before.get((object_type, key)), after, client.made_up)
        if action is None:
            continue
        target = by_type.setdefault(object_type, ObjectPlan())
        setattr(target, action, getattr(target, action) + 1)
        if action == "fail":
            plan.failed_total += 1
            if len(plan.failures) < FAILURES_NAMED:
                reason = id_map.errors.get((object_type, key), "")
                plan.failures.append({"object_type": object_type, "source_key": key, "reason": reason})
    plan.objects = {name: counts for name, counts in by_type.items() if any(counts.as_dict().values())}
    for setup in setups:
        plan.fields_to_create += [
            {"object_type": need.object_type, "label": need.label, "data_type": need.type_name,
             "values": list(need.values)}
            for need, _ in setup.created
        ]  # fmt: skip
        plan.values_to_add += [
            {"object_type": object_type, "label": label, "values": list(values)}
            for object_type, label, values in setup.values_added
        ]
        plan.fields_not_created += (
            setup.lines()
            if not setup.changed
            else [line for line in setup.lines() if not line.startswith(("created", "added"))]
        )
    plan.writes = dict(client.writes)
    plan.upload_bytes = client.upload_bytes
    plan.not_uploaded = sum(len(summary.not_uploaded) for summary in summaries)
    plan.properties_not_set = [
        {"object_type": kind, "label": label, "reason": reason, "objects": count}
        for (kind, label, reason), count in problems.items()
    ]
    return plan


async def plan_project(
    store: Store,
    client: PlanningClient,
    project_key: str,
    *,
    project_target: str | None = None,
    approve_test_cases: bool = True,
    create_fields: bool = True,
) -> ProjectPlan:
    """The plan of one project: every publishing stage run as a real run would, writing nothing (see the
    module). `client` must be a `PlanningClient` (opened, ``async with``)."""
    id_map = await PlannedIdMap.read(store, project_key, client.site_url)
    planning_store: Any = _PlanningStore(store, id_map)
    summaries: list[PublishSummary] = []
    setups: list[FieldSetup] = []
    problems: Counter[tuple[str, str, str]] = Counter()
    for stage in stages():
        summary, stage_problems, setup = await publish_stage(
            stage,
            planning_store,
            client,
            project_key,
            project_target=project_target,
            approve_test_cases=approve_test_cases,
            create_fields=create_fields,
            # A log whose bulk submission would be lost is not planned for: no waiting.
            queue_window_s=0.0,
        )
        summaries.append(summary)
        setups.append(setup)
        # The same property is counted by every stage that encodes it: the largest count tells.
        for key, count in stage_problems.items():
            problems[key] = max(problems[key], count)
    return plan_from(project_key, id_map, client, summaries, setups, problems)


def write_plan(plans: Sequence[ProjectPlan], directory: Path) -> Path:
    """The plans as JSON (``dry-run-plan.json``) beside a Markdown copy; the JSON file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dry-run-plan.json"
    path.write_text(json.dumps({"plans": [plan.as_dict() for plan in plans]}, indent=2) + "\n")
    markdown = ["# Dry run: the qTest writes a migration would make", ""]
    markdown += [plan.markdown() + "\n" for plan in plans]
    (directory / "dry-run-plan.md").write_text("\n".join(markdown))
    return path
