"""``python -m ch11.selu``: the experiment's command line (``--help`` lists it)."""

from ch11.selu import main

raise SystemExit(main())
