"""The one entry point: every Dagster object comes from the modules under ``defs/``."""

from pathlib import Path

import dagster as dg
from dagster._utils.warnings import disable_dagster_warnings


@dg.definitions
def defs() -> dg.Definitions:
    """Every module under ``defs/``, as ``dg.load_from_defs_folder`` loads them, without the catalogue of
    the component types installed plugins offer (``load_from_defs_folder`` adds it for the UI's component
    browser). Building it imports every plugin (dagster-snowflake's snowpark and snowflake.core,
    dagster-dbt's components): half of loading the definitions, which every run's process does before its
    first step (README, "A whole tenant"). This project defines no components."""
    tree = dg.ComponentTree.for_project(path_within_project=Path(__file__).parent)
    # As load_from_defs_folder does: the preview and beta notices of Dagster's own loaders and parameters
    # (backfill_policy) would otherwise be printed by every process that loads the definitions.
    with disable_dagster_warnings():
        return tree.build_defs(tree.defs_module_path)
