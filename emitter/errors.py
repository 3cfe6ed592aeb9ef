"""The one exception tree of emitter; every error a user can cause carries its exit code.

Exit codes (documented in the README, stable across releases):

    0   success
    1   invalid rules or events (validation failed; nothing was sent)
    2   usage error (bad arguments, unknown rule id, bad --var)
    3   internal error (a bug: please report it)
    4   delivery rejected: the API answered a permanent error (4xx other than 408/429)
    5   delivery failed: retries exhausted, deadline passed or the intake unreachable
    6   configuration or environment error (no API key, unwritable state directory)
    7   outbox full: the event was refused, nothing already accepted was dropped
    130 interrupted (SIGINT)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emitter.problems import Problem

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_REJECTED = 4
EXIT_DELIVERY = 5
EXIT_CONFIG = 6
EXIT_OUTBOX_FULL = 7
EXIT_INTERRUPTED = 130


class EmitterError(Exception):
    """Base of every error emitter raises on purpose. `str()` is the user-facing message."""

    exit_code = EXIT_INTERNAL


class UsageError(EmitterError):
    """The command line asked for something that cannot be done (unknown rule, bad --var)."""

    exit_code = EXIT_USAGE


class InvalidError(EmitterError):
    """Rules or a rendered event are invalid; carries every problem found, not just the first."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class ConfigError(EmitterError):
    """The environment is not usable: missing API key, unwritable state directory, bad site."""

    exit_code = EXIT_CONFIG


class DeliveryError(EmitterError):
    """An event could not be delivered. `permanent` is True when the API refused it."""

    exit_code = EXIT_DELIVERY

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: Sequence[str] = (),
        permanent: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = tuple(errors)
        self.permanent = permanent
        if permanent:
            self.exit_code = EXIT_REJECTED


class OutboxFullError(EmitterError):
    """The durable outbox reached its bound; the new event was refused, none was dropped."""

    exit_code = EXIT_OUTBOX_FULL


class OutboxUnavailableError(OutboxFullError):
    """The outbox could not commit right now (disk full, I/O error): the new event was
    refused, nothing already accepted was dropped. A subclass of OutboxFullError so every
    caller that answers "try again later" (webhooks: 503; file and stdin triggers: pause
    without advancing) treats it the same; catch it first to word it differently."""
