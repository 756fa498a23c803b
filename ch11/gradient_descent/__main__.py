"""``python -m ch11.gradient_descent``: the experiment's command line (``--help`` lists it)."""

from ch11.gradient_descent import main

raise SystemExit(main())
