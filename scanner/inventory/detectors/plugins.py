"""An explicit registry of detector plugins, in groups. A duplicate name is an error."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from scanner.inventory.detectors.base import Detector, Group
from scanner.model.errors import AcrguardError


class DetectorRegistry:
    def __init__(self, detectors: Iterable[Detector] = ()) -> None:
        self._detectors: dict[str, Detector] = {}
        for detector in detectors:
            self.register(detector)

    def register(self, detector: Detector) -> None:
        if detector.name in self._detectors:
            raise AcrguardError(f"detector registry: duplicate detector name '{detector.name}'")
        self._detectors[detector.name] = detector

    def __iter__(self) -> Iterator[Detector]:
        return iter(self._detectors.values())

    def __len__(self) -> int:
        return len(self._detectors)

    def group(self, group: Group) -> list[Detector]:
        return [d for d in self._detectors.values() if d.group == group]

    def get(self, name: str) -> Detector:
        return self._detectors[name]

    def wanting(self, path: str) -> list[Detector]:
        """The detectors that need the file at `path`."""
        return [d for d in self._detectors.values() if d.required(path)]


def default_registry() -> DetectorRegistry:
    """Every built-in detector. Imports are local so a plugin's import cost is paid only when used."""
    from scanner.inventory.detectors.apk import ApkDetector
    from scanner.inventory.detectors.dotnet import DotnetDetector
    from scanner.inventory.detectors.dpkg import DpkgDetector
    from scanner.inventory.detectors.golang import GoBinaryDetector
    from scanner.inventory.detectors.java import JavaDetector
    from scanner.inventory.detectors.node import NodeDetector
    from scanner.inventory.detectors.os_release import OSReleaseDetector
    from scanner.inventory.detectors.php import PhpDetector
    from scanner.inventory.detectors.python import PythonDetector
    from scanner.inventory.detectors.rpm import RpmDetector
    from scanner.inventory.detectors.ruby import RubyDetector
    from scanner.inventory.detectors.runtimes import RuntimeDetector
    from scanner.inventory.detectors.rust import RustDetector

    return DetectorRegistry(
        [
            OSReleaseDetector(),
            DpkgDetector(),
            ApkDetector(),
            RpmDetector(),
            PythonDetector(),
            NodeDetector(),
            JavaDetector(),
            GoBinaryDetector(),
            DotnetDetector(),
            RuntimeDetector(),
            RubyDetector(),
            PhpDetector(),
            RustDetector(),
        ]
    )
