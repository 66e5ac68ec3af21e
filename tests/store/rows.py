"""What the store's paging tests share: made-up digests and every sub-assessment row of a registry, page by page."""

from __future__ import annotations

from scanner.store import FindingsStore


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def all_rows(store: FindingsStore, registry: str, limit: int) -> list[tuple[str, str, str]]:
    """The keys of every row, following cursors; each page non-empty and within `limit`."""
    keys: list[tuple[str, str, str]] = []
    cursor = None
    while True:
        page = store.list_assessment_rows(registry, limit=limit, cursor=cursor)
        assert page.items and len(page.items) <= limit
        keys.extend(row.key for row in page.items)
        if page.cursor is None:
            return keys
        cursor = page.cursor
