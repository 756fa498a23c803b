"""``python -m ch11.clipping``: the experiment's command line (``--help`` lists it)."""

from ch11.clipping import main

raise SystemExit(main())
