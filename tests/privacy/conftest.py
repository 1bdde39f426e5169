"""The privacy tests use the service tests' real server (tests/service/live_server.py) and
their own planted corpus (privacy_corpus.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
