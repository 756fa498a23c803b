"""``python -m ch11.regularization``: the experiment's command line (``--help`` lists it)."""

from ch11.regularization import main

raise SystemExit(main())
