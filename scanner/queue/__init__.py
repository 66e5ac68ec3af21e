"""The hand-off between the event functions and the scan job.

At-least-once delivery with leases (visibility timeouts); a message delivered `max_attempts` times
without being completed goes to a dead-letter queue with its error. Consumers must be idempotent.
`open_queue` picks the backend: SQLite (embedded default) or Azure Storage Queues.
"""

from scanner.queue.errors import LeaseLostError, QueueError
from scanner.queue.factory import open_queue
from scanner.queue.interface import DeadLetter, Message, ScanQueue, ScanRequest, Sent

__all__ = [
    "DeadLetter",
    "LeaseLostError",
    "Message",
    "QueueError",
    "ScanQueue",
    "ScanRequest",
    "Sent",
    "open_queue",
]
