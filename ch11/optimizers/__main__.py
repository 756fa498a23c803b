"""``python -m ch11.optimizers``: the experiment's command line (``--help`` lists it)."""

from ch11.optimizers import main

raise SystemExit(main())
