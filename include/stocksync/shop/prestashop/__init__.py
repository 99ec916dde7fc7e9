"""The PrestaShop 8 shop adapter on MySQL/MariaDB (`shop_platform: prestashop`): docs/platforms.md."""
