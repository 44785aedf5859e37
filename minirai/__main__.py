"""``python -m minirai`` runs the command line (see :mod:`minirai.cli`)."""
import sys

from .cli import main

sys.exit(main())
