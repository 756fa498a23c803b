"""``python -m ch11.batch_norm``: the experiment's command line (``--help`` lists it)."""

from ch11.batch_norm import main

raise SystemExit(main())
