"""How a whole tenant runs: one project's publishing beside the next project's extraction.

Both vendors rate-limit per token, independently of each other, so a tenant of many projects takes the time
of its slower side only if qTest publishes one project while Zephyr serves the next. Dagster runs it that
way with three pieces (README, "A whole tenant"; ``docs/dagster-tenant.yaml`` is the instance):

- The user backfills a project's **extraction and transform** (the groups up to ``qtest_mapping``) over
  every project, with the tag ``zephyr_qtest/then: publish``. An asset backfill requests those assets for all
  projects at once, one run per project.
- ``publish_after_transform`` starts ``publish_job`` (the qTest assets and the reconciliation) for a
  project as soon as a run with that tag has started to extract and transform it; the publishing run
  loads its definitions meanwhile and waits for that run's success before it reads anything
  (``wait_for_transform``, from ``QtestResource``'s setup). (An asset backfill of the whole graph cannot
  do this itself: it groups a child with its parent only when every partition reaches it together, so
  once projects finish at different times it would publish each stage in a run of its own, one every
  30 s.)
- The pools are enforced per run (``granularity: run``): the queue starts an extraction run only while no
  other run uses ``zephyr_api``, and at most two publishing runs (``qtest_api``, two slots): the second
  loads its definitions while the first publishes, then waits for qTest's turn
  (``QtestResource.take_turn``) and goes on the moment the first ends. A run waiting in the queue spins on
  nothing, and each vendor is talked to by one limiter (``lib/http.py``, one per process and token), which
  finds the whole rate alone.

Every run of an asset job executes in one process (``tenant_runs``), as ``migration_job`` does: its
stages share the rate their limiter learnt and their connections, instead of each step process starting
from slow start again.
"""

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from zephyr_qtest.defs.partitions import run_project

THEN_TAG = "zephyr_qtest/then"
THEN_PUBLISH = "publish"
# On a publishing run: the run whose transform it follows, and that run's backfill.
AFTER_RUN_TAG = "zephyr_qtest/after_run"
TENANT_BACKFILL_TAG = "zephyr_qtest/tenant_backfill"
PUBLISH_GROUP = "qtest"
TRANSFORMED_GROUP = "qtest_mapping"
# Runs that ended just before the last cursor are looked at again (a run key never starts a run twice).
_CURSOR_OVERLAP_S = 10.0

publish_job = dg.define_asset_job(
    name="publish_job",
    selection=dg.AssetSelection.groups(PUBLISH_GROUP),
    executor_def=dg.in_process_executor,
    description="One project's publishing into qTest and its reconciliation, from its transformed marts.",
)


def transformed_project(run: dg.DagsterRun) -> str | None:
    """The project a successful run transformed, if it asked to be published after: it built the qTest
    mapping marts of one project and published nothing itself."""
    if run.tags.get(THEN_TAG) != THEN_PUBLISH or not run.asset_selection:
        return None
    groups = {key.path[0] for key in run.asset_selection}
    if TRANSFORMED_GROUP not in groups or PUBLISH_GROUP in groups:
        return None
    return run_project(run.tags)


@dg.sensor(
    name="publish_after_transform",
    job=publish_job,
    # Evaluated on every pass of the sensor daemon, which passes every 5 s (Dagster's MIN_INTERVAL_LOOP_TIME,
    # not configurable): with a minimum of 5 s a pass a little under 5 s after the last tick skipped it, so
    # ticks came 5 and 10 s apart (measured) and a transformed project waited up to 10 s for its publishing.
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Starts the publishing of a project (publish_job) for each run tagged `zephyr_qtest/then: publish` "
        "that transforms it, as soon as that run has started; the publishing run waits for its success "
        "before it reads anything, and fails naming it if it fails (QtestResource). A backfill of the "
        "extraction and transform over a whole tenant then publishes each project while the next one "
        "extracts (README, 'A whole tenant'). Runs without the tag start nothing."
    ),
)
def publish_after_transform(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    # Runs still transforming count too: their publishing run starts its process and loads its definitions
    # while the project is extracted and transformed, and publishes the moment the transform succeeds
    # (wait_for_transform), instead of after the next sensor tick and a run's start (bench-backfill, the
    # first project of a tenant, when qTest has nothing else to do: from the transform's end to the first
    # qTest stage 7.5 s before, 0.7 s after). The run key is the transforming run's id, so the success
    # seen later asks for nothing more.
    since = float(context.cursor) if context.cursor else 0.0
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.SUCCESS],
            tags={THEN_TAG: THEN_PUBLISH},
            updated_after=datetime.fromtimestamp(max(since - _CURSOR_OVERLAP_S, 0.0), tz=UTC),
        ),
        order_by="update_timestamp",
        ascending=True,
    )
    requests = []
    latest = since
    for record in records:
        latest = max(latest, record.update_timestamp.timestamp())
        run = record.dagster_run
        project = transformed_project(run)
        if project is None:
            continue
        tags = {AFTER_RUN_TAG: run.run_id}
        if "dagster/backfill" in run.tags:
            tags[TENANT_BACKFILL_TAG] = run.tags["dagster/backfill"]
        requests.append(dg.RunRequest(run_key=run.run_id, partition_key=project, tags=tags))
    return dg.SensorResult(run_requests=requests, cursor=str(latest))


def wait_for_transform(instance: dg.DagsterInstance, tags: Mapping[str, str], log: Any) -> None:
    """Before a publishing run the sensor started reads anything: wait until the run that transforms its
    project (``AFTER_RUN_TAG``) has succeeded. If it failed or was canceled, nothing is published: a
    ``dg.Failure`` names it. Runs without the tag (the UI's, ``migrate``'s) go on at once."""
    after = tags.get(AFTER_RUN_TAG)
    if not after:
        return
    told = False
    while True:
        run = instance.get_run_by_id(after)
        if run is None or run.status == dg.DagsterRunStatus.SUCCESS:
            return
        if run.is_finished:
            project = run_project(run.tags) or "the project"
            raise dg.Failure(
                f"{project} was not published: the run that transforms it ({after}) ended "
                f"{run.status.value}. Fix that run's failure and launch it again with the tag "
                f"{THEN_TAG}={THEN_PUBLISH} (or materialize the qtest group for {project})."
            )
        if not told:
            log.info(f"waiting for the run that transforms this project ({after}) to succeed")
            told = True
        # The run's status is in the instance's storage: read again each second, as the queue does.
        time.sleep(1.0)


@dg.definitions
def tenant_runs() -> dg.Definitions:
    """The publishing job and its sensor, and the executor of every asset job (UI materializations and
    backfills): one process per run."""
    return dg.Definitions(
        jobs=[publish_job], sensors=[publish_after_transform], executor=dg.in_process_executor
    )
