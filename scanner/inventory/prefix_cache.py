"""The layer-prefix cache: an image sharing its first layers with one scanned before replays only the layers above.

`scanner.inventory.chain_cache` answers for a whole chain of layers; this cache keeps, for a prefix of a chain,
the replay's state after it (`scanner.inventory.prefix_state`: the squashed tree with the files detectors read,
their results so far, the counters the limits check). A CI push that changes only the application layer then
fetches and parses that layer alone, over the restored state of the base below it.

Keys follow `chain_cache.chain_key`: the ordered blob digests of the prefix (verified while streaming, never
the config's diff_ids), the detector set, the scanner, the platform and the limits, plus this state format.
A state also records the diff_ids its replay computed; it serves an image only if that image's config declares
the same ones (or none), so a config lying about its layers gets the full replay, which rejects it.

Which prefixes are saved: the base image's boundary (the history says where it ends, `base_layers`) and the
boundary below the top layer. The first is shared by every image built on that base; the second is what a
push that rebuilds only its last layer (the usual CI build of an application) reuses. Each saved boundary
costs the scan that makes it one more sandboxed child and a state written out (a few MB for a Debian base,
programs' bytes left out), so not every boundary is saved; `every_layer` saves them all (tests).

States live on disk under one directory, bounded in bytes and entries, least recently used evicted first:
they are big (MBs), a pure function of their key, and losing one costs one replay, so a local directory
beats carrying them through the findings store. An entry whose checksum does not match is a miss (and is
removed), never a wrong result.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scanner.image.resolve import ResolvedImage
from scanner.image.tree_state import StateError
from scanner.inventory import prefix_state
from scanner.inventory.chain_cache import chain_key
from scanner.inventory.detectors.plugins import DetectorRegistry
from scanner.model.limits import Limits

log = logging.getLogger(__name__)

_VERIFIED = "acrguard.verified"
_ENTRY_MAGIC = b"acrguard-prefix-entry1\n"
_SUFFIX = ".state"
# Partial writes older than this are a crashed writer's: removed by the next eviction.
_STALE_PARTIAL_SECONDS = 3600


def prefix_key(
    layer_digests: Sequence[str],
    detector_versions: Sequence[str],
    scanner_version: str,
    platform: str,
    limits: Limits,
) -> str:
    """`chain_key` of the prefix, with the state format among the versions (a prefix state is not an inventory)."""
    versions = [*detector_versions, f"prefix-state@{prefix_state.FORMAT}"]
    return chain_key(layer_digests, versions, scanner_version, platform, limits)


class PrefixStore:
    """States on disk: `<key>.state` files, each a magic line, the sha256 of the state and the state.

    Safe for several processes sharing the directory: writes are atomic renames, a hit refreshes the file's
    modification time (the LRU order), eviction tolerates files another process removed."""

    def __init__(self, directory: Path, max_bytes: int, max_entries: int = 10_000) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_entries = max_entries

    @property
    def max_entry_bytes(self) -> int:
        """One state may take a quarter of the cache: one big image must not evict every base."""
        return self.max_bytes // 4

    def _path(self, key: str) -> Path:
        digest = key.split(":", 1)[-1]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a prefix key: {key[:80]!r}")
        return self.directory / f"{digest}{_SUFFIX}"

    def load(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:  # a cache that cannot be read is a miss, never a failed scan
            log.warning("layer-prefix cache: cannot read %s: %s", path, exc)
            return None
        start = len(_ENTRY_MAGIC) + 32
        data = raw[start:]
        if not raw.startswith(_ENTRY_MAGIC) or hashlib.sha256(data).digest() != raw[len(_ENTRY_MAGIC) : start]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # corrupt: a miss now, and no longer in the way
            return None
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)
        return data

    def save(self, key: str, data: bytes) -> bool:
        """Keep `data` under `key`; False when it is over `max_entry_bytes` or cannot be written (a cache
        that cannot be written costs replays, never a failed scan)."""
        if len(data) > self.max_entry_bytes:
            return False
        path = self._path(key)
        partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as out:
                out.write(_ENTRY_MAGIC + hashlib.sha256(data).digest())
                out.write(data)
            os.replace(partial, path)
            self.evict()
        except OSError as exc:
            log.warning("layer-prefix cache: cannot write %s: %s", path, exc)
            with contextlib.suppress(OSError):
                partial.unlink()
            return False
        return True

    def evict(self) -> None:
        """Remove least recently used entries until the cache holds at most max_bytes and max_entries."""
        entries: list[tuple[float, int, Path]] = []
        now = time.time()
        for path in self.directory.iterdir():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.name.startswith(".partial-"):
                if now - stat.st_mtime > _STALE_PARTIAL_SECONDS:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                continue
            if path.suffix == _SUFFIX:
                entries.append((stat.st_mtime, stat.st_size, path))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        while entries and (total > self.max_bytes or len(entries) > self.max_entries):
            _, size, path = entries.pop(0)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size


@dataclass
class Plan:
    """One image's use of the cache: `keys[k]` names the prefix of its first k layers (None: not cacheable);
    the replay starts at `start` over `state`, and stops to hand back the state at each of `stops`."""

    keys: list[str | None]
    start: int = 0
    state: bytes | None = None
    stops: list[int] = field(default_factory=list)


class LayerPrefixCache:
    """One scan's use of the prefix store, with the versions that make a state current. `reused` is how many
    layers the scan did not fetch or parse (read by tests and the benchmark)."""

    def __init__(
        self,
        store: PrefixStore,
        scanner_version: str,
        detector_versions: Sequence[str],
        *,
        every_layer: bool = False,
    ) -> None:
        self.store = store
        self.scanner_version = scanner_version
        self.detector_versions = tuple(sorted(detector_versions))
        self.every_layer = every_layer
        self.reused = 0
        self.saved: list[int] = []
        self.plan_keys: list[str | None] = []

    def plan(self, image: ResolvedImage, limits: Limits) -> Plan:
        """The longest cached prefix this image may start from, and the boundaries to save above it."""
        layers = image.layers
        cacheable = (
            len(layers) > 1
            and image.config.os.lower() != "windows"
            and all(dict(d.annotations).get(_VERIFIED) != "no" for d in layers)
        )
        if not cacheable:
            return Plan([None] * (len(layers) + 1))
        platform = str(image.config.platform) if image.config.os else ""
        digests = [d.digest for d in layers]
        keys: list[str | None] = [None]
        keys += [
            prefix_key(digests[:k], self.detector_versions, self.scanner_version, platform, limits)
            for k in range(1, len(layers))
        ]
        plan = Plan(keys)
        self.plan_keys = keys
        for k in range(len(layers) - 1, 0, -1):
            data = self._usable(keys[k], image, k)
            if data is not None:
                plan.start, plan.state = k, data
                break
        self.reused = plan.start
        plan.stops = [k for k in self._boundaries(image) if k > plan.start]
        return plan

    def _usable(self, key: str | None, image: ResolvedImage, k: int) -> bytes | None:
        if key is None:
            return None
        data = self.store.load(key)
        if data is None:
            return None
        try:
            header = prefix_state.read_header(data)
        except StateError:
            return None
        declared = image.config.diff_ids
        if header.layers != tuple(d.digest for d in image.layers[:k]):
            return None
        if declared and tuple(declared[:k]) != header.diff_ids:
            return None  # the config says other content than the state was made from: the full replay judges it
        return data

    def _boundaries(self, image: ResolvedImage) -> list[int]:
        n = len(image.layers)
        if self.every_layer:
            return list(range(1, n))
        base = image.config.base_layers
        return sorted({k for k in (base, n - 1) if 0 < k < n})

    def check(self, stop: int, data: bytes, image: ResolvedImage, registry: DetectorRegistry, limits: Limits) -> None:
        """StateError unless `data` is a well-formed state of exactly this image's first `stop` layers whose
        computed diff_ids are the ones its config declares (if it declares any)."""
        decoded = prefix_state.decode(data, registry, limits.max_symlink_depth)
        if decoded.header.layers != tuple(d.digest for d in image.layers[:stop]):
            raise StateError(f"not the state of the first {stop} layers")
        declared = image.config.diff_ids
        if declared and tuple(declared[:stop]) != decoded.header.diff_ids:
            raise StateError("its diff_ids are not the ones the config declares")

    def save(self, plan: Plan, stop: int, data: bytes) -> None:
        key = plan.keys[stop]
        if key is not None and self.store.save(key, data):
            self.saved.append(stop)
