"""The order push's platform options in the config (`platform_options:`): stocksync's status names
mapped to each platform's order statuses and PrestaShop's time zone reach the adapter the registry
builds, and a bad value fails when the config loads, naming the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from include.stocksync.config.platforms import PlatformOptions
from include.stocksync.shop.port import ShopContractError
from include.stocksync.shop.registry import open_shop

DSN = "mysql://stocksync:secret@127.0.0.1:3306/store"  # never connected to: the options only


def test_order_statuses_and_time_zone_reach_the_adapters() -> None:
    options = PlatformOptions.model_validate({
        "magento2": {"order_statuses": {"placed": ["pending", "holded"], "on_hold": ["holded"]}},
        "prestashop": {"order_statuses": {"paid": [2, 11, 20]}, "time_zone": "Europe/Paris"}})
    magento = open_shop(DSN, "magento2", **options.adapter_options("magento2"))
    presta = open_shop(DSN, "prestashop", **options.adapter_options("prestashop"))
    # the merchant's entries replace the platform defaults of the same name; the others stay
    assert magento.platform_statuses(("placed", "on_hold", "cancelled")) == ("pending", "holded", "canceled")
    assert presta.platform_statuses(("paid", "cancelled")) == (2, 11, 20, 6)
    assert str(presta.time_zone) == "Europe/Paris"
    with pytest.raises(ShopContractError, match="'returned'.*prestashop order_statuses"):
        presta.platform_statuses(("returned",))


@pytest.mark.parametrize(("section", "bad", "message"), [
    ("magento2", {"order_statuses": {"placed": ["x" * 33]}}, "magento2.order_statuses.placed"),
    ("magento2", {"order_statuses": {"placed": []}}, "magento2.order_statuses.placed"),
    ("prestashop", {"order_statuses": {"paid": [0]}}, "prestashop.order_statuses.paid"),
    ("prestashop", {"time_zone": "Mars/Olympus"}, "PS_TIMEZONE"),
])
def test_bad_order_options_fail_when_the_config_loads(section: str, bad: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PlatformOptions.model_validate({section: bad})
