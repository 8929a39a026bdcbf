"""How the runs of a whole tenant are cut, so one project's publishing overlaps another's extraction.

A backfill over several projects (the UI's "Materialize" with many partitions, or a sensor's requests) is
the bulk migration. Both vendors rate-limit per token, independently of each other, so the tenant takes
the time of its slower side only if qTest publishes one project while Zephyr serves the next. Three
things make Dagster run it that way (``docs/dagster-tenant.yaml`` is the instance configuration):

- A project's backfill is two runs, not one: its **extraction and transform** (the raw assets and dbt,
  ``EXTRACTION_BACKFILL_POLICY``) and, once that run succeeded, its **publishing** (the qTest assets,
  ``PUBLISHING_BACKFILL_POLICY``). Dagster's asset backfill puts a parent and a child in one run only when
  their backfill policies are equal; the two policies differ on purpose and both mean one project a run.
- The pools are enforced per run (``concurrency.pools.granularity: run``, one slot each): the run queue
  starts an extraction run only while no other run uses ``zephyr_api`` and a publishing run only while no
  other uses ``qtest_api``. So one extraction and one publishing run at a time, tenant-wide, side by side.
  A run that waits is queued, never started: nothing spins on a slot, and each run's limiter
  (``lib/http.py``, one per process and token) is the only client of its vendor: it finds the whole rate.
- Every run executes in one process (``in_process_runs``): the stages of a run share the rate their
  limiter learnt and their connections, instead of each step process starting from slow start again (what
  ``migration_job`` already does for the CLI).
"""

import dagster as dg

# One project a run for both; unequal, so that an asset backfill cuts each project at the qTest boundary.
EXTRACTION_BACKFILL_POLICY = dg.BackfillPolicy.multi_run(1)
# No policy: an asset backfill materializes such assets one partition per run.
PUBLISHING_BACKFILL_POLICY: dg.BackfillPolicy | None = None
# Dagster warns about a job whose assets' policies differ (``migration_job``) and resolves them to one project
# a run (it takes no policy for ``max_partitions_per_run=1``): ``definitions.py`` silences that warning.


@dg.definitions
def in_process_runs() -> dg.Definitions:
    """The executor of every asset job (UI materializations and backfills): one process per run."""
    return dg.Definitions(executor=dg.in_process_executor)
