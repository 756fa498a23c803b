"""``python -m ch11.initialization``: the experiment's command line (``--help`` lists it)."""

from ch11.initialization import main

raise SystemExit(main())
