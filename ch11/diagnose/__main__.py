"""``python -m ch11.diagnose``: the training doctor's command line (``--help`` lists it)."""

from ch11.diagnose import main

raise SystemExit(main())
