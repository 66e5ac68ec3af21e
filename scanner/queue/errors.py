"""Errors of the scan-request queue seam."""

from scanner.model.errors import AcrguardError


class QueueError(AcrguardError):
    """The queue cannot be reached or used, or a message cannot be decoded."""


class LeaseLostError(QueueError):
    """The lease on a received message is gone: it expired and another consumer received the message,
    or the message was already completed. The work will be (or was) done elsewhere; consumers are
    idempotent, so the caller only logs this."""
