"""``python -m egosim COMMAND ...``: the same as the ``egosim`` command (:mod:`egosim.cli`)."""

from __future__ import annotations

from egosim.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
