"""``python -m napari_zssr.cli``."""

import sys

from . import main

sys.exit(main())
