"""``python -m zephyr_qtest.sandbox.qtest``: serve the qTest Manager sandbox in the foreground.

    python -m zephyr_qtest.sandbox.qtest --state .zephyr_qtest/qtest-sandbox
    python -m zephyr_qtest.sandbox.qtest --state /tmp/q --project "Shop" --rate-limit 20 --lost-answer-rate 0.02

The switches are also changeable at run time: ``POST /_sandbox/faults`` (docs/qtest-sandbox.md).
"""

from __future__ import annotations

import argparse
import sys

from zephyr_qtest.sandbox.qtest.faults import RETRY_AFTER_MODES, FaultConfigError
from zephyr_qtest.sandbox.qtest.template import DEFAULT_TEMPLATE_NAME, TEMPLATES


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m zephyr_qtest.sandbox.qtest",
        description="Serve a local qTest Manager REST API v3 sandbox (see docs/qtest-sandbox.md).",
    )
    parser.add_argument("--state", required=True, help="state directory (SQLite); reused when it exists")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        help="TCP port; 0 picks a free one (default: the state's own, recorded in STATE/port, as the CLI's "
        "sandbox uses: the migration's id map knows a site by its address)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of a new site's ids and token, and of faults"
    )
    parser.add_argument(
        "--project", action="append", default=[], metavar="NAME", help="create this project if missing"
    )
    parser.add_argument(
        "--template",
        choices=tuple(TEMPLATES),
        default=DEFAULT_TEMPLATE_NAME,
        help="field settings of new projects: default (a new site's system fields only) or rich (plus the "
        "fields a migration creates: Zephyr Key, Labels, ...)",
    )
    faults = parser.add_argument_group("switches (also changeable at run time: POST /_sandbox/faults)")
    faults.add_argument("--rate-limit", type=float, help="requests per second per token; over it: 429")
    faults.add_argument("--burst", type=float, help="token bucket capacity (default: max(1, rate))")
    faults.add_argument(
        "--retry-after-mode", choices=RETRY_AFTER_MODES, default="seconds", help="Retry-After on 429"
    )
    faults.add_argument("--minute-quota", type=int, help="requests per token per calendar minute")
    faults.add_argument("--month-quota", type=int, default=10_000_000, help="requests per token since start")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="mean added latency per request")
    faults.add_argument("--fault-rate", type=_probability, default=0.0, help="share of requests answered 5xx")
    faults.add_argument(
        "--drop-rate", type=_probability, default=0.0, help="share of connections closed unanswered"
    )
    faults.add_argument(
        "--lost-answer-rate", type=_probability, default=0.0, help="share of writes applied but not answered"
    )
    settings = parser.add_argument_group("settings")
    settings.add_argument(
        "--attachment-max-bytes",
        type=int,
        default=50 * 1024 * 1024,
        help="attachment size limit (413 over it)",
    )
    settings.add_argument("--queue-polls", type=int, default=2, help="polls until a bulk job finishes")
    settings.add_argument(
        "--queue-delay-s", type=float, default=2.0, help="seconds until a bulk job finishes"
    )
    settings.add_argument("--token-ttl-s", type=int, default=3600, help="lifetime of /oauth/token tokens")
    settings.add_argument("--site-name", help="the site name /oauth/token's Basic header must carry")
    parser.add_argument("--public-base-url", help="site URL clients use, if not http://HOST:PORT")
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported here: only serving needs uvicorn.
    from zephyr_qtest.sandbox.qtest.serve import serve_qtest

    try:
        serve_qtest(
            args.state,
            args.port,
            host=args.host,
            seed=args.seed,
            rate_limit=args.rate_limit,
            burst=args.burst,
            retry_after_mode=args.retry_after_mode,
            minute_quota=args.minute_quota,
            month_quota=args.month_quota,
            latency_ms=args.latency_ms,
            fault_rate=args.fault_rate,
            drop_rate=args.drop_rate,
            lost_answer_rate=args.lost_answer_rate,
            attachment_max_bytes=args.attachment_max_bytes,
            queue_polls=args.queue_polls,
            queue_delay_s=args.queue_delay_s,
            token_ttl_s=args.token_ttl_s,
            site_name=args.site_name,
            projects=args.project,
            template=args.template,
            public_base_url=args.public_base_url,
            log_level=args.log_level,
        )
    except (FaultConfigError, ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
