"""``python -m ch11.gradients``: the experiment's command line (``--help`` lists it)."""

from ch11.gradients import main

raise SystemExit(main())
