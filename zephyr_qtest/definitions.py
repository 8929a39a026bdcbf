"""The one entry point: every Dagster object comes from the modules under ``defs/``."""

import warnings
from pathlib import Path

import dagster as dg

# The extraction's and the publishing's backfill policies differ on purpose (defs/tenant.py) and both mean one
# project a run, as Dagster resolves them for a job holding both. (Here, not in defs/: Dagster imports those
# modules with the warning filters saved and restored around them.)
warnings.filterwarnings("ignore", message=r"Asset job \S+ materializes assets with varying BackfillPolicies")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
