"""What an extraction did, per project and entity, read back from the extraction log."""

from __future__ import annotations

from typing import Protocol

from zephyr_qtest.lib.jira_issues import RAW_ENTITY as JIRA_ISSUES
from zephyr_qtest.lib.zephyr.extract import ENTITIES

# How many deleted objects the report names per project and entity (the count is always complete).
DELETIONS_SHOWN = 20


class ExtractionLog(Protocol):
    def extraction_counts(
        self, projects: list[str]
    ) -> dict[tuple[str, str], tuple[int, int | None, int, int]]: ...

    def deletions(self, projects: list[str]) -> list[tuple[str, str, str, str]]: ...

    def issues_of(self, entity: str, projects: list[str]) -> list[tuple[str, str, str]]: ...


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
    print_jira_issues(log, projects, counts, width)
    print_deletions(log, projects)


def print_jira_issues(
    log: ExtractionLog,
    projects: list[str],
    counts: dict[tuple[str, str], tuple[int, int | None, int, int]],
    width: int,
) -> None:
    """The linked Jira issues Jira answered (their requirements are named '<KEY> <summary>'), and each one it
    did not return, with why (they keep the name 'Jira issue <id>'); nothing when Jira was never asked."""
    if not any((project, JIRA_ISSUES) in counts for project in projects):
        return
    cells = []
    for project in projects:
        found = counts.get((project, JIRA_ISSUES))
        cell = "not asked" if found is None else f"{found[0]} named by Jira"
        if found is not None and found[2]:
            cell += f" ({found[2]} not)"
        cells.append(f"{cell:>22}")
    print(f"{JIRA_ISSUES:<{width}}  " + "  ".join(cells))
    for project, object_ref, reason in log.issues_of(JIRA_ISSUES, projects)[
        : DELETIONS_SHOWN * len(projects)
    ]:
        print(f"  {project} {object_ref}: {reason}")


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
