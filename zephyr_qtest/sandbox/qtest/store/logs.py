"""Manual test logs of a test run, with their test step logs."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from zephyr_qtest.sandbox.common import parse_iso_datetime
from zephyr_qtest.sandbox.qtest.store.base import (
    Json,
    QTestError,
    StoreBase,
    as_int,
    bad,
    format_time,
    page_bounds,
    require_object,
    text_field,
    version_text,
)


class LogsStore(StoreBase):
    """Manual test logs of a test run, with their test step logs."""

    def render_log(self, log: Json, *, full: bool = True) -> Json:
        project_id = log["project_id"]
        run_id = log["link_id"]
        status = self._status(project_id, log["status_id"]) or {
            "id": log["status_id"], "name": "Unknown", "is_default": False, "color": "", "active": False,
        }  # fmt: skip
        out: Json = {
            "links": [
                {
                    "rel": "self",
                    "href": f"{self.api_url}/projects/{project_id}/test-runs/{run_id}/test-logs/{log['id']}",
                }
            ],
            "id": log["id"],
            "test_case_version_id": log["test_case_version_id"],
            "exe_start_date": log["exe_start_date"],
            "exe_end_date": log["exe_end_date"],
            "note": log["note"],
            "name": log["name"],
            "status": self.render_status(status),
            "test_run_id": run_id,
        }
        for key in ("planned_exe_time", "actual_exe_time", "build_number", "build_url", "result_number"):
            if log.get(key) is not None:
                out[key] = log[key]
        if full:
            out["properties"] = self.render_properties(project_id, "test-runs", log["props"])
            out["test_step_logs"] = [self._render_step_log(project_id, step) for step in log["step_logs"]]
        return out

    def _render_step_log(self, project_id: int, step: Json) -> Json:
        status = self._status(project_id, step["status_id"])
        out: Json = {
            "test_step_log_id": step["id"],
            "user_id": step["user_id"],
            "status": self.render_status(status) if status else {"id": step["status_id"]},
            "description": step["description"],
            "expected_result": step["expected_result"],
            "actual_result": step["actual_result"],
            "order": step["order"],
        }
        # An automation step log whose test case has fewer steps than the log has no test_step_id.
        for key in ("test_step_id", "called_test_case_id", "parent_test_step_id", "exe_date"):
            if step.get(key) is not None:
                out[key] = step[key]
        return out

    def _parse_step_logs(
        self, project_id: int, raw: Any, version: Json, what: str, user_id: int
    ) -> list[Json]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad(f"{what}.test_step_logs must be an array")
        steps = {step["id"]: step for step in version["steps"]}
        parsed: list[Json] = []
        for index, item in enumerate(raw):
            where = f"{what}.test_step_logs[{index}]"
            if not isinstance(item, dict):
                raise bad(f"{where} must be an object")
            step_id = as_int(item.get("test_step_id"))
            if step_id is None:
                raise bad(f"{where}.test_step_id is required")
            step = steps.get(step_id)
            called = as_int(item.get("called_test_case_id"))
            parent_step = as_int(item.get("parent_test_step_id"))
            if step is None and called is not None:
                # A step of a called test case: its caller step must be in this version and call that case
                # (swagger, submitTestLog and ManualTestLogResource.test_step_logs: "If the associated Test
                # Case is calling Test Steps from another Test Case, the called_test_case_id and
                # parent_test_step_id must be included"). The same step may have several step logs: a log's
                # step logs are a list, read back as sent (a data-driven execution repeats its steps).
                caller = steps.get(parent_step or -1)
                callee = self._get("test-case", called, project_id)
                if caller is None or caller.get("called_test_case_id") != called or callee is None:
                    raise bad(
                        f"{where}: parent_test_step_id {parent_step} is not a step of test case version "
                        f"{version['id']} calling test case {called}"
                    )
                callee_version = self._latest_approved(called) or self._latest(callee)
                step = next((s for s in callee_version["steps"] if s["id"] == step_id), None)
            if step is None:
                raise bad(
                    f"{where}.test_step_id {step_id} is not a step of test case version {version['id']}"
                    f" (version {version_text(version)}; its steps: {', '.join(str(s) for s in steps) or 'none'})"
                )
            status = self._parse_status(project_id, item.get("status"), f"{where}.status")
            actual = item.get("actual_result", "")
            if actual is not None and not isinstance(actual, str):
                raise bad(f"{where}.actual_result must be a string")
            exe_date = None
            if item.get("exe_date") is not None:
                moment = parse_iso_datetime(item["exe_date"])
                if moment is None:
                    raise bad(f"{where}.exe_date must be an ISO 8601 date-time")
                exe_date = format_time(moment)
            order = as_int(item.get("order"))
            parsed.append(
                {
                    "test_step_id": step_id,
                    "status_id": status["id"],
                    "description": item.get("description")
                    if isinstance(item.get("description"), str)
                    else step["description"],
                    "expected_result": item.get("expected_result")
                    if isinstance(item.get("expected_result"), str)
                    else step["expected"],
                    "actual_result": actual or "",
                    "order": order if order is not None else step.get("order", index + 1),
                    "called_test_case_id": called,
                    "parent_test_step_id": parent_step,
                    "exe_date": exe_date,
                    "user_id": user_id,
                }
            )
        return parsed

    def _parse_exe_dates(self, body: Json, what: str) -> tuple[datetime, datetime]:
        moments = []
        for key in ("exe_start_date", "exe_end_date"):
            raw = body.get(key)
            if raw is None:
                raise bad(f"{what}.{key} is required (an ISO 8601 date-time)")
            moment = parse_iso_datetime(raw)
            if moment is None:
                raise bad(f"{what}.{key} must be an ISO 8601 date-time, got {raw!r}")
            moments.append(moment)
        if moments[1] < moments[0]:
            raise bad(f"{what}.exe_end_date is before exe_start_date")
        return moments[0], moments[1]

    def _insert_log(self, project_id: int, run: Json, log: Json, step_logs: list[Json]) -> Json:
        for step in step_logs:
            step["id"] = self.new_id()
        log["step_logs"] = step_logs
        self._put("test-log", log)
        self.conn.executemany(
            "INSERT INTO refs (id, kind, project_id, owner_id) VALUES (?, 'test-step-log', ?, ?)",
            [(step["id"], project_id, log["id"]) for step in step_logs],
        )
        self._index_properties("test-log", project_id, log["id"], log["props"])
        self._follow_latest(project_id, run)
        return log

    def _set_log_head(
        self, log: Json, status: Json, start: Any, end: Any, body: Json, props: Json, what: str
    ) -> None:
        """A modified log's status, dates, note (when the body has one) and properties (merged), as both
        PUTs (a manual log's and an automation log's) take them."""
        log.update(
            status_id=status["id"],
            exe_start_date=format_time(start),
            exe_end_date=format_time(end),
            sort_key=end.timestamp(),
        )
        if "note" in body:
            log["note"] = text_field(body, "note", what, default="") or ""
        log["props"] = {**log["props"], **props}

    def _save_log(self, project_id: int, run: Json, log: Json) -> None:
        """Store a modified log, index its properties, and let its run follow its latest log."""
        self._put("test-log", log)
        self._index_properties("test-log", project_id, log["id"], log["props"])
        self._follow_latest(project_id, run)

    def _follow_latest(self, project_id: int, run: Json) -> None:
        """Point the run's ``latest_test_log`` (and its Status property) at the log that ended last."""
        row = self.conn.execute(
            "SELECT body FROM objects WHERE kind = 'test-log' AND link_id = ? ORDER BY sort_key DESC, id DESC LIMIT 1",
            (run["id"],),
        ).fetchone()
        status_field = self._field_by_label(project_id, "test-runs", "Status")
        if row is None:
            run["latest"] = None
            if status_field is not None and status_field.get("default_value"):
                run["props"][str(status_field["id"])] = status_field["default_value"]
        else:
            log = json.loads(row[0])
            status = self._status(project_id, log["status_id"])
            run["latest"] = {
                "id": log["id"],
                "status": status["name"] if status else "",
                "exe_start_date": log["exe_start_date"],
                "exe_end_date": log["exe_end_date"],
            }
            if status_field is not None:
                run["props"][str(status_field["id"])] = str(log["status_id"])
        run["last_modified_date"] = format_time(time.time())
        self._put("test-run", run)
        self._index_properties("test-run", project_id, run["id"], run["props"])

    def create_log(self, project_id: int, run_id: int, body: Any, user_id: int) -> Json:
        run = self._run(project_id, run_id)
        body = require_object(body, "test log")
        if "status" not in body:
            raise bad('test log.status is required: {"id": <execution status id>}')
        status = self._parse_status(project_id, body.get("status"), "test log.status")
        start, end = self._parse_exe_dates(body, "test log")
        case = self._require("test-case", run["link_id"], project_id)
        if body.get("test_case_version_id") is not None:
            version = self._run_version(project_id, case, body["test_case_version_id"], "test log")
        else:
            # "If it is omitted, the submitted Test Log will be associated with the Test Case's latest
            # approved version" (the run's own version when none is approved).
            version = self._latest_approved(case["id"]) or self._require_version(run["test_case_version_id"])
        props, _ = self._parse_properties(
            project_id, "test-runs", body.get("properties"), "test log", required=False
        )
        step_logs = self._parse_step_logs(
            project_id, body.get("test_step_logs"), version, "test log", user_id
        )
        attachments = self._parse_inline_attachments(body.get("attachments"), "test log")
        note = text_field(body, "note", "test log", default="") or ""
        user = self.user(user_id) or {}
        with self.tx():
            log = {
                "id": self.new_id(),
                "project_id": project_id,
                "parent_kind": "test-run",
                "parent_id": run_id,
                "link_id": run_id,
                "sort_key": end.timestamp(),
                "test_case_version_id": version["id"],
                "status_id": status["id"],
                "exe_start_date": format_time(start),
                "exe_end_date": format_time(end),
                "note": note,
                "name": text_field(body, "name", "test log", default=run["name"]) or run["name"],
                "props": props,
                "user_id": user_id,
                "submittedBy": user.get("username", ""),
                "automation": False,
                "created_date": format_time(time.time()),
                **{
                    key: body.get(key)
                    for key in (
                        "planned_exe_time",
                        "actual_exe_time",
                        "build_number",
                        "build_url",
                        "result_number",
                    )
                    if body.get(key) is not None
                },
            }
            self._insert_log(project_id, run, log, step_logs)
            self._store_attachments(project_id, "test-logs", log["id"], attachments, user_id)
        return self.render_log(log)

    def _require_version(self, version_id: int) -> Json:
        version = self._version(version_id)
        if version is None:
            raise QTestError(500, f"test case version {version_id} is missing")
        return version

    def test_logs(self, project_id: int, run_id: int, *, page: int, page_size: int) -> tuple[int, list[Json]]:
        self._run(project_id, run_id)
        total = int(
            self.conn.execute(
                "SELECT COUNT(*) FROM objects WHERE kind = 'test-log' AND link_id = ?", (run_id,)
            ).fetchone()[0]
        )
        limit, offset = page_bounds(page, page_size)
        logs = self._select(
            "SELECT body FROM objects WHERE kind = 'test-log' AND link_id = ? ORDER BY id LIMIT ? OFFSET ?",
            (run_id, limit, offset),
        )
        return total, [self.render_log(log) for log in logs]

    def _log(self, project_id: int, run_id: int, log_id: int) -> Json:
        self._run(project_id, run_id)
        log = self._get("test-log", log_id, project_id)
        if log is None or log["link_id"] != run_id:
            raise QTestError(404, f"Test log {log_id} does not exist in test run {run_id}")
        return log

    def test_log(self, project_id: int, run_id: int, log_id: int) -> Json:
        return self.render_log(self._log(project_id, run_id, log_id))

    def last_log(self, project_id: int, run_id: int) -> Json:
        run = self._run(project_id, run_id)
        if not run.get("latest"):
            raise QTestError(404, f"Test run {run_id} has no test log")
        return self.test_log(project_id, run_id, run["latest"]["id"])

    def update_log(self, project_id: int, run_id: int, log_id: int, body: Any, user_id: int) -> Json:
        log = self._log(project_id, run_id, log_id)
        run = self._run(project_id, run_id)
        body = require_object(body, "test log")
        status = self._parse_status(project_id, body.get("status"), "test log.status")
        start, end = self._parse_exe_dates(body, "test log")
        version = self._require_version(log["test_case_version_id"])
        props, _ = self._parse_properties(
            project_id, "test-runs", body.get("properties"), "test log", required=False
        )
        step_logs = None
        if body.get("test_step_logs") is not None:
            step_logs = self._parse_step_logs(
                project_id, body["test_step_logs"], version, "test log", user_id
            )
        with self.tx():
            self._set_log_head(log, status, start, end, body, props, "test log")
            if step_logs is not None:
                self.conn.execute("DELETE FROM refs WHERE owner_id = ?", (log_id,))
                for step in step_logs:
                    step["id"] = self.new_id()
                self.conn.executemany(
                    "INSERT INTO refs (id, kind, project_id, owner_id) VALUES (?, 'test-step-log', ?, ?)",
                    [(step["id"], project_id, log_id) for step in step_logs],
                )
                log["step_logs"] = step_logs
            self._save_log(project_id, run, log)
        return self.render_log(log)
