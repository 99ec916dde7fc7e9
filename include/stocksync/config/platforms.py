"""Settings of the shop platforms on MySQL/MariaDB (docs/platforms.md): the optional
`platform_options:` section of the config, read when `shop_platform` is `magento2` or `prestashop`.

Kept apart from `settings.py` (which only declares the section) so each platform's options, their
defaults and their checks are read in one place. Every value is checked when the config loads:
a table prefix with a quote in it or a shop id of 0 fails the deployment's first parse, naming the
key and what to set, not the first night.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, StrictBool, field_validator

from include.stocksync.config.operations import CommaSeparated

# The adapters the shop port offers, declared once: platform -> "module:factory", the factory taking
# the shop connection's DSN/URI and the platform's options. The settings accept exactly these names
# and include/stocksync/shop/registry.py imports a module only when its platform is chosen (so a
# PostgreSQL deployment never needs a MariaDB driver). Adding a platform: its package under
# include/stocksync/shop/ and one entry here. Kept in config (module paths as text, nothing
# imported) because the settings check `shop_platform` and config never imports the shop layer.
SHOP_PLATFORMS: dict[str, str] = {
    "postgres": "include.stocksync.shop.postgres.adapter:PostgresShop",
    "magento2": "include.stocksync.shop.magento2.adapter:Magento2Shop",
    "prestashop": "include.stocksync.shop.prestashop.adapter:PrestaShopShop",
}
MYSQL_PLATFORMS = ("magento2", "prestashop")  # their shop connection is an Airflow MySQL connection

# A store's table prefix goes into statements as an identifier: letters, digits and `_` only.
_PREFIX = re.compile(r"[A-Za-z0-9_]{0,32}")
_MAX_ID = 2**31 - 1


def _prefix(value: str, key: str) -> str:
    if not _PREFIX.fullmatch(value):
        raise ValueError(f"{key} must be at most 32 letters, digits or '_' (the store's table prefix); got {value!r}")
    return value


def _ids(value: tuple[int, ...], key: str) -> tuple[int, ...]:
    if any(not 1 <= v <= _MAX_ID for v in value):
        raise ValueError(f"{key} must be ids >= 1; got {list(value)}")
    return value


class Magento2Options(BaseModel):
    """Magento 2 MSI: the source the WMS feeds and the store's inventory defaults. The stocks that
    source belongs to are read from the store's own links (`inventory_source_stock_link`), so a
    stock added in the admin is followed without a setting."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN or infinity in a setting

    table_prefix: str = ""           # app/etc/env.php db.table_prefix
    source_code: str = "default"     # the MSI source the WMS's figures are written to
    config_min_qty: float = 0.0      # Catalog > Inventory > Product Stock Options "Out-of-Stock Threshold"
    config_backorders: StrictBool = False  # ... "Backorders" (products that keep "Use Config Settings")
    # stocksync status name -> sales_order.status codes, on top of the adapter's defaults
    # (placed: pending, paid/processing: processing, shipped: complete, cancelled: canceled)
    order_statuses: dict[str, tuple[str, ...]] = {}
    # the store views (store.store_id) whose orders the order push sends; empty: every store view
    store_ids: Annotated[tuple[int, ...], CommaSeparated] = ()

    @field_validator("store_ids")
    @classmethod
    def _store_ids(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= v <= 65535 for v in value) or len(set(value)) != len(value):
            raise ValueError("platform_options.magento2.store_ids must be distinct store view ids (store.store_id, "
                             f"0-65535, Stores > All Stores); got {list(value)}")
        return value

    @field_validator("order_statuses")
    @classmethod
    def _order_statuses(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name, codes in value.items():
            if not name or not codes or any(not 1 <= len(code) <= 32 for code in codes):
                raise ValueError(f"platform_options.magento2.order_statuses.{name}: list sales_order.status codes "
                                 f"(1-32 characters each, Stores > Order Status); got {list(codes)}")
        return value

    @field_validator("table_prefix")
    @classmethod
    def _table_prefix(cls, value: str) -> str:
        return _prefix(value, "platform_options.magento2.table_prefix")

    @field_validator("source_code")
    @classmethod
    def _source_code(cls, value: str) -> str:
        if not 1 <= len(value) <= 255 or not value.isprintable():
            raise ValueError("platform_options.magento2.source_code must be the code of the MSI source the WMS feeds "
                             f"(1-255 printable characters, Stores > Inventory > Sources); got {value!r}")
        return value

    @field_validator("config_min_qty")
    @classmethod
    def _min_qty(cls, value: float) -> float:
        if not -1e8 <= value <= 1e8:
            raise ValueError(f"platform_options.magento2.config_min_qty must be -1e8..1e8; got {value}")
        return value


class PrestaShopOptions(BaseModel):
    """PrestaShop 8: the shop the WMS stocks and the order states that hold no stock."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN or infinity in a setting

    table_prefix: str = "ps_"        # _DB_PREFIX_ of app/config/parameters.php
    id_shop: int = 1                 # Advanced Parameters > Multistore; its group's shared rows if it shares stock
    # PS_OS_ERROR, PS_OS_CANCELED (shipped states never hold)
    not_reserving_states: Annotated[tuple[int, ...], CommaSeparated] = (8, 6)
    # stocksync status name -> order state ids, on top of the adapter's defaults (docs/platforms.md)
    order_statuses: dict[str, tuple[int, ...]] = {}
    time_zone: str = "UTC"           # PS_TIMEZONE (International > Localization): orders.date_add is in it
    id_lang: int = 1                 # the storefront's language: option names and values for the SKU map

    @field_validator("order_statuses")
    @classmethod
    def _order_statuses(cls, value: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        for name, states in value.items():
            if not name or not states:
                raise ValueError(f"platform_options.prestashop.order_statuses.{name}: list order state ids")
            _ids(states, f"platform_options.prestashop.order_statuses.{name}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("platform_options.prestashop.time_zone must be the shop's PS_TIMEZONE, an IANA zone "
                             f"such as Europe/Paris; got {value!r}") from exc
        return value

    @field_validator("table_prefix")
    @classmethod
    def _table_prefix(cls, value: str) -> str:
        return _prefix(value, "platform_options.prestashop.table_prefix")

    @field_validator("id_shop")
    @classmethod
    def _id_shop(cls, value: int) -> int:
        return _ids((value,), "platform_options.prestashop.id_shop")[0]

    @field_validator("id_lang")
    @classmethod
    def _id_lang(cls, value: int) -> int:
        return _ids((value,), "platform_options.prestashop.id_lang")[0]

    @field_validator("not_reserving_states")
    @classmethod
    def _states(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("platform_options.prestashop.not_reserving_states must list the error and cancelled "
                             "order state ids (8, 6 in a default install)")
        return _ids(value, "platform_options.prestashop.not_reserving_states")


class PlatformOptions(BaseModel):
    """One subsection per MySQL platform; only the configured `shop_platform`'s is used."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN or infinity in a setting

    magento2: Magento2Options = Magento2Options()
    prestashop: PrestaShopOptions = PrestaShopOptions()

    @field_validator("magento2", "prestashop", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        """From the environment (`STOCKSYNC_PLATFORM_OPTIONS__MAGENTO2='{"table_prefix": "mg_"}'`):
        a JSON object; anything else is left to the subsection's own checks."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError("must be a JSON object like {\"table_prefix\": \"mg_\"}; "
                                 f"got {value!r:.80}") from exc
        return value

    def adapter_options(self, platform: str) -> dict[str, Any]:
        """The keyword options of `platform`'s adapter factory (none for the reference shop)."""
        if platform == "magento2":
            return self.magento2.model_dump()
        if platform == "prestashop":
            return self.prestashop.model_dump()
        return {}
