"""``python -m bot.cli``: the ``coopbot`` command line (tests start ``coopbot run`` so)."""

from bot.cli import main

main()
