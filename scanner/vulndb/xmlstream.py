"""Reading hostile XML feeds (yum updateinfo, OVAL) as a bounded stream.

Feeds arrive gzip- or bzip2-compressed or plain; the compression is told by the first bytes, not the name. Their
decompressed bytes are counted and reading stops at `MAX_XML_BYTES` (a compression bomb ends there, with one line
naming the file). Parsing is defusedxml's: no DTD entities, no external entities, no network; and streamed
(`iterparse`), each record's elements cleared once read, so a feed of hundreds of MB is never held whole.
"""

from __future__ import annotations

import bz2
import gzip
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Protocol
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

# The largest real feeds: Oracle's com.oracle.elsa-ol8.xml is a few hundred MB decompressed, Amazon Linux 2's
# updateinfo.xml some tens of MB. A document past 1 GiB is not one of them.
MAX_XML_BYTES = 1 << 30
# Nesting deeper than this is no OVAL criteria tree Oracle writes (they are 5 levels deep).
MAX_DEPTH = 64
GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class XmlFeedError(ValueError):
    """A feed that cannot be read to its end: corrupt compression, bad XML, over a bound."""


class BoundedStream:
    """Decompresses (by magic) and counts; raises `XmlFeedError` past `limit` decompressed bytes."""

    def __init__(self, raw: BinaryIO, limit: int | None = None) -> None:
        head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
        if not head:
            position = raw.tell()
            head = raw.read(4)
            raw.seek(position)
        self.compression = "gzip" if head.startswith(GZIP_MAGIC) else "bzip2" if head.startswith(BZIP2_MAGIC) else ""
        self._inner: Readable
        if self.compression == "gzip":
            self._inner = gzip.GzipFile(fileobj=raw, mode="rb")
        elif self.compression == "bzip2":
            self._inner = bz2.BZ2File(raw, mode="rb")
        else:
            self._inner = raw
        self.limit = MAX_XML_BYTES if limit is None else limit  # read when used: tests lower it
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        want = self.limit + 1 - self.count if size is None or size < 0 else min(size, self.limit + 1 - self.count)
        try:
            data = self._inner.read(max(want, 1))
        except (OSError, EOFError, zlib.error) as exc:
            raise XmlFeedError(f"corrupt {self.compression or 'file'} data ({exc})") from exc
        self.count += len(data)
        if self.count > self.limit:
            raise XmlFeedError(f"{'decompresses to' if self.compression else 'is'} more than {self.limit} bytes")
        return data


def local(tag: str) -> str:
    """`{http://oval.mitre.org/XMLSchema/oval-definitions-5}definition` → `definition`."""
    return tag.rsplit("}", 1)[-1]


def events(stream: BoundedStream) -> Iterator[tuple[str, Element]]:
    """(event, element) of "start" and "end" events; `XmlFeedError` for malformed or forbidden XML."""
    try:
        yield from iterparse(stream, events=("start", "end"), forbid_dtd=True)
    except ParseError as exc:
        raise XmlFeedError(f"not well-formed XML ({exc})") from exc
    except DefusedXmlException as exc:
        raise XmlFeedError(f"forbidden XML construct ({type(exc).__name__})") from exc


def text(element: Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""
