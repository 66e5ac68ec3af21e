"""Orchestration: a reference in, one inventory per platform out. The only place that picks adapters."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from scanner.image.base_image import annotated_base, base_image
from scanner.image.containers import open_container
from scanner.image.filerange import RangeLayer
from scanner.image.layers import display
from scanner.image.local import DockerArchiveSource, OCILayoutSource
from scanner.image.manifest import Descriptor, Platform
from scanner.image.reference import LocalReference, RegistryReference, parse_reference
from scanner.image.registry_options import RegistryOptions
from scanner.image.resolve import ImageSource, ResolvedImage
from scanner.image.streams import Budget, LayerStream, opened_ahead, sniff_compression
from scanner.image.tree_state import StateError
from scanner.inventory import prefix_state
from scanner.inventory.analysis import Analysis
from scanner.inventory.detectors.plugins import DetectorRegistry, default_registry
from scanner.inventory.rootfs import read_rootfs
from scanner.model.errors import ImageError
from scanner.model.limits import Limits
from scanner.model.types import ImageInfo, Inventory, LayerInfo, OSInfo, Package, Status, Warning_

DEFAULT_PLATFORM = Platform("linux", "amd64")
_MAX_REASON = 400

# progress(event, amount): "layers" total count, "bytes-total", "bytes" done; a no-op by default.
ProgressHook = Callable[[str, int], None]


@dataclass(frozen=True)
class ScanOptions:
    limits: Limits = field(default_factory=Limits)
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    platform: Platform | None = None  # None: linux/amd64 unless all_platforms
    all_platforms: bool = False
    scratch_dir: str | None = None
    # Only for an OCI layout whose writer verified every blob's digest: the sandboxed child's input.
    blobs_verified: bool = False


def open_source(reference: str, options: ScanOptions) -> ImageSource | LocalReference:
    """The adapter for a reference; `dir:` references are returned as is (no manifest to resolve)."""
    ref = parse_reference(reference)
    limits = options.limits
    if isinstance(ref, RegistryReference):
        from scanner.image.registry import RegistrySource  # the Azure SDK import costs ~80 ms: only when needed

        registry = RegistryOptions(**{**options.registry.__dict__, "max_blob_size": limits.max_blob_size})
        return RegistrySource(ref, registry)
    if ref.transport == "dir":
        return ref
    container = open_container(ref.path, limits, options.scratch_dir)
    if ref.transport == "docker-archive":
        return DockerArchiveSource(container, reference, ref.ref, limits.max_document_size, limits.max_blob_size)
    return OCILayoutSource(
        container, reference, ref.ref, limits.max_document_size, limits.max_blob_size, options.blobs_verified
    )


# The detectors, loaded when first asked for: a replay asks once its first layer is on its way.
Detectors = Callable[[], DetectorRegistry]


def _loader(registry: DetectorRegistry | None) -> Detectors:
    return functools.cache(default_registry) if registry is None else lambda: registry


def inventory(
    reference: str,
    options: ScanOptions | None = None,
    registry: DetectorRegistry | None = None,
    progress: ProgressHook | None = None,
) -> list[Inventory]:
    options = options or ScanOptions()
    detectors = _loader(registry)
    hook = progress or (lambda _event, _amount: None)
    source = open_source(reference, options)
    if isinstance(source, LocalReference):
        return [_inventory_rootfs(source, options, detectors())]
    try:
        wanted = None if options.all_platforms else (options.platform or DEFAULT_PLATFORM)
        images = source.images(wanted, options.limits.max_document_size, options.limits.max_platforms)
        for image in images:
            _check_platform(reference, options.platform, image)
        return [_inventory_image(source, image, options, detectors, hook) for image in images]
    finally:
        source.close()


def _check_platform(reference: str, asked: Platform | None, image: ResolvedImage) -> None:
    """A single-platform image (no index to pick from) that is not the platform asked for is refused: scanning
    it anyway would report another platform's packages as the one asked for."""
    actual = image.config.platform
    if asked is not None and image.config.os and not asked.matches(actual):
        raise ImageError(f"{reference}: the image is {actual}, not {asked} (--platform); it has no other platform")


def layer_infos(image: ResolvedImage) -> tuple[LayerInfo, ...]:
    diff_ids = image.config.diff_ids
    history = image.config.layer_history
    infos = []
    for i, descriptor in enumerate(image.layers):
        diff_id = diff_ids[i] if i < len(diff_ids) else ""
        verified = dict(descriptor.annotations).get("acrguard.verified", "yes") == "yes"
        infos.append(
            LayerInfo(
                index=i,
                digest=descriptor.digest if verified else diff_id,
                diff_id=diff_id,
                media_type=descriptor.media_type,
                size=descriptor.size,
                created_by=history[i] if i < len(history) and len(history) == len(image.layers) else "",
            )
        )
    return tuple(infos)


def image_info(image: ResolvedImage, os_info: OSInfo | None, layers: tuple[LayerInfo, ...]) -> ImageInfo:
    return ImageInfo(
        reference=image.reference,
        digest=image.digest,
        config_digest=image.config_digest,
        platform=str(image.config.platform) if image.config.os else "",
        os=os_info,
        layers=layers,
        media_type=image.media_type,
        index_digest=image.index_digest,
        base=base_image(
            image.config.base_layers,
            *annotated_base(image.annotations, image.config.base_labels),
            total_layers=len(layers),
        ),
    )


class _Blob(Protocol):
    def verify(self) -> None: ...


@dataclass(frozen=True)
class Segment:
    """Which layers one replay reads (the layer-prefix cache, `scanner.inventory.prefix_cache`): from `start`
    over `state` (the prefix state of layers 0..start-1, `scanner.inventory.prefix_state`), and either to the
    end (`stop` None: the inventory) or to `stop`, where the state is returned instead when it holds at most
    `max_state_bytes` (a larger one is not worth keeping: the replay goes on to the inventory)."""

    start: int = 0
    state: bytes | None = None
    stop: int | None = None
    max_state_bytes: int = 0
    # `state` already decoded and checked (a warm sandboxed child decodes the state it expects while it waits).
    decoded: prefix_state.Decoded | None = None


def inventory_or_state(
    reference: str, options: ScanOptions, segment: Segment, registry: DetectorRegistry | None = None
) -> Inventory | bytes:
    """One image's replay of `segment`: its inventory, or the prefix state at `segment.stop`."""
    detectors = _loader(registry)
    source = open_source(reference, options)
    if isinstance(source, LocalReference):
        raise ImageError(f"{reference}: a directory has no layers to replay in segments")
    try:
        wanted = options.platform or DEFAULT_PLATFORM
        image = source.images(wanted, options.limits.max_document_size, options.limits.max_platforms)[0]
        _check_platform(reference, options.platform, image)
        return _replay(source, image, options, detectors, lambda _event, _amount: None, segment)
    finally:
        source.close()


def _inventory_image(
    source: ImageSource, image: ResolvedImage, options: ScanOptions, detectors: Detectors, hook: ProgressHook
) -> Inventory:
    found = _replay(source, image, options, detectors, hook, Segment())
    assert isinstance(found, Inventory)  # no stop: the replay goes to the end
    return found


def _replay(
    source: ImageSource,
    image: ResolvedImage,
    options: ScanOptions,
    detectors: Detectors,
    hook: ProgressHook,
    segment: Segment,
) -> Inventory | bytes:
    limits = options.limits
    layers = layer_infos(image)
    if image.config.os.lower() == "windows":
        reason = f"Windows images are not supported (config os: {image.config.os}, {image.config.architecture})"
        return Inventory(image_info(image, None, layers), "Unsupported", reason, ())
    if len(layers) > limits.max_layers:
        raise ImageError(f"{image.reference}: {len(layers)} layers, over the limit of {limits.max_layers}")
    diff_ids = image.config.diff_ids
    if diff_ids and len(diff_ids) != len(layers):
        raise ImageError(f"{image.reference}: config lists {len(diff_ids)} diff_ids for {len(layers)} layers")
    hook("layers", len(layers))
    hook("bytes-total", sum(layer.size for layer in layers[segment.start :]))
    budget = Budget(limits.max_total_bytes, limits.max_members)
    replayed = layers[segment.start :]
    openers = [
        _opener(source, image.reference, pair, budget, hook)
        for pair in zip(replayed, image.layers[segment.start :], strict=True)
    ]
    # From a registry, the next layer is requested and starts decompressing while this one is parsed; a
    # local archive's blobs share one file handle, so they are opened in turn.
    local = isinstance(source, OCILayoutSource | DockerArchiveSource)
    opened = opened_ahead(openers, lambda o: o[1].close(), ahead=not local)
    first: list[tuple[_Blob, LayerStream | RangeLayer]] = []
    analysis: Analysis | None = None
    try:
        # The first layer is opened (fetched, inflated or hashed on its own threads) while the detectors load.
        first = [next(opened)] if openers else []
        analysis = Analysis(detectors(), limits, options.scratch_dir, budget)
        computed = _resume(analysis, image, segment)
        for info, (raw, stream) in zip(replayed, itertools.chain(first, opened), strict=True):
            label = info.digest or f"#{info.index}"
            try:
                analysis.reader.read(stream, info.index, label)
                # The detectors run while the layer's digests are still being computed on their own thread; if
                # the digests do not match, what they found is discarded with the error.
                analysis.after_layer(info.index)
            finally:
                stream.close()
            raw.verify()
            actual = "sha256:" + stream.diff_hash.hexdigest()
            if info.diff_id and info.diff_id.startswith("sha256:") and actual != info.diff_id:
                raise ImageError(f"layer {label}: uncompressed content {actual} does not match diff_id {info.diff_id}")
            computed.append(actual)
            if segment.stop == info.index + 1 < len(layers):
                state = prefix_state.dump(analysis, [d.digest for d in image.layers[: len(computed)]], computed)
                if len(state) <= segment.max_state_bytes:
                    return state
        os_info, packages, warnings = analysis.finish(layers)
    finally:
        for _, stream in first:
            stream.close()  # not replayed if the detectors failed to load (safe to close twice)
        opened.close()
        if analysis is not None:
            analysis.close()
    status, reason = _status(os_info, packages, analysis.incomplete)
    return Inventory(
        image_info(image, os_info, layers), status, reason, tuple(packages), _with(warnings, analysis.incomplete)
    )


def _opener(
    source: ImageSource,
    reference: str,
    layer: tuple[LayerInfo, Descriptor],
    budget: Budget,
    hook: ProgressHook,
) -> Callable[[], tuple[_Blob, LayerStream | RangeLayer]]:
    """Opens one layer: read where it lies when it is a plain tar in a local file, else streamed (fetched,
    verified and decompressed on background threads)."""
    info, descriptor = layer

    def open_layer() -> tuple[_Blob, LayerStream | RangeLayer]:
        what = f"{reference}: layer {info.digest or f'#{info.index}'}"
        located = source.blob_range(descriptor)
        if located is not None:
            data, digest = located
            try:
                if sniff_compression(data.pread(8, 0)) == "none":
                    layer = RangeLayer(data, digest, descriptor.size, budget, what, lambda n: hook("bytes", n))
                    return layer, layer
            except BaseException:
                data.release()  # refused (its size, the byte budget): nothing will read it
                raise
            data.release()  # compressed: streamed below
        raw = source.open_blob(descriptor, what)
        raw.on_chunk = lambda n: hook("bytes", n)
        stream = LayerStream(raw, budget, f"layer {info.digest or f'#{info.index}'}")
        stream.start_background()
        return raw, stream

    return open_layer


def _resume(analysis: Analysis, image: ResolvedImage, segment: Segment) -> list[str]:
    """Restore the prefix state `segment` starts from; the diff_ids computed so far."""
    if segment.start == 0:
        return []
    if segment.state is None or segment.start >= len(image.layers):
        raise ImageError(f"{image.reference}: cannot start at layer {segment.start} without its prefix state")
    decoded = segment.decoded
    if decoded is None:
        try:
            decoded = prefix_state.decode(segment.state, analysis.registry, analysis.limits.max_symlink_depth)
        except StateError as exc:
            raise ImageError(f"{image.reference}: prefix state: {exc}") from None
    expected = tuple(d.digest for d in image.layers[: segment.start])
    if decoded.header.layers != expected:
        raise ImageError(f"{image.reference}: the prefix state is not of this image's first {segment.start} layers")
    prefix_state.restore(analysis, decoded)
    return list(decoded.header.diff_ids)


def _inventory_rootfs(ref: LocalReference, options: ScanOptions, registry: DetectorRegistry) -> Inventory:
    analysis = Analysis(registry, options.limits, options.scratch_dir)
    layers = (LayerInfo(index=0, digest="", media_type="dir"),)
    try:
        read_rootfs(ref.path, analysis)
        analysis.after_layer(0)
        os_info, packages, warnings = analysis.finish(layers)
    finally:
        analysis.close()
    status, reason = _status(os_info, packages, analysis.incomplete)
    info = ImageInfo(reference=str(ref), digest="", config_digest="", platform="", os=os_info, layers=layers)
    return Inventory(info, status, reason, tuple(packages), _with(warnings, analysis.incomplete))


def _status(os_info: OSInfo | None, packages: list[Package], incomplete: list[Warning_]) -> tuple[Status, str]:
    """Incomplete before anything else: an image whose database could not be read must not pass for one
    with nothing to read (Unsupported)."""
    if incomplete:
        # One bounded, printable line: paths come from the image and may hold anything.
        first = display(" ".join(str(incomplete[0]).split()))[:_MAX_REASON]
        more = f" (and {len(incomplete) - 1} more: see warnings)" if len(incomplete) > 1 else ""
        return "Incomplete", f"inventory incomplete: {first}{more}"
    if os_info is None and not packages:
        return "Unsupported", "no recognisable operating system and no packages found"
    return "Scanned", ""


def _with(warnings: list[Warning_], incomplete: list[Warning_]) -> tuple[Warning_, ...]:
    """The warnings, with what made the inventory incomplete among them (each said once)."""
    return tuple(dict.fromkeys([*warnings, *incomplete]))


__all__ = ["ScanOptions", "inventory", "open_source"]
