"""Page cursors are opaque and signed with the store's own key (SQLite and PostgreSQL, see conftest.py): a cursor
is accepted by every process sharing the store and after a restart, and anything the store did not issue
(forged, truncated, re-encoded, another listing's, another store's, nested, a lone surrogate, NUL) is a
CursorError, read no further than its signature."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scanner.model.types import Finding, Inventory
from scanner.store import CursorError, FindingsStore, Page, open_store

REG, MT = "reg.azurecr.io", "application/vnd.oci.image.manifest.v1+json"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
VULN = "CVE-2099-1"

Listing = Callable[[FindingsStore, str | None], Page[Any]]
LISTINGS: dict[str, Listing] = {
    "images": lambda store, cursor: store.list_images(limit=1, cursor=cursor),
    "assessment rows": lambda store, cursor: store.list_assessment_rows(REG, limit=1, cursor=cursor),
    "vulnerability images": lambda store, cursor: store.images_with_vulnerability_page(VULN, limit=1, cursor=cursor),
}


@pytest.fixture
def filled(store: FindingsStore, alpine_image: tuple[Inventory, list[Finding]]) -> FindingsStore:
    finding = replace(alpine_image[1][0], id="ALPINE-CVE-2099-1", aliases=(VULN,))
    for n in range(1, 4):
        digest = f"sha256:{n:064x}"
        store.record_push(REG, f"app/{n}", digest, "v1", MT, T0)
        store.save_assessment(REG, digest, [finding], "Unhealthy", "", {}, T0)
    return store


def first_cursor(store: FindingsStore, listing: str) -> str:
    cursor = LISTINGS[listing](store, None).cursor
    assert cursor is not None
    return cursor


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("listing", LISTINGS)
def test_a_cursor_is_accepted_by_every_process_sharing_the_store_and_after_a_restart(
    filled: FindingsStore, store_url: str, listing: str
) -> None:
    cursor = first_cursor(filled, listing)
    expected = LISTINGS[listing](filled, cursor).items
    with open_store(store_url) as other:  # another instance (or the same one restarted) on the same store
        assert LISTINGS[listing](other, cursor).items == expected
        assert first_cursor(other, listing) == cursor  # one key per store, not per process


def test_a_cursor_from_another_store_is_refused(filled: FindingsStore, tmp_path: Path) -> None:
    with open_store(tmp_path / "other.sqlite") as other:
        for listing, read in LISTINGS.items():
            with pytest.raises(CursorError, match="not signed by this store"):
                read(other, first_cursor(filled, listing))


@pytest.mark.parametrize("listing", LISTINGS)
def test_anything_the_store_did_not_issue_is_a_cursor_error(filled: FindingsStore, listing: str) -> None:
    cursor = first_cursor(filled, listing)
    payload, mac = cursor.split(".")
    others = [first_cursor(filled, name) for name in LISTINGS if name != listing]
    key = b64(json.dumps([REG, "app/1", f"sha256:{1:064x}"]).encode())
    bad = [
        key,  # the unsigned form cursors had before they were signed
        f"{key}.{b64(bytes(32))}",  # a made-up signature
        cursor[:-1],  # truncated
        f"{payload[:-1]}.{mac}",
        f"{payload}=.{mac}",  # re-encoded: padded, or in the standard alphabet
        cursor.replace("-", "+").replace("_", "/") + "+",
        cursor.upper() if cursor.upper() != cursor else cursor.lower(),
        *others,  # another listing's cursor, signed for that listing
        *(f"{o.split('.')[0]}.{mac}" for o in others),
        b64(b"[" * 100_000 + b"]" * 100_000),
        f"{b64(b'[' * 100_000)}.{mac}",
        b64(b'["\\ud800", "a", "b"]'),
        cursor + "\ud800",
        cursor + "\x00",
        "\ud800",
        "é." + mac,
        "",
        ".",
        "x" * 100_000,
    ]
    for value in bad:
        with pytest.raises(CursorError):
            LISTINGS[listing](filled, value)
