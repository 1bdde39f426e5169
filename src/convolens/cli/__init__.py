"""The `convolens` command line: thin Typer commands over the library, rendered with Rich.

`main` holds the app and the core commands; the other modules register theirs on it when
imported here, so `convolens.cli:app` is the whole command line.
"""

# Importing each module registers its commands on `app`.
from convolens.cli import (  # noqa: F401
    analytics,
    browse,  # list, show, report, export, formats
    business,
    governance,
    health,
    pull,
    quarantine,  # conversations redaction could not pass
    review,  # label review, quality, taxonomy versions
    scorecard,
    service,
    speakers,  # known voices: enrol, list, remove
    understand,
)
from convolens.cli.main import app

__all__ = ["app"]
