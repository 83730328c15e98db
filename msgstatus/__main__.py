"""``python -m msgstatus``: the same as the ``msgstatus`` console script."""

from msgstatus.cli import main

raise SystemExit(main())
