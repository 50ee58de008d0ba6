"""``python -m diffclip_qgis``: the command line (see :mod:`diffclip_qgis.cli`)."""
import sys

from .cli import main

sys.exit(main())
