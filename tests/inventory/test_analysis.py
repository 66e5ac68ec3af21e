"""Analysis over replayed layers, with fake detectors (pure logic)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from scanner.image.tree import Content, File
from scanner.inventory.analysis import Analysis
from scanner.inventory.detectors.base import (
    BoundExceeded,
    DetectContext,
    Detector,
    DetectorError,
    Extraction,
    FileSet,
    Group,
)
from scanner.inventory.detectors.plugins import DetectorRegistry
from scanner.model.limits import Limits
from scanner.model.types import LayerInfo, OSInfo, RawPackage


class FakeOS(Detector):
    name, version, group = "fake-os", 1, "os"

    def required(self, path: str) -> bool:
        return path == "/etc/os-release"

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        return Extraction(os=OSInfo(id=files.read("/etc/os-release").decode().strip()))


class FakeLang(Detector):
    name, version = "fake-lang", 1
    group: ClassVar[Group] = "language"
    per_file = True
    calls: ClassVar[list[str]] = []

    def required(self, path: str) -> bool:
        return path.endswith(".meta")

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        out = Extraction()
        for path in files.paths():
            FakeLang.calls.append(path)
            name, version = files.read(path).decode().split()
            out.packages.append(RawPackage(name, version, "Fake", f"pkg:generic/{name}@{version}", locations=(path,)))
        return out


class FakeOSPackages(Detector):
    name, version = "fake-db", 1
    group: ClassVar[Group] = "os-packages"

    def required(self, path: str) -> bool:
        return path == "/var/db"

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        eco = ctx.os.id if ctx.os else "none"
        lines = files.read("/var/db").decode().split()
        return Extraction(
            packages=[
                RawPackage(
                    n, "1", eco, f"pkg:generic/{n}@1", locations=("/var/db",), owned_files=frozenset({"/a.meta"})
                )
                for n in lines
            ]
        )


def put(analysis: Analysis, path: str, data: bytes, layer: int) -> None:
    analysis.tree.put(path.strip("/").split("/"), File(layer, Content(len(data), data=data)), layer)


def test_layer_attribution_ownership_and_per_file_reuse() -> None:
    FakeLang.calls.clear()
    analysis = Analysis(DetectorRegistry([FakeOS(), FakeLang(), FakeOSPackages()]), Limits())
    put(analysis, "/var/db", b"base", 0)
    put(analysis, "/a.meta", b"a 1", 0)
    analysis.after_layer(0)
    put(analysis, "/var/db", b"base extra", 1)
    put(analysis, "/b.meta", b"b 2", 1)
    analysis.after_layer(1)
    put(analysis, "/etc/os-release", b"distro", 2)
    analysis.after_layer(2)
    layers = tuple(LayerInfo(i, f"sha256:{i}") for i in range(3))
    os_info, packages, _ = analysis.finish(layers)
    by_name = {p.name: p for p in packages}
    assert os_info is not None and os_info.id == "distro"
    assert by_name["base"].layer == layers[0] and by_name["extra"].layer == layers[1]
    assert by_name["base"].ecosystem == "distro"  # re-run with the OS known at the end
    assert by_name["a"].os_owned and not by_name["b"].os_owned
    assert FakeLang.calls == ["/a.meta", "/b.meta"]  # /a.meta was parsed once, not again in layer 1


def test_removed_package_is_not_reported_and_reinstalled_one_gets_the_new_layer() -> None:
    analysis = Analysis(DetectorRegistry([FakeOSPackages()]), Limits())
    put(analysis, "/var/db", b"x y", 0)
    analysis.after_layer(0)
    put(analysis, "/var/db", b"y", 1)
    analysis.after_layer(1)
    put(analysis, "/var/db", b"x y", 2)
    analysis.after_layer(2)
    layers = tuple(LayerInfo(i, f"sha256:{i}") for i in range(3))
    _, packages, _ = analysis.finish(layers)
    assert {p.name: p.layer.index for p in packages if p.layer} == {"x": 2, "y": 0}


class Raising(Detector):
    """An os-packages detector reading /var/db like FakeOSPackages, raising `error` when the file says
    `raise`."""

    name, version = "raising", 1
    group: ClassVar[Group] = "os-packages"
    error: ClassVar[BaseException] = MemoryError()

    def required(self, path: str) -> bool:
        return path == "/var/db"

    def extract(self, files: FileSet, ctx: DetectContext) -> Extraction:
        names = files.read("/var/db").decode().split()
        if "raise" in names:
            raise Raising.error
        return Extraction(
            packages=[RawPackage(n, "1", "x", f"pkg:generic/{n}@1", locations=("/var/db",)) for n in names]
        )


def run_layers(detectors: list[Detector], contents: list[bytes], limits: Limits | None = None) -> Analysis:
    analysis = Analysis(DetectorRegistry(detectors), limits or Limits())
    for index, data in enumerate(contents):
        put(analysis, "/var/db", data, index)
        analysis.after_layer(index)
    return analysis


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (MemoryError(), "raising@1 ran out of memory"),
        (DetectorError("/var/db", "over a bound"), "over a bound"),
        (BoundExceeded("/var/db", "more than 3 things"), "more than 3 things"),
        (ValueError("bad number"), "raising@1 could not parse it: ValueError: bad number"),
        (RecursionError("too deep"), "raising@1 could not parse it: RecursionError: too deep"),
    ],
)
def test_a_failing_detector_is_incomplete_never_a_warning_and_keeps_the_layers_below(
    monkeypatch: pytest.MonkeyPatch, error: BaseException, message: str
) -> None:
    monkeypatch.setattr(Raising, "error", error)
    analysis = run_layers([Raising()], [b"a b", b"a raise"])
    layers = tuple(LayerInfo(i, f"sha256:{i}") for i in range(2))
    _, packages, warnings = analysis.finish(layers)
    # The layer that made the database unreadable does not hide what the layer below showed.
    assert {(p.name, p.layer.index if p.layer else None) for p in packages} == {("a", 0), ("b", 0)}
    assert [w.message for w in analysis.incomplete] == [message]
    assert message not in [w.message for w in warnings]  # never a warning


def test_a_detector_bug_is_not_swallowed() -> None:
    Raising.error = TypeError("a bug")
    try:
        with pytest.raises(TypeError, match="a bug"):
            run_layers([Raising()], [b"raise"])
    finally:
        Raising.error = MemoryError()


def test_a_later_layer_that_reads_again_is_complete() -> None:
    analysis = run_layers([Raising()], [b"raise", b"a"])
    _, packages, _ = analysis.finish(tuple(LayerInfo(i, f"sha256:{i}") for i in range(2)))
    assert [p.name for p in packages] == ["a"] and analysis.incomplete == []


def test_packages_are_bounded_per_image_across_detectors() -> None:
    FakeLang.calls.clear()
    analysis = Analysis(DetectorRegistry([FakeOSPackages(), FakeLang()]), Limits(max_packages=3))
    put(analysis, "/var/db", b"x y", 0)
    for name in "abcd":
        put(analysis, f"/{name}.meta", f"{name} 1".encode(), 0)
    analysis.after_layer(0)
    _, packages, _ = analysis.finish((LayerInfo(0, "sha256:0"),))
    assert len(packages) == 3
    assert [w.message for w in analysis.incomplete] == ["more than 3 packages (limit max_packages)"]
    # The per-file detector stopped parsing once the image was full.
    assert FakeLang.calls == ["/a.meta"]
