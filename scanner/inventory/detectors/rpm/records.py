"""What every rpm database backend yields: header blobs in install order, interleaved with problems."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Blob:
    """One stored rpm header. `key` is the package's database number (hnum / pkgidx), used for order."""

    key: int
    data: bytes


@dataclass(frozen=True)
class Problem:
    """Something wrong with the database. `fatal` means it could not be read at all (nothing was or
    will be yielded from it), so another database present in the image may be tried instead; `bound`
    that a bound stopped the reading (what follows was not read: the inventory is Incomplete)."""

    message: str
    fatal: bool = False
    bound: bool = False


Record = Blob | Problem


class ByteBudget:
    """Caps the header bytes one database may hand out at the size of the file itself.

    In a sound database every stored header occupies its own bytes of the file, so the total can never
    exceed the file size; a hostile file whose records share storage (overlapping NDB blocks, overflow
    chains reused by many BDB items, SQLite cells sharing overflow pages) would otherwise multiply a small
    file into unbounded memory and work.
    """

    def __init__(self, limit: int) -> None:
        self.remaining = limit

    def take(self, size: int) -> bool:
        if size > self.remaining:
            self.remaining = 0
            return False
        self.remaining -= size
        return True


BUDGET_EXHAUSTED = "stored headers add up to more than the file size; the rest of the database is ignored"
