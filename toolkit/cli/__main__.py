"""``python -m toolkit.cli`` runs the ``vdrift`` command line."""

import sys

from . import main

sys.exit(main())
