"""``python -m initsuite``."""

import sys

from initsuite.cli import main

sys.exit(main())
