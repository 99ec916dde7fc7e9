"""`python -m include.stocksync`: see include/stocksync/cli.py."""

import sys

from include.stocksync.cli import main

sys.exit(main())
