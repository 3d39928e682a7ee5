"""`python -m embedcraft.cli`."""

import sys

from . import main

sys.exit(main())
