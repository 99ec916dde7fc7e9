"""Which shop adapter serves a deployment: the `shop_platform` setting, one entry per platform.

Each entry names the module and the factory that builds the adapter from the shop's connection
(a libpq DSN for PostgreSQL, the driver's own parameters for another engine: the adapter's factory
says). The module is imported only when its platform is chosen, so a PostgreSQL deployment never
needs a MariaDB driver. Adding a platform is one line here plus its `shop/<platform>/` package.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from include.stocksync.domain.errors import PermanentError
from include.stocksync.shop.port import ShopPort

# platform -> "module:factory"; the factory takes the shop connection's DSN/URI and keyword options
PLATFORMS: dict[str, str] = {
    "postgres": "include.stocksync.shop.postgres.adapter:PostgresShop",
}
DEFAULT_PLATFORM = "postgres"


class UnknownShopPlatform(PermanentError):
    """The configured `shop_platform` has no adapter."""


def open_shop(dsn: str, platform: str = DEFAULT_PLATFORM, **options: Any) -> ShopPort:
    """The adapter of `platform` for the shop at `dsn` (connections are opened per call/session)."""
    target = PLATFORMS.get(platform)
    if target is None:
        raise UnknownShopPlatform(f"shop_platform {platform!r} has no adapter; set shop_platform to one of "
                                  f"{sorted(PLATFORMS)} (include/stocksync/shop/registry.py)")
    module_name, factory_name = target.split(":")
    factory = getattr(import_module(module_name), factory_name)
    shop: ShopPort = factory(dsn, **options)
    return shop
