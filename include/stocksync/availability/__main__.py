"""Run the availability service: `python -m include.stocksync.availability --host 127.0.0.1 --port 8080`.

Configuration comes from `STOCKSYNC_AVAILABILITY_*` environment variables (docs/availability.md).
The settings are checked here, before uvicorn starts, so a missing secret or a wrong value stops
the process with exit code 2 and a message naming the variable (never echoing its value: a
rejected secret is still a secret). Each uvicorn worker then builds its app from the same
environment (`app:create_app_from_env`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn
from pydantic import ValidationError

from include.stocksync.availability.http_head import BoundedHeadProtocol
from include.stocksync.availability.settings import ENV_PREFIX, AvailabilitySettings, load


def log_config(level: str) -> dict[str, Any]:
    """One line per answer from our logger on stderr; uvicorn's own access log stays off (it would
    print the query string, which may carry the secret)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "loggers": {
            "stocksync.availability": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


def explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) if error["loc"] else ""
        variable = f"{ENV_PREFIX}{name.upper()}" if name else "configuration"
        lines.append(f"  {variable}: {error['msg']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m include.stocksync.availability",
                                     description="stocksync real-time availability (inventory script) service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=None, help=f"default: {ENV_PREFIX}WORKERS or 1")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings: AvailabilitySettings = load()
    except ValidationError as exc:
        print(f"availability service: invalid configuration, not starting:\n{explain(exc)}", file=sys.stderr)
        return 2
    workers = args.workers or settings.workers
    print(f"availability service on http://{args.host}:{args.port}{settings.path} ({workers} worker(s), "
          f"live mode {'on' if settings.live_mode else 'off'})", file=sys.stderr, flush=True)
    uvicorn.run(
        "include.stocksync.availability.app:create_app_from_env", factory=True,
        host=args.host, port=args.port, workers=workers,
        # httptools, with bounds on each request's head uvicorn leaves open (http_head.py)
        loop="uvloop", http=BoundedHeadProtocol, lifespan="on",
        log_config=log_config(settings.log_level), access_log=False, server_header=False,
        proxy_headers=settings.forwarded_allow_ips is not None, forwarded_allow_ips=settings.forwarded_allow_ips,
        limit_concurrency=settings.max_concurrency, timeout_keep_alive=5, timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
