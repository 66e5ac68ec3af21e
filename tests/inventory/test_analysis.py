"""Analysis over replayed layers, with fake detectors (pure logic)."""

from __future__ import annotations

from typing import ClassVar

from scanner.image.tree import Content, File
from scanner.inventory.analysis import Analysis
from scanner.inventory.detectors.base import DetectContext, Detector, Extraction, FileSet, Group
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
