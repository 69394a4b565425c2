"""``python -m fm_lab`` is ``fm-lab``."""

import sys

from fm_lab.cli import main

sys.exit(main())
