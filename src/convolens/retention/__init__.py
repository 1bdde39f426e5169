"""Retention and erasure (#17 item 7): how long each layer is kept (`RetentionPolicy`,
applied by `apply_retention`, on a schedule in `convolens serve` and by `convolens
retention run`), and erasure of one person across every layer (`erase_person`), each
leaving its receipt in the audit log."""

from convolens.retention.enforce import RetentionReport, apply_retention
from convolens.retention.erasure import ErasureReceipt, Person, erase_person, find_person
from convolens.retention.policy import RECOMMENDED, RetentionPolicy

__all__ = [
    "RECOMMENDED",
    "ErasureReceipt",
    "Person",
    "RetentionPolicy",
    "RetentionReport",
    "apply_retention",
    "erase_person",
    "find_person",
]
