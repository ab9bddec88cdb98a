"""`python -m biofeedback` is the `biofeedback` command."""

from __future__ import annotations

from biofeedback.cli import main

raise SystemExit(main())
