"""Pure data: what an inventory is made of. Frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Scanned: every detector read everything it was given. Unsupported: nothing could be inventoried (Windows, no
# recognisable OS and no packages). Incomplete: a detector failed, ran out of memory or hit a bound, so packages
# may be missing: what was found is still reported, and `reason` says what was not read.
Status = Literal["Scanned", "Unsupported", "Incomplete"]


@dataclass(frozen=True)
class OSInfo:
    """The distribution an image is built on, as os-release (or its fallbacks) says.

    `id` is os-release ID (lower case: debian, ubuntu, alpine, rhel, almalinux, azurelinux, mariner…);
    `version` is VERSION_ID (or the best fallback); `codename` is VERSION_CODENAME where known. `cpe` is
    the operating system's CPE as the image says it (os-release CPE_NAME, else /etc/system-release-cpe:
    `cpe:/o:redhat:enterprise_linux:8::baseos`), "" when it says none: Red Hat's advisories are scoped by it.
    """

    id: str
    version: str = ""
    codename: str = ""
    name: str = ""
    pretty_name: str = ""
    id_like: tuple[str, ...] = ()
    source: str = ""  # the file it came from, e.g. /etc/os-release
    cpe: str = ""


@dataclass(frozen=True)
class LayerInfo:
    """One layer of an image, in order from the base (index 0)."""

    index: int
    digest: str  # blob digest as the manifest names it (compressed), or diff_id where no blob exists
    diff_id: str = ""
    media_type: str = ""
    size: int = 0
    created_by: str = ""


# How a detector knows a package is there: the package manager's record of what is installed (a package
# database, dist-info, a gemspec, node_modules); a lockfile or build manifest, which says what was built and
# may not be what is installed; the build information embedded in a binary (Go, cargo auditable); or a
# runtime's own files (CPython, Node.js, OpenJDK, .NET, Go installed without a package manager).
Evidence = Literal["installed", "lockfile", "binary", "runtime"]
EVIDENCES: tuple[Evidence, ...] = ("installed", "lockfile", "binary", "runtime")


@dataclass(frozen=True)
class RawPackage:
    """A package as a detector reports it: facts read from the image, before the orchestrator adds the
    layer that introduced it.

    `ecosystem` uses OSV's vocabulary (`Debian:12`, `Ubuntu:22.04`, `Alpine:v3.19`, `AlmaLinux:9`,
    `PyPI`, `npm`); `purl` is a package URL string; `locations` are absolute paths inside the image of
    the files that declare the package (the package database or metadata file).
    """

    name: str
    version: str
    ecosystem: str
    purl: str
    source_name: str = ""
    source_version: str = ""
    arch: str = ""
    locations: tuple[str, ...] = ()
    kind: str = ""  # deb, apk, rpm, pypi, npm… (the purl type)
    # Extra facts a detector knows (epoch, release, modularity label, licence…); string values only.
    metadata: tuple[tuple[str, str], ...] = ()
    evidence: Evidence = "installed"
    # Files the package owns (OS package managers only), absolute paths; used to mark language
    # packages the OS package manager installed. Not serialised.
    owned_files: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def key(self) -> tuple[str, str, str, str, tuple[str, ...]]:
        """Identity of a package across layers (ecosystem left out: the OS may be identified later)."""
        return (self.kind, self.name, self.version, self.arch, self.locations)


@dataclass(frozen=True)
class Package:
    """A package in an image's final filesystem, with the layer that introduced it."""

    name: str
    version: str
    ecosystem: str
    purl: str
    source_name: str
    source_version: str
    arch: str
    locations: tuple[str, ...]
    kind: str
    detector: str  # "name@version" of the detector plugin
    layer: LayerInfo | None
    os_owned: bool = False  # a language package whose files the OS package manager owns
    metadata: tuple[tuple[str, str], ...] = ()
    evidence: Evidence = "installed"


@dataclass(frozen=True)
class Warning_:
    """A contained problem: a member skipped, a file not parsed. Partial failure is data."""

    where: str  # layer digest or file path
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class BaseImage:
    """The image this one was built on, as far as the image itself says.

    `name`/`digest` come from the OCI annotations `org.opencontainers.image.base.name`/`.digest` (on the
    manifest, its index entry, or the config's labels); `layers` from the build history: layers
    `0 .. layers-1` are the base's, 0 when the history does not show where the base ends.
    """

    name: str = ""
    digest: str = ""
    layers: int = 0


@dataclass(frozen=True)
class ImageInfo:
    reference: str
    digest: str  # manifest digest ("" where the source has none, e.g. dir:)
    config_digest: str
    platform: str  # os/arch[/variant]
    os: OSInfo | None
    layers: tuple[LayerInfo, ...] = ()
    media_type: str = ""
    index_digest: str = ""  # digest of the index this image was picked from, if any
    base: BaseImage | None = None  # None when neither annotations nor history name a base


@dataclass(frozen=True)
class Inventory:
    image: ImageInfo
    status: Status
    reason: str
    packages: tuple[Package, ...]
    warnings: tuple[Warning_, ...] = ()


Severity = Literal["Critical", "High", "Medium", "Low", "Unknown"]
SEVERITY_ORDER: tuple[Severity, ...] = ("Critical", "High", "Medium", "Low", "Unknown")
FixStatus = Literal["fixed", "not_fixed", "wont_fix"]
FIX_STATUSES: tuple[FixStatus, ...] = ("fixed", "not_fixed", "wont_fix")
Category = Literal["os", "language"]

# Where a finding's package came from: the base image's layers (a rebuild on a newer base may fix it), the image's
# own layers (its Dockerfile's steps), or "" when the base image's extent is not known.
Origin = Literal["base", "own", ""]
ORIGINS: tuple[Origin, ...] = ("base", "own", "")
# Incomplete: the inventory is (status Incomplete); never Healthy or NotApplicable, whatever was found.
# NotAssessed: nothing active was found, but the database holds no advisories (or only a selection) for the
# image's distribution and release, or for any of its ecosystems: finding nothing proved nothing.
Health = Literal["Healthy", "Unhealthy", "Unsupported", "NotApplicable", "Incomplete", "NotAssessed"]
HEALTHS: tuple[Health, ...] = ("Healthy", "Unhealthy", "Unsupported", "NotApplicable", "Incomplete", "NotAssessed")
# How a gate judges an Incomplete (or NotAssessed) image: fail it, judge the findings found, or give no verdict.
IncompletePolicy = Literal["fail", "findings", "skip"]
INCOMPLETE_POLICIES: tuple[IncompletePolicy, ...] = ("fail", "findings", "skip")


@dataclass(frozen=True)
class Coverage:
    """What the vulnerability database holds for one ecosystem of an image (`Debian:12`, `PyPI`).

    `advisories` counts the records that apply to the ecosystem and its release; `feed_date` is the newest feed
    date of the sources they come from (RFC 3339, "" when none): how current the feed is, not when it was
    imported (scanner/vulndb/db_writer.py says how a source is dated).
    `selection` says every one of them comes from a source that holds only a selection of its feed (the
    bundled snapshot): the findings it gives are real, but finding nothing proves nothing.
    """

    ecosystem: str
    kind: Category
    advisories: int
    feed_date: str = ""
    selection: bool = False


@dataclass(frozen=True)
class Cvss:
    version: str  # "3.1", "3.0", "4.0"
    vector: str
    score: float


@dataclass(frozen=True)
class Kev:
    """The vulnerability is in CISA's Known Exploited Vulnerabilities catalog."""

    date_added: str  # YYYY-MM-DD
    due_date: str  # YYYY-MM-DD; "" when the catalog gives none
    ransomware: bool  # known to be used in ransomware campaigns


@dataclass(frozen=True)
class Epss:
    """FIRST's EPSS: the probability of exploitation activity in the next 30 days, and its percentile."""

    score: float  # 0..1
    percentile: float  # 0..1
    date: str  # the scores' date, YYYY-MM-DD


@dataclass(frozen=True)
class Finding:
    """One vulnerability in one package of one image (aliases of the same vulnerability merged)."""

    id: str  # the preferred record's id (the distribution's for an OS package)
    aliases: tuple[str, ...]  # every other id of the same vulnerability (CVE, DSA/DLA, GHSA, PYSEC…)
    package: Package
    installed_version: str  # the package's own version (Debian/Ubuntu match by the source version)
    fixed_version: str  # "" when there is no fix
    fix_status: FixStatus
    severity: Severity
    severity_source: str  # where the class came from: "debian", "ghsa", "cvss:3.1", "none"…
    cvss: Cvss | None
    category: Category
    summary: str = ""
    references: tuple[str, ...] = ()
    published: str = ""
    modified: str = ""
    disabled: bool = False
    disabled_by: str = ""
    remediation: str = ""
    kev: Kev | None = None  # any of its CVE ids in the KEV catalog
    epss: Epss | None = None  # the highest EPSS score of its CVE ids
    risk: float = 0.0  # 0-100, from severity, CVSS, EPSS, KEV and fix (scanner.assess.risk); set by assessment
    origin: Origin = ""  # base image or own layers (scanner.assess.origin); set by assessment

    @property
    def patchable(self) -> bool:
        return self.fix_status == "fixed"

    @property
    def cve_ids(self) -> tuple[str, ...]:
        return tuple(i for i in (self.id, *self.aliases) if i.startswith("CVE-"))
