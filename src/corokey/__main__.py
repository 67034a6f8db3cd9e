"""``python -m corokey``: the corokey command."""

import sys

from corokey.cli.main import main

sys.exit(main())
