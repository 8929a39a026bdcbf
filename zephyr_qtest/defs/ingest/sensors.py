"""Project discovery: every enabled Zephyr project becomes a partition of the whole graph."""

import asyncio

import dagster as dg

from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.defs.resources import ZephyrResource
from zephyr_qtest.lib.zephyr.discovery import discover_project_keys


@dg.sensor(
    name="zephyr_project_discovery",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Lists the Zephyr projects the token can read and adds each enabled one as a `zephyr_project` "
        "partition. It starts no run: a migration is started on purpose, per project or as a backfill."
    ),
)
def zephyr_project_discovery(context: dg.SensorEvaluationContext, zephyr: ZephyrResource) -> dg.SensorResult:
    # Dagster evaluates a sensor as a plain function (a coroutine is rejected on every tick), so the
    # asynchronous client runs to its end here.
    keys = asyncio.run(_project_keys(zephyr))
    known = set(context.instance.get_dynamic_partitions(zephyr_projects.name))
    new = [key for key in keys if key not in known]
    if not new:
        return dg.SensorResult(skip_reason=f"no new projects among {len(keys)}")
    context.log.info(f"new Zephyr projects: {', '.join(new)}")
    return dg.SensorResult(dynamic_partitions_requests=[zephyr_projects.build_add_request(new)])


async def _project_keys(zephyr: ZephyrResource) -> list[str]:
    async with zephyr.client() as client:
        return await discover_project_keys(client)
