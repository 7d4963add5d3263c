"""`python -m cactus.server ...` is `cactus serve ...`."""

import sys

from . import main

sys.exit(main())
