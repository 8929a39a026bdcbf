"""The stage lines of `migrate` and `demo` (``lib/progress.py``): what the child's recorder sends, drawn by
the parent's board in place on a terminal (a fake tty whose screen is replayed here), and as a bounded
number of plain lines when piped. The renderer only; the CLI run is tests/integration/test_progress_output.py."""

from __future__ import annotations

import io
import re

from zephyr_qtest.lib import progress
from zephyr_qtest.lib.progress import Board, PlainRenderer, Recorder, TerminalRenderer, renderer_for


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def screen(written: str) -> list[str]:
    """The lines a terminal shows after `written`: text, newlines, and the two controls the renderer uses
    (``ESC[nF``: up n lines to their start; ``ESC[J``: clear to the end of the screen)."""
    lines = [""]
    row = 0
    for token in re.split(r"(\x1b\[\d*F|\x1b\[J|\r|\n)", written):
        if not token:
            continue
        if token == "\n":
            row += 1
            if row == len(lines):
                lines.append("")
        elif token == "\r":
            pass
        elif token == "\x1b[J":
            del lines[row + 1 :]
            lines[row] = ""
        elif token.startswith("\x1b["):
            row = max(0, row - int(token[2:-1] or 1))
        else:
            assert "\x1b" not in token, repr(token)
            lines[row] += token
    return [line for line in lines if line]


def recorded_run(clock: Clock) -> list[str]:
    """The recorder's lines for two stages, as the emitters in lib/ and the Dagster side would send them:
    a listing whose total is not known (a nextgen collection), then one with a total (child listings)."""
    stream = io.StringIO()
    recorder = Recorder(stream, clock=clock).attach()
    try:
        recorder.start("SHOP/zephyr_raw__test_cases", "extract test_cases SHOP")
        for _ in range(3):
            clock.now += 1
            progress.requested()
            progress.advance(1000, "test cases")
        recorder.finish("SHOP/zephyr_raw__test_cases", ok=True)
        recorder.message("a line for the user")
        recorder.start("SHOP/zephyr_raw__test_steps", "extract test_steps SHOP")
        progress.expect(3000, "test cases")
        for _ in range(30):
            clock.now += 1
            progress.requested()
            progress.advance(50, "test cases")
        clock.now += 1
        progress.rate_limited()
    finally:
        recorder.detach()
    return stream.getvalue().splitlines()


def test_a_terminal_shows_each_finished_stage_once_and_redraws_the_running_one_in_place() -> None:
    clock = Clock()
    lines = recorded_run(clock)
    tty = FakeTty()
    renderer = renderer_for(tty)
    assert isinstance(renderer, TerminalRenderer)
    board = Board(TerminalRenderer(tty, clock=clock, width=lambda: 200), clock=clock)
    for line in lines:
        board.feed(line)
        clock.now += 1
        board.tick()

    shown = screen(tty.getvalue())
    # Many updates were drawn, but the screen holds one line per stage and the message.
    assert tty.getvalue().count("\x1b[1F") >= 5
    assert len(shown) == 3, shown
    finished, message, running = shown
    assert finished.startswith("extract test_cases SHOP") and "3,000 test cases" in finished
    assert "done in" in finished and "ETA" not in finished and "3 requests" in finished
    assert message == "a line for the user"
    # A known total: done of total, a percentage and an ETA; the 429 met.
    assert running.startswith("extract test_steps SHOP")
    assert "1,500/3,000 test cases" in running and " 50%" in running and "ETA " in running
    assert "1 x 429" in running

    board.feed(lines[-1].replace('"running"', '"failed"').replace('"error": null', '"error": "boom"'))
    board.close()
    final = screen(tty.getvalue())
    assert len(final) == 3 and "FAILED in" in final[-1] and final[-1].endswith(": boom"), final


def test_without_a_total_the_line_shows_the_rate_not_an_eta() -> None:
    clock = Clock()
    lines = recorded_run(clock)
    tty = FakeTty()
    board = Board(TerminalRenderer(tty, clock=clock, width=lambda: 200), clock=clock)
    # Up to the first stage's last count, while it still runs.
    running = [line for line in lines if "test_cases" in line and '"running"' in line]
    for line in running:
        board.feed(line)
        clock.now += 1
    (shown,) = screen(tty.getvalue())
    assert re.search(r"\d[\d,]* test cases  [\d,]+/s", shown) and "ETA" not in shown and "%" not in shown


def test_piped_output_is_a_start_an_end_and_a_line_per_tenth() -> None:
    clock = Clock()
    out = io.StringIO()
    board = Board(PlainRenderer(out), clock=clock)
    for line in recorded_run(clock):
        board.feed(line)
    board.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "start extract test_cases SHOP"
    assert lines[1].startswith("end   extract test_cases SHOP") and "done in" in lines[1]
    assert lines[2:4] == ["a line for the user", "start extract test_steps SHOP"]
    # 30 counts of the second stage, half its total: at most one line per tenth, and no control codes.
    progress_lines = lines[4:]
    assert 1 <= len(progress_lines) <= 5, lines
    assert all(line.startswith("      extract test_steps SHOP") for line in progress_lines)
    assert "\x1b" not in out.getvalue()
