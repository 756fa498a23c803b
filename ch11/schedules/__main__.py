"""``python -m ch11.schedules``: the experiment's command line (``--help`` lists it)."""

from ch11.schedules import main

raise SystemExit(main())
