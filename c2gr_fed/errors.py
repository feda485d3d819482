"""Exceptions the CLI turns into one clear message (no traceback unless --verbose)."""

from __future__ import annotations


class C2GRError(Exception):
    """Base of every error that is the user's input, not a bug: the message says what and where."""


class ScenarioError(C2GRError):
    """A scenario file or override is invalid. The message names the file, the field path and the value."""


class DataError(C2GRError):
    """A department's data is missing, unreadable or inconsistent. The message names the file."""


class FederationError(C2GRError):
    """A department failed, timed out or sent a reply outside the declared schema."""


class PrivacyViolation(FederationError):
    """A message carried something outside the declared wire schema."""


class NumericalFault(C2GRError):
    """A loss or weight became NaN or infinite; the message names the model and step."""


class RunDirError(C2GRError):
    """A run directory is missing, incomplete, or belongs to another scenario."""


class StopRequested(C2GRError):
    """A stop was asked for (SIGTERM, SIGINT) or the run's runtime failed: the current round is abandoned and the
    last complete round's checkpoint is kept."""


class ResourceError(C2GRError):
    """The scenario asks for more CPUs or GPUs per department than the machine (or the Ray cluster) has."""


class DepartmentFailure(C2GRError):
    """What a department raises to Flower when a handler fails: its text is only a declared error code
    (c2gr_fed.privacy.error_codes); the original error stays in the department's own errors log."""
