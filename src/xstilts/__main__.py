"""``python -m xstilts``."""

from xstilts.cli import main

main()
