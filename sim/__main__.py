"""`python -m sim` is the same as the `tokenfactory` command."""

import sys

from sim.cli import main

sys.exit(main())
