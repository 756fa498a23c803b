"""``python -m ch11.fish_transfer``: the experiment's command line (``--help`` lists it)."""

from ch11.fish_transfer import main

raise SystemExit(main())
