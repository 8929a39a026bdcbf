"""The sandbox's own admin operations (not part of the vendor API): counts, dump, reset, and a drag in the
tree as a user does it in qTest's UI."""

from __future__ import annotations

from zephyr_qtest.sandbox.qtest.store.base import (
    KIND_OF,
    Json,
    QTestError,
    StoreBase,
)
from zephyr_qtest.sandbox.qtest.template import (
    FIELD_OBJECT_TYPES,
)


class AdminStore(StoreBase):
    """The sandbox's own admin operations (not part of the vendor API): counts, dump, reset, drag."""

    def counts(self, project_id: int | None = None) -> Json:
        projects = [
            p["id"] for p in self._select("SELECT body FROM objects WHERE kind = 'project' ORDER BY id")
        ]
        if project_id is not None:
            self._project(project_id)
            projects = [project_id]
        per_project: dict[str, Json] = {}
        for pid in projects:
            counts: Json = {}
            for collection, kind in KIND_OF.items():
                counts[collection] = self._count(kind, pid)
            counts["test-case-versions"] = int(
                self.conn.execute("SELECT COUNT(*) FROM versions WHERE project_id = ?", (pid,)).fetchone()[0]
            )
            for ref_kind in ("test-step", "test-step-log"):
                counts[f"{ref_kind}s"] = int(
                    self.conn.execute(
                        "SELECT COUNT(*) FROM refs WHERE project_id = ? AND kind = ?", (pid, ref_kind)
                    ).fetchone()[0]
                )
            counts["attachments"] = int(
                self.conn.execute("SELECT COUNT(*) FROM attachments WHERE project_id = ?", (pid,)).fetchone()[
                    0
                ]
            )
            # Test logs that arrived through an automation endpoint (single or bulk).
            counts["automation-test-logs"] = int(
                self.conn.execute(
                    "SELECT COUNT(*) FROM objects WHERE kind = 'test-log' AND project_id = ?"
                    " AND json_extract(body, '$.automation')",
                    (pid,),
                ).fetchone()[0]
            )
            counts["requirements"] = self._count("requirement", pid)
            counts["object-links"] = self._count("object-link", pid)
            counts["queue-jobs"] = int(
                self.conn.execute("SELECT COUNT(*) FROM jobs WHERE project_id = ?", (pid,)).fetchone()[0]
            )
            per_project[str(pid)] = counts
        return {"projects": len(projects), "per_project": per_project}

    def drag(self, project_id: int, kind: str, object_id: int, position: int) -> Json:
        """What a user does in qTest's tree, not through the API: drags a module or test cycle to
        `position` (1-based) among its siblings, which are numbered again in their new order. The vendor API
        documents no call that sets a position (no ``order`` in the createModule, updateModule, createCycle
        or updateCycle bodies of the swagger), so only this admin route does it here."""
        if kind not in ("module", "test-cycle"):
            raise QTestError(400, f"only a module or a test-cycle is dragged, not {kind!r}")
        self._project(project_id)
        dragged = self._require(kind, object_id, project_id)
        siblings = [
            sibling
            for sibling in self._children(kind, project_id, dragged["parent_id"])
            if sibling.get("parent_kind") == dragged.get("parent_kind") and sibling["id"] != object_id
        ]
        siblings.sort(key=lambda sibling: (sibling["order"], sibling["id"]))
        siblings.insert(max(0, min(position - 1, len(siblings))), dragged)
        with self.tx():
            for order, sibling in enumerate(siblings, start=1):
                sibling["order"] = order
                self._put(kind, sibling)
        return {"id": object_id, "order": dragged["order"]}

    def dump(self, project_id: int) -> Json:
        """Every object of one project as the API shows it (plus parents and all versions), for reconciliation."""
        project = self._project(project_id)

        def rows(kind: str) -> list[Json]:
            return self._select(
                "SELECT body FROM objects WHERE kind = ? AND project_id = ? ORDER BY id", (kind, project_id)
            )

        def parent_of(obj: Json) -> Json:
            return {"type": obj.get("parent_kind"), "id": obj.get("parent_id")}

        cases = []
        for case in rows("test-case"):
            rendered = self.render_case(case, steps=True)
            rendered["versions"] = [self.render_case(case, v, steps=True) for v in self._versions(case["id"])]
            cases.append(rendered)
        attachments = [
            {**self.render_attachment(row[:10]), "object_type": row[2], "size": row[6], "sha256": row[7]}
            for row in self.conn.execute(
                f"SELECT {self._ATTACHMENT_COLUMNS} FROM attachments WHERE project_id = ? ORDER BY id",
                (project_id,),
            )
        ]
        jobs = [
            {**self.render_job(job), "polls": job["polls"]}
            for job in (
                self._job(row[0])
                for row in self.conn.execute(
                    "SELECT id FROM jobs WHERE project_id = ? ORDER BY id", (project_id,)
                )
            )
            if job is not None
        ]
        return {
            "project": self.render_project(project),
            "fields": {t: self.fields(project_id, t, include_inactive=True) for t in FIELD_OBJECT_TYPES},
            "execution_statuses": self.execution_statuses(project_id),
            "modules": [{**self.render_module(m), "_parent": parent_of(m)} for m in rows("module")],
            "test_cases": cases,
            "releases": [self.render_release(r) for r in rows("release")],
            "test_cycles": [{**self.render_cycle(c), "_parent": parent_of(c)} for c in rows("test-cycle")],
            "test_suites": [self.render_suite(s) for s in rows("test-suite")],
            "test_runs": [self.render_run(r) for r in rows("test-run")],
            "test_logs": [self.render_log(log) for log in rows("test-log")],
            "attachments": attachments,
            "queue_jobs": jobs,
        }

    def reset(self) -> None:
        """Delete every project and what it holds; users, tokens and the id sequence stay."""
        with self.tx():
            self.conn.execute("DELETE FROM objects WHERE kind != 'user'")
            for table in ("prop_index", "versions", "refs", "attachments", "jobs", "counters"):
                self.conn.execute(f"DELETE FROM {table}")
        self._fields_cache.clear()
        self._statuses_cache.clear()
        self._pending_jobs.clear()
