"""`python -m calibration.harness ...`: see calibration/harness/cli.py."""

import sys

from calibration.harness.cli import main

sys.exit(main())
