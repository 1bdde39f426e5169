"""Quality scorecards: scripts as versioned YAML, auto-QA scores with evidence, human QA
calibration, coaching per agent and team, and live script adherence."""

from convolens.scorecards.definition import (
    DEFAULT_SCORECARDS,
    Scorecard,
    ScorecardError,
    load_scorecard,
    load_scorecards,
)

__all__ = ["DEFAULT_SCORECARDS", "Scorecard", "ScorecardError", "load_scorecard", "load_scorecards"]
