"""`python -m embedcraft`: the `embedcraft` command."""

import sys

from .cli import main

sys.exit(main())
