"""``python -m ferlab ...``: the ``ferlab`` command, for environments whose scripts folder is not on PATH."""

from .cli import main

raise SystemExit(main())
