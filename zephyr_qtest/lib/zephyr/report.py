"""What an extraction did, per project and entity, read back from the extraction log."""

from __future__ import annotations

from zephyr_qtest.lib.postgres import connect
from zephyr_qtest.lib.raw_store import RAW_SCHEMA, table_exists
from zephyr_qtest.lib.zephyr.extract import ENTITIES


def extraction_counts(
    database_url: str, projects: list[str]
) -> dict[tuple[str, str], tuple[int, int | None, int, int]]:
    """(project, entity) → (rows written, API-reported count, issues, lost)."""
    if not table_exists(database_url, "extraction_log"):
        return {}
    with connect(database_url) as conn:
        rows = conn.execute(
            f"select project_key, entity, rows_written, api_reported, issues, lost "
            f"from {RAW_SCHEMA}.extraction_log where project_key = any(%s)",
            (projects,),
        ).fetchall()
    return {
        (project, entity): (written, reported, issues, lost)
        for project, entity, written, reported, issues, lost in rows
    }


def print_extraction_report(database_url: str, projects: list[str]) -> None:
    counts = extraction_counts(database_url, projects)
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
