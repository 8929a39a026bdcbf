"""What an extraction did, per project and entity, read back from the extraction log."""

from __future__ import annotations

from typing import Protocol

from zephyr_qtest.lib.zephyr.extract import ENTITIES


class ExtractionLog(Protocol):
    def extraction_counts(
        self, projects: list[str]
    ) -> dict[tuple[str, str], tuple[int, int | None, int, int]]: ...


def print_extraction_report(log: ExtractionLog, projects: list[str]) -> None:
    """Per entity and project: rows written against the API's count, and the issues (``RawRows`` is a log)."""
    counts = log.extraction_counts(projects)
    width = max(len(entity.name) for entity in ENTITIES)
    header = f"{'zephyr_raw':<{width}}  " + "  ".join(f"{project:>22}" for project in projects)
    print(header)
    print("-" * len(header))
    for entity in ENTITIES:
        cells = []
        for project in projects:
            found = counts.get((project, entity.name))
            if found is None:
                cells.append(f"{'not extracted':>22}")
                continue
            written, reported, issues, lost = found
            mark = "=" if reported == written else "≠"
            cell = f"{written} {mark} api {reported if reported is not None else '?'}"
            if issues:
                cell += f" ({issues} issues{', ' + str(lost) + ' lost' if lost else ''})"
            cells.append(f"{cell:>22}")
        print(f"{entity.name:<{width}}  " + "  ".join(cells))
