"""The runbook's screenshots (docs/runbook.md), taken in Debian's chromium, headless, from the real
`zephyr-qtest ui` after a real `zephyr-qtest migrate` of a one-project tenant: the asset lineage, the
publishing stages, a project partition's materialization, the run that migrated, and the proof with its
ledger. Each page is photographed once it shows what the runbook says it shows (asset names, the run's
success, the verdict the command printed), never after a fixed time.

`make screenshots` writes them to docs/runbook/ (RUNBOOK_SCREENSHOTS names the directory); otherwise they
go under the test's temp dir. The browser is driven through selenium and Debian's /usr/bin/chromedriver:
the driver path is given, so selenium-manager never runs and nothing is downloaded. Without chromium the
test fails under CI (CI=true) and is skipped elsewhere, naming the packages to install."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from tests.e2e.processes import free_port, stop_group
from zephyr_qtest.defs.partitions import zephyr_projects
from zephyr_qtest.sandbox.qtest.serve import start_qtest_in_thread
from zephyr_qtest.sandbox.zephyr.serve import start_in_thread

REPO = Path(__file__).resolve().parents[2]
PROJECT = "SHOP"
CASES = 5
# The smallest tenant whose run touches every stage: one project, a few cases, executions and files.
TENANT = {"preset": "tiny", "projects": 1, "cases": CASES, "executions": 10}
WIDTH, HEIGHT = 1400, 900
INSTALL = "apt-get install -y chromium chromium-driver"
# Deadlines only bound a hang: every wait below waits for a state.
DEADLINE_S = 600
GROUPS = ("zephyr_raw", "staging", "canonical", "qtest_mapping", "qtest", "snowflake")
PUBLISH_STAGES = ("modules", "test_cases", "test_cycles", "test_runs", "test_logs", "attachments")

# Scrolls every scrolled box around an element back to its top.
SCROLL_TO_TOP = """
for (let box = arguments[0]; box; box = box.parentElement) { if (box.scrollTop) { box.scrollTop = 0; } }
"""
# Whether no transition or finite animation is under way (a dialog fading in); a spinner's loop is none.
STILL = """
return document.getAnimations().every(
    (animation) => animation.playState !== 'running' || animation.effect.getTiming().iterations === Infinity
);
"""
LOCATION = (
    "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename } } } } }"
)


def browser_binaries() -> tuple[str, str]:
    """Debian's chromium and its chromedriver; a failure under CI, a skip elsewhere, when missing."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and chromedriver:
        return chromium, chromedriver
    missing = " and ".join(
        name for name, path in (("chromium", chromium), ("chromedriver", chromedriver)) if not path
    )
    reason = f"{missing} not found: the runbook's screenshots need Debian's browser ({INSTALL})"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless chromium with a 1400x900 page, whatever the window decorations take."""
    chromium, chromedriver = browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: chromium refuses to start as root (CI runs as root) with its sandbox on.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()


def graphql(port: int, query: str) -> dict[str, Any]:
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
    return response.json()["data"]


def wait_for_location(port: int, process: subprocess.Popen[str], log: Path) -> None:
    """Until the UI serves the code location (or the UI process ends, which fails the test)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"zephyr-qtest ui exited:\n{log.read_text()[-4000:]}"
        try:
            entries = graphql(port, LOCATION)["workspaceOrError"]["locationEntries"]
            location = entries[0]["locationOrLoadError"] if entries else None
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            location = None
        if location:
            assert location["__typename"] == "RepositoryLocation", location
            return
        time.sleep(0.5)
    raise AssertionError("the UI never served the code location")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.mark.e2e
def test_the_runbook_screenshots_show_a_real_migration_in_the_ui(
    tmp_path: Path, browser: Any, embedded_databases: Callable[[], str]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = Path(os.environ.get("RUNBOOK_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    zephyr = start_in_thread(seed=7, size=TENANT)
    qtest = start_qtest_in_thread(tmp_path / "qtest-sandbox", template="default")
    # The UI and the migration share one project home (so one Dagster instance) and one staging database;
    # cwd is the temp dir so that no developer's .env reaches them.
    env = {
        **{key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"},
        "ZEPHYR_QTEST_HOME": str(tmp_path / "home"),
        "ZEPHYR_QTEST_REPORTS": str(tmp_path / "reports"),
        "DATABASE_URL": embedded_databases(),
        "ZEPHYR_BASE_URL": zephyr.base_url,
        "ZEPHYR_API_TOKEN": zephyr.token,
        "QTEST_BASE_URL": qtest.base_url,
        "QTEST_API_TOKEN": qtest.token,
    }
    # The project's partition exists before the UI's discovery sensor and `migrate` start: each adds only the
    # keys missing, and two adding the same key at once race in Dagster's storage.
    dagster_home = tmp_path / "home" / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_dynamic_partitions(zephyr_projects.name, [PROJECT])
    command = str(Path(sys.executable).parent / "zephyr-qtest")
    port = free_port()
    ui_log = tmp_path / "ui.log"
    with ui_log.open("w") as log:
        # To a file, not a pipe: nobody reads the UI's output while it runs, and a full pipe would stop it.
        ui = subprocess.Popen(
            [command, "ui", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        # The migration runs while the UI starts: its run is in the instance the UI reads.
        migrated = subprocess.run(
            [command, "migrate", "--project", PROJECT],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        )
        output = migrated.stdout + migrated.stderr
        run = re.search(r"^run (\S+) succeeded", output, re.MULTILINE)
        assert run, output[-4000:]
        run_id = run.group(1)
        verdict = re.search(rf"^  {PROJECT}: ((?:complete|incomplete)\b.*)$", output, re.MULTILINE)
        assert verdict, output[-4000:]
        # The tiny tenant holds values qTest cannot take, as a first rehearsal's does: exit 1, and the verdict
        # names them; every run and stage succeeded all the same.
        assert migrated.returncode == (0 if verdict.group(1).startswith("complete") else 1), output[-4000:]

        wait_for_location(port, ui, ui_log)
        # A local Dagster shows a "Join the Dagster community" dialog over every page until it was seen.
        assert graphql(port, "mutation { setNuxSeen }")["setNuxSeen"] is True
        base = f"http://127.0.0.1:{port}"
        wait = WebDriverWait(browser, DEADLINE_S, poll_frequency=0.2)

        def shown(xpath: str) -> Any:
            return wait.until(lambda driver: next(iter(driver.find_elements(By.XPATH, xpath)), None))

        def group_node(name: str) -> Any:
            # Graph nodes are HTML inside the graph's SVG; a collapsed group has its name as tooltip.
            return shown(f"//*[local-name()='foreignObject']//*[@data-tooltip='{name}']")

        def asset_box(name: str, colour: str) -> Any:
            """An asset of the zoomed-out graph, once its status has arrived: its box's colour says it
            (green: materialized in every partition; light grey while the status is loading)."""
            return shown(
                "//*[local-name()='foreignObject']//div[contains(@class, 'minimalAssetNodeBox')]"
                f"[contains(@style, 'color-background-{colour}')][normalize-space()='{name}']"
            )

        def settled(element: Any) -> None:
            """Until the graph stops moving (it zooms to fit once laid out)."""
            last: list[Any] = [None]

            def still(_: Any) -> bool:
                now = element.rect
                steady, last[0] = now == last[0], now
                return steady

            wait.until(still)

        def photograph(name: str) -> Path:
            path = shots / name
            wait.until(lambda driver: driver.execute_script(STILL))
            assert browser.save_screenshot(str(path)), path
            assert png_size(path) == (WIDTH, HEIGHT), (path, png_size(path))
            # A blank or half-drawn page compresses to a few kilobytes.
            assert path.stat().st_size > 20_000, (path, path.stat().st_size)
            return path

        browser.get(f"{base}/asset-groups")
        shown("//*[text()='Hide navigation']").click()
        for group in GROUPS:
            node = group_node(group)
        settled(node)
        photograph("lineage.png")

        browser.get(f"{base}/assets/qtest/reconciliation?view=lineage&lineageScope=upstream&lineageDepth=1")
        for stage in PUBLISH_STAGES:
            node = asset_box(stage, "green")
        # Red: a check failed (`complete`, with this incomplete verdict).
        asset_box("reconciliation", "green" if verdict.group(1).startswith("complete") else "red")
        settled(node)
        photograph("publish-lineage.png")

        browser.get(f"{base}/assets/qtest/test_cases?view=partitions&partition={PROJECT}")
        shown(f"//*[text()='{PROJECT}']/following::*[text()='Materialized']")
        created = shown("//td[normalize-space()='created']/following-sibling::td[1]")
        assert created.text.strip() == str(CASES)
        assert shown(f"//a[contains(@href, '/runs/{run_id}')]")
        photograph("partition.png")

        browser.get(f"{base}/runs/{run_id}")
        # The run's status in its header (its RUN_SUCCESS event may be below the fold of the event list,
        # which renders only the rows in view).
        assert shown("//*[text()='Success']")
        assert shown(f"//*[normalize-space()='partition: {PROJECT}']")
        photograph("run.png")

        browser.get(f"{base}/assets/qtest/reconciliation?partition={PROJECT}")
        shown("//*[text()='[Show Markdown]']").click()
        heading = shown(f"//h1[normalize-space()='Proof of {PROJECT}']")
        assert shown(f"//p[normalize-space()='Verdict: {verdict.group(1)}']")
        # The dialog scrolls to its buttons when it opens: back to its top, the verdict.
        browser.execute_script(SCROLL_TO_TOP, heading)
        photograph("proof.png")
        ledger = shown("//h2[starts-with(normalize-space(), 'What did not arrive')]")
        assert shown(
            "//h2[starts-with(normalize-space(), 'What did not arrive')]/following::td[normalize-space()='not carried by design']"
        )
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", ledger)
        photograph("ledger.png")
    finally:
        stop_group(ui)
        qtest.stop()
        zephyr.stop()
