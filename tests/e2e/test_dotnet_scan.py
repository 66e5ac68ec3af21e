""".NET end to end: an image in the official aspnet layout (the shared frameworks under /usr/share/dotnet/shared,
a published app's deps.json under /app) scanned with `acrguard scan` against real GHSA records: GHSA-5crp-9r3c-
p9vr (Newtonsoft.Json < 13.0.1) and GHSA-rh58-r7jh-xhx3 (CVE-2021-26423, the runtime packs
Microsoft.NETCore.App.Runtime.<rid> 5.0.0 to 5.0.9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanner.vulndb.osv_import import import_sources
from tests.e2e.conftest import FIXTURES
from tests.inventory.detectors.test_dotnet import shared_framework
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout

DOTNET = FIXTURES / "dotnet"
# trivy's happy-path manifest of a published app: ExampleApp1 with its one package, Newtonsoft.Json 13.0.1.
APP = (DOTNET / "deps" / "single.deps.json").read_bytes()
BULLSEYE = b'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\nVERSION_CODENAME=bullseye\n'


@pytest.fixture(scope="module")
def ghsa_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "ghsa.sqlite"
    import_sources(path, [str(DOTNET / "ghsa")])
    return path


def aspnet_image(root: Path, runtime: str, newtonsoft: str) -> str:
    """mcr.microsoft.com/dotnet/aspnet's layout: both shared frameworks at `runtime` in one layer, the app
    (its deps.json naming Newtonsoft.Json `newtonsoft`) in the next."""
    frameworks = shared_framework("/usr/share/dotnet", "Microsoft.NETCore.App", runtime, "linux-x64")
    frameworks |= shared_framework("/usr/share/dotnet", "Microsoft.AspNetCore.App", runtime, "linux-x64")
    base = layer_tar(
        [Entry("etc/os-release", BULLSEYE)] + [Entry(path.lstrip("/"), data) for path, data in frameworks.items()]
    )
    # The real manifest with the package's version set (its key, the target's key and its dependency's).
    app = layer_tar([Entry("app/ExampleApp1.deps.json", APP.replace(b"13.0.1", newtonsoft.encode()))])
    layers = [Layer(base, created_by="FROM aspnet"), Layer(app, created_by="COPY --from=build /app/publish /app")]
    write_layout(root, [Image(layers)])
    return f"oci:{root}"


def scan(acrguard: Any, ref: str, db: Path) -> Any:
    run = acrguard("scan", ref, "--db", str(db), "--format", "json")
    assert run.code in (0, 1), run.err
    return run.json()


def test_app_package_and_runtime_below_their_fixes_are_found(acrguard: Any, ghsa_db: Path, tmp_path: Path) -> None:
    doc = scan(acrguard, aspnet_image(tmp_path / "old", "5.0.8", "12.0.3"), ghsa_db)
    got = {
        (f["package"]["name"], f["id"], f["installed_version"], f["fixed_version"], f["fix_status"])
        for f in doc["findings"]
    }
    # The ASP.NET Core runtime pack is inventoried too, but GHSA-rh58-r7jh-xhx3 names only the .NET runtime's.
    assert got == {
        ("Newtonsoft.Json", "GHSA-5crp-9r3c-p9vr", "12.0.3", "13.0.1", "fixed"),
        ("Microsoft.NETCore.App.Runtime.linux-x64", "GHSA-rh58-r7jh-xhx3", "5.0.8", "5.0.9", "fixed"),
    }
    by_name = {f["package"]["name"]: f for f in doc["findings"]}
    runtime = by_name["Microsoft.NETCore.App.Runtime.linux-x64"]
    assert runtime["aliases"] == ["CVE-2021-26423"]
    assert runtime["package"]["layer"]["index"] == 0
    assert by_name["Newtonsoft.Json"]["package"]["layer"]["index"] == 1
    assert by_name["Newtonsoft.Json"]["package"]["purl"] == "pkg:nuget/Newtonsoft.Json@12.0.3"
    assert doc["status"] == "Unhealthy"


def test_fixed_app_package_and_runtime_are_not_found(acrguard: Any, ghsa_db: Path, tmp_path: Path) -> None:
    # 13.0.1 and 5.0.9 are the fixed versions themselves: not affected.
    ref = aspnet_image(tmp_path / "new", "5.0.9", "13.0.1")
    doc = scan(acrguard, ref, ghsa_db)
    assert doc["findings"] == [] and doc["status"] == "Healthy"
    assert [(c["ecosystem"], c["assessed"]) for c in doc["coverage"]] == [("NuGet", True)]
    # Not found, yet inventoried: the app's package and both runtimes, each with how it is known.
    run = acrguard("sbom", ref)
    assert run.code == 0, run.err
    assert sorted((p["name"], p["version"], p["evidence"]) for p in run.json()["packages"]) == [
        ("Microsoft.AspNetCore.App.Runtime.linux-x64", "5.0.9", "runtime"),
        ("Microsoft.NETCore.App.Runtime.linux-x64", "5.0.9", "runtime"),
        ("Newtonsoft.Json", "13.0.1", "installed"),
    ]
