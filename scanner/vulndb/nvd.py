"""NVD's CVE records in the shape of its API 2.0, converted to records that carry only NVD's CVSS vectors.

Three shapes are read: one CVE object per file (`{"id": "CVE-…", "metrics": {"cvssMetricV31": […]}, …}`, as the
fkie-cad/nvd-json-data-feeds tree lays them out), and the API's response shape
`{"format": "NVD_CVE", "vulnerabilities": [{"cve": {…}}, …]}` of its pages and of the yearly feeds
(`nvdcve-2.0-2024.json`, `.json.gz`, `.json.zip`). A feed larger than one document may be (`MAX_DOCUMENT_BYTES`), or
gzip-compressed, is streamed (`read_feed`): one CVE object at a time, never the whole file in memory.

As for CVE JSON 5 records (`vulndb.cve5`), a converted record has no affected entries, so matching and coverage
never see it; it is found only through its alias, by `by_id("CVE-…")`. Its id is `NVD:<cve id>`. Its vectors sit in
`database_specific.cve_metrics` with the source `nvd`, NVD's `nvd_type` (`Primary`: NVD's own analysis;
`Secondary`: a CNA's score NVD republishes) and the scorer's `scorer` (`nvd@nist.gov`, a CNA's address or id).
A rejected CVE (`vulnStatus` "Rejected") is skipped.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from scanner.vulndb.converted import MAX_ID, MAX_SUMMARY, Converted, clip, cwe_list, english_description, rfc3339
from scanner.vulndb.xmlstream import BoundedStream

KIND = "nvd"
ID_PREFIX = "NVD:"
SOURCE = "nvd"
FEED_SUFFIXES = (".json.gz",)
MAX_METRICS = 50  # metrics of one CVSS version (real records carry one to three)
MAX_VECTOR = 300  # a CVSS v4.0 vector with every optional metric is ~250 characters
MAX_SCORER = 100  # an e-mail address or a CNA's UUID
MAX_FEED_CVES = 500_000  # every CVE there is (~300,000 in 2026) fits in one feed
MAX_FEED_BYTES = 4 << 30  # decompressed; NVD's largest yearly feed is well under 1 GiB
MAX_CVE_BYTES = 16 << 20  # one CVE object; the largest (CPE configurations of thousands of entries) are a few MB
MAX_HEADER_BYTES = 1 << 20  # a feed's other top-level values (resultsPerPage, timestamp, …)
_CHUNK = 1 << 20
_VERSIONS = {
    "cvssMetricV31": "CVSS_V3",
    "cvssMetricV30": "CVSS_V3",
    "cvssMetricV40": "CVSS_V4",
    "cvssMetricV2": "CVSS_V2",
}
_WHITESPACE = " \t\r\n"


def is_cve(data: Any) -> bool:
    """One CVE object as NVD's API 2.0 writes it (OSV records have no `lastModified`)."""
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("id"), str)
        and data["id"].startswith("CVE-")
        and "lastModified" in data
        and ("vulnStatus" in data or "sourceIdentifier" in data or "metrics" in data)
    )


def is_feed(data: Any) -> bool:
    """An API response or yearly feed: `{"format": "NVD_CVE", "vulnerabilities": [{"cve": …}, …]}`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("vulnerabilities"), list):
        return False
    if data.get("format") == "NVD_CVE":
        return True
    first = data["vulnerabilities"][:1]
    return bool(first) and isinstance(first[0], Mapping) and is_cve(first[0].get("cve"))


def is_document(data: Any) -> bool:
    return is_cve(data) or is_feed(data)


def convert_document(data: Mapping[str, Any], origin: str) -> Converted:
    """The records of a CVE object or of a feed's `vulnerabilities`, and what was skipped."""
    result = Converted(KIND)
    if is_cve(data):
        _add(result, data, origin)
        return result
    items = data.get("vulnerabilities")
    for index, item in enumerate(items if isinstance(items, list) else []):
        if index >= MAX_FEED_CVES:
            result.skip(f"{origin}: more than {MAX_FEED_CVES} CVEs; the rest is not read")
            break
        _add_item(result, item, f"{origin}[{index}]")
    return result


def read_feed(raw: BinaryIO, origin: str) -> Converted:
    """The records of a feed streamed from `raw` (plain JSON or gzip), one CVE object at a time. Raises
    ValueError (`XmlFeedError` for the compression and size bounds) naming what is wrong with the feed."""
    result = Converted(KIND)
    for index, item in enumerate(_vulnerabilities(_Tokens(BoundedStream(raw, MAX_FEED_BYTES)))):
        if index >= MAX_FEED_CVES:
            result.skip(f"{origin}: more than {MAX_FEED_CVES} CVEs; the rest is not read")
            break
        _add_item(result, item, f"{origin}[{index}]")
    return result


def read_feed_file(path: Path, origin: str) -> Converted:
    with path.open("rb") as raw:
        return read_feed(raw, origin)


def _add_item(result: Converted, item: Any, origin: str) -> None:
    cve = item.get("cve") if isinstance(item, Mapping) else None
    if not isinstance(cve, Mapping) or not is_cve(cve):
        result.skip(f"{origin}: not an NVD CVE object ({{'cve': {{'id': 'CVE-…', 'lastModified': …}}}})")
        return
    _add(result, cve, origin)


def _add(result: Converted, cve: Mapping[str, Any], origin: str) -> None:
    cve_id = cve["id"]
    if len(cve_id) > MAX_ID - len(ID_PREFIX):
        result.skip(f"{origin}: a CVE id longer than {MAX_ID - len(ID_PREFIX)} characters")
        return
    label = f"{cve_id} ({origin})"
    if str(cve.get("vulnStatus", "")).lower() == "rejected":
        result.skip(f"{label}: a rejected CVE")
        return
    modified = rfc3339(str(cve.get("lastModified") or cve.get("published") or ""))
    if modified is None:
        result.skip(f"{label}: no lastModified or published time")
        return
    record: dict[str, Any] = {
        "id": f"{ID_PREFIX}{cve_id}",
        "modified": modified,
        "aliases": [cve_id],
        "summary": clip(_description(cve), MAX_SUMMARY),
        "database_specific": {"cve_metrics": _metrics(cve.get("metrics"))},
    }
    cwes = cwe_list(_cwe_values(cve))
    if cwes:
        record["database_specific"]["cwe_ids"] = cwes
    published = rfc3339(str(cve.get("published") or ""))
    if published:
        record["published"] = published
    result.records.append(record)


def _cwe_values(cve: Mapping[str, Any]) -> list[object]:
    """`weaknesses[].description[].value` (NVD's own analysis and the CNA's)."""
    values: list[object] = []
    weaknesses = cve.get("weaknesses")
    for weakness in weaknesses[:50] if isinstance(weaknesses, list) else []:
        described = weakness.get("description") if isinstance(weakness, Mapping) else None
        for item in described[:50] if isinstance(described, list) else []:
            if isinstance(item, Mapping):
                values.append(item.get("value"))
    return values


def _metrics(metrics: Any) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    if not isinstance(metrics, Mapping):
        return found
    for key, kind in _VERSIONS.items():
        entries = metrics.get(key)
        for entry in entries[:MAX_METRICS] if isinstance(entries, list) else []:
            data = entry.get("cvssData") if isinstance(entry, Mapping) else None
            vector = data.get("vectorString") if isinstance(data, Mapping) else None
            if not isinstance(vector, str) or not 0 < len(vector.strip()) <= MAX_VECTOR:
                continue
            assert isinstance(entry, Mapping)
            metric = {"source": SOURCE, "type": kind, "score": vector.strip()}
            role = entry.get("type")
            metric["nvd_type"] = role if role in ("Primary", "Secondary") else "Secondary"
            scorer = entry.get("source")
            if isinstance(scorer, str) and 0 < len(scorer) <= MAX_SCORER:
                metric["scorer"] = scorer
            found.append(metric)
    return found


def _description(cve: Mapping[str, Any]) -> str:
    return english_description(cve, MAX_METRICS)


class _Tokens:
    """JSON values read one at a time from a stream: the standard decoder over a window of the text that grows
    only until the next value parses, so memory stays near the largest single value."""

    def __init__(self, stream: BoundedStream) -> None:
        self._stream = stream
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._decoder = json.JSONDecoder()
        self._text = ""
        self._pos = 0
        self._eof = False

    def _fill(self) -> None:
        data = self._stream.read(_CHUNK)
        try:
            decoded = self._utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text ({exc.reason})") from exc
        self._eof = not data
        self._text = self._text[self._pos :] + decoded
        self._pos = 0

    def peek(self) -> str:
        """The next non-blank character, "" at the end."""
        while True:
            while self._pos < len(self._text) and self._text[self._pos] in _WHITESPACE:
                self._pos += 1
            if self._pos < len(self._text) or self._eof:
                return self._text[self._pos] if self._pos < len(self._text) else ""
            self._fill()

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise ValueError(f"expected {char!r}, found {found or 'the end'!r} at offset {self._offset()}")
        self._pos += 1

    def value(self, limit: int) -> Any:
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._text, self._pos)
            except json.JSONDecodeError as exc:
                if self._eof:
                    raise ValueError(f"JSON: {exc.msg} at offset {self._offset()}") from exc
                if len(self._text) - self._pos > limit:
                    raise ValueError(f"a value at offset {self._offset()} is longer than {limit} bytes") from exc
                self._fill()
                continue
            if end == len(self._text) and not self._eof:  # a number may go on in the next chunk
                self._fill()
                continue
            if end - self._pos > limit:  # counted in characters: UTF-8 bytes are at least as many
                raise ValueError(f"a value at offset {self._offset()} is longer than {limit} bytes")
            self._pos = end
            return value

    def _offset(self) -> int:
        return self._stream.count - len(self._text) + self._pos  # approximate: bytes read vs characters left


def _vulnerabilities(tokens: _Tokens) -> Iterator[Any]:
    """The items of the top-level `vulnerabilities` list; ValueError if the document has none."""
    tokens.expect("{")
    seen = False
    if tokens.peek() == "}":
        raise ValueError("not an NVD CVE feed: an empty object")
    while True:
        key = tokens.value(MAX_HEADER_BYTES)
        tokens.expect(":")
        if key == "vulnerabilities" and not seen:
            seen = True
            tokens.expect("[")
            if tokens.peek() == "]":
                tokens.expect("]")
            else:
                while True:
                    yield tokens.value(MAX_CVE_BYTES)
                    if tokens.peek() == ",":
                        tokens.expect(",")
                        continue
                    tokens.expect("]")
                    break
        else:
            other = tokens.value(MAX_HEADER_BYTES)
            if key == "format" and other != "NVD_CVE":
                raise ValueError(f"not an NVD CVE feed: format {str(other)[:40]!r}")
        if tokens.peek() == ",":
            tokens.expect(",")
            continue
        tokens.expect("}")
        break
    if not seen:
        raise ValueError("not an NVD CVE feed: no vulnerabilities list")
