"""``python -m inspect_kit``: the same as the ``inspect-kit`` command."""

import sys

from inspect_kit.cli import main

if __name__ == "__main__":
    sys.exit(main())
