"""PII redaction that finds people and numbers where conversations hide them, and keeps
the business (brand, products, competitors, help URLs, order ids) readable.

- `detect`: the trained NER (`convolens.enrich.ner`), greeting and introduction frames, a
  first-name gazetteer, participants' names, and patterns (emails on any domain, IBANs,
  IPs, addresses, dates of birth);
- `spoken_digits`: card, phone, SSN and account numbers read out or split into groups;
- `policy`: which types are redacted, with which operator, allow and deny lists, and the
  team's entity and tracker terms that are never touched;
- `redact`: the replacement operators (tag / hash / mask);
- `component`: the `pii` enrichment component;
- `presidio_baseline`: the previous Presidio + spaCy-small detector (`detector = "presidio"`),
  kept for comparison in eval/pii.py.

docs/privacy.md documents the defaults; eval/pii.py measures them.
"""

from convolens.enrich.pii.component import PiiComponent
from convolens.enrich.pii.policy import ALL_TYPES, DEFAULT_ENTITIES, PiiConfig
from convolens.enrich.pii.redact import Redaction, Redactor, redact_words

__all__ = [
    "ALL_TYPES",
    "DEFAULT_ENTITIES",
    "PiiComponent",
    "PiiConfig",
    "Redaction",
    "Redactor",
    "redact_words",
]
