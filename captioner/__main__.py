"""``python -m captioner`` runs the CLI."""

import sys

from captioner.cli import main

sys.exit(main())
