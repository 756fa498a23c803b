"""``python -m ch11.losses``: the experiment's command line (``--help`` lists it)."""

from ch11.losses import main

raise SystemExit(main())
