"""Zephyr as extracted against qTest as read back (placeholder: the comparison lands in the next commits;
until then the ledger holds only the objects the reconciliation found missing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.reconcile import Reconciliation, reconcile

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import Store


async def prove(store: Store, client: QtestClient, project_key: str) -> tuple[Reconciliation, Ledger]:
    """The project reconciled (marts against qTest, for the loader's own check) and proven (raw payloads
    against qTest): the ledger of every value that did not arrive."""
    outcome = await reconcile(store, client, project_key)
    ledger = Ledger(project_key, outcome.target, outcome.target_site)
    for result in outcome.results.values():
        count = ledger.count(result.object_type)
        count.in_zephyr, count.in_qtest = result.expected, result.expected - len(result.missing)
        for key in result.missing:
            ledger.add(LedgerLine(result.object_type, key, "(object)", key, Reason.OBJECT_MISSING, "re-run"))
    return outcome, ledger
