"""The scan job's error (its own module: scanner/model/errors.py belongs to the shared error tree)."""

from scanner.model.errors import AcrguardError


class JobError(AcrguardError):
    """The scan job failed: a fetch, a sandbox limit, a sandbox that could not start, or bad child output."""
