"""``python -m ch11.fish_imbalance``: the experiment's command line (``--help`` lists it)."""

from ch11.fish_imbalance import main

raise SystemExit(main())
