"""The Zephyr Scale Cloud (REST API v2) sandbox: app, data generator, fixture format, switches.

Run it with ``python -m zephyr_qtest.sandbox.zephyr`` (or ``zephyr-qtest sandbox serve``), or from
Python with ``zephyr_qtest.sandbox.zephyr.serve.start_in_thread``. See docs/zephyr-sandbox.md.
"""

from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox, create_app
from zephyr_qtest.sandbox.zephyr.auth import mint_token
from zephyr_qtest.sandbox.zephyr.faults import FaultConfig
from zephyr_qtest.sandbox.zephyr.fixture import FixtureError, load_fixture, save_fixture, validate_fixture
from zephyr_qtest.sandbox.zephyr.generator import SIZE_PRESETS, generate

__all__ = [
    "SIZE_PRESETS",
    "FaultConfig",
    "FixtureError",
    "ZephyrSandbox",
    "create_app",
    "generate",
    "load_fixture",
    "mint_token",
    "save_fixture",
    "validate_fixture",
]
