"""Real parts for the integration tests and the benchmark.

* a real registry: CNCF distribution (`docker-registry serve CONFIG`) on 127.0.0.1, filesystem storage;
* real Debian root filesystems built with `mmdebstrap` from the machine's configured Debian mirror;
* real OCI images made from them with `umoci`, pushed with `skopeo`.

Built images are cached (keyed by everything that goes into them) so a warm run only starts a registry
and pushes; a fresh machine builds them. Nothing here talks to any address but 127.0.0.1 (and
mmdebstrap to the Debian mirror). Every failure raises `RealPartsError` with a message saying what to
do; the pytest fixtures turn that into a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests import ports
from tests.childenv import minimal_env

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run scripts/install-system-deps.sh"
# Bump whenever the way images are built changes: it is part of every cache key.
RECIPE_VERSION = 2

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])

MMDEBSTRAP_MERGED_USR_HOOK = Path("/usr/share/mmdebstrap/hooks/merged-usr")
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# dpkg path filters of Debian's *-slim images: no manual pages, translations or documentation
# (copyright files kept). dpkg still records the excluded files in its database.
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
)

# What the test image set is made of (see `build_test_variants`).
ENV_CREATED_BY = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CMD_CREATED_BY = 'CMD ["bash"]'
ADDED_IN_LAYER_1 = "python3-six"  # dpkg package absent from layer 0 of `two-layer`, added by layer 1
PROBE = ("acrguard-probe", "1.0")  # Python dist-info added by layer 1 of `two-layer`
PLATFORM_MARKER = ("acrguard-platform-marker", "1.0")  # dist-info only the arm64 index member has
LAYER_1_CREATED_BY = "/bin/sh -c apt-get install -y python3-six && pip install acrguard-probe==1.0"
MARKER_CREATED_BY = "COPY acrguard_platform_marker-1.0.dist-info /usr/local/lib/python3/dist-packages/"
BROKEN_CREATED_BY = "COPY token /opt/acrguard-broken/token"


class RealPartsError(RuntimeError):
    """A real part is missing or misbehaved; the message says which and what to do."""


# --------------------------------------------------------------------------------------------------
# processes and tools


def missing_tools(names: Sequence[str]) -> list[str]:
    return [name for name in names if shutil.which(name) is None]


def require_tools(names: Sequence[str]) -> None:
    missing = missing_tools(names)
    if missing:
        raise RealPartsError(f"missing programs: {', '.join(missing)}; {INSTALL_HINT}")


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout: float = 1800,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; raise `RealPartsError` with its stderr tail if it fails."""
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except FileNotFoundError as err:
        raise RealPartsError(f"{cmd[0]}: not found; {INSTALL_HINT}") from err
    except subprocess.TimeoutExpired as err:
        raise RealPartsError(f"{shlex.join(cmd)}: timed out after {timeout}s") from err
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise RealPartsError(f"{shlex.join(cmd)} exited {proc.returncode}:\n{tail}")
    return proc


def is_root() -> bool:
    return os.geteuid() == 0


def cache_root() -> Path:
    """Where built images are kept: $ACRGUARD_TEST_CACHE, else <repo>/.cache/acrguard-tests (ignored by git)."""
    configured = os.environ.get("ACRGUARD_TEST_CACHE")
    return Path(configured) if configured else REPO_ROOT / ".cache" / "acrguard-tests"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock: concurrent test sessions build a cache entry once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------------
# the Debian mirror


def _apt_source_entries() -> Iterator[tuple[str, list[str], list[str]]]:
    """(type, URIs, suites) of every enabled entry in the machine's apt sources (deb822 and one-line)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            last = ""
            for line in stanza.splitlines():
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if line[0] in " \t" and last:
                    fields[last] += " " + line.strip()
                    continue
                name, _, value = line.partition(":")
                last = name.strip().lower()
                fields[last] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for kind in fields.get("types", "").split():
                yield kind, fields.get("uris", "").split(), fields.get("suites", "").split()
    one_line = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).strip()
            parts = line.split()
            if len(parts) >= 3:
                yield parts[0], [parts[1]], [parts[2]]


def debian_mirror(suite: str = "bookworm") -> str:
    """The Debian mirror apt on this machine uses for `suite` ($ACRGUARD_TEST_MIRROR overrides)."""
    configured = os.environ.get("ACRGUARD_TEST_MIRROR")
    if configured:
        return configured
    for kind, uris, suites in _apt_source_entries():
        if kind == "deb" and suite in suites and uris:
            return uris[0].rstrip("/")
    return DEFAULT_MIRROR


# --------------------------------------------------------------------------------------------------
# HTTP to the local registry (127.0.0.1 only, never through a proxy)

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def http(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 30,
) -> HttpResponse:
    if not url.startswith("http://127.0.0.1:"):
        raise RealPartsError(f"refusing to contact {url}: the real parts only talk to 127.0.0.1")
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return HttpResponse(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as err:
        return HttpResponse(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def free_port() -> int:
    """A port free now, for a server whose port must be known before it starts (another server's
    configuration names it): the caller retries with another if it is taken by the time the server binds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections are refused) while the tests run."""
    return ports.closed_port()


# --------------------------------------------------------------------------------------------------
# the registry

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  relativeurls: true
"""


@dataclass(frozen=True)
class Manifest:
    digest: str  # Docker-Content-Digest, checked against the body
    media_type: str  # Content-Type the registry served
    raw: bytes
    doc: dict[str, Any]


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    storage: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def manifest(self, repo: str, ref: str) -> Manifest:
        response = http("GET", self.url(f"/v2/{repo}/manifests/{ref}"), headers={"Accept": MANIFEST_ACCEPT})
        if response.status != 200:
            raise RealPartsError(f"GET manifest {repo}:{ref}: HTTP {response.status} {response.body[:300]!r}")
        digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
        served = response.headers.get("docker-content-digest", digest)
        if served != digest:
            raise RealPartsError(f"manifest {repo}:{ref}: registry says {served}, body hashes to {digest}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return Manifest(digest, media_type, response.body, json.loads(response.body))

    def blob(self, repo: str, digest: str) -> bytes:
        response = http("GET", self.url(f"/v2/{repo}/blobs/{digest}"), timeout=300)
        if response.status != 200:
            raise RealPartsError(f"GET blob {repo}@{digest}: HTTP {response.status}")
        return response.body

    def blob_status(self, repo: str, digest: str) -> int:
        return http("HEAD", self.url(f"/v2/{repo}/blobs/{digest}")).status

    def delete_blob(self, repo: str, digest: str) -> None:
        """Unlink a blob from a repository (the manifests naming it stay)."""
        response = http("DELETE", self.url(f"/v2/{repo}/blobs/{digest}"))
        if response.status != 202:
            raise RealPartsError(f"DELETE blob {repo}@{digest}: HTTP {response.status} {response.body!r}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def registry_binary() -> str:
    found = shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if os.access("/usr/bin/docker-registry", os.X_OK) else None
    )
    if found is None:
        raise RealPartsError(f"docker-registry (CNCF distribution) is not installed; {INSTALL_HINT}")
    return found


def start_registry(workdir: Path, *, ready_timeout: float = 120) -> Registry:
    """Start `docker-registry serve` on 127.0.0.1 and wait until GET /v2/ answers 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    return serve_registry(workdir, REGISTRY_CONFIG.format(root=storage, addr="127.0.0.1:0"), ready_timeout)


def serve_registry(workdir: Path, config_text: str, ready_timeout: float = 120) -> Registry:
    """`docker-registry serve` with `config_text` (in workdir/config.yml, storage in workdir/storage), once
    GET /v2/ answers 200. Its `http.addr` is best on port 0: the system picks a port no other process can
    take, read back from the registry process itself (a fixed port is for restarting on the same address).
    `ready_timeout` bounds the wait against a hang; it is no speed requirement."""
    binary = registry_binary()
    config = workdir / "config.yml"
    config.write_text(config_text)
    log_path = workdir / "registry.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config)], env=minimal_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    registry = Registry("", workdir / "storage", config, log_path, process)
    try:
        port = ports.wait_listening(process, "docker-registry", registry.log_tail, ready_timeout)
        registry.host = f"127.0.0.1:{port}"
        deadline = time.monotonic() + ready_timeout
        while True:
            try:
                if http("GET", registry.url("/v2/"), timeout=2).status == 200:
                    return registry
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RealPartsError(f"docker-registry on {registry.host} never answered /v2/: {registry.log_tail()}")
            time.sleep(0.05)
    except (AssertionError, RealPartsError) as err:
        registry.stop()
        raise RealPartsError(f"docker-registry did not start: {err}") from None


@contextlib.contextmanager
def running_registry(workdir: Path) -> Iterator[Registry]:
    registry = start_registry(workdir)
    try:
        yield registry
    finally:
        registry.stop()


# --------------------------------------------------------------------------------------------------
# dpkg


def dpkg_query(rootfs: Path) -> set[tuple[str, str, str, str]]:
    """Installed packages of a root filesystem as dpkg itself reports them.

    Returns (name, version, source_name, source_version) for every package whose status is `ii`.
    `name` is the plain package name: `${binary:Package}` appends `:ARCH` to Multi-Arch: same packages
    (`libc6:amd64`); the qualifier is dropped because acrguard's `name` is the Debian package name
    (the architecture is a separate field and a purl qualifier). A single-architecture root filesystem
    has each name once; that is checked. `${source:Package}`/`${source:Version}` fall back to the
    binary package's own name/version when the stanza has no Source field (dpkg's semantics).
    """
    fmt = "${binary:Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${db:Status-Abbrev}\\n"
    proc = run(["dpkg-query", f"--admindir={rootfs / 'var/lib/dpkg'}", "-W", f"-f={fmt}"])
    found: set[tuple[str, str, str, str]] = set()
    names: set[str] = set()
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        binary, version, source, source_version, status = line.split("\t")
        if status.strip() != "ii":
            continue
        name = binary.split(":", 1)[0]
        if name in names:
            raise RealPartsError(f"{rootfs}: package {name} installed for several architectures")
        names.add(name)
        found.add((name, version, source, source_version))
    if not found:
        raise RealPartsError(f"{rootfs}: dpkg-query found no installed package")
    return found


def _remove_dpkg_package(rootfs: Path, package: str) -> list[str]:
    """Take an installed package out of a root filesystem as `dpkg --purge` would (without running its
    maintainer scripts): its files, its byte-compiled Python files, its database entries. Returns the
    image paths removed."""
    info = rootfs / "var/lib/dpkg/info"
    lists = sorted(info.glob(f"{package}.list")) + sorted(info.glob(f"{package}:*.list"))
    if not lists:
        raise RealPartsError(f"{rootfs}: {package} is not installed")
    owned = [p for p in lists[0].read_text().splitlines() if p and p != "/."]
    others: set[str] = set()
    for other in info.glob("*.list"):
        if other not in lists:
            others.update(other.read_text().splitlines())
    removed: list[str] = []
    for image_path in sorted(owned, reverse=True):  # children before their directories
        host_path = rootfs / image_path.lstrip("/")
        if host_path.is_symlink() or host_path.is_file():
            host_path.unlink()
            removed.append(image_path)
            if image_path.endswith(".py"):
                cache = host_path.parent / "__pycache__"
                for compiled in cache.glob(host_path.stem + ".*.pyc"):
                    compiled.unlink()
                    removed.append("/" + str(compiled.relative_to(rootfs)))
        elif host_path.is_dir() and image_path not in others and not any(host_path.iterdir()):
            host_path.rmdir()
            removed.append(image_path)
    for meta in sorted(info.glob(f"{package}.*")) + sorted(info.glob(f"{package}:*")):
        meta.unlink()
        removed.append("/" + str(meta.relative_to(rootfs)))
    status_path = rootfs / "var/lib/dpkg/status"
    stanzas = status_path.read_text().split("\n\n")
    kept = [s for s in stanzas if not re.match(rf"Package: {re.escape(package)}\n", s.lstrip("\n"))]
    if len(kept) != len(stanzas) - 1:
        raise RealPartsError(f"{status_path}: expected one stanza for {package}")
    status_path.write_text("\n\n".join(kept))
    return removed


# --------------------------------------------------------------------------------------------------
# OCI layouts


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _read_index(layout: Path) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((layout / "index.json").read_text())
    return index


def layout_descriptor(layout: Path, tag: str) -> dict[str, Any]:
    for descriptor in _read_index(layout)["manifests"]:
        annotations = descriptor.get("annotations") or {}
        if annotations.get("org.opencontainers.image.ref.name") == tag:
            found: dict[str, Any] = descriptor
            return found
    raise RealPartsError(f"{layout}: no tag {tag}")


def layout_document(layout: Path, digest: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(blob_path(layout, digest).read_bytes())
    return document


def _write_blob(layout: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    if not path.exists():
        path.write_bytes(data)
    return digest


def _tag_document(layout: Path, tag: str, media_type: str, data: bytes) -> str:
    digest = _write_blob(layout, data)
    index = _read_index(layout)
    index["manifests"] = [
        d for d in index["manifests"] if (d.get("annotations") or {}).get("org.opencontainers.image.ref.name") != tag
    ]
    index["manifests"].append(
        {
            "mediaType": media_type,
            "digest": digest,
            "size": len(data),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }
    )
    (layout / "index.json").write_text(json.dumps(index, separators=(",", ":")))
    return digest


def add_zstd_variant(layout: Path, source_tag: str, tag: str) -> str:
    """Tag a copy of an image whose layers are recompressed with zstd (`...tar+zstd`).

    skopeo 1.9 keeps already-compressed layers as they are (`--dest-compress-format zstd` only applies
    to uncompressed ones, and its blob-info cache substitutes the known gzip blob for a decompressed
    one), so the zstd layers are made here: `gzip -dc | zstd`. The config (and its diff_ids) is shared.
    """
    manifest = layout_document(layout, layout_descriptor(layout, source_tag)["digest"])
    for layer in manifest["layers"]:
        if not layer["mediaType"].endswith("gzip"):
            raise RealPartsError(f"{layout}:{source_tag}: layer {layer['digest']} is not gzip")
        tmp = layout / "blobs" / "zstd.tmp"
        with tmp.open("wb") as out:
            gunzip = subprocess.Popen(["gzip", "-dc", str(blob_path(layout, layer["digest"]))], stdout=subprocess.PIPE)
            assert gunzip.stdout is not None
            compress = subprocess.run(["zstd", "-q", "-c", "-3", "-T0"], stdin=gunzip.stdout, stdout=out)
            gunzip.stdout.close()
            if gunzip.wait() != 0 or compress.returncode != 0:
                raise RealPartsError(f"recompressing {layer['digest']} with zstd failed; {INSTALL_HINT}")
        sha = hashlib.sha256()
        with tmp.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                sha.update(chunk)
        layer["digest"] = "sha256:" + sha.hexdigest()
        layer["size"] = tmp.stat().st_size
        layer["mediaType"] = OCI_LAYER_ZSTD
        tmp.rename(blob_path(layout, layer["digest"]))
    data = json.dumps(manifest, separators=(",", ":")).encode()
    return _tag_document(layout, tag, OCI_MANIFEST, data)


def add_index(layout: Path, tag: str, members: Sequence[tuple[str, Mapping[str, str]]]) -> str:
    """Tag an OCI image index listing the images tagged `members[i][0]` with platforms `members[i][1]`."""
    manifests = []
    for member_tag, platform in members:
        descriptor = dict(layout_descriptor(layout, member_tag))
        descriptor.pop("annotations", None)
        descriptor["platform"] = dict(platform)
        manifests.append(descriptor)
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return _tag_document(layout, tag, OCI_INDEX, json.dumps(document, separators=(",", ":")).encode())


def _copy_tree_contents(source: Path, dest: Path) -> None:
    """cp -a SOURCE/. DEST/ (ownership, modes, times, hard links, special files)."""
    run(["cp", "-a", "--", f"{source}/.", f"{dest}/"])


def _empty_directory(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _write_dist_info(site: Path, name: str, version: str) -> Path:
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: acrguard integration probe\n"
    )
    (dist_info / "INSTALLER").write_text("pip\n")
    (dist_info / "RECORD").write_text(
        f"{dist_info.name}/METADATA,,\n{dist_info.name}/INSTALLER,,\n{dist_info.name}/RECORD,,\n"
    )
    return dist_info


class Umoci:
    """The umoci commands used here, with --rootless where we are not root."""

    def __init__(self, layout: Path) -> None:
        self.layout = layout

    def image(self, tag: str) -> str:
        return f"{self.layout}:{tag}"

    def init(self) -> None:
        run(["umoci", "init", "--layout", str(self.layout)])

    def new(self, tag: str) -> None:
        run(["umoci", "new", "--image", self.image(tag)])

    def config(self, tag: str, *args: str) -> None:
        run(["umoci", "config", "--image", self.image(tag), *args])

    def unpack(self, tag: str, bundle: Path) -> None:
        rootless = [] if is_root() else ["--rootless"]
        run(["umoci", "unpack", *rootless, "--image", self.image(tag), str(bundle)])

    def repack(self, tag: str, bundle: Path, created_by: str, *, refresh: bool = False) -> None:
        extra = ["--refresh-bundle"] if refresh else []
        run(["umoci", "repack", *extra, "--history.created_by", created_by, "--image", self.image(tag), str(bundle)])

    def remove(self, tag: str) -> None:
        run(["umoci", "rm", "--image", self.image(tag)])

    def gc(self) -> None:
        run(["umoci", "gc", "--layout", str(self.layout)])


# --------------------------------------------------------------------------------------------------
# Debian images


@dataclass(frozen=True)
class DebianSpec:
    """A Debian root filesystem made by mmdebstrap, and which images are made from it."""

    name: str  # cache entry name
    include: tuple[str, ...]
    suite: str = "bookworm"
    variant: str = "essential"
    slim: bool = True  # dpkg path filters of Debian's *-slim images
    test_variants: bool = False  # also build two-layer, zstd, arm64, multi and broken (see below)
    keep_rootfs: bool = True  # keep the root filesystem in the cache (for dpkg_query); not in the key

    def mmdebstrap_command(self, mirror: str, output: Path) -> list[str]:
        mode = "root" if is_root() else "unshare"
        command = [
            "mmdebstrap",
            f"--variant={self.variant}",
            f"--mode={mode}",
            "--format=tar",
            "--skip=output/dev",  # no device nodes: image layers do not carry them
            f"--hook-dir={MMDEBSTRAP_MERGED_USR_HOOK}",  # merged /usr without the usrmerge package (no perl)
        ]
        if self.include:
            command.append(f"--include={','.join(self.include)}")
        if self.slim:
            command += [f"--dpkgopt={option}" for option in SLIM_DPKG_OPTIONS]
        return [*command, self.suite, str(output), mirror]

    def key(self, mirror: str) -> str:
        spec = {k: v for k, v in asdict(self).items() if k != "keep_rootfs"}
        material = json.dumps({"spec": spec, "mirror": mirror, "recipe": RECIPE_VERSION}, sort_keys=True).encode()
        return hashlib.sha256(material).hexdigest()[:16]


# Small, fast (about 20 s cold): essential + python3-six (a dpkg-owned Python package; its source
# package `six` differs from its name). Multi-Arch: same libraries make dpkg print name:arch.
TEST_SPEC = DebianSpec(name="test-bookworm", include=("python3-six",), test_variants=True)


@dataclass(frozen=True)
class BuiltImages:
    """A cache entry: the root filesystem mmdebstrap made and an OCI layout holding images of it.

    Tags: `bookworm` (one gzip layer: the root filesystem; history ENV, layer, CMD). With test
    variants also: `bookworm-zstd` (same, zstd layer); `two-layer` (layer 0: the root filesystem
    without python3-six; layer 1: python3-six back plus the acrguard-probe dist-info); `arm64`
    (bookworm + a layer with the platform-marker dist-info, config architecture arm64); `multi`
    (an index: bookworm as linux/amd64, arm64 as linux/arm64/v8); `broken` (bookworm + a small layer
    of its own, whose blob the test harness deletes from the registry).
    """

    spec: DebianSpec
    path: Path
    info: dict[str, Any]
    built_now: bool
    seconds: float  # time spent in ensure_debian_images (build or cache lookup)

    @property
    def rootfs(self) -> Path:
        """The root filesystem (absent where the spec says keep_rootfs=False)."""
        return self.path / "rootfs"

    @property
    def layout(self) -> Path:
        return self.path / "oci"

    def oci(self, tag: str) -> str:
        return f"oci:{self.layout}:{tag}"

    @property
    def mmdebstrap_created_by(self) -> str:
        created_by: str = self.info["created_by"]
        return created_by


def ensure_debian_images(spec: DebianSpec, *, progress: bool = False) -> BuiltImages:
    """The cached images for `spec`, built first if this machine has none (under a lock)."""
    started = time.monotonic()
    require_tools(["mmdebstrap", "umoci", "skopeo", "dpkg-query", "gzip", "zstd", "cp", "tar"])
    if not MMDEBSTRAP_MERGED_USR_HOOK.is_dir():
        raise RealPartsError(f"{MMDEBSTRAP_MERGED_USR_HOOK} missing (mmdebstrap too old?); {INSTALL_HINT}")
    mirror = debian_mirror(spec.suite)
    key = spec.key(mirror)
    root = cache_root()
    final = root / f"{spec.name}-{key}"
    with file_lock(root / f".{spec.name}.lock"):
        if (final / "build.json").is_file():
            info = json.loads((final / "build.json").read_text())
            return BuiltImages(spec, final, info, False, time.monotonic() - started)
        for stale in root.iterdir():  # left by an interrupted build
            if re.fullmatch(rf"\.{re.escape(spec.name)}-\w{{8}}\.tmp", stale.name):
                shutil.rmtree(stale, ignore_errors=True)
        work = root / f".{spec.name}-{uuid.uuid4().hex[:8]}.tmp"
        work.mkdir()
        try:
            info = _build(spec, mirror, work, progress=progress)
            (work / "build.json").write_text(json.dumps(info, indent=2, sort_keys=True))
            if final.exists():
                shutil.rmtree(final)
            work.rename(final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        for old in root.iterdir():  # entries of this spec with another key
            if old != final and re.fullmatch(rf"{re.escape(spec.name)}-[0-9a-f]{{16}}", old.name):
                shutil.rmtree(old, ignore_errors=True)
    return BuiltImages(spec, final, info, True, time.monotonic() - started)


def _build(spec: DebianSpec, mirror: str, work: Path, *, progress: bool) -> dict[str, Any]:
    timings: dict[str, float] = {}

    def step(name: str, started: float) -> None:
        timings[name] = round(time.monotonic() - started, 2)
        if progress:
            print(f"  built {spec.name}: {name} in {timings[name]:.1f}s", flush=True)

    t = time.monotonic()
    tarball = work / "rootfs.tar"
    command = spec.mmdebstrap_command(mirror, tarball)
    run(command, timeout=3600)
    rootfs = work / "rootfs"
    rootfs.mkdir()
    run(["tar", "-C", str(rootfs), "-xpf", str(tarball), "--numeric-owner"])
    tarball.unlink()
    (rootfs / "dev").mkdir(mode=0o755, exist_ok=True)
    step("mmdebstrap", t)

    python = os.readlink(rootfs / "usr/bin/python3") if (rootfs / "usr/bin/python3").is_symlink() else ""
    created_by = f"mmdebstrap --variant={spec.variant} --include={','.join(spec.include)} {spec.suite}"
    info: dict[str, Any] = {
        "spec": asdict(spec),
        "mirror": mirror,
        "mmdebstrap": command,
        "created_by": created_by,
        "python": python,
        "recipe": RECIPE_VERSION,
        "timings": timings,
    }

    t = time.monotonic()
    layout = work / "oci"
    umoci = Umoci(layout)
    umoci.init()
    umoci.new("stage0")
    umoci.config("stage0", "--config.env", ENV_CREATED_BY.split(" ", 1)[1], "--history.created_by", ENV_CREATED_BY)
    bundle = work / "bundle"
    umoci.unpack("stage0", bundle)
    _copy_tree_contents(rootfs, bundle / "rootfs")
    umoci.repack("bookworm", bundle, created_by)
    umoci.config("bookworm", "--config.cmd", "bash", "--history.created_by", CMD_CREATED_BY)
    shutil.rmtree(bundle)
    step("bookworm image", t)

    if spec.test_variants:
        info.update(build_test_variants(umoci, rootfs, work, created_by, python, step))
    umoci.remove("stage0")
    umoci.gc()
    if spec.test_variants:
        t = time.monotonic()
        add_zstd_variant(layout, "bookworm", "bookworm-zstd")
        add_index(
            layout,
            "multi",
            [
                ("bookworm", {"architecture": "amd64", "os": "linux"}),
                ("arm64", {"architecture": "arm64", "os": "linux", "variant": "v8"}),
            ],
        )
        step("zstd variant and index", t)
    info["tags"] = [d["annotations"]["org.opencontainers.image.ref.name"] for d in _read_index(layout)["manifests"]]
    if not spec.keep_rootfs:
        shutil.rmtree(rootfs)
    return info


def build_test_variants(
    umoci: Umoci,
    rootfs: Path,
    work: Path,
    created_by: str,
    python: str,
    step: Callable[[str, float], None],
) -> dict[str, Any]:
    if not python:
        raise RealPartsError(f"{rootfs}: no /usr/bin/python3; the test image must include python3")
    site = f"usr/local/lib/{python}/dist-packages"

    # two-layer: layer 0 lacks python3-six, layer 1 adds it (and a pip-installed dist-info).
    t = time.monotonic()
    bundle = work / "bundle-two"
    umoci.unpack("stage0", bundle)
    _copy_tree_contents(rootfs, bundle / "rootfs")
    removed = _remove_dpkg_package(bundle / "rootfs", ADDED_IN_LAYER_1)
    umoci.repack("two-layer", bundle, f"{created_by} (without {ADDED_IN_LAYER_1})", refresh=True)
    _empty_directory(bundle / "rootfs")
    _copy_tree_contents(rootfs, bundle / "rootfs")
    _write_dist_info(bundle / "rootfs" / site, *PROBE)
    umoci.repack("two-layer", bundle, LAYER_1_CREATED_BY)
    umoci.config("two-layer", "--config.cmd", "bash", "--history.created_by", CMD_CREATED_BY)
    shutil.rmtree(bundle)
    step("two-layer image", t)

    # arm64: bookworm plus a marker layer, labelled arm64 (no emulation to build a real arm64 root);
    # broken: bookworm plus a layer no other image has (the harness deletes its blob). Both are
    # repacked from one bundle of bookworm: without --refresh-bundle each repack is a diff against
    # bookworm. (`umoci insert` is not used: umoci 0.4.7 writes its layer without the tar trailer.)
    t = time.monotonic()
    bundle = work / "bundle-bookworm"
    umoci.unpack("bookworm", bundle)
    marker = _write_dist_info(bundle / "rootfs" / site, *PLATFORM_MARKER)
    umoci.repack("arm64", bundle, MARKER_CREATED_BY)
    umoci.config("arm64", "--architecture", "arm64", "--no-history")
    shutil.rmtree(marker)
    token = bundle / "rootfs/opt/acrguard-broken/token"
    token.parent.mkdir(parents=True)
    token.write_text(f"{uuid.uuid4()}\n")
    umoci.repack("broken", bundle, BROKEN_CREATED_BY)
    shutil.rmtree(bundle)
    step("arm64 and broken images", t)
    return {"removed_from_layer_0": removed, "site_packages": "/" + site}


# --------------------------------------------------------------------------------------------------
# pushing


@dataclass(frozen=True)
class Pushed:
    """An image (or index) pushed to the registry, as the registry serves it."""

    reference: str  # HOST/REPO:TAG
    repo: str
    tag: str
    manifest: Manifest

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def by_digest(self) -> str:
        return self.reference.rsplit(":", 1)[0] + "@" + self.digest

    def layers(self) -> list[dict[str, Any]]:
        layers: list[dict[str, Any]] = self.manifest.doc["layers"]
        return layers


def push(registry: Registry, source: str, repo: str, tag: str, *extra: str) -> Pushed:
    """skopeo copy SOURCE docker://HOST/REPO:TAG, then check the registry serves what skopeo pushed."""
    reference = f"{registry.host}/{repo}:{tag}"
    # Exactly the layout's manifest unless a format conversion is asked for: skopeo's blob-info cache (machine-wide,
    # /var/lib/containers/cache for root) remembers which blobs hold the same uncompressed layer, and once it
    # has seen the zstd variant's layer decompressed, it would push the gzip blob already in the registry in its
    # place. `--preserve-digests` forbids such substitutions, so the pushed set never depends on what skopeo did
    # on this machine before.
    preserve = () if "--format" in extra else ("--preserve-digests",)
    with tempfile.TemporaryDirectory() as tmp:
        digest_file = Path(tmp) / "digest"
        run(
            [
                *("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--digestfile", str(digest_file)),
                *preserve,
                *extra,
                source,
                f"docker://{reference}",
            ],
            timeout=900,
        )
        pushed_digest = digest_file.read_text().strip()
    manifest = registry.manifest(repo, tag)
    if manifest.digest != pushed_digest:
        raise RealPartsError(f"{reference}: skopeo pushed {pushed_digest}, registry serves {manifest.digest}")
    return Pushed(reference, repo, tag, manifest)


def skopeo_inspect_digest(reference: str) -> str:
    """The digest `skopeo inspect` reports (for an index: the index's own digest)."""
    proc = run(["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"])
    digest: str = json.loads(proc.stdout)["Digest"]
    return digest


@dataclass
class ImageSet:
    """Everything the integration tests push to their registry."""

    registry: Registry
    built: BuiltImages
    bookworm: Pushed  # OCI manifest, one gzip layer
    bookworm_v2s2: Pushed  # the same image as a Docker schema 2 manifest
    zstd: Pushed  # the same image, layer as tar+zstd
    two_layer: Pushed
    multi: Pushed  # OCI index
    members: dict[str, Pushed] = field(default_factory=dict)  # "linux/amd64", "linux/arm64" -> member
    broken: Pushed | None = None
    missing_blob: str = ""  # the layer digest of `broken` the registry no longer has
    seconds: float = 0.0


def push_test_images(registry: Registry, built: BuiltImages) -> ImageSet:
    started = time.monotonic()
    bookworm = push(registry, built.oci("bookworm"), "debian", "bookworm")
    v2s2 = push(registry, built.oci("bookworm"), "debian", "bookworm-v2s2", "--format", "v2s2")
    zstd = push(registry, built.oci("bookworm-zstd"), "debian", "bookworm-zstd")
    two_layer = push(registry, built.oci("two-layer"), "debian", "two-layer")
    multi = push(registry, built.oci("multi"), "multi", "latest", "--multi-arch", "all")
    broken = push(registry, built.oci("broken"), "broken", "latest")

    _expect(v2s2.manifest.media_type == DOCKER_MANIFEST, f"{v2s2.reference}: {v2s2.manifest.media_type}")
    _expect(
        [layer["mediaType"] for layer in zstd.layers()] == [OCI_LAYER_ZSTD],
        f"{zstd.reference}: layers {zstd.layers()} are not {OCI_LAYER_ZSTD}",
    )
    _expect(len(two_layer.layers()) == 2, f"{two_layer.reference}: {len(two_layer.layers())} layers")
    _expect(multi.manifest.media_type == OCI_INDEX, f"{multi.reference}: {multi.manifest.media_type}")

    members: dict[str, Pushed] = {}
    for descriptor in multi.manifest.doc["manifests"]:
        platform = descriptor["platform"]
        name = f"{platform['os']}/{platform['architecture']}"
        manifest = registry.manifest("multi", descriptor["digest"])
        _expect(manifest.digest == descriptor["digest"], f"index member {descriptor['digest']}")
        members[name] = Pushed(f"{registry.host}/multi@{manifest.digest}", "multi", "", manifest)
    _expect(sorted(members) == ["linux/amd64", "linux/arm64"], f"index members {sorted(members)}")
    _expect(members["linux/amd64"].digest == bookworm.digest, "amd64 member is not the bookworm image")

    missing = broken.layers()[-1]["digest"]
    _expect(
        all(missing != layer["digest"] for p in (bookworm, zstd, two_layer, *members.values()) for layer in p.layers()),
        f"broken's top layer {missing} is shared with another image",
    )
    registry.delete_blob("broken", missing)
    _expect(registry.blob_status("broken", missing) == 404, f"{missing} still served after DELETE")
    _expect(registry.manifest("broken", "latest").digest == broken.digest, "broken manifest changed")

    return ImageSet(
        registry=registry,
        built=built,
        bookworm=bookworm,
        bookworm_v2s2=v2s2,
        zstd=zstd,
        two_layer=two_layer,
        multi=multi,
        members=members,
        broken=broken,
        missing_blob=missing,
        seconds=time.monotonic() - started,
    )


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RealPartsError(f"test image set is not as intended: {message}")
