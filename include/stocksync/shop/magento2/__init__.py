"""The Magento 2 (MSI) shop adapter on MySQL/MariaDB (`shop_platform: magento2`): docs/platforms.md."""
