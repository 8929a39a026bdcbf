"""Local stand-ins for the vendor APIs the migration talks to.

Each sandbox is a real ASGI server (Starlette, served by uvicorn on 127.0.0.1) that follows the
vendor's published API spec, serves deterministic generated data or a fixture file, and can be
told to misbehave (rate limits, latency, 5xx, dropped connections, malformed pages). Teams use
them to rehearse a migration locally; the test-suite and the benchmark use them too.

One package per vendor (``zephyr/``, ``qtest/``), each with its server (``serve.py``); what every
sandbox needs alike (fault-switch checks, request statistics, serving on a thread) is ``common.py``.

Nothing here imports ``zephyr_qtest.lib`` or ``zephyr_qtest.defs``: a server that shared the
client's code could not catch the client's mistakes.
"""
