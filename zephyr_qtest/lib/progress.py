"""What a migration tells the terminal while it runs: one line per stage, with its progress.

Three parts, none of which imports Dagster:

- **Emitters** for the code that does the work (``requested``, ``rate_limited``, ``expect``, ``advance``):
  records on the ``zephyr_qtest.progress`` logger, at DEBUG. Nobody listens by default, so a run from the
  UI or a test pays one ``isEnabledFor`` per call. They carry no stage: the migration job runs its steps
  one at a time in one process (``in_process_executor``), so a count belongs to the step running.
- **Recorder** (the ``run-jobs`` child): ``Recorder`` gathers those counts and the stage starts and ends
  (which the Dagster side reports: ``zephyr_qtest/run_output.py``) into ``Stage`` snapshots and writes
  them as JSON lines to the parent, a stage's counts at most a few times a second.
- **Renderers** (the ``migrate`` / ``demo`` parent): ``Board`` applies the snapshots it reads and a
  renderer shows them: in place on a terminal (``TerminalRenderer``), or as plain lines when the output is
  piped (``PlainRenderer``: a line when a stage starts, when it ends, and at every tenth of its total, or
  every ``PLAIN_EVERY_S`` when the total is not known).

A total is shown only where one is known (a listing whose pages carry ``total``, the parents of a child
listing, the objects a publishing stage has to send, the outputs of a dbt build); otherwise the line shows
what is done and the rate, never an ETA guessed from nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

LOGGER_NAME = "zephyr_qtest.progress"
_log = logging.getLogger(LOGGER_NAME)

# How often the recorder sends a running stage's counts, and the terminal redraws.
SNAPSHOT_EVERY_S = 0.25
REDRAW_EVERY_S = 0.1
# Plain (piped) output: a progress line at each tenth of a known total, else at most this often.
PLAIN_STEPS = 10
PLAIN_EVERY_S = 30.0


# ------------------------------------------------------------------------------------------ emitters


def _emit(kind: str, count: int, unit: str | None, message: str) -> None:
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug(message, extra={"progress": (kind, count, unit)})


def requested() -> None:
    """One HTTP request sent (retries included)."""
    _emit("requests", 1, None, "request sent")


def rate_limited() -> None:
    """One 429 answer met."""
    _emit("rate_limited", 1, None, "429 met")


def expect(count: int, unit: str) -> None:
    """`count` more `unit` to do in the running stage (its total, as far as it is known)."""
    _emit("expect", count, unit, f"{count} {unit} to do")


def advance(count: int, unit: str) -> None:
    """`count` `unit` done in the running stage."""
    _emit("advance", count, unit, f"{count} {unit} done")


# ------------------------------------------------------------------------------------------- a stage


@dataclass
class Stage:
    """One stage of one project's run, as the terminal shows it."""

    key: str
    label: str
    state: str = "running"  # running, done, failed
    done: int = 0
    total: int | None = None
    unit: str = ""
    requests: int = 0
    rate_limited: int = 0
    error: str | None = None
    # Seconds since the stage started, as the recorder measured them (the parent's own clock draws ETAs).
    seconds: float = 0.0

    def absorb(self, kind: str, count: int, unit: str | None) -> None:
        """A count from an emitter."""
        if kind == "requests":
            self.requests += count
        elif kind == "rate_limited":
            self.rate_limited += count
        else:
            if unit:
                # A stage that counts several kinds of objects shows them as objects.
                self.unit = unit if self.unit in ("", unit) else "objects"
            if kind == "expect":
                self.total = (self.total or 0) + count
            elif kind == "advance":
                self.done += count


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def describe(stage: Stage, elapsed: float) -> str:
    """The stage's line: what is done (of its total when known), ETA or rate, requests, 429s, time."""
    parts = [f"{stage.label:<34}"]
    unit = f" {stage.unit}" if stage.unit else ""
    if stage.total is not None and stage.total > 0:
        done = min(stage.done, stage.total)
        parts.append(f"{done:,}/{stage.total:,}{unit} {100 * done // stage.total:3d}%")
        if stage.state == "running" and 0 < done < stage.total and elapsed > 0:
            parts.append(f"ETA {_duration(elapsed * (stage.total - done) / done)}")
    elif stage.done:
        parts.append(f"{stage.done:,}{unit}")
        if stage.state == "running" and elapsed >= 1:
            parts.append(f"{stage.done / elapsed:,.0f}/s")
    if stage.requests:
        parts.append(f"{stage.requests:,} request{'' if stage.requests == 1 else 's'}")
    if stage.rate_limited:
        parts.append(f"{stage.rate_limited:,} x 429")
    if stage.state == "running":
        parts.append(_duration(elapsed))
        return "  ".join(parts)
    outcome = "done" if stage.state == "done" else "FAILED"
    line = f"{'  '.join(parts)}  {outcome} in {_duration(elapsed)}"
    if stage.error:
        line += f": {stage.error}"
    return line


# ------------------------------------------------------------------------------------- the recorder


class Recorder(logging.Handler):
    """The child's side: stage starts and ends (``start``/``finish``), the emitters' counts (as a logging
    handler on ``zephyr_qtest.progress``) and plain messages, written to `stream` as JSON lines."""

    def __init__(self, stream: IO[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(logging.DEBUG)
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self._stages: dict[str, Stage] = {}
        self._started: dict[str, float] = {}
        self._sent: dict[str, float] = {}
        # The stage counts go to: the one started last and still running.
        self._active: list[str] = []

    def attach(self) -> Recorder:
        """Listen to the emitters (the logger does not pass them on to the root's handlers)."""
        _log.setLevel(logging.DEBUG)
        _log.propagate = False
        _log.addHandler(self)
        return self

    def detach(self) -> None:
        _log.removeHandler(self)
        if not _log.handlers:
            _log.setLevel(logging.NOTSET)
            _log.propagate = True

    def emit(self, record: logging.LogRecord) -> None:
        progress = getattr(record, "progress", None)
        if progress is None:
            return
        kind, count, unit = progress
        with self._lock:
            if not self._active:
                return
            key = self._active[-1]
            self._stages[key].absorb(kind, count, unit)
            if self._clock() - self._sent.get(key, 0.0) >= SNAPSHOT_EVERY_S:
                self._send(key)

    def start(self, key: str, label: str, *, total: int | None = None, unit: str = "") -> None:
        with self._lock:
            self._stages[key] = Stage(key, label, total=total, unit=unit)
            self._started[key] = self._clock()
            self._active = [*(k for k in self._active if k != key), key]
            self._send(key)

    def running(self, key: str) -> bool:
        with self._lock:
            return key in self._active

    def count(self, key: str, kind: str, count: int = 1, unit: str | None = None) -> None:
        """A count for a stage named by its key (what the Dagster side knows: a step's outputs)."""
        with self._lock:
            stage = self._stages.get(key)
            if stage is None or stage.state != "running":
                return
            stage.absorb(kind, count, unit)
            if self._clock() - self._sent.get(key, 0.0) >= SNAPSHOT_EVERY_S:
                self._send(key)

    def finish(self, key: str, *, ok: bool, error: str | None = None) -> None:
        with self._lock:
            stage = self._stages.get(key)
            if stage is None or stage.state != "running":
                return
            stage.state = "done" if ok else "failed"
            stage.error = error
            self._active = [k for k in self._active if k != key]
            self._send(key)

    def finish_all(self, *, ok: bool, error: str | None = None) -> None:
        """End what is still running (a run that stopped before its stages ended)."""
        for key in list(self._active):
            self.finish(key, ok=ok, error=error)

    def message(self, text: str) -> None:
        """A line for the user (kept apart from the stage lines)."""
        with self._lock:
            self._write({"message": text})

    def _send(self, key: str) -> None:
        stage = self._stages[key]
        stage.seconds = round(self._clock() - self._started[key], 3)
        self._sent[key] = self._clock()
        self._write({"stage": asdict(stage)})

    def _write(self, document: dict[str, Any]) -> None:
        try:
            self._stream.write(json.dumps(document) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            # The parent went away (Ctrl-C): the run goes on to its end; its log still has everything.
            pass


# ---------------------------------------------------------------------------------- the parent side


@dataclass
class Board:
    """The parent's copy of the stages, from the recorder's lines, and the renderer that shows them."""

    renderer: Renderer
    clock: Callable[[], float] = time.monotonic
    stages: dict[str, Stage] = field(default_factory=dict)
    # The parent's clock at each stage's start as the recorder measured it.
    started: dict[str, float] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        """One line of the child's progress stream (anything else is shown as it is)."""
        try:
            document = json.loads(line)
        except ValueError:
            document = {"message": line.rstrip("\n")}
        if not isinstance(document, dict):
            document = {"message": line.rstrip("\n")}
        if "message" in document:
            self.renderer.message(str(document["message"]))
        elif isinstance(document.get("stage"), dict):
            stage = Stage(**document["stage"])
            first = stage.key not in self.stages
            if first:
                self.started[stage.key] = self.clock() - stage.seconds
            self.stages[stage.key] = stage
            self.renderer.update(stage, self.elapsed(stage), first=first)

    def elapsed(self, stage: Stage) -> float:
        if stage.state != "running":
            return stage.seconds
        return max(stage.seconds, self.clock() - self.started.get(stage.key, self.clock()))

    def tick(self) -> None:
        """Time passed without news (the running lines' times and ETAs move on)."""
        self.renderer.tick({key: (stage, self.elapsed(stage)) for key, stage in self.stages.items()})

    def close(self) -> None:
        self.renderer.close()


class Renderer:
    """How a board is shown."""

    def update(self, stage: Stage, elapsed: float, *, first: bool) -> None:
        raise NotImplementedError

    def message(self, text: str) -> None:
        raise NotImplementedError

    def tick(self, stages: dict[str, tuple[Stage, float]]) -> None:
        pass

    def close(self) -> None:
        pass


class PlainRenderer(Renderer):
    """Lines for a pipe or a file: a stage's start, its end, and its progress at each tenth of a known
    total (or every ``every_s`` of its own time when no total is known)."""

    def __init__(self, stream: IO[str], *, steps: int = PLAIN_STEPS, every_s: float = PLAIN_EVERY_S) -> None:
        self._stream = stream
        self._steps = steps
        self._every_s = every_s
        # Per stage: the last tenth shown, and the stage time of its last line.
        self._shown_step: dict[str, int] = {}
        self._shown_at: dict[str, float] = {}

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def update(self, stage: Stage, elapsed: float, *, first: bool) -> None:
        if first:
            self._shown_step[stage.key] = 0
            self._shown_at[stage.key] = elapsed
            self._write(f"start {stage.label}")
            if stage.state == "running":
                return
        if stage.state != "running":
            self._write(f"end   {describe(stage, elapsed)}")
            return
        if stage.total:
            step = min(stage.done, stage.total) * self._steps // stage.total
            if step <= self._shown_step.get(stage.key, 0) or step >= self._steps:
                return
            self._shown_step[stage.key] = step
        elif elapsed - self._shown_at.get(stage.key, 0.0) < self._every_s or not stage.done:
            return
        self._shown_at[stage.key] = elapsed
        self._write(f"      {describe(stage, elapsed)}")

    def message(self, text: str) -> None:
        self._write(text)


class TerminalRenderer(Renderer):
    """A terminal: finished stages stay as lines, the running ones are redrawn in place below them."""

    def __init__(
        self,
        stream: IO[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        width: Callable[[], int] | None = None,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._width = width or _terminal_width
        self._running: dict[str, str] = {}
        self._drawn = 0  # running lines on screen below the finished ones
        self._drawn_at = float("-inf")

    def update(self, stage: Stage, elapsed: float, *, first: bool) -> None:
        line = describe(stage, elapsed)
        if stage.state == "running":
            self._running[stage.key] = line
            self._redraw(force=first)
        else:
            self._running.pop(stage.key, None)
            self._redraw(force=True, above=[line])

    def message(self, text: str) -> None:
        self._redraw(force=True, above=text.splitlines() or [""])

    def tick(self, stages: dict[str, tuple[Stage, float]]) -> None:
        for key in self._running:
            stage, elapsed = stages[key]
            self._running[key] = describe(stage, elapsed)
        self._redraw()

    def close(self) -> None:
        self._redraw(force=True)

    def _redraw(self, *, force: bool = False, above: list[str] | None = None) -> None:
        now = self._clock()
        if not force and now - self._drawn_at < REDRAW_EVERY_S:
            return
        self._drawn_at = now
        width = max(20, self._width() - 1)
        # Up to the first running line, clear to the end of the screen, then write everything again.
        out = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else "\r\x1b[J"
        out += "".join(f"{line}\n" for line in above or [])
        running = [line[:width] for line in self._running.values()]
        out += "".join(f"{line}\n" for line in running)
        self._drawn = len(running)
        self._stream.write(out)
        self._stream.flush()


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def renderer_for(stream: IO[str]) -> Renderer:
    """In place on a terminal, plain lines otherwise."""
    isatty = getattr(stream, "isatty", None)
    return TerminalRenderer(stream) if isatty is not None and isatty() else PlainRenderer(stream)
