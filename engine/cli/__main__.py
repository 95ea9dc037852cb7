"""`python -m memalert.engine.cli`: the same as the `memalert` command."""

from __future__ import annotations

from memalert.engine.cli.main import main

raise SystemExit(main())
