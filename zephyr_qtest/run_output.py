"""What ``migrate`` and ``demo`` print while the migration job runs, and where the rest goes.

The job runs in a child process (``run-jobs``, started by ``cli.run_migration``). Everything that child
writes on stdout and stderr (Dagster's events, DEBUG included, dbt's own lines, warnings, tracebacks) goes
to the command's **log file** (``<project home>/logs/``), whose path the command prints when it starts and
when it ends. The child also writes, on a pipe of its own, one JSON line per stage change
(``lib/progress.Recorder``); the parent reads them and shows one line per stage (``lib/progress.Board``):
in place on a terminal, plain lines when its output is piped.

Stages are the job's steps, named for people: ``extract <entity>``, ``transform (dbt)``, ``publish
<stage>``, ``proof``, and ``snowflake`` (its copy steps, together). The Dagster side of the child reports
their starts and ends from the run's own events (``StageEvents``, a handler on the run's log manager);
what each step does in between comes from the emitters in ``lib/`` (``lib/progress.py``).
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from zephyr_qtest.lib.progress import Board, Recorder, renderer_for
from zephyr_qtest.lib.redaction import redact

# Logs kept in <home>/logs: the older ones are removed when a command starts.
LOGS_KEPT = 30
SNOWFLAKE_STAGE = "snowflake"
# The step whose progress is its outputs: dbt's models, seeds and tests, as dagster-dbt reports each.
TRANSFORM_STEP = "zephyr_dbt_models"

# This process's command (``main`` sets it), its log file once made, and, in the child, its recorder.
_command = "zephyr-qtest"
_verbose = False
_log_file: Path | None = None
_recorder: Recorder | None = None


def configure(command: str, *, verbose: bool) -> None:
    """The command this process runs, and whether it shows the tracebacks (``--verbose``)."""
    global _command, _verbose
    _command, _verbose = command, verbose


def verbose() -> bool:
    return _verbose


# ---------------------------------------------------------------------------------------- the parent


def command_log(home: Path) -> Path:
    """This command's log file (the same for every child it starts), made on the first call, its path
    printed then."""
    global _log_file
    if _log_file is None:
        command = _command
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for old in sorted(logs.glob("*.log"))[: -LOGS_KEPT + 1 or None]:
            old.unlink(missing_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        _log_file = logs / f"{stamp}-{command}-{os.getpid()}.log"
        _log_file.touch()
        print(
            f"the full log of this command (every event, dbt's output, tracebacks): {_log_file}", flush=True
        )
    return _log_file


def print_log_path(stream: IO[str]) -> None:
    """The log file's path again at the end, if this command wrote one."""
    if _log_file is not None:
        print(f"the full log of this command: {_log_file}", file=stream, flush=True)


def run_child(
    command: Sequence[str], env: Mapping[str, str], log_file: Path, *, out: IO[str] | None = None
) -> int:
    """Run the ``run-jobs`` child with ``--progress-fd``: its stdout and stderr appended to `log_file`, its
    stage lines shown on `out` (stdout). Returns its exit code."""
    out = out or sys.stdout
    read_fd, write_fd = os.pipe()
    board = Board(renderer_for(out))
    with open(log_file, "ab") as log:
        try:
            process = subprocess.Popen(
                [*command, "--progress-fd", str(write_fd)],
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)
        try:
            with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as stream:
                _show(stream, board)
            return process.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the child too (same process group): let Dagster end its run cleanly.
            process.wait()
            raise
        finally:
            board.close()


def _show(stream: IO[str], board: Board) -> None:
    """Feed the board each line of the child's progress stream until it closes; tick while it is quiet."""
    buffered = ""
    fd = stream.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            board.tick()
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffered += chunk.decode("utf-8", errors="replace")
        *lines, buffered = buffered.split("\n")
        for line in lines:
            if line.strip():
                board.feed(line)
        board.tick()
    if buffered.strip():
        board.feed(buffered)


# ----------------------------------------------------------------------------------------- the child


def start_recording(progress_fd: int | None) -> Recorder | None:
    """The child's recorder on the parent's pipe (None without one: the run then prints nothing more)."""
    global _recorder
    if progress_fd is None:
        return None
    _recorder = Recorder(os.fdopen(progress_fd, "w", encoding="utf-8", buffering=1)).attach()
    return _recorder


def recorder() -> Recorder | None:
    """The child's recorder, when its parent listens."""
    return _recorder


def say(text: str) -> None:
    """A line for the user: in the log, and on the parent's terminal when it listens."""
    print(text, flush=True)
    if _recorder is not None:
        _recorder.message(text)


def stage_of(step_key: str) -> tuple[str, str]:
    """The stage a step belongs to: its key and its label."""
    group, _, name = step_key.partition("__")
    if group == "zephyr_raw":
        return step_key, f"extract {name}"
    if step_key == TRANSFORM_STEP:
        return step_key, "transform (dbt)"
    if group == "qtest":
        return step_key, "proof" if name == "reconciliation" else f"publish {name}"
    if group == "snowflake":
        return SNOWFLAKE_STAGE, "snowflake copy"
    return step_key, step_key


def failure_text(event: Any) -> str:
    """One line for a failed step: the innermost error's class and message (the traceback is in the log)."""
    data = event.step_failure_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and getattr(user, "description", None):
        return redact(" ".join(str(user.description).split())[:400])
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "failed (see the log)"
    message = " ".join(str(error.message).split())
    if error.cls_name and not message.startswith(error.cls_name):
        message = f"{error.cls_name}: {message}"
    return redact(message[:400])


class StageEvents(logging.Handler):
    """A handler on the run's log manager: each step's start and end as a stage of `recorder` (named by
    ``stage_of``, with the project), and the transform step's outputs (dbt's models and tests) as its
    progress. `outputs`: the transform step's number of outputs (``step_outputs``); `snowflake_steps`: the
    number of snowflake copy steps the run has (their one stage ends with the last)."""

    def __init__(
        self, recorder: Recorder, project_key: str, outputs: Mapping[str, int], snowflake_steps: int
    ) -> None:
        super().__init__(logging.DEBUG)
        self._recorder = recorder
        self._project = project_key
        self._outputs = outputs
        self._snowflake_steps = snowflake_steps
        self._snowflake_done = 0

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None)
        event = meta.get("dagster_event") if isinstance(meta, dict) else None
        step_key = getattr(event, "step_key", None)
        if event is None or step_key is None:
            return
        stage, label = stage_of(step_key)
        key = f"{self._project}/{stage}"
        kind = event.event_type_value
        snowflake = stage == SNOWFLAKE_STAGE
        if kind == "STEP_START":
            if snowflake:
                if not self._recorder.running(key):
                    self._recorder.start(
                        key, f"{label} {self._project}", total=self._snowflake_steps, unit="tables"
                    )
                return
            many = step_key in self._outputs
            self._recorder.start(
                key,
                f"{label} {self._project}",
                total=self._outputs[step_key] if many else None,
                unit="models and tests" if many else "",
            )
        elif kind in ("ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"):
            if step_key in self._outputs:
                self._recorder.count(key, "advance", 1)
        elif kind == "STEP_SUCCESS":
            if snowflake:
                self._snowflake_done += 1
                self._recorder.count(key, "advance", 1, "tables")
                if self._snowflake_done >= self._snowflake_steps:
                    self._recorder.finish(key, ok=True)
                return
            self._recorder.finish(key, ok=True)
        elif kind == "STEP_FAILURE":
            error = failure_text(event)
            if _verbose and event.step_failure_data.error is not None:
                error += "\n" + redact(event.step_failure_data.error.to_string())
            self._recorder.finish(key, ok=False, error=f"{step_key}: {error}")


def step_outputs(job: Any, selection: Iterable[Any] | None) -> tuple[dict[str, int], int]:
    """The number of outputs (assets and checks) of the transform step in a run of `job` on `selection`
    (None: all), by its step key (absent when the run has none), and how many steps copy to Snowflake."""
    graph = job.asset_layer.asset_graph
    selected = set(selection) if selection is not None else None
    outputs: dict[str, int] = {}
    snowflake = 0
    for assets_def in graph.assets_defs:
        keys = [key for key in assets_def.keys if selected is None or key in selected]
        if not keys or not assets_def.is_executable:
            continue
        step = assets_def.op.name
        if step == TRANSFORM_STEP:
            outputs[step] = len(keys) + len(assets_def.check_keys)
        if stage_of(step)[0] == SNOWFLAKE_STAGE:
            snowflake += 1
    return outputs, snowflake


def watch_stages(instance: Any, handler: logging.Handler | None) -> None:
    """Have every run `instance` starts in this process also log to `handler` (None: stop).

    The run's log manager takes its handlers from ``instance.get_handlers()`` (the event log's, and those
    of ``python_logs`` in dagster.yaml); this instance of it, in this process only, adds `handler`. The
    job's loggers are left alone: a run started here can be re-executed from the UI as it is."""
    if handler is None:
        instance.__dict__.pop("get_handlers", None)
        return
    original = type(instance).get_handlers

    def get_handlers() -> list[logging.Handler]:
        return [*original(instance), handler]

    instance.get_handlers = get_handlers


def ensure_stage_ends(recorder: Recorder | None, *, ok: bool, error: str | None = None) -> None:
    """End the stages a run left running (it stopped before their end events)."""
    if recorder is not None:
        recorder.finish_all(ok=ok, error=error)
