"""``python -m ch11.imbalance``: the experiment's command line (``--help`` lists it)."""

from ch11.imbalance import main

raise SystemExit(main())
