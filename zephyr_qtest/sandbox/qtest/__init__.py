"""The qTest Manager (REST API v3) sandbox: app, SQLite store, default project template, switches.

Run it with ``python -m zephyr_qtest.sandbox.qtest`` (or ``zephyr-qtest sandbox serve``), or from Python
with ``zephyr_qtest.sandbox.qtest.serve.start_qtest_in_thread``. See docs/qtest-sandbox.md.
"""

from zephyr_qtest.sandbox.qtest.app import QTestSandbox, create_app
from zephyr_qtest.sandbox.qtest.faults import FaultConfig
from zephyr_qtest.sandbox.qtest.store import QTestError, QTestStore

__all__ = ["FaultConfig", "QTestError", "QTestSandbox", "QTestStore", "create_app"]
