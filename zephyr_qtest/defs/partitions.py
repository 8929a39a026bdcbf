"""One partition per Zephyr project, shared by every asset of the graph."""

import dagster as dg

zephyr_projects = dg.DynamicPartitionsDefinition(name="zephyr_project")
