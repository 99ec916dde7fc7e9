"""Choosing a shop platform by configuration: `shop_platform`, the `platform_options` section
(include/stocksync/config/platforms.py) and the Airflow MySQL connection the Magento 2 and
PrestaShop adapters are built from (airflow/connections.shop_port)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.stocksync.config.settings import ConfigError, load_settings
from include.stocksync.shop.magento2.adapter import Magento2Shop
from include.stocksync.shop.prestashop.adapter import PrestaShopShop
from tests.unit.test_settings import write_config


@pytest.fixture
def mysql_connection() -> Iterator[str]:
    """An Airflow connection of type mysql (from the environment, as a deployment may set it) whose
    login and password need percent-encoding."""
    name = "AIRFLOW_CONN_PLATFORM_SHOP"
    saved = os.environ.get(name)
    os.environ[name] = json.dumps({"conn_type": "mysql", "host": "db.shop.example", "port": 3307,
                                   "login": "sync er", "password": "p@ss/w:rd", "schema": "magento"})
    yield "platform_shop"
    if saved is None:
        os.environ.pop(name)
    else:
        os.environ[name] = saved


def test_magento2_is_built_from_a_mysql_connection_with_its_options(tmp_path: Path, mysql_connection: str) -> None:
    from include.stocksync.airflow.connections import shop_port

    settings = load_settings(write_config(tmp_path, shop_conn_id=mysql_connection, shop_platform="magento2",
                                          platform_options={"magento2": {"table_prefix": "mg_",
                                                                         "source_code": "eu_wh",
                                                                         "config_min_qty": 2,
                                                                         "config_backorders": True}}),
                             environ={})
    shop = shop_port(settings)
    assert isinstance(shop, Magento2Shop)
    assert (shop.prefix, shop.source_code, shop.config_min_qty, shop.config_backorders) == ("mg_", "eu_wh", 2.0, True)
    # the connection's parts, decoded again by the driver's arguments
    assert shop.connect_args == {"host": "db.shop.example", "port": 3307, "user": "sync er", "password": "p@ss/w:rd",
                                 "database": "magento", "charset": "utf8mb4"}


def test_prestashop_gets_its_shop_and_states(tmp_path: Path, mysql_connection: str) -> None:
    from include.stocksync.airflow.connections import shop_port

    settings = load_settings(write_config(tmp_path, shop_conn_id=mysql_connection, shop_platform="prestashop",
                                          platform_options={"prestashop": {"id_shop": 3,
                                                                           "not_reserving_states": [8, 6, 18]}}),
                             environ={})
    shop = shop_port(settings)
    assert isinstance(shop, PrestaShopShop)
    assert (shop.prefix, shop.id_shop, shop.not_reserving) == ("ps_", 3, (8, 6, 18))  # ps_: PrestaShop's default


@pytest.mark.parametrize(("options", "fragment"), [
    ({"magento2": {"table_prefix": "mg_; DROP TABLE x"}}, "platform_options.magento2.table_prefix must be at most 32"),
    ({"magento2": {"source_code": ""}}, "platform_options.magento2.source_code must be the code of the MSI source"),
    ({"magento2": {"config_backorders": "maybe"}}, "config_backorders"),
    ({"prestashop": {"id_shop": 0}}, "platform_options.prestashop.id_shop must be ids >= 1"),
    ({"prestashop": {"not_reserving_states": []}}, "platform_options.prestashop.not_reserving_states must list"),
    ({"prestashop": {"shop": 1}}, "prestashop.shop"),  # a typo of id_shop
    ({"shopify": {}}, "shopify"),
])
def test_bad_platform_options_name_the_key(tmp_path: Path, options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        load_settings(write_config(tmp_path, shop_platform="magento2", platform_options=options), environ={})


def test_an_unknown_platform_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shop_platform must be one of postgres, magento2, prestashop; got 'shopify'"):
        load_settings(write_config(tmp_path, shop_platform="shopify"), environ={})


def test_a_platform_declared_once_is_accepted_by_the_config_and_opened_by_the_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One entry in config/platforms.py's declaration is the whole registration of a platform: the
    config accepts its name and the shop registry builds its adapter (here the reference one under
    another name), with nothing to add in the registry or the settings."""
    from include.stocksync.config import platforms
    from include.stocksync.shop.postgres.adapter import PostgresShop
    from include.stocksync.shop.registry import open_shop

    monkeypatch.setitem(platforms.SHOP_PLATFORMS, "postgres_renamed",
                        "include.stocksync.shop.postgres.adapter:PostgresShop")
    settings = load_settings(write_config(tmp_path, shop_platform="postgres_renamed"), environ={})
    assert settings.shop_platform == "postgres_renamed"
    assert isinstance(open_shop("host=127.0.0.1 dbname=shop", settings.shop_platform), PostgresShop)


def test_the_shipped_config_documents_the_platform_options() -> None:
    """The shipped config spells every option out with its default (a merchant edits it there)."""
    import yaml

    from include.stocksync.config.settings import CONFIG_PATH

    raw = yaml.safe_load(CONFIG_PATH.read_text())
    assert raw["platform_options"] == {
        "magento2": {"table_prefix": "", "source_code": "default", "config_min_qty": 0.0, "config_backorders": False},
        "prestashop": {"table_prefix": "ps_", "id_shop": 1, "not_reserving_states": [8, 6]},
    }
    assert load_settings(environ={}).platform_options.prestashop.not_reserving_states == (8, 6)


def test_the_environment_sets_a_platforms_options_as_json(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, shop_platform="magento2", platform_options={}), environ={
        "STOCKSYNC_PLATFORM_OPTIONS__MAGENTO2": '{"table_prefix": "mg_", "source_code": "eu_wh"}'})
    assert settings.platform_options.adapter_options("magento2")["table_prefix"] == "mg_"
    assert settings.platform_options.magento2.source_code == "eu_wh"
    with pytest.raises(ConfigError, match="platform_options.magento2: must be a JSON object"):
        load_settings(write_config(tmp_path, platform_options={}),
                      environ={"STOCKSYNC_PLATFORM_OPTIONS__MAGENTO2": "table_prefix=mg_"})


def test_magento2_store_ids_scope_the_order_push_to_named_store_views(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, shop_platform="magento2", platform_options={}), environ={
        "STOCKSYNC_PLATFORM_OPTIONS__MAGENTO2": '{"store_ids": [2, 5]}'})
    assert settings.platform_options.adapter_options("magento2")["store_ids"] == (2, 5)
    assert load_settings(write_config(tmp_path, shop_platform="magento2", platform_options={}),
                         environ={}).platform_options.magento2.store_ids == ()  # every store view
    for bad in ("[-1]", "[2, 2]", "[70000]"):
        with pytest.raises(ConfigError, match="platform_options.magento2.store_ids must be distinct store view ids"):
            load_settings(write_config(tmp_path, shop_platform="magento2", platform_options={}),
                          environ={"STOCKSYNC_PLATFORM_OPTIONS__MAGENTO2": f'{{"store_ids": {bad}}}'})


@pytest.mark.parametrize(("error", "kind"), [
    (("OperationalError", 1690, "BIGINT UNSIGNED value is out of range"), "contract"),
    (("OperationalError", 1267, "Illegal mix of collations"), "contract"),
    (("DataError", 1264, "Out of range value for column 'target_qty'"), "contract"),
    (("IntegrityError", 1062, "Duplicate entry"), "contract"),
    (("OperationalError", 1205, "Lock wait timeout exceeded"), "unavailable"),
    (("OperationalError", 2013, "Lost connection to server during query"), "unavailable"),
    (("OperationalError", 1146, "Table 'shop.mg_inventory_source_item' doesn't exist"), "contract"),
])
def test_a_mysql_error_is_filed_as_transient_or_permanent(error: tuple[str, int, str], kind: str) -> None:
    """What the MariaDB driver raises, filed the way a task treats it: a value or comparison the
    server refuses fails again on every retry (permanent, named), a lock wait or a lost connection
    may not (transient). Raw, the first were classified transient and retried."""
    import MySQLdb

    from include.stocksync.domain.errors import is_permanent
    from include.stocksync.shop.mysql_family import classified
    from include.stocksync.shop.port import ShopContractError, ShopUnavailable

    name, code, message = error
    with pytest.raises((ShopContractError, ShopUnavailable)) as filed:
        with classified("writing the plan", "magento2"):
            raise getattr(MySQLdb, name)(code, message)
    assert isinstance(filed.value, ShopContractError if kind == "contract" else ShopUnavailable)
    assert is_permanent(filed.value) is (kind == "contract") and message in str(filed.value)
    assert is_permanent(MySQLdb.DataError(1264, "Out of range")) and is_permanent(MySQLdb.IntegrityError(1062, "dup"))
    assert not is_permanent(MySQLdb.OperationalError(2013, "Lost connection"))
