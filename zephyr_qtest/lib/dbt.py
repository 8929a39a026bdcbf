"""What a dbt invocation needs from us: the project's paths, its arguments for one Zephyr project (the
partition key and the mapping options as vars), how to reach the database, and a manifest that matches
the project's files.

Plain functions, so their rules are unit-tested without running dbt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
# The files whose change makes a parsed manifest stale.
_SOURCE_DIRS = ("models", "macros", "seeds", "people", "tests", "analyses", "snapshots")
_SOURCE_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml")


def dbt_executable() -> str:
    """The ``dbt`` installed beside this interpreter (the venv's), found without the venv on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_vars(project_key: str, *layers: Mapping[str, Any]) -> dict[str, Any]:
    """The vars of one project's run: each layer's set options over the one before (None means unset, so
    dbt_project.yml's default holds), then the partition key, which no option can change."""
    if not project_key:
        raise ValueError("a dbt run needs a project key")
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({name: value for name, value in layer.items() if value is not None})
    merged["project_key"] = project_key
    return merged


# dbt's unit tests check the models' SQL against fixed rows, the same for every project and every run:
# they belong to the test suite (tests/integration/test_transform.py runs them, ``unit_test_dbt_args``),
# not to a migration, where they added a query per test to each project's build.
PRODUCTION_EXCLUDE = "resource_type:unit_test"


def build_dbt_args(
    project_key: str, *, vars: Mapping[str, Any] | None = None, full_refresh: bool = False
) -> list[str]:
    """``dbt build`` for one project: the partition key reaches the models as ``var('project_key')``, the
    mapping options in ``vars`` (``dbt_vars``) beside it; dbt's unit tests are left to the test suite."""
    args = ["build", "--vars", json.dumps(dbt_vars(project_key, vars or {}), sort_keys=True)]
    args += ["--exclude", PRODUCTION_EXCLUDE]
    return [*args, "--full-refresh"] if full_refresh else args


def unit_test_dbt_args(project_key: str) -> list[str]:
    """``dbt test`` of the project's unit tests alone (what production builds leave out), for the suite.
    They read the input models' columns from the database, so it must hold a built project."""
    return ["test", "--select", "test_type:unit", "--vars", json.dumps(dbt_vars(project_key), sort_keys=True)]


def dbt_connection_env(database_url: str) -> dict[str, str]:
    """The variables that ``dbt_project/profiles.yml`` reads, from a PostgreSQL URL.

    The host may be a Unix-socket directory (the embedded server); dbt-postgres passes it to libpq as is.
    The password goes in ``DBT_ENV_SECRET_PG_PASSWORD``: dbt scrubs ``DBT_ENV_SECRET_*`` values from its
    logs and errors.
    """
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    return {
        "DBT_PG_HOST": str(info.get("host") or "127.0.0.1"),
        "DBT_PG_PORT": str(info.get("port") or 5432),
        "DBT_PG_USER": str(info.get("user") or "postgres"),
        "DBT_ENV_SECRET_PG_PASSWORD": str(info.get("password") or ""),
        "DBT_PG_DBNAME": str(info.get("dbname") or "postgres"),
    }


@contextmanager
def connection_environment(database_url: str) -> Iterator[dict[str, str]]:
    """The connection variables of ``database_url`` (``dbt_connection_env``) in the environment for the
    duration of the block, then the previous values back.

    dagster-dbt (0.29) starts dbt with a copy of this process's environment and takes no other: wrap the
    call that starts the subprocess (``DbtCliResource.cli``), nothing longer. Runs of the graph execute
    one step per process (or one after another), so no other dbt start sees these values.
    """
    variables = dbt_connection_env(database_url)
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield variables
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _project_files(project_dir: Path) -> Iterator[Path]:
    for name in _SOURCE_FILES:
        path = project_dir / name
        if path.is_file():
            yield path
    for name in _SOURCE_DIRS:
        directory = project_dir / name
        if directory.is_dir():
            yield from (path for path in directory.rglob("*") if path.is_file())


def manifest_path(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    return project_dir / "target" / "manifest.json"


def manifest_is_stale(project_dir: Path = DBT_PROJECT_DIR) -> bool:
    """Whether ``target/manifest.json`` is missing or older than any file of the dbt project."""
    manifest = manifest_path(project_dir)
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    return any(path.stat().st_mtime > built for path in _project_files(project_dir))


def prepare_manifest(project_dir: Path = DBT_PROJECT_DIR, *, force: bool = False) -> Path:
    """Parse the dbt project into ``target/manifest.json`` when it is stale (no database is needed).

    The Dagster definitions read the manifest at import; ``make install`` and the test session call this
    first, so that a changed model is never loaded from an old manifest.
    """
    manifest = manifest_path(project_dir)
    if not force and not manifest_is_stale(project_dir):
        return manifest
    command = [dbt_executable(), "parse", "--quiet"]
    command += ["--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not manifest.is_file():
        raise RuntimeError(
            f"`dbt parse` of {project_dir} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return manifest


if __name__ == "__main__":  # python -m zephyr_qtest.lib.dbt: what `make install` runs
    print(prepare_manifest(force="--force" in sys.argv[1:]))
