"""docs/dagster-postgres.yaml works: Dagster's run and event storage on the test PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml
from dagster._core.test_utils import instance_for_test

REPO = Path(__file__).resolve().parents[2]


def _psycopg2_url(url: str) -> str:
    # SQLAlchemy 2.1 picks psycopg 3 for a bare postgresql:// URL, and Dagster's event writes then fail.
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


@dg.asset
def storage_probe() -> int:
    """A trivial asset whose materialization proves the event log works."""
    return 42


def test_documented_postgres_storage_runs_and_records_events(database_url: str, monkeypatch) -> None:
    documented = yaml.safe_load((REPO / "docs" / "dagster-postgres.yaml").read_text())
    assert documented["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    monkeypatch.setenv("DAGSTER_PG_URL", _psycopg2_url(database_url))
    with instance_for_test(overrides={"storage": documented["storage"]}) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize([storage_probe], instance=instance)
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("storage_probe"))
        assert event is not None and event.run_id == result.run_id
