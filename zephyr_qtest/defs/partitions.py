"""One partition per Zephyr project, shared by every asset of the graph."""

from collections.abc import Mapping

import dagster as dg

zephyr_projects = dg.DynamicPartitionsDefinition(name="zephyr_project")

PARTITION_TAG = "dagster/partition"
# A backfill's runs name their partitions as a range instead (asset backfills under a backfill policy).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_project(tags: Mapping[str, str]) -> str | None:
    """The project a run is for, from its tags: its partition, or its range when the range is one project
    (a backfill's run); None for a run of several projects or of none."""
    project = tags.get(PARTITION_TAG)
    start = tags.get(RANGE_START_TAG)
    if project is None and start is not None and start == tags.get(RANGE_END_TAG):
        return start
    return project
