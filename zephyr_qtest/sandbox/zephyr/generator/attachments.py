"""Attachments of cases, case steps, cycles, plans, executions and execution steps, with awkward names
and contents of every kind.
"""

# ruff: noqa: RUF001 (the look-alike characters are the point: the data must carry real-world text)
from __future__ import annotations

import base64
from typing import Any

from zephyr_qtest.sandbox.zephyr.generator.core import GeneratorCore
from zephyr_qtest.sandbox.zephyr.generator.words import (
    ATTACHMENT_FILES,
)


class AttachmentFamily(GeneratorCore):
    """The phase that attaches files to a minority of every kind of owner."""

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
            name, content_type, kind = self.rng.choice(ATTACHMENT_FILES)
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
