"""``python -m bmetoolkit``: the same as the ``bmetoolkit`` command."""

import sys

from bmetoolkit.cli import main

sys.exit(main())
