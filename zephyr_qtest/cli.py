"""``zephyr-qtest``: the command line. Thin: Dagster does the work.

- ``zephyr-qtest demo``: start both sandboxes and the embedded database, run the migration job for every
  sandbox project, print what it did and each project's verdict (complete, or what did not arrive).
- ``zephyr-qtest migrate --project KEY ...``: the whole graph for those projects, headless, on the
  configured services (or ``--sandbox``); exits non-zero when anything failed, or a project is not proven
  complete by this run (its verdict incomplete, or the loader's own check found differences).
- ``zephyr-qtest preflight [--project KEY ...]``: settings, both services and tokens, the projects, the
  fields the run would create, the mapping, the user map, the staging database and the id map, checked in
  seconds without writing anything (``zephyr_qtest/preflight.py``); ``migrate`` and ``demo`` run it first.
- ``zephyr-qtest sandbox serve``: serve the Zephyr Scale and qTest Manager sandboxes on 127.0.0.1.
- ``zephyr-qtest users``: the Atlassian accounts the extracted tenant uses, resolved through Jira Cloud
  and matched to qTest users by e-mail, written to ``user_map.csv`` for review.
- ``zephyr-qtest ui``: the Dagster UI on the same defaults.

Each command reads the settings tree once (``zephyr_qtest.settings``: the environment and ``.env``). The
CLI starts the sandboxes and points the resources at their URLs by handing a changed tree on, never by
changing its own environment: the Dagster runs (and ``dagster dev``) execute in a child process whose
environment is that tree's variables, the same ones a live setup uses (``ZEPHYR_BASE_URL``,
``ZEPHYR_API_TOKEN``, ``QTEST_BASE_URL``, ``QTEST_API_TOKEN``, ``DAGSTER_HOME``...). So the code under
``defs/`` never knows the difference, and the secrets reach the resources through ``dg.EnvVar`` only,
never through run config.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from zephyr_qtest.settings import JiraSettings, QtestSettings, Settings, ZephyrSettings, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
# Why `demo` and `migrate` exit 1 after runs that all finished.
NOT_PROVEN = (
    "not proven complete: the verdict above names what did not arrive (or the loader's check found "
    "differences); the report beside each verdict lists every value, its reason and its remedy. Accept what "
    "you decided to leave behind in the acceptance file (ZEPHYR_QTEST_ACCEPTANCE), change what can be fixed, "
    "and re-run"
)


def prepare_dagster_home(settings: Settings) -> Settings:
    """The settings with the Dagster instance's home: DAGSTER_HOME if configured, else ``dagster_home``
    under the project home, holding the project's dagster.yaml."""
    if settings.dagster.home:
        return settings
    dagster_home = settings.paths.home_dir() / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    target = dagster_home / "dagster.yaml"
    if source.exists() and not target.exists():
        shutil.copyfile(source, target)
    return settings.model_copy(update={"dagster": settings.dagster.model_copy(update={"home": dagster_home})})


def staging_database_url(settings: Settings) -> str:
    """The configured staging database, else the embedded server (started, or joined, here)."""
    from zephyr_qtest.lib.postgres import embedded_url

    return settings.postgres.live_url() or embedded_url(settings.paths.home_dir())


@contextmanager
def zephyr_endpoint(settings: Settings, *, seed: int, size: str) -> Iterator[ZephyrSettings]:
    """The configured Zephyr, else a sandbox started here (its URL and token in the settings returned)."""
    if settings.zephyr.base_url:
        yield settings.zephyr
        return
    from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

    sandbox = start_in_thread(seed=seed, size=size)
    try:
        # The sandbox's own browser-session token for its CDN of inline images, as a user copies theirs from
        # the browser (docs/runbook.md): a rehearsal carries the pictures as a live run with the token does.
        yield settings.zephyr.model_copy(
            update={
                "base_url": sandbox.base_url,
                "api_token": SecretStr(sandbox.token),
                "cdn_token": SecretStr(sandbox.sandbox.cdn_token),
            }
        )
    finally:
        sandbox.stop()


def qtest_sandbox_state(settings: Settings) -> Path:
    """The state directory of the project home's qTest sandbox (what ``--sandbox``, ``demo`` and ``ui`` use)."""
    return settings.paths.home_dir() / "qtest-sandbox"


def qtest_sandbox_site(settings: Settings) -> str | None:
    """The site URL of the project home's qTest sandbox (its recorded port), None before its first start."""
    from zephyr_qtest.sandbox.qtest.serve import recorded_port

    port = recorded_port(qtest_sandbox_state(settings))
    return None if port is None else f"http://127.0.0.1:{port}"


@contextmanager
def qtest_endpoint(settings: Settings) -> Iterator[QtestSettings]:
    """The configured qTest, else the project home's qTest sandbox: started here at its own address (the
    same for every command on this home, so one site to the id map), or the one another command on this
    home serves there already."""
    if settings.qtest.base_url:
        yield settings.qtest
        return
    from zephyr_qtest.sandbox.qtest.serve import RunningQTestSandbox, start_or_join_qtest

    # The default template, as a new qTest site has: the migration creates the fields it sets.
    sandbox = start_or_join_qtest(qtest_sandbox_state(settings), template="default")
    if isinstance(sandbox, RunningQTestSandbox):
        print(
            f"qtest: the sandbox of this project home is served by another command already ({sandbox.base_url}): "
            "this one uses it",
            flush=True,
        )
    try:
        yield settings.qtest.model_copy(
            update={"base_url": sandbox.base_url, "api_token": SecretStr(sandbox.token)}
        )
    finally:
        sandbox.stop()


@contextmanager
def service_settings(settings: Settings, *, sandbox: bool, seed: int, size: str) -> Iterator[Settings]:
    """The settings pointed at both sandboxes (started here for the block) where Zephyr or qTest is not
    configured; with ``sandbox`` False, the settings as they are."""
    if not sandbox:
        yield settings
        return
    with zephyr_endpoint(settings, seed=seed, size=size) as zephyr, qtest_endpoint(settings) as qtest:
        yield settings.model_copy(update={"zephyr": zephyr, "qtest": qtest})


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment of a child process that runs on ``settings``: this one's, with the tree's variables
    over it (values from ``.env`` and the sandboxes' URLs and tokens included), and this interpreter's bin
    directory first on PATH: `dagster dev` and dagster-dbt start ``dbt`` by name, which must be the venv's
    even when the venv is not activated (``.venv/bin/zephyr-qtest ui``)."""
    bin_dir = str(Path(sys.executable).parent)
    path = [bin_dir, *(entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry != bin_dir)]
    return {**os.environ, **settings.environ(), "PATH": os.pathsep.join(entry for entry in path if entry)}


def load_migration_job():
    """The migration job, loaded from the definitions (a module-level function, so runs can reconstruct it)."""
    from zephyr_qtest.definitions import defs

    return defs().resolve_job_def("migration_job")


def run_migration(
    settings: Settings, projects: list[str], *, groups: list[str] | None = None, full: bool = False
) -> tuple[list[str], dict[str, str]]:
    """The migration job for each project (``run-jobs``), in a child process whose environment is the
    settings' (``child_environment``). Returns the projects whose run failed (all of them when the child
    did not finish) and each project's run id (what the summary shows is that run's, and no other's).
    The child's own output goes to the command's log file; its stages are shown one line each
    (``run_output.run_child``)."""
    from zephyr_qtest.run_output import command_log, run_child, verbose

    log_file = command_log(settings.paths.home_dir())
    with tempfile.TemporaryDirectory(prefix="zephyr-qtest-") as scratch:
        failed_file = Path(scratch) / "failed"
        runs_file = Path(scratch) / "runs"
        # Imported, not run as __main__: Dagster reconstructs the job from this module's name.
        main_call = "import sys; from zephyr_qtest.cli import main; sys.exit(main())"
        command = [sys.executable, "-c", main_call, *(["--verbose"] if verbose() else []), "run-jobs"]
        command += ["--failed-file", str(failed_file), "--runs-file", str(runs_file)]
        for project_key in projects:
            command += ["--project", project_key]
        for group in groups or []:
            command += ["--only", group]
        if full:
            command.append("--full")
        run_child(command, child_environment(settings), log_file)
        run_ids = (
            dict(line.split() for line in runs_file.read_text().splitlines()) if runs_file.exists() else {}
        )
        if not failed_file.exists():
            return list(projects), run_ids
        return failed_file.read_text().split(), run_ids


def run_jobs(args: argparse.Namespace) -> int:
    """``run-jobs``, what ``run_migration`` starts: the migration job for each project, one run each, through
    Dagster (the runs are in its instance and the UI) on the configuration of this process's environment;
    ``--only`` limits it to those asset groups. Writes the failed projects' keys to ``--failed-file`` and
    each project's run id to ``--runs-file``; with ``--progress-fd``, its stages and messages on that pipe
    (``run_output``)."""
    from zephyr_qtest.run_output import say, start_recording

    start_recording(args.progress_fd)
    run_ids: dict[str, str] = {}
    try:
        failed = execute_migration_job(args.project, groups=args.only, run_ids=run_ids, full=args.full)
    except Exception as error:
        # The traceback goes to the log (main); the terminal gets the reason and what to change.
        if args.verbose:
            import traceback

            from zephyr_qtest.lib.redaction import redact

            say(redact("".join(traceback.format_exception(error))).rstrip())
        say(f"the migration could not run: {explain(error)}")
        raise
    args.failed_file.write_text("".join(f"{key}\n" for key in failed))
    if args.runs_file is not None:
        args.runs_file.write_text("".join(f"{key} {run_id}\n" for key, run_id in run_ids.items()))
    return 1 if failed else 0


def execute_migration_job(
    projects: list[str],
    *,
    groups: list[str] | None = None,
    run_ids: dict[str, str] | None = None,
    full: bool = False,
) -> list[str]:
    """The migration job for each project, in this process's Dagster instance (DAGSTER_HOME), after closing
    the runs of those projects that a dead process left behind (``defs/dead_runs.py``: their slots would
    stop every pooled step of the new runs). Returns the projects whose run failed; `run_ids` gets each
    project's run id. Each step's start and end reach the parent's terminal as stages (``run_output``)."""
    import dagster as dg

    from zephyr_qtest.defs.dead_runs import close_dead_runs, owner_tags
    from zephyr_qtest.defs.ingest.assets import extraction_tags
    from zephyr_qtest.defs.partitions import zephyr_projects
    from zephyr_qtest.run_output import StageEvents, recorder, say, step_outputs, watch_stages

    instance = dg.DagsterInstance.get()
    for line in close_dead_runs(instance, projects):
        say(line)
    known = set(instance.get_dynamic_partitions(zephyr_projects.name))
    instance.add_dynamic_partitions(zephyr_projects.name, [key for key in projects if key not in known])
    selection = None
    if groups:
        from zephyr_qtest.definitions import defs

        graph = defs().resolve_asset_graph()
        selection = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name in groups]
    outputs, snowflake_steps = step_outputs(load_migration_job(), selection)
    failed: list[str] = []
    for project_key in projects:
        started = time.monotonic()
        say(f"\n== migrating {project_key} ==")
        stages = recorder()
        if stages is not None:
            watch_stages(instance, StageEvents(stages, project_key, outputs, snowflake_steps))
        try:
            result = dg.execute_job(
                dg.reconstructable(load_migration_job),
                instance=instance,
                tags={"dagster/partition": project_key, **owner_tags(), **extraction_tags(full)},
                asset_selection=selection,
                raise_on_error=False,
            )
        finally:
            watch_stages(instance, None)
            if stages is not None:
                stages.finish_all(ok=False, error="the run stopped before this stage ended")
        if run_ids is not None:
            run_ids[project_key] = result.run_id
        unpublished = failed_publish_checks(result)
        status = "succeeded" if result.success and not unpublished else "FAILED"
        say(f"run {result.run_id} {status} in {time.monotonic() - started:.1f}s")
        print_created_fields(result)
        for line in unpublished:
            say(line)
        # Objects qTest did not take fail the project unless this run proved it complete: every one of them
        # is a ledger line the user accepted in the acceptance file.
        if not result.success or (unpublished and not proven_complete(result)):
            failed.append(project_key)
    return failed


def proven_complete(result) -> bool:  # type: ignore[no-untyped-def]
    """Whether the run's reconciliation found the project complete (its check ``complete`` passed)."""
    return any(
        evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key.path == ["qtest", "reconciliation"] and evaluation.check_name == "complete"
    )


def failed_publish_checks(result) -> list[str]:  # type: ignore[no-untyped-def]
    """One line per failed ``<stage>_all_published`` check of a run: the objects a publishing stage did not
    send and why (the run itself succeeds, so that every later stage ran)."""
    from zephyr_qtest.defs.publish.qtest import QTEST_GROUP

    return [
        f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed: "
        + " ".join((evaluation.description or "no description").split())
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
        and evaluation.asset_key.path[0] == QTEST_GROUP
        and evaluation.check_name.endswith("_all_published")
    ]


def print_created_fields(result) -> None:  # type: ignore[no-untyped-def]
    """The qTest fields a run created (its publish assets' ``qtest_fields_created``), if any."""
    for event in result.get_asset_materialization_events():
        table = event.materialization.metadata.get("qtest_fields_created")
        if table is not None:
            stage = event.materialization.asset_key.to_user_string()
            from zephyr_qtest.run_output import say

            say(f"qTest fields created by {stage} (the site lacked them):\n{table.value}")


def print_reports(db_url: str, projects: list[str], qtest_site: str, run_ids: Mapping[str, str]) -> bool:
    """Extraction, transform and, on the target qTest site, the loader's own check and then the verdict of
    each project as this command's runs (`run_ids`: project -> run id) proved it; True when the loader's
    check is equal and every project complete in this run (results saved by runs against another site, or
    by an earlier run, do not count)."""
    from zephyr_qtest.lib.mapping import print_transform_report
    from zephyr_qtest.lib.proof.saved import print_proofs
    from zephyr_qtest.lib.qtest.id_map import project_targets
    from zephyr_qtest.lib.qtest.reconcile import print_reconciliation
    from zephyr_qtest.lib.store import Store
    from zephyr_qtest.lib.zephyr.report import print_extraction_report

    with Store(db_url) as store:
        print()
        print_extraction_report(store.raw_rows(), projects)
        print()
        print_transform_report(store.marts(), projects)
        print()
        targets = project_targets(store, qtest_site, projects)
        # The loader's check counts refused objects as missing, whatever the acceptance file says; the proof's
        # verdict has them as ledger lines (accepted or not) and decides.
        print_reconciliation(store.reconciliations(), projects, qtest_site, targets)
        print()
        return print_proofs(store.proofs(), projects, qtest_site, run_ids)


@contextmanager
def people_settings(settings: Settings, *, generated: bool, seed: int, size: str) -> Iterator[Settings]:
    """The settings of the demo's people: the configured Jira, else (with the Zephyr sandbox) the Jira
    sandbox serving the generated tenant's people, started here for the block; and, unless
    ZEPHYR_QTEST_USER_MAP_DIR says otherwise, a user map of the project home's own (in the dbt project's
    git-ignored ``.user_maps/``), so that a demo never changes the shipped ``people/user_map.csv``.
    ``generated``: the Zephyr tenant is the sandbox's, generated from ``seed`` and ``size``."""
    jira = settings.jira
    if not jira.user_map_dir:
        # dbt reads seeds inside its project only: one directory per project home, ignored by git.
        home = hashlib.sha256(str(settings.paths.home_dir()).encode()).hexdigest()[:12]
        jira = jira.model_copy(update={"user_map_dir": Path(".user_maps") / home})
    if jira.is_configured or not generated:
        yield settings.model_copy(update={"jira": jira})
        return
    from zephyr_qtest.sandbox.jira.serve import start_jira_in_thread

    sandbox = start_jira_in_thread(seed=seed, size=size)
    try:
        jira = jira.model_copy(
            update={
                "base_url": sandbox.base_url,
                "email": sandbox.email,
                "api_token": SecretStr(sandbox.token),
            }
        )
        yield settings.model_copy(update={"jira": jira})
    finally:
        sandbox.stop()


def resolve_people_of(settings: Settings, db_url: str, projects: list[str], *, write: bool = True):  # type: ignore[no-untyped-def]
    """``lib.people.resolve_people`` on the settings' Jira, qTest and user map; prints each account."""
    from zephyr_qtest.lib.people import describe, resolve_people
    from zephyr_qtest.lib.qtest.client import QtestClient

    jira: JiraSettings = settings.jira
    credential = None
    if jira.is_configured and jira.api_token is not None:
        credential = (jira.base_url, jira.email, jira.api_token.get_secret_value())
    qtest = settings.qtest

    def qtest_client() -> QtestClient:
        token = qtest.api_token.get_secret_value() if qtest.api_token else None
        password = qtest.password.get_secret_value() if qtest.password else None
        return QtestClient(qtest.base_url, token, username=qtest.username or None, password=password)

    report = resolve_people(
        db_url,
        user_map=jira.user_map_file(),
        projects=projects,
        jira=credential,
        qtest_client=qtest_client if qtest.is_configured else None,
        write=write,
    )
    for resolution in report.resolutions:
        print(describe(resolution))
    if not report.jira_asked:
        print("Jira not asked: set JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN to resolve names and e-mails")
    print(report.summary(), flush=True)
    return report


def run_users(args: argparse.Namespace) -> int:
    """``users``: every Atlassian account id the extracted tenant uses (``zephyr_raw``), with its roles and
    counts; with Jira configured, each one's name and e-mail, matched to the qTest user of that e-mail;
    the matches appended to user_map.csv (rows already there are kept as they are), unless --dry-run."""
    from zephyr_qtest.lib.postgres import redact_url

    settings = load_settings()
    db_url = staging_database_url(settings)
    print(f"staging database: {redact_url(db_url)}")
    resolve_people_of(settings, db_url, args.project or [], write=not args.dry_run)
    return 0


def groups_after_extraction() -> list[str]:
    """Every asset group of the migration but the extraction's (``zephyr_raw``)."""
    from zephyr_qtest.definitions import defs

    graph = defs().resolve_asset_graph()
    return sorted({graph.get(key).group_name for key in graph.get_all_asset_keys()} - {"zephyr_raw"})


def run_demo(args: argparse.Namespace) -> int:
    import asyncio

    from zephyr_qtest.lib.postgres import redact_url
    from zephyr_qtest.lib.zephyr.client import ZephyrClient
    from zephyr_qtest.lib.zephyr.discovery import discover_project_keys

    settings = prepare_dagster_home(load_settings())
    # Held for the whole demo, so the embedded server is not restarted between steps.
    db_url = staging_database_url(settings)
    print(f"staging database: {redact_url(db_url)}")
    generated = not settings.zephyr.base_url
    with service_settings(settings, sandbox=True, seed=args.seed, size=args.size) as settings:
        zephyr = settings.zephyr
        print(f"zephyr: {zephyr.base_url}\nqtest: {settings.qtest.base_url}")

        async def discover() -> list[str]:
            token = zephyr.api_token.get_secret_value() if zephyr.api_token else ""
            async with ZephyrClient(zephyr.base_url, token) as client:
                return await discover_project_keys(client)

        projects = args.project or asyncio.run(discover())
        print(f"projects: {', '.join(projects)}", flush=True)
        if not preflight_passed(settings, projects, db_url):
            return 1
        with people_settings(settings, generated=generated, seed=args.seed, size=args.size) as settings:
            # Extract first: the people are resolved from the extracted payloads, then the rest runs on them.
            failed, _ = run_migration(settings, projects, groups=["zephyr_raw"])
            print(f"\n== people (Jira: {settings.jira.base_url}) ==", flush=True)
            try:
                resolve_people_of(settings, db_url, projects)
            except Exception as error:
                from zephyr_qtest.lib.people import ensure_user_map

                # Nobody is mapped then, and the ledger says so per value: the migration still runs.
                print(f"people not resolved: {explain(error)}", flush=True)
                ensure_user_map(settings.jira.user_map_file())
            later, run_ids = run_migration(
                settings, [key for key in projects if key not in failed], groups=groups_after_extraction()
            )
            failed += later
        proven = print_reports(db_url, projects, settings.qtest.base_url, run_ids)
    if failed:
        print(f"\nfailed: {', '.join(failed)} (see the runs in `make ui`)", file=sys.stderr)
        return 1
    if not proven:
        # The generated tenant holds values qTest cannot take (as real ones do): the demo has worked when it
        # names them. `migrate` exits 1 on the same verdict, which is what a cut-over script checks.
        print(
            f"\n{NOT_PROVEN}\n(the demo exits 0: its tenant is made to hold such values; `migrate` exits 1)"
        )
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    """The whole graph for the named projects on the configured services (or the sandboxes)."""
    from zephyr_qtest.lib.postgres import redact_url

    settings = load_settings()
    if not args.sandbox:
        missing = [
            name
            for name, value in (
                ("ZEPHYR_BASE_URL", settings.zephyr.base_url),
                ("ZEPHYR_API_TOKEN", settings.zephyr.api_token),
                ("QTEST_BASE_URL", settings.qtest.base_url),
            )
            if not value
        ]
        if not (settings.qtest.api_token or settings.qtest.username):
            missing.append("QTEST_API_TOKEN (or QTEST_USERNAME and QTEST_PASSWORD)")
        if missing:
            print(f"zephyr-qtest migrate: set {', '.join(missing)}, or pass --sandbox", file=sys.stderr)
            return 2
    settings = prepare_dagster_home(settings)
    db_url = staging_database_url(settings)
    print(f"staging database: {redact_url(db_url)}")
    with service_settings(settings, sandbox=args.sandbox, seed=args.seed, size=args.size) as settings:
        print(f"zephyr: {settings.zephyr.base_url}\nqtest: {settings.qtest.base_url}", flush=True)
        # Before the child process and any Dagster partition: a blocker ends the command here.
        if not preflight_passed(
            settings, args.project, db_url, extracts=not args.only or "zephyr_raw" in args.only
        ):
            return 1
        if args.dry_run:
            from zephyr_qtest.plan_commands import dry_run_groups, print_plans

            failed, _ = run_migration(settings, args.project, groups=dry_run_groups(args.only))
            print_plans(settings, db_url, [key for key in args.project if key not in failed])
            return 1 if failed else 0
        failed, run_ids = run_migration(settings, args.project, groups=args.only, full=args.full)
        proven = print_reports(db_url, args.project, settings.qtest.base_url, run_ids)
    if failed:
        print(
            f"\nfailed: {', '.join(failed)}: change what each failure above names (a refused value: its seed "
            "or setting), then re-run the same command to finish them: a re-run sends only what is left, "
            "looks in qTest for what may have been made (pending) before sending anything again, and waits "
            "for qTest's queue where it may still be working",
            file=sys.stderr,
        )
        return 1
    if not proven and (not args.only or "qtest" in args.only):
        print(f"\n{NOT_PROVEN}", file=sys.stderr)
        return 1
    return 0


def preflight_passed(settings: Settings, projects: list[str], db_url: str, *, extracts: bool = True) -> bool:
    """The preflight checks (``zephyr_qtest.preflight``) on these settings, printed as a table; False when
    one found a blocker (its summary then goes to stderr). `extracts` False: Zephyr is not called by the
    run, and its problems are warnings."""
    from zephyr_qtest.preflight import run_preflight

    report = run_preflight(
        settings, projects, db_url, embedded_database=not settings.postgres.is_live, extracts=extracts
    )
    print(f"\n{report.table()}\n", flush=True)
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr, flush=True)
    return report.ok


def run_preflight_command(args: argparse.Namespace) -> int:
    """``preflight``: every check ``migrate`` runs first, reading only; exits 1 on any blocker."""
    from zephyr_qtest.lib.postgres import redact_url

    settings = load_settings()
    db_url = staging_database_url(settings)
    print(f"staging database: {redact_url(db_url)}")
    with service_settings(settings, sandbox=args.sandbox, seed=args.seed, size=args.size) as settings:
        return 0 if preflight_passed(settings, args.project or [], db_url) else 1


def run_rollback_command(args: argparse.Namespace) -> int:
    """``rollback``: see ``plan_commands.run_rollback``."""
    from zephyr_qtest.lib.qtest.id_map import site_of
    from zephyr_qtest.plan_commands import run_rollback

    settings = load_settings()
    db_url = staging_database_url(settings)
    sandbox_site = qtest_sandbox_site(settings)
    if settings.qtest.base_url or sandbox_site is None or site_of(args.site) != sandbox_site:
        return run_rollback(
            settings, db_url, args.project, args.site, yes=args.yes, sandbox_site=sandbox_site
        )
    # The site of `migrate --sandbox`: this home's qTest sandbox, started (or joined) at its address.
    with qtest_endpoint(settings) as qtest:
        settings = settings.model_copy(update={"qtest": qtest})
        return run_rollback(settings, db_url, args.project, args.site, yes=args.yes)


def run_sandbox_serve(args: argparse.Namespace) -> int:
    """Serve the Zephyr sandbox in the foreground and, beside it, the qTest sandbox on a thread.

    Both print the lines a shell can export (``QTEST_BASE_URL=``/``QTEST_API_TOKEN=``, then
    ``ZEPHYR_BASE_URL=``/``ZEPHYR_API_TOKEN=``); Ctrl-C stops both. The qTest state persists in
    ``--qtest-state`` (default: the project home's ``qtest-sandbox``), so a restart keeps its objects.
    """
    from zephyr_qtest.sandbox.qtest.serve import (
        SandboxPortBusy,
        print_banner,
        recorded_port,
        running_qtest_sandbox,
        start_qtest_in_thread,
    )
    from zephyr_qtest.sandbox.zephyr.serve import serve_zephyr

    qtest = None
    if not args.no_qtest:
        state = args.qtest_state or qtest_sandbox_state(load_settings())
        own_port = recorded_port(state)
        if args.qtest_port is not None and own_port is not None and args.qtest_port != own_port:
            print(
                f"note: the qTest sandbox of {state} has been served at port {own_port}: at port "
                f"{args.qtest_port} it is another qTest site to the migration's id map",
                flush=True,
            )
        try:
            # No --qtest-port: the state's own port (chosen and recorded at its first start).
            qtest = start_qtest_in_thread(
                state,
                port=args.qtest_port,
                seed=args.qtest_seed,
                rate_limit=args.qtest_rate_limit,
                latency_ms=args.qtest_latency_ms,
                fault_rate=args.qtest_fault_rate,
                drop_rate=args.qtest_drop_rate,
                lost_answer_rate=args.qtest_lost_answer_rate,
                projects=args.qtest_project,
                template=args.qtest_template,
            )
        except SandboxPortBusy as busy:
            running = running_qtest_sandbox(state, busy.port)
            if running is None:
                raise
            raise RuntimeError(
                f"the qTest sandbox of {state} is served at {running.base_url} by another command already "
                "(ui, demo, migrate --sandbox): use that one while it runs, stop it first, or pass "
                "--no-qtest to serve the Zephyr sandbox only"
            ) from None
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
    settings = prepare_dagster_home(load_settings())
    with service_settings(settings, sandbox=True, seed=args.seed, size=args.size) as settings:
        print(
            f"zephyr: {settings.zephyr.base_url}\nqtest: {settings.qtest.base_url}\n"
            f"DAGSTER_HOME={settings.dagster.home}\nUI: http://127.0.0.1:{args.port}",
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
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=child_environment(settings), preexec_fn=_default_signals
        )
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


def project_key_argument(value: str) -> str:
    """A --project value, refused before anything is created when it is not a Zephyr project key (it
    would otherwise stay behind as a Dagster partition)."""
    from zephyr_qtest.lib.zephyr.discovery import project_key_problem

    if (problem := project_key_problem(value)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zephyr-qtest", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--verbose", action="store_true", help="on an error, print the traceback after the one-line reason"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{demo,migrate,preflight,rollback,sandbox,ui,users}"
    )

    demo = commands.add_parser("demo", help="migrate the sandbox's projects end to end and print the result")
    demo.add_argument("--seed", type=int, default=7, help="sandbox data seed")
    demo.add_argument("--size", default="small", help="sandbox data size preset (tiny, small, bench)")
    demo.add_argument(
        "--project", action="append", type=project_key_argument, help="only this project key (repeatable)"
    )
    demo.set_defaults(run=run_demo)

    migrate = commands.add_parser(
        "migrate", help="run the whole graph for these projects, headless; non-zero exit when anything failed"
    )
    migrate.add_argument(
        "--project",
        action="append",
        required=True,
        type=project_key_argument,
        help="a Zephyr project key (repeatable)",
    )
    migrate.add_argument(
        "--only", action="append", choices=["zephyr_raw", "staging", "canonical", "qtest_mapping", "qtest", "snowflake"],
        help="only this asset group (repeatable), e.g. --only qtest to publish what is already transformed",
    )  # fmt: skip
    migrate.add_argument(
        "--sandbox", action="store_true", help="start both sandboxes instead of live services"
    )
    migrate.add_argument(
        "--dry-run", action="store_true",
        help="extract and transform, then print (and write to a file) the plan of qTest writes; write nothing to qTest",
    )  # fmt: skip
    migrate.add_argument("--seed", type=int, default=7, help="with --sandbox: the Zephyr sandbox's data seed")
    migrate.add_argument("--size", default="small", help="with --sandbox: its data size preset")
    migrate.add_argument(
        "--full",
        action="store_true",
        help="read all of Zephyr again (a run after a complete one reads what changed)",
    )
    migrate.set_defaults(run=run_migrate)

    preflight = commands.add_parser(
        "preflight", help="check settings, services, projects, fields and the database; writes nothing"
    )
    preflight.add_argument(
        "--project", action="append", type=project_key_argument, help="a Zephyr project key (repeatable)"
    )
    preflight.add_argument("--sandbox", action="store_true", help="check against both sandboxes")
    preflight.add_argument(
        "--seed", type=int, default=7, help="with --sandbox: the Zephyr sandbox's data seed"
    )
    preflight.add_argument("--size", default="small", help="with --sandbox: its data size preset")
    preflight.set_defaults(run=run_preflight_command)

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
    qtest.add_argument(
        "--qtest-port",
        type=int,
        default=None,
        help="its port (default: the one its state directory recorded at its first start, the address every "
        "command on this home uses); 0 picks any free one",
    )
    qtest.add_argument("--qtest-state", type=Path, help="its state directory (default: <home>/qtest-sandbox)")
    qtest.add_argument("--qtest-seed", type=int, default=0, help="seed of a new site's ids, token and faults")
    qtest.add_argument(
        "--qtest-project", action="append", default=[], metavar="NAME", help="create if missing"
    )
    qtest.add_argument(
        "--qtest-template",
        choices=("default", "rich"),
        default="default",
        help="field settings of new projects: default (a new site's system fields only; the migration "
        "creates its own) or rich (with Zephyr Key, Labels, ... already there)",
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

    users = commands.add_parser(
        "users",
        help="the Atlassian accounts the extracted tenant uses, resolved through Jira and matched to qTest "
        "users by e-mail, written to user_map.csv for review",
    )
    users.add_argument(
        "--project", action="append", type=project_key_argument, help="only this project key (repeatable)"
    )
    users.add_argument("--dry-run", action="store_true", help="list and match, but write nothing")
    users.set_defaults(run=run_users)

    rollback = commands.add_parser(
        "rollback", help="delete from a qTest project what the migration created there (after a confirmation)"
    )
    rollback.add_argument(
        "--project", required=True, type=project_key_argument, help="the Zephyr project key"
    )
    rollback.add_argument(
        "--site", required=True, help="the qTest site the migration wrote to (QTEST_BASE_URL)"
    )
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollback.set_defaults(run=run_rollback_command)

    ui = commands.add_parser("ui", help="the Dagster UI on the local defaults")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--seed", type=int, default=7)
    ui.add_argument("--size", default="small")
    ui.set_defaults(run=run_ui)

    # What demo and migrate start in a child process (run_migration); not meant to be typed.
    jobs = commands.add_parser("run-jobs", help=argparse.SUPPRESS)
    jobs.add_argument("--project", action="append", required=True)
    jobs.add_argument("--only", action="append")
    jobs.add_argument("--failed-file", type=Path, required=True)
    jobs.add_argument("--runs-file", type=Path)
    jobs.add_argument("--progress-fd", type=int, help="a pipe for the stage lines (run_output.run_child)")
    jobs.add_argument("--full", action="store_true")
    jobs.set_defaults(run=run_jobs)
    return parser


def explain(error: BaseException) -> str:
    """One line for an error that ends the CLI: its cause, and what to do, naming the setting to change
    (secrets masked)."""
    import httpx
    import psycopg
    import pydantic

    from zephyr_qtest.lib.redaction import redact
    from zephyr_qtest.preflight import database_setting, service_error_remedy
    from zephyr_qtest.sandbox.qtest.serve import SandboxPortBusy

    message = " ".join(str(error).split()) or type(error).__name__
    settings = _settings_or_none()
    if isinstance(error, psycopg.OperationalError):
        if settings is not None and not settings.postgres.is_live:
            advice = (
                "the embedded server's staging database could not be used: check ZEPHYR_QTEST_HOME (its data "
                "is under it), or set DATABASE_URL to a PostgreSQL server of your own"
            )
        else:
            setting = database_setting(settings) if settings else "DATABASE_URL (or the POSTGRES_* settings)"
            advice = (
                f"the staging database could not be used: check {setting}, or unset DATABASE_URL and "
                "POSTGRES_HOST to use the embedded server; `zephyr-qtest preflight` checks it in seconds"
            )
    elif settings is not None and (remedy := service_error_remedy(error, settings)) is not None:
        advice = remedy
    elif isinstance(error, SandboxPortBusy):
        # The message names the port, its file and what to change; a project home has one sandbox address.
        advice = "another ZEPHYR_QTEST_HOME has a qTest sandbox (and an address) of its own"
    elif isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        advice = "a service could not be reached: check ZEPHYR_BASE_URL and QTEST_BASE_URL and the network"
    elif isinstance(error, pydantic.ValidationError):
        names = ", ".join(str(item["loc"][0]) for item in error.errors() if item.get("loc"))
        advice = f"a setting is not valid: fix {names or 'it'} in the environment or .env"
        message = "; ".join(
            f"{item['loc'][0] if item.get('loc') else ''}: {item['msg']}" for item in error.errors()
        )
    else:
        advice = "re-run with --verbose for the traceback"
    return redact(f"{type(error).__name__}: {message[:500]} ({advice})")


def _settings_or_none() -> Settings | None:
    """The settings, for naming a setting in an error's advice; None when they cannot be read (that is
    then the error being explained)."""
    try:
        return load_settings()
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    from zephyr_qtest.run_output import configure, print_log_path

    args = build_parser().parse_args(argv)
    # Where `migrate` and `demo` send the job's own output (a log file) and how they show its stages.
    configure(args.command, verbose=args.verbose)
    if not args.verbose:
        import warnings

        # Said by a dependency on every start where the variable is unset (root, CI); nothing to change.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        # The connection pool warns of every failed attempt; the store retries them and an outage that
        # outlasts ZEPHYR_QTEST_DATABASE_OUTAGE_S ends in the one line below, naming the database.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    try:
        code = args.run(args)
    except KeyboardInterrupt:
        print_log_path(sys.stderr)
        print(
            "zephyr-qtest: interrupted; re-run the same command to go on from where it stopped",
            file=sys.stderr,
        )
        return 130
    except Exception as error:
        # The run-jobs child writes to the log file: its traceback belongs there.
        if args.verbose or args.command == "run-jobs":
            import traceback

            from zephyr_qtest.lib.redaction import redact

            print(redact("".join(traceback.format_exception(error))), file=sys.stderr)
        print_log_path(sys.stderr)
        print(f"zephyr-qtest {args.command}: {explain(error)}", file=sys.stderr)
        return 1
    print_log_path(sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
