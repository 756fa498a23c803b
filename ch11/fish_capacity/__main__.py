"""``python -m ch11.fish_capacity``: the experiment's command line (``--help`` lists it)."""

from ch11.fish_capacity import main

raise SystemExit(main())
