"""What an extraction did, per project and entity, read back from the extraction log."""

from __future__ import annotations

from typing import Protocol

from zephyr_qtest.lib.zephyr.extract import ENTITIES

# How many deleted objects the report names per project and entity (the count is always complete).
DELETIONS_SHOWN = 20


class ExtractionLog(Protocol):
    def extraction_counts(
        self, projects: list[str]
    ) -> dict[tuple[str, str], tuple[int, int | None, int, int]]: ...

    def deletions(self, projects: list[str]) -> list[tuple[str, str, str, str]]: ...


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
    print_deletions(log, projects)


def print_deletions(log: ExtractionLog, projects: list[str]) -> None:
    """The objects deleted in Zephyr after an extraction had read them: qTest keeps what was migrated from
    them (a delta run never deletes there), so each is named for the user to decide."""
    found = log.deletions(projects)
    if not found:
        return
    print(
        f"\ndeleted in Zephyr since they were extracted ({len(found)}; qTest keeps what was migrated from them):"
    )
    by_group: dict[tuple[str, str], list[str]] = {}
    for project, entity, ref, _ in found:
        by_group.setdefault((project, entity), []).append(ref)
    for (project, entity), refs in by_group.items():
        shown = ", ".join(refs[:DELETIONS_SHOWN])
        more = f" and {len(refs) - DELETIONS_SHOWN} more" if len(refs) > DELETIONS_SHOWN else ""
        print(f"  {project} {entity}: {shown}{more}")
