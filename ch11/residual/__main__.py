"""``python -m ch11.residual``: the experiment's command line (``--help`` lists it)."""

from ch11.residual import main

raise SystemExit(main())
