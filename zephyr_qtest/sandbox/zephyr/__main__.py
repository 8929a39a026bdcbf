"""``python -m zephyr_qtest.sandbox.zephyr``: serve the Zephyr sandbox, or write its data to a file.

    python -m zephyr_qtest.sandbox.zephyr --port 8080 --seed 7 --size small --rate-limit 20
    python -m zephyr_qtest.sandbox.zephyr --port 8080 --fixture my-tenant.json --latency-ms 80
    python -m zephyr_qtest.sandbox.zephyr --seed 7 --size bench --save-fixture bench.json.gz

The flags are those of ``zephyr-qtest sandbox serve``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from zephyr_qtest.sandbox.zephyr.faults import MALFORMED_KINDS, RETRY_AFTER_MODES, FaultConfigError
from zephyr_qtest.sandbox.zephyr.fixture import FixtureError, save_fixture
from zephyr_qtest.sandbox.zephyr.generator import SIZE_PRESETS, generate


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _malformed(text: str) -> dict[str, Any]:
    """``PREFIX:COUNT[:KIND]``, e.g. ``/testcases:3:missing_values``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise argparse.ArgumentTypeError(f"expected PREFIX:COUNT[:KIND], got {text!r}")
    kind = parts[2] if len(parts) == 3 else "invalid_json"
    if kind not in MALFORMED_KINDS:
        raise argparse.ArgumentTypeError(f"KIND must be one of {', '.join(MALFORMED_KINDS)}")
    return {"prefix": parts[0], "count": int(parts[1]), "kind": kind}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m zephyr_qtest.sandbox.zephyr",
        description="Serve a local Zephyr Scale Cloud REST API v2 sandbox (see docs/zephyr-sandbox.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one (default: 8080)")
    data = parser.add_argument_group("data (a fixture file, or generated from a seed)")
    data.add_argument(
        "--fixture", help="serve this fixture file (.json or .json.gz) instead of generated data"
    )
    data.add_argument(
        "--seed", type=int, default=0, help="seed of the generated data, token and faults (default: 0)"
    )
    data.add_argument(
        "--size", default="small", choices=sorted(SIZE_PRESETS), help="size preset (default: small)"
    )
    data.add_argument("--projects", type=int, help="override the number of projects")
    data.add_argument("--cases", type=int, help="override the number of test cases per project")
    data.add_argument("--executions", type=int, help="override the number of executions per project")
    data.add_argument(
        "--save-fixture", metavar="FILE", help="write the generated data to FILE (.gz compresses) and exit"
    )
    faults = parser.add_argument_group("switches (also changeable at run time: POST /_sandbox/faults)")
    faults.add_argument("--rate-limit", type=float, help="requests per second per token; over it: 429")
    faults.add_argument(
        "--retry-after-mode", choices=RETRY_AFTER_MODES, default="seconds", help="Retry-After on 429"
    )
    faults.add_argument("--latency-ms", type=float, default=0.0, help="mean added latency per request")
    faults.add_argument(
        "--fault-rate", type=_probability, default=0.0, help="fraction of requests answered 5xx"
    )
    faults.add_argument(
        "--drop-rate", type=_probability, default=0.0, help="fraction of connections cut mid-body"
    )
    faults.add_argument("--page-cap", type=int, help="lower every endpoint's maximum page size to this")
    faults.add_argument(
        "--malformed", type=_malformed, action="append", metavar="PREFIX:COUNT[:KIND]",
        help=f"break the next COUNT pages under PREFIX (KIND: {', '.join(MALFORMED_KINDS)})",
    )  # fmt: skip
    parser.add_argument("--token-secret", help="token signing secret (default: derived from --seed)")
    parser.add_argument("--public-base-url", help="API root clients use, if not http://HOST:PORT/v2")
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {"projects": args.projects, "cases": args.cases, "executions": args.executions}
    size: str | dict[str, Any] = args.size
    if any(value is not None for value in overrides.values()):
        size = {"preset": args.size, **overrides}
    try:
        if args.save_fixture:
            if args.fixture:
                print(
                    "--save-fixture writes generated data; it cannot be combined with --fixture",
                    file=sys.stderr,
                )
                return 2
            document = generate(args.seed, size)
            path = save_fixture(document, args.save_fixture)
            print(json.dumps({"written": str(path), "size": document["_meta"]["size"], "seed": args.seed}))
            return 0
        # Imported here: only serving needs uvicorn.
        from zephyr_qtest.sandbox.zephyr.serve import serve_zephyr

        serve_zephyr(
            args.port,
            host=args.host,
            fixture=args.fixture,
            seed=args.seed,
            size=size,
            token_secret=args.token_secret,
            rate_limit=args.rate_limit,
            retry_after_mode=args.retry_after_mode,
            latency_ms=args.latency_ms,
            fault_rate=args.fault_rate,
            drop_rate=args.drop_rate,
            page_cap=args.page_cap,
            malformed=args.malformed,
            public_base_url=args.public_base_url,
            log_level=args.log_level,
        )
    except (FixtureError, FaultConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
