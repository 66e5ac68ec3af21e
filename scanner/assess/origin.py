"""Whether a finding's package came from the base image or the image's own layers (pure).

A package belongs to the layer that introduced it (`Package.layer`, set by the inventory); the base image is the
first `ImageInfo.base.layers` layers (scanner.image.base_image). A package changed by the image's own build (an
upgrade in a `RUN` step) is introduced again by that step's layer, so it is the image's own.
"""

from __future__ import annotations

from dataclasses import replace

from scanner.model.types import BaseImage, Finding, Origin, Package


def origin_of(package: Package, base: BaseImage | None) -> Origin:
    if base is None or not base.layers or package.layer is None:
        return ""
    return "base" if package.layer.index < base.layers else "own"


def with_origin(findings: list[Finding], base: BaseImage | None) -> list[Finding]:
    if base is None or not base.layers:
        return findings
    return [replace(f, origin=origin_of(f.package, base)) for f in findings]
