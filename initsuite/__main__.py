"""``python -m initsuite``."""

import sys

from initsuite.cli import main

if __name__ == "__main__":
    sys.exit(main())
