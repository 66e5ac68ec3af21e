"""How the queue worker leases, retries and gives up, checked together, and the backoff.

`ACRGUARD_VISIBILITY_TIMEOUT` (lease seconds, renewed while a scan runs), `ACRGUARD_RETRY_BASE_SECONDS`
and `ACRGUARD_RETRY_MAX_SECONDS` (a failed attempt waits base * 2^(attempt-1), capped), and
`ACRGUARD_MAX_ATTEMPTS` (deliveries before the queue dead-letters a message), as `scanner.model.settings`
read them. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.model.settings import Settings, SettingsError, env_name
from scanner.queue.interface import DEFAULT_MAX_ATTEMPTS, MAX_LEASE

__all__ = ["RetrySettings", "SettingsError"]

VISIBILITY_ENV = env_name("visibility_timeout")
RETRY_BASE_ENV = env_name("retry_base_seconds")
RETRY_MAX_ENV = env_name("retry_max_seconds")
MAX_ATTEMPTS_ENV = env_name("max_attempts")


@dataclass(frozen=True)
class RetrySettings:
    # A short lease finds a crashed worker's message again quickly; the worker renews it while it scans.
    visibility_timeout: int = 300
    retry_base_seconds: int = 10
    retry_max_seconds: int = 900
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def __post_init__(self) -> None:
        if not 1 <= self.visibility_timeout <= MAX_LEASE:
            raise SettingsError(f"{VISIBILITY_ENV}: must be between 1 and {MAX_LEASE}, not {self.visibility_timeout}")
        if not 0 <= self.retry_base_seconds <= MAX_LEASE:
            raise SettingsError(f"{RETRY_BASE_ENV}: must be between 0 and {MAX_LEASE}, not {self.retry_base_seconds}")
        if not self.retry_base_seconds <= self.retry_max_seconds <= MAX_LEASE:
            raise SettingsError(
                f"{RETRY_MAX_ENV}: must be between {RETRY_BASE_ENV} ({self.retry_base_seconds}) and {MAX_LEASE},"
                f" not {self.retry_max_seconds}"
            )
        if self.max_attempts < 1:
            raise SettingsError(f"{MAX_ATTEMPTS_ENV}: must be at least 1, not {self.max_attempts}")

    def retry_delay(self, dequeue_count: int) -> int:
        """Seconds before the next delivery after delivery number `dequeue_count` failed: exponential, so a
        registry that is down for a while is not hammered, and capped, so a long outage is still retried."""
        exponent = min(max(dequeue_count, 1) - 1, 32)  # 2**32 * base is past any cap; keeps the number small
        delay: int = self.retry_base_seconds * 2**exponent
        return min(self.retry_max_seconds, delay)

    @property
    def renew_every(self) -> float:
        """How often a running scan renews its lease: three chances before it would run out."""
        return max(self.visibility_timeout / 3, 0.5)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrySettings:
        """The configured values, checked together; a bad combination is a SettingsError naming the variable."""
        return cls(
            visibility_timeout=settings.visibility_timeout,
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            max_attempts=settings.max_attempts,
        )
