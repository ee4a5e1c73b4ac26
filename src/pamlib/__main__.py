"""``python -m pamlib`` runs the command line."""

from pamlib.cli import run

run()
