"""`python -m ablate.cli`: the `ablate` command, for an environment without its script."""

import sys

from .main import main

sys.exit(main())
