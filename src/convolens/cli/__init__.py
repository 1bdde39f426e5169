"""The `convolens` command line: thin Typer commands over the library, rendered with Rich.

`main` holds the app and the core commands; the other modules register theirs on it when
imported here, so `convolens.cli:app` is the whole command line.
"""

from convolens.cli import analytics, business, governance, health, pull, scorecard, service, understand  # noqa: F401  (registers commands)
from convolens.cli import quarantine  # noqa: F401  (conversations redaction could not pass)
from convolens.cli import review  # noqa: F401  (label review, quality, taxonomy versions)
from convolens.cli import speakers  # noqa: F401  (known voices: enrol, list, remove)
from convolens.cli.main import app

__all__ = ["app"]
