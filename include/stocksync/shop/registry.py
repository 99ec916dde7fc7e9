"""Which shop adapter serves a deployment: the `shop_platform` setting.

The platforms are declared once, in config/platforms.py's `SHOP_PLATFORMS` (the settings accept
exactly those names): each names the module and the factory that builds the adapter from the shop's
connection (a libpq DSN for PostgreSQL, `mysql://USER:PASSWORD@HOST:PORT/DATABASE` for the
MySQL/MariaDB platforms) and the platform's options (`platform_options` of the config). The module
is imported only when its platform is chosen, so a PostgreSQL deployment never needs a MariaDB
driver. Adding a platform is its `shop/<platform>/` package and one entry in that declaration.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from include.stocksync.config.platforms import SHOP_PLATFORMS
from include.stocksync.domain.errors import PermanentError
from include.stocksync.shop.port import ShopPort

# platform -> "module:factory"; the factory takes the shop connection's DSN/URI and keyword options
PLATFORMS: dict[str, str] = SHOP_PLATFORMS
DEFAULT_PLATFORM = "postgres"


class UnknownShopPlatform(PermanentError):
    """The configured `shop_platform` has no adapter."""


def open_shop(dsn: str, platform: str = DEFAULT_PLATFORM, **options: Any) -> ShopPort:
    """The adapter of `platform` for the shop at `dsn` (each adapter opens its own connections)."""
    target = PLATFORMS.get(platform)
    if target is None:
        raise UnknownShopPlatform(f"shop_platform {platform!r} has no adapter; set shop_platform to one of "
                                  f"{sorted(PLATFORMS)} (declared in include/stocksync/config/platforms.py)")
    module_name, factory_name = target.split(":")
    factory = getattr(import_module(module_name), factory_name)
    shop: ShopPort = factory(dsn, **options)
    return shop


def same_database(conn: psycopg.Connection) -> str:
    """A DSN of the database `conn` is connected to (its libpq parameters, password included)."""
    return make_conninfo(conn.info.dsn, password=conn.info.password)


def shop_in_same_database(conn: psycopg.Connection) -> ShopPort:
    """The reference shop in the database `conn` is connected to (the single-database layout of the
    unit tests and of callers that pass no port): its own connections, never `conn`'s transaction."""
    return open_shop(same_database(conn))


def as_shop(shop: ShopPort | psycopg.Connection) -> ShopPort:
    """`shop` itself, or for a connection the reference shop in that connection's database."""
    return shop_in_same_database(shop) if isinstance(shop, psycopg.Connection) else shop
