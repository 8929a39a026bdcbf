"""Zephyr Scale Cloud: the API client (and, beside it, the extraction that fills the raw tables)."""

from zephyr_qtest.lib.zephyr.client import ZephyrClient

__all__ = ["ZephyrClient"]
