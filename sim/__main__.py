"""`python -m sim` is the same as the `tokenfactory` command."""

import sys

try:
    from sim.cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI is still importing: the same one line
    sys.stderr.write("tokenfactory: interrupted\n")
    sys.exit(130)  # sim.cli.INTERRUPTED, which may not have loaded yet

sys.exit(main())
