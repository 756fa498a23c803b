"""``python -m ch11.transfer``: the experiment's command line (``--help`` lists it)."""

from ch11.transfer import main

raise SystemExit(main())
