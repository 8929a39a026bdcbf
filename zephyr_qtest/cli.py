"""``zephyr-qtest``: the command line. Thin: Dagster does the work.

- ``zephyr-qtest demo``: start both sandboxes and the embedded database, run the migration job for every
  sandbox project, print what it did and the reconciliation.
- ``zephyr-qtest migrate --project KEY ...``: the whole graph for those projects, headless, on the
  configured services (or ``--sandbox``); exits non-zero when anything failed or did not reconcile.
- ``zephyr-qtest sandbox serve``: serve the Zephyr Scale and qTest Manager sandboxes on 127.0.0.1.
- ``zephyr-qtest ui``: the Dagster UI on the same defaults.

The CLI starts the sandboxes and points the resources at their URLs through the same variables a live
setup uses (``ZEPHYR_BASE_URL``, ``ZEPHYR_API_TOKEN``, ``QTEST_BASE_URL``, ``QTEST_API_TOKEN``): the code
under ``defs/`` never knows the difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _home() -> Path:
    from zephyr_qtest.lib.postgres import project_home

    return project_home()


def prepare_dagster_home() -> Path:
    """DAGSTER_HOME under the project home, with the project's dagster.yaml (unless one is configured)."""
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    dagster_home = _home() / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    target = dagster_home / "dagster.yaml"
    if source.exists() and not target.exists():
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


@contextmanager
def zephyr_endpoint(*, seed: int, size: str) -> Iterator[str]:
    """The live Zephyr if configured, else a sandbox started here; exported the way a live setup is."""
    if os.environ.get("ZEPHYR_BASE_URL"):
        yield os.environ["ZEPHYR_BASE_URL"]
        return
    from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

    sandbox = start_in_thread(seed=seed, size=size)
    os.environ["ZEPHYR_BASE_URL"] = sandbox.base_url
    os.environ["ZEPHYR_API_TOKEN"] = sandbox.token
    try:
        yield sandbox.base_url
    finally:
        sandbox.stop()
        os.environ.pop("ZEPHYR_BASE_URL", None)
        os.environ.pop("ZEPHYR_API_TOKEN", None)


@contextmanager
def qtest_endpoint() -> Iterator[str]:
    """The live qTest if configured, else the qTest sandbox (state under the project home) started here."""
    if os.environ.get("QTEST_BASE_URL"):
        yield os.environ["QTEST_BASE_URL"]
        return
    from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread

    sandbox = start_qtest_in_thread(_home() / "qtest-sandbox")
    os.environ["QTEST_BASE_URL"] = sandbox.base_url
    os.environ["QTEST_API_TOKEN"] = sandbox.token
    try:
        yield sandbox.base_url
    finally:
        sandbox.stop()
        os.environ.pop("QTEST_BASE_URL", None)
        os.environ.pop("QTEST_API_TOKEN", None)


def load_migration_job():
    """The migration job, loaded from the definitions (a module-level function, so runs can reconstruct it)."""
    from zephyr_qtest.definitions import defs

    return defs().resolve_job_def("migration_job")


def run_migration(projects: list[str], *, groups: list[str] | None = None) -> list[str]:
    """The migration job for each project, one run each, through Dagster (the runs are in its instance and
    the UI); `groups` limits it to those asset groups. Returns the projects whose run failed."""
    import dagster as dg

    from zephyr_qtest.defs.partitions import zephyr_projects

    instance = dg.DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(zephyr_projects.name))
    instance.add_dynamic_partitions(zephyr_projects.name, [key for key in projects if key not in known])
    selection = None
    if groups:
        from zephyr_qtest.definitions import defs

        graph = defs().resolve_asset_graph()
        selection = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name in groups]
    failed: list[str] = []
    for project_key in projects:
        started = time.monotonic()
        print(f"\n== migrating {project_key} ==", flush=True)
        result = dg.execute_job(
            dg.reconstructable(load_migration_job),
            instance=instance,
            tags={"dagster/partition": project_key},
            asset_selection=selection,
            raise_on_error=False,
        )
        status = "succeeded" if result.success else "FAILED"
        print(f"run {result.run_id} {status} in {time.monotonic() - started:.1f}s", flush=True)
        if not result.success:
            failed.append(project_key)
    return failed


def print_reports(db_url: str, projects: list[str]) -> bool:
    """Extraction, transform and reconciliation, per project; True when everything reconciled equal."""
    from zephyr_qtest.lib.mapping import print_transform_report
    from zephyr_qtest.lib.qtest.reconcile import print_reconciliation
    from zephyr_qtest.lib.zephyr.report import print_extraction_report

    print()
    print_extraction_report(db_url, projects)
    print()
    print_transform_report(db_url, projects)
    print()
    return print_reconciliation(db_url, projects)


def run_demo(args: argparse.Namespace) -> int:
    import asyncio

    from zephyr_qtest.lib.postgres import database_url, redact_url
    from zephyr_qtest.lib.zephyr.client import ZephyrClient
    from zephyr_qtest.lib.zephyr.discovery import discover_project_keys

    prepare_dagster_home()
    # Held for the whole demo, so the embedded server is not restarted between steps.
    db_url = database_url()
    print(f"staging database: {redact_url(db_url)}")
    with zephyr_endpoint(seed=args.seed, size=args.size) as base_url, qtest_endpoint() as qtest_url:
        print(f"zephyr: {base_url}\nqtest: {qtest_url}")

        async def discover() -> list[str]:
            async with ZephyrClient(base_url, os.environ["ZEPHYR_API_TOKEN"]) as client:
                return await discover_project_keys(client)

        projects = args.project or asyncio.run(discover())
        print(f"projects: {', '.join(projects)}")
        failed = run_migration(projects)
        equal = print_reports(db_url, projects)
    if failed or not equal:
        print(
            f"\nfailed: {', '.join(failed) or 'reconciliation'} (see the runs in `make ui`)", file=sys.stderr
        )
        return 1
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    """The whole graph for the named projects on the configured services (or the sandboxes)."""
    from contextlib import ExitStack

    from zephyr_qtest.lib.postgres import database_url, redact_url

    if not args.sandbox:
        missing = [
            name
            for name in ("ZEPHYR_BASE_URL", "ZEPHYR_API_TOKEN", "QTEST_BASE_URL")
            if not os.environ.get(name)
        ]
        if not (os.environ.get("QTEST_API_TOKEN") or os.environ.get("QTEST_USERNAME")):
            missing.append("QTEST_API_TOKEN (or QTEST_USERNAME and QTEST_PASSWORD)")
        if missing:
            print(f"zephyr-qtest migrate: set {', '.join(missing)}, or pass --sandbox", file=sys.stderr)
            return 2
    prepare_dagster_home()
    db_url = database_url()
    print(f"staging database: {redact_url(db_url)}")
    with ExitStack() as stack:
        if args.sandbox:
            stack.enter_context(zephyr_endpoint(seed=args.seed, size=args.size))
            stack.enter_context(qtest_endpoint())
        print(f"zephyr: {os.environ['ZEPHYR_BASE_URL']}\nqtest: {os.environ['QTEST_BASE_URL']}", flush=True)
        failed = run_migration(args.project, groups=args.only)
        equal = print_reports(db_url, args.project)
    if failed:
        print(f"\nfailed: {', '.join(failed)}: re-run the same command to finish them", file=sys.stderr)
        return 1
    if not equal and (not args.only or "qtest" in args.only):
        print("\nthe reconciliation found differences: see reports/<project>.md", file=sys.stderr)
        return 1
    return 0


def run_sandbox_serve(args: argparse.Namespace) -> int:
    """Serve the Zephyr sandbox in the foreground and, beside it, the qTest sandbox on a thread.

    Both print the lines a shell can export (``QTEST_BASE_URL=``/``QTEST_API_TOKEN=``, then
    ``ZEPHYR_BASE_URL=``/``ZEPHYR_API_TOKEN=``); Ctrl-C stops both. The qTest state persists in
    ``--qtest-state`` (default: the project home's ``qtest-sandbox``), so a restart keeps its objects.
    """
    from zephyr_qtest.sandbox.qtest.serve import print_banner, start_qtest_in_thread
    from zephyr_qtest.sandbox.zephyr.serve import serve_zephyr

    qtest = None
    if not args.no_qtest:
        qtest = start_qtest_in_thread(
            args.qtest_state or _home() / "qtest-sandbox",
            port=args.qtest_port,
            seed=args.qtest_seed,
            rate_limit=args.qtest_rate_limit,
            latency_ms=args.qtest_latency_ms,
            fault_rate=args.qtest_fault_rate,
            drop_rate=args.qtest_drop_rate,
            lost_answer_rate=args.qtest_lost_answer_rate,
            projects=args.qtest_project,
        )
        print_banner(qtest.sandbox)
    try:
        serve_zephyr(
            args.port,
            fixture=args.fixture,
            seed=args.seed,
            size=args.size,
            rate_limit=args.rate_limit,
            latency_ms=args.latency_ms,
            fault_rate=args.fault_rate,
            drop_rate=args.drop_rate,
        )
    finally:
        if qtest is not None:
            qtest.stop()
    return 0


def run_ui(args: argparse.Namespace) -> int:
    dagster_home = prepare_dagster_home()
    with zephyr_endpoint(seed=args.seed, size=args.size) as base_url, qtest_endpoint() as qtest_url:
        print(
            f"zephyr: {base_url}\nqtest: {qtest_url}\nDAGSTER_HOME={dagster_home}\nUI: http://127.0.0.1:{args.port}",
            flush=True,
        )
        command = [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-w",
            str(REPO_ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(args.port),
        ]
        # A shell's background job ignores SIGINT/SIGTERM; `dagster dev` would then never stop on a signal.
        process = subprocess.Popen(command, cwd=REPO_ROOT, preexec_fn=_default_signals)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            return process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.terminate()


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zephyr-qtest", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="migrate the sandbox's projects end to end and print the result")
    demo.add_argument("--seed", type=int, default=7, help="sandbox data seed")
    demo.add_argument("--size", default="small", help="sandbox data size preset (tiny, small, bench)")
    demo.add_argument("--project", action="append", help="only this project key (repeatable)")
    demo.set_defaults(run=run_demo)

    migrate = commands.add_parser(
        "migrate", help="run the whole graph for these projects, headless; non-zero exit when anything failed"
    )
    migrate.add_argument(
        "--project", action="append", required=True, help="a Zephyr project key (repeatable)"
    )
    migrate.add_argument(
        "--only", action="append", choices=["zephyr_raw", "staging", "canonical", "qtest_mapping", "qtest", "snowflake"],
        help="only this asset group (repeatable), e.g. --only qtest to publish what is already transformed",
    )  # fmt: skip
    migrate.add_argument(
        "--sandbox", action="store_true", help="start both sandboxes instead of live services"
    )
    migrate.add_argument("--seed", type=int, default=7, help="with --sandbox: the Zephyr sandbox's data seed")
    migrate.add_argument("--size", default="small", help="with --sandbox: its data size preset")
    migrate.set_defaults(run=run_migrate)

    sandbox = commands.add_parser("sandbox", help="the vendor sandboxes")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    serve = sandbox_commands.add_parser(
        "serve", help="serve the Zephyr Scale and qTest Manager sandboxes on 127.0.0.1"
    )
    serve.add_argument("--port", type=int, default=8090)
    source = serve.add_mutually_exclusive_group()
    source.add_argument("--fixture", type=Path, help="serve this fixture file (docs/zephyr-sandbox.md)")
    source.add_argument("--seed", type=int, default=7, help="generate data with this seed")
    serve.add_argument("--size", default="small", help="generated data size preset (tiny, small, bench)")
    serve.add_argument("--rate-limit", type=float, default=None, help="requests per second before 429")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    serve.add_argument("--fault-rate", type=float, default=0.0, help="share of requests answered 5xx")
    serve.add_argument("--drop-rate", type=float, default=0.0, help="share of connections dropped mid-answer")
    qtest = serve.add_argument_group("the qTest Manager sandbox served beside it (docs/qtest-sandbox.md)")
    qtest.add_argument("--no-qtest", action="store_true", help="serve the Zephyr sandbox only")
    qtest.add_argument("--qtest-port", type=int, default=8091, help="its port; 0 picks a free one")
    qtest.add_argument("--qtest-state", type=Path, help="its state directory (default: <home>/qtest-sandbox)")
    qtest.add_argument("--qtest-seed", type=int, default=0, help="seed of a new site's ids, token and faults")
    qtest.add_argument(
        "--qtest-project", action="append", default=[], metavar="NAME", help="create if missing"
    )
    qtest.add_argument("--qtest-rate-limit", type=float, default=None, help="requests per second before 429")
    qtest.add_argument("--qtest-latency-ms", type=float, default=0.0, help="added latency per request")
    qtest.add_argument("--qtest-fault-rate", type=float, default=0.0, help="share of requests answered 5xx")
    qtest.add_argument(
        "--qtest-drop-rate", type=float, default=0.0, help="share of connections closed unanswered"
    )
    qtest.add_argument(
        "--qtest-lost-answer-rate", type=float, default=0.0, help="share of writes applied but not answered"
    )
    serve.set_defaults(run=run_sandbox_serve)

    ui = commands.add_parser("ui", help="the Dagster UI on the local defaults")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--seed", type=int, default=7)
    ui.add_argument("--size", default="small")
    ui.set_defaults(run=run_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
