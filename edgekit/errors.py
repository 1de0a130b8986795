"""Every failure edgekit reports on purpose: one exception type per kind, one exit code per kind.

The CLI turns an EdgekitError into a single message (what went wrong, then how to fix it) and exits with
its status; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Exit codes by failure kind; scripts and fleets rely on them, so never renumber."""

    OK = 0
    ERROR = 1  # an unexpected error (a bug): the traceback is shown
    USAGE = 2  # bad command line (click's own code for usage errors)
    INPUT = 3  # a file or value the user gave is missing, unreadable or malformed
    CHECKPOINT = 4  # a checkpoint is corrupt, unsafe, or of another layout
    DEVICE_UNREACHABLE = 5  # cannot connect / authenticate / verify the host key
    DEVICE_FAILURE = 6  # the device-side tool failed
    VALIDATION = 7  # an export or INT8 model is outside its tolerance / fidelity target
    PARTIAL = 8  # a fleet (or comparison) run where some devices (models) failed and others finished
    RESOURCES = 9  # this machine lacks the memory a step needs (refused before it starts, not killed midway)
    INTERRUPTED = 130


class EdgekitError(Exception):
    """Base class: a message for the user and, separately, the fix."""

    status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class UsageError(EdgekitError):
    status = ExitStatus.USAGE


class UnknownVariantError(UsageError):
    pass


class InputError(EdgekitError):
    status = ExitStatus.INPUT


class CheckpointError(EdgekitError):
    status = ExitStatus.CHECKPOINT


class DeviceUnreachableError(EdgekitError):
    status = ExitStatus.DEVICE_UNREACHABLE


class DeviceFailureError(EdgekitError):
    status = ExitStatus.DEVICE_FAILURE


class PartialError(EdgekitError):
    """Some models of a comparison run failed; the others finished and kept their reports."""

    status = ExitStatus.PARTIAL


class ValidationError(EdgekitError):
    status = ExitStatus.VALIDATION


class ResourceError(EdgekitError):
    """A step would need more memory than this machine has available: refused before it starts."""

    status = ExitStatus.RESOURCES


class ParseError(EdgekitError):
    """A device tool's output that a parser cannot read; `line` is 1-based where known."""

    status = ExitStatus.INPUT

    def __init__(self, message: str, line: int | None = None, hint: str | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message, hint)
        self.line = line
