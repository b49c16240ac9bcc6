"""`python -m flows.cli`: the `tabpipe` command."""

import sys

from flows.cli.main import main

sys.exit(main())
