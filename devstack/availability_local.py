"""The availability service (include/stocksync/availability, docs/availability.md) on the local
stack: `scripts/stack.sh` starts it next to Airflow, whichever executor, on a fixed port.

The storefront platform is configured once with a URL that carries the service's shared secret,
so that secret must survive restarts (a new one per start would break the pasted URL) and must
not be a constant of the repository (anyone reading it could query the shop's stock): it is made
once per checkout and kept in `.local/secrets/availability-secret` (0600), like the other local
secrets. It reaches the service in its environment (`AvailabilityProcess`), never its command line.

The local service listens on 127.0.0.1 over plain HTTP: a hosted platform cannot reach it. For a
real storefront put it behind a TLS-terminating proxy on a public name and paste that URL instead
(same path and secret).
"""

from __future__ import annotations

import socket
from pathlib import Path

from devstack.availability_process import AvailabilityProcess
from devstack.local_secrets import LOCAL_DIR, read_or_create_secret, secrets_dir

DEFAULT_PORT = 18767


def availability_secret_file(local_dir: Path = LOCAL_DIR) -> Path:
    return secrets_dir(local_dir) / "availability-secret"


def availability_secret(local_dir: Path = LOCAL_DIR) -> str:
    """The shared secret of the local availability service (made on first use, then reused)."""
    return read_or_create_secret(availability_secret_file(local_dir), 32)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def local_availability(shop_dsn: str, *, stocksync_dsn: str | None = None, port: int = DEFAULT_PORT,
                       local_dir: Path = LOCAL_DIR, workers: int = 1) -> AvailabilityProcess:
    """The service for the shop at `shop_dsn`, stocksync's own database at `stocksync_dsn` (None: the
    shop's holds it); not started: `start()` waits for `/health`."""
    databases = {"SHOP_DSN": shop_dsn, **({"STOCKSYNC_DSN": stocksync_dsn} if stocksync_dsn else {})}
    return AvailabilityProcess({**databases, "SECRET": availability_secret(local_dir)}, port=port,
                               workers=workers, log_path=local_dir / "availability.log")


def paste_url(service: AvailabilityProcess) -> str:
    """The URL to paste into the storefront platform's inventory-script setting."""
    return f"{service.endpoint}?secret={service.secret}"


def describe(service: AvailabilityProcess, local_dir: Path = LOCAL_DIR) -> list[str]:
    """What a person needs to wire the storefront to the service (printed by `scripts/stack.sh`)."""
    return [
        f"  Availability {service.url}/health (log {service.log_path})",
        f"  Storefront   {paste_url(service)}",
        f"               (the URL to paste into the platform's inventory script setting; secret kept in "
        f"{availability_secret_file(local_dir)}; behind TLS on a public name for a hosted platform: "
        "docs/availability.md)",
    ]
