"""The reference PostgreSQL shop adapter (`shop_platform: postgres`): the statements of the shop
adapter folder (`include/sql/shop` by default, `STOCKSYNC_SHOP_ADAPTER_DIR`) behind the shop port."""
