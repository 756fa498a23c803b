"""``python -m ch11.cnn_hparams``: the experiment's command line (``--help`` lists it)."""

from ch11.cnn_hparams import main

raise SystemExit(main())
