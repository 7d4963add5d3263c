"""`python -m cactus ...` is the `cactus` command."""

import sys

from .cli import main

sys.exit(main())
