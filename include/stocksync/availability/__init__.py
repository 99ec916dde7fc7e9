"""Real-time availability for the storefront: the "inventory script" endpoint.

A hosted storefront POSTs the item a shopper adds to a cart (and again at order confirmation);
this service answers, in response headers, how many are sellable now. It runs as its own process
(`python -m include.stocksync.availability`), apart from Airflow, because the storefront waits
on it while the shopper waits on the storefront: it must answer within milliseconds, and answer
"unknown" quickly rather than hang when the shop database or the WMS cannot answer.

Modules: `settings` (typed configuration from the environment), `protocol` (the form request and
the header answer), `skus` (item code + options -> shop SKU), `pool` (a small bounded connection
pool with a hard per-request budget), `wms` (the live single-SKU read), `live` (the live figure and
its write-back), `ratelimit`, `metrics`, `app` (the ASGI app). See docs/availability.md.
"""
