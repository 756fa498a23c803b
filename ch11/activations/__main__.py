"""``python -m ch11.activations``: the experiment's command line (``--help`` lists it)."""

from ch11.activations import main

raise SystemExit(main())
