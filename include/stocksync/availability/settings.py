"""Configuration of the availability service, from `STOCKSYNC_AVAILABILITY_*` environment variables.

Typed and checked when the process starts (pydantic-settings), so a wrong value stops the service
with a message naming the variable instead of surfacing as a wrong answer to a shopper. The service
refuses to start without a way to authenticate callers: a shared secret, or (explicitly, with no
secret) allowed IP ranges alone. There is no default secret. Every variable is listed in
docs/availability.md.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from include.stocksync.config.platforms import PlatformOptions

ENV_PREFIX = "STOCKSYNC_AVAILABILITY_"
MIN_SECRET_LENGTH = 16
# the web server's checkout gate (checkout_gate.py, deploy/nginx/)
CHECKOUT_FREEZE_PATH = "/checkout-freeze"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _split(value: Any) -> Any:
    """Comma-separated lists in environment variables ("10.0.0.0/8, 192.168.1.0/24")."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class AvailabilitySettings(BaseSettings):
    """Every tunable of the service. Durations are in milliseconds or seconds as their names say."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # -- where the numbers come from
    shop_dsn: SecretStr = Field(description="libpq connection string of the shop database "
                                            "(magento2, prestashop: mysql://USER:PASSWORD@HOST:PORT/DATABASE)")
    shop_platform: Literal["postgres", "magento2", "prestashop"] = Field(
        "postgres", description="the shop port's adapter: item lookups, live write-back and the checkout gate")
    shop_table_prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9_]{0,32}$",
                                          description="magento2, prestashop: the store's table prefix "
                                                      "(unset: the platform's default, '' or 'ps_')")
    shop_options: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict, description="magento2, prestashop: the platform's options as in the config's "
                                          "platform_options.<platform>, a JSON object ({\"source_code\": \"wms\"})")
    stocksync_dsn: SecretStr | None = Field(
        None, description="libpq connection string of stocksync's own database (sku_map, counters, live "
                          "records); unset: the shop's database holds stocksync's schema too")
    db_pool_size: int = Field(4, ge=1, le=64, description="connections per worker process")
    db_budget_ms: int = Field(250, ge=10, le=10_000,
                              description="per request: waiting for a connection + the query; then unknown")
    sku_cache_ms: int = Field(10_000, ge=0, le=600_000,
                              description="how long a worker reuses the SKU a code + options resolved to; 0: off")
    sku_cache_size: int = Field(100_000, ge=1, le=10_000_000, description="resolutions cached per worker")
    db_retry_ms: int = Field(1000, ge=0, le=60_000,
                             description="after a failed connect, answer unknown at once for this long")

    # -- who may ask
    secret: SecretStr | None = Field(None, description="shared secret: X-Inventory-Secret header or ?secret=")
    allowed_networks: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=list, description="client IP ranges (CIDR, comma-separated); empty: any address")
    forwarded_allow_ips: str | None = Field(
        None, description="proxies whose X-Forwarded-For is believed (uvicorn); unset: the peer address counts")
    # the callers are the platform's servers (a few IPs for every shopper): size this to its peak
    rate_limit_per_second: float = Field(200.0, ge=0, description="token bucket refill per client IP; 0: off")
    rate_limit_burst: int = Field(400, ge=1, description="token bucket size per client IP")
    rate_limit_clients: int = Field(10_000, ge=1, description="client IPs tracked at once (least recent dropped)")

    # -- what a request may be
    path: str = Field("/inventory", pattern=r"^/[A-Za-z0-9._/-]*$")
    max_body_bytes: int = Field(8192, ge=256, le=1_048_576)
    max_fields: int = Field(64, ge=4, le=1000)
    max_value_length: int = Field(256, ge=16, le=8192, description="longest key or value, in characters")
    body_timeout_ms: int = Field(2000, ge=10, le=60_000, description="time to receive the body")

    # -- live mode: ask the WMS for the one SKU
    live_mode: bool = False
    wms_url: str | None = Field(None, pattern=r"^https?://")
    wms_token: SecretStr | None = None
    wms_budget_ms: int = Field(150, ge=5, le=10_000)
    unsent_statuses: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["placed", "paid", "processing"])
    unsent_order_cutoff_hours: float = Field(24.0, gt=0)
    # the WMS's answer judged as the nightly judges a snapshot: no figure above the validation's
    # max_quantity, no time after now beyond the clock skew (keep both equal to the nightly's)
    max_quantity: int = Field(1_000_000_000, gt=0)
    clock_skew_seconds: float = Field(120.0, ge=0)

    # -- what the shopper reads
    message_available: str = "In stock."
    message_limited: str = "Only {available} available."
    message_unavailable: str = "Sorry, this item is out of stock."
    message_unknown: str = "We cannot confirm availability right now. Please try again in a moment."

    # -- the web server's checkout gate (GET /checkout-freeze)
    freeze_cache_ms: int = Field(250, ge=0, le=5000,
                                 description="how long a worker reuses the freeze state it read; 0: read every time")

    # -- observability
    stats_flush_seconds: float = Field(60.0, gt=0, description="how often a worker writes its counters")
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes (CLI --workers overrides)")
    max_in_flight: int = Field(16, ge=1, le=10_000,
                               description="script requests per worker answered at once; beyond, unknown at once")
    max_concurrency: int = Field(1000, ge=1, description="open requests per worker before uvicorn answers 503")

    @field_validator("path")
    @classmethod
    def _own_path(cls, value: str) -> str:
        if value in ("/metrics", "/health", CHECKOUT_FREEZE_PATH):
            raise ValueError(f"/metrics, /health and {CHECKOUT_FREEZE_PATH} are taken")
        return value

    @field_validator("unsent_statuses", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("shop_options", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError as exc:
                raise ValueError("must be a JSON object like {\"table_prefix\": \"mg_\"}") from exc
        return value

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        """A bare address is a one-address range (127.0.0.1 -> 127.0.0.1/32)."""
        return [ipaddress.ip_network(v, strict=False) if isinstance(v, str) else v for v in _split(value)]

    @field_validator("secret", "wms_token", "stocksync_dsn", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("secret")
    @classmethod
    def _secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters (use a random string)")
        if value is not None and any(not 0x21 <= ord(c) <= 0x7E for c in value.get_secret_value()):
            raise ValueError("must be printable ASCII without spaces (it travels in a header or a URL)")
        return value

    @field_validator("message_available", "message_limited", "message_unavailable", "message_unknown")
    @classmethod
    def _message(cls, value: str) -> str:
        try:
            value.format(available=1, requested=2)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("may only use the placeholders {available} and {requested}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AvailabilitySettings:
        if self.secret is None and not self.allowed_networks:
            raise ValueError(
                f"refusing to start without authentication: set {ENV_PREFIX}SECRET (at least "
                f"{MIN_SECRET_LENGTH} characters), or {ENV_PREFIX}ALLOWED_NETWORKS to accept callers by "
                "IP range alone")
        if self.shop_platform != "postgres":
            self._mysql_family_shop()
        if self.live_mode and not (self.wms_url and self.wms_token):
            raise ValueError(f"live mode needs {ENV_PREFIX}WMS_URL and {ENV_PREFIX}WMS_TOKEN")
        if self.live_mode and not self.unsent_statuses:
            raise ValueError("live mode needs at least one unsent order status")
        return self

    def _mysql_family_shop(self) -> None:
        """A Magento or PrestaShop shop lives in MySQL/MariaDB; stocksync's own tables (sku_map,
        counters, live records) stay in PostgreSQL, so they need their own database."""
        scheme = urlsplit(self.shop_dsn.get_secret_value()).scheme
        if scheme not in ("mysql", "mariadb"):
            raise ValueError(f"shop_platform {self.shop_platform} needs {ENV_PREFIX}SHOP_DSN as "
                             "mysql://USER:PASSWORD@HOST:PORT/DATABASE (the store's database); got a "
                             f"{scheme or 'libpq'} connection string")
        if self.stocksync_dsn is None:
            raise ValueError(f"shop_platform {self.shop_platform} needs {ENV_PREFIX}STOCKSYNC_DSN: the libpq "
                             "connection string of stocksync's own PostgreSQL database (sku_map, counters, live "
                             "records), which cannot live in the store's MySQL database")
        self.adapter_options()  # checked now, not at the first request

    def adapter_options(self) -> dict[str, Any]:
        """The shop adapter's keyword options: `SHOP_OPTIONS` checked as the config's
        `platform_options.<platform>` (config/platforms.py), `SHOP_TABLE_PREFIX` over its table prefix."""
        if self.shop_platform == "postgres":
            return {}
        try:
            options = PlatformOptions.model_validate({self.shop_platform: self.shop_options})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(part) for part in e['loc'][1:]) or 'value'}: {e['msg']}"
                                 for e in exc.errors())
            raise ValueError(f"{ENV_PREFIX}SHOP_OPTIONS for {self.shop_platform}: {problems}") from None
        found = options.adapter_options(self.shop_platform)
        if self.shop_table_prefix is not None:
            found["table_prefix"] = self.shop_table_prefix
        return found

    @property
    def db_budget(self) -> float:
        return self.db_budget_ms / 1000

    @property
    def separate_databases(self) -> bool:
        """stocksync's database is given and is not the shop's."""
        return self.stocksync_dsn is not None and (
            self.stocksync_dsn.get_secret_value() != self.shop_dsn.get_secret_value())

    @property
    def stocksync_conninfo(self) -> str:
        """stocksync's database: `stocksync_dsn`, or the shop's when unset."""
        return (self.stocksync_dsn or self.shop_dsn).get_secret_value()

    @property
    def wms_budget(self) -> float:
        return self.wms_budget_ms / 1000

    def public(self) -> dict[str, Any]:
        """The settings without secrets (for the live run record and the start-up log)."""
        hidden = {"shop_dsn", "stocksync_dsn", "secret", "wms_token"}
        out = self.model_dump(mode="json", exclude=hidden)
        out["secret_set"] = self.secret is not None
        out["stocksync_database"] = "own" if self.separate_databases else "the shop's"
        return out


class _FromMapping(AvailabilitySettings):
    """The same settings read only from the values given (not the process environment)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, *_: Any, **__: Any) -> tuple[Any, ...]:
        return (init_settings,)


def load(environ: dict[str, str] | None = None) -> AvailabilitySettings:
    """Settings from `environ` (default: the process environment)."""
    if environ is None:
        return AvailabilitySettings()  # type: ignore[call-arg]  # shop_dsn comes from the environment
    values = {key[len(ENV_PREFIX):].lower(): value for key, value in environ.items() if key.startswith(ENV_PREFIX)}
    return _FromMapping(**values)
