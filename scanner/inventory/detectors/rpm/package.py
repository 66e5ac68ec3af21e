"""From a parsed rpm header to a `RawPackage`: the fields, the file list, the source package and the purl."""

from __future__ import annotations

from dataclasses import dataclass

from packageurl import PackageURL

from scanner.ecosystems.distributions import os_ecosystem, purl_distro, purl_namespace
from scanner.inventory.detectors.base import DetectContext
from scanner.inventory.detectors.rpm.header import (
    TAG_ARCH,
    TAG_BASENAMES,
    TAG_DIRINDEXES,
    TAG_DIRNAMES,
    TAG_EPOCH,
    TAG_LICENSE,
    TAG_MODULARITYLABEL,
    TAG_NAME,
    TAG_OLDFILENAMES,
    TAG_RELEASE,
    TAG_SOURCERPM,
    TAG_VENDOR,
    TAG_VERSION,
    Header,
    HeaderError,
)
from scanner.model.types import RawPackage

# rpm's query output prints "(none)" for an absent tag; some tools stored that text as the value.
_NONE = "(none)"

# The public keys rpm imports live in the database as fake packages; they are not software.
PUBKEY_NAME = "gpg-pubkey"


@dataclass(frozen=True)
class RpmFacts:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    source_rpm: str
    modularity_label: str
    license: str
    vendor: str
    files: frozenset[str]
    file_problem: str = ""  # why `files` is empty although the header lists files
    over_file_limit: bool = False  # the problem is that the file list is over the limit given


def _text(header: Header, tag: int) -> str:
    value = header.string(tag)
    return "" if value == _NONE else value


def _decode_path(raw: bytes) -> str:
    # surrogateescape keeps non-UTF-8 names lossless, matching how Python's tarfile decodes member
    # names, so ownership lookups against layer paths still match.
    return raw.decode("utf-8", errors="surrogateescape")


def _files(header: Header, limit: int) -> tuple[frozenset[str], str]:
    """Absolute paths the package owns: BASENAMES joined to DIRNAMES through DIRINDEXES (rpm >= 4), or
    OLDFILENAMES in headers from before compressed file names. At most `limit` names are decoded: a
    header of one-byte names would otherwise turn into dozens of times its size in Python objects."""
    claimed = max(header.count(TAG_BASENAMES), header.count(TAG_DIRNAMES), header.count(TAG_OLDFILENAMES))
    if claimed > limit:
        return frozenset(), f"{claimed} file names, more than the {limit} still allowed"
    basenames = header.string_array(TAG_BASENAMES)
    if basenames:
        dirnames = header.string_array(TAG_DIRNAMES)
        indexes = header.int32_array(TAG_DIRINDEXES)
        if len(indexes) != len(basenames):
            return frozenset(), f"{len(basenames)} file names but {len(indexes)} directory indexes"
        if any(i >= len(dirnames) for i in indexes):
            return frozenset(), f"a directory index is outside the {len(dirnames)} directory names"
        names = [dirnames[i] + base for i, base in zip(indexes, basenames, strict=True)]
    else:
        names = header.string_array(TAG_OLDFILENAMES)
    return frozenset(_decode_path(n) for n in names if n.startswith(b"/")), ""


def read_facts(header: Header, file_limit: int) -> RpmFacts:
    """The fields a package needs, with at most `file_limit` owned files. Raises HeaderError if the
    identity fields are missing or malformed."""
    name = header.string(TAG_NAME)
    version = header.string(TAG_VERSION)
    release = header.string(TAG_RELEASE)
    if not name or not version:
        raise HeaderError(f"header has no {'name' if not name else 'version'}")
    epochs = header.int32_array(TAG_EPOCH)
    files, file_problem = _files(header, file_limit)
    claimed = max(header.count(TAG_BASENAMES), header.count(TAG_DIRNAMES), header.count(TAG_OLDFILENAMES))
    return RpmFacts(
        name=name,
        version=version,
        release=release,
        epoch=epochs[0] if epochs else None,
        arch=_text(header, TAG_ARCH),
        source_rpm=_text(header, TAG_SOURCERPM),
        modularity_label=_text(header, TAG_MODULARITYLABEL),
        license=_text(header, TAG_LICENSE),
        vendor=_text(header, TAG_VENDOR),
        files=files,
        file_problem=file_problem,
        over_file_limit=claimed > file_limit,
    )


def evr(epoch: int | None, version: str, release: str) -> str:
    """`[epoch:]version-release`, the form rpm compares and advisories quote; epoch 0 is left out, as rpm
    treats a zero epoch and a missing one alike."""
    vr = f"{version}-{release}" if release else version
    return f"{epoch}:{vr}" if epoch else vr


def split_source_rpm(source_rpm: str) -> tuple[str, str, str]:
    """("openssl", "1.1.1k", "7.cm2") from "openssl-1.1.1k-7.cm2.src.rpm"; empty strings if the value
    is not a source package file name."""
    stem = source_rpm.removesuffix(".rpm")
    if stem == source_rpm:
        return "", "", ""
    stem = stem.rpartition(".")[0]  # drop the "src" / "nosrc" arch part
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return "", "", ""
    return parts[0], parts[1], parts[2]


def to_raw_package(facts: RpmFacts, ctx: DetectContext, location: str) -> RawPackage:
    version = evr(facts.epoch, facts.version, facts.release)
    source_name, source_ver, source_rel = split_source_rpm(facts.source_rpm)
    # SOURCERPM records no epoch. A binary package and the source it was built from share the spec
    # file's Epoch, so the binary's epoch is carried over; without it the source version would compare
    # lower than the fixed versions advisories give for the source package.
    source_version = evr(facts.epoch, source_ver, source_rel) if source_name else ""
    qualifiers = {
        "arch": facts.arch,
        "distro": purl_distro(ctx.os),
        "epoch": str(facts.epoch) if facts.epoch else "",
    }
    purl = PackageURL(
        type="rpm",
        namespace=purl_namespace(ctx.os) or None,
        name=facts.name,
        version=version,
        qualifiers={k: v for k, v in qualifiers.items() if v},
    ).to_string()
    metadata: list[tuple[str, str]] = []
    if facts.epoch is not None:
        metadata.append(("epoch", str(facts.epoch)))
    for key, value in (
        ("release", facts.release),
        ("modularitylabel", facts.modularity_label),
        ("license", facts.license),
        ("vendor", facts.vendor),
    ):
        if value:
            metadata.append((key, value))
    return RawPackage(
        name=facts.name,
        version=version,
        ecosystem=os_ecosystem(ctx.os),
        purl=purl,
        source_name=source_name,
        source_version=source_version,
        arch=facts.arch,
        locations=(location,),
        kind="rpm",
        metadata=tuple(metadata),
        owned_files=facts.files,
    )
