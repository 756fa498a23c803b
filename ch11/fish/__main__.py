"""``python -m ch11.fish``: the experiment's command line (``--help`` lists it)."""

from ch11.fish import main

raise SystemExit(main())
