"""What the transfer log and the audit may say about a value a department chose.

A name or text that the schema declares is written as it is; anything else is written as its length and a
short hash only, so nothing a refused message carried reaches transfers.jsonl, audit.md or audit.json verbatim.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Collection


def redacted(value: Any) -> str:
    """'<undeclared: N chars, sha256 0123456789ab>' for any value (strings, numbers, lists)."""
    text = value if isinstance(value, str) else repr(value)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"<undeclared: {len(text)} chars, sha256 {digest}>"


def declared_or_redacted(value: Any, declared: Collection[str]) -> str:
    """`value` itself when it is one of the `declared` strings, else its redacted form."""
    if isinstance(value, str) and value in declared:
        return value
    return redacted(value)


REDACTED = re.compile(r"<undeclared: \d+ chars, sha256 [0-9a-f]{12}>")


def as_logged(value: Any, declared: Collection[str]) -> str:
    """For re-reading the log: a declared name, or an entry the log already redacted, as it is; else redacted."""
    if isinstance(value, str) and REDACTED.fullmatch(value):
        return value
    return declared_or_redacted(value, declared)
