"""Plain Python under the Dagster glue: HTTP, pagination, API clients, storage. Never imports dagster."""
