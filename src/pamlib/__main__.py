"""``python -m pamlib`` runs the command line."""

from pamlib._console import run

run()
