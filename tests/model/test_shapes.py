"""The per-model field descriptions: complete, and what the codec, the report and the sandbox check derive."""

from __future__ import annotations

import dataclasses
import json

import pytest

from scanner.model.shapes import FINDING, IMAGE, INVENTORY, LAYER, OS, PACKAGE, WARNING, Shape, text
from scanner.model.types import Cvss, Finding, ImageInfo, Inventory, LayerInfo, OSInfo, Package, Warning_

LAYER_0 = LayerInfo(0, "sha256:aa", "sha256:bb", "application/x", 12, "ADD file")
OS_INFO = OSInfo("alpine", "3.19.1", "", "Alpine Linux", "Alpine Linux v3.19", ("busybox",), "/etc/os-release")
PKG = Package(
    "musl", "1.2.4-r2", "Alpine:v3.19", "pkg:apk/alpine/musl@1.2.4-r2", "musl", "1.2.4-r2", "x86_64",
    ("/lib/apk/db/installed",), "apk", "apk@1", LAYER_0, True, (("license", "MIT"),),
)  # fmt: skip
INV = Inventory(
    ImageInfo(
        "alpine:3.19", "sha256:cc", "sha256:dd", "linux/amd64", OS_INFO, (LAYER_0,), "application/y", "sha256:ee"
    ),
    "Scanned",
    "",
    (PKG,),
    (Warning_("/x", "unreadable"),),
)


def test_every_dataclass_field_is_described() -> None:
    for shape, model in [(OS, OSInfo), (LAYER, LayerInfo), (PACKAGE, Package), (IMAGE, ImageInfo)]:
        assert sorted(shape.keys) == sorted(f.name for f in dataclasses.fields(model))
    assert sorted(FINDING.keys) == sorted(f.name for f in dataclasses.fields(Finding))


def test_a_description_missing_a_field_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="Warning_: described"):
        Shape(Warning_, text("where"))


def test_dump_writes_every_field_in_the_described_order_and_load_inverts_it() -> None:
    doc = PACKAGE.dump(PKG)
    assert list(doc) == list(PACKAGE.keys)
    assert doc["locations"] == ["/lib/apk/db/installed"] and doc["metadata"] == [["license", "MIT"]]
    assert doc["layer"] == LAYER.dump(LAYER_0)
    assert INVENTORY.load(json.loads(json.dumps(INVENTORY.dump(INV)))) == INV
    finding = Finding("CVE-1", ("GHSA-1",), PKG, "1", "2", "fixed", "High", "x", None, "os", disabled=True)
    assert FINDING.load(json.loads(json.dumps(FINDING.dump(finding)))) == finding
    scored = dataclasses.replace(finding, cvss=Cvss("3.1", "v", 7.0))
    doc = FINDING.dump(scored)
    doc["cvss"]["score"] = 7
    assert FINDING.load(doc).cvss == Cvss("3.1", "v", 7.0)


def test_view_leaves_out_storage_only_fields_and_renders_on_request() -> None:
    assert LAYER.view(LAYER_0) == {"index": 0, "digest": "sha256:aa", "diff_id": "sha256:bb", "created_by": "ADD file"}
    assert OS.view(OS_INFO) == {"id": "alpine", "version": "3.19.1", "codename": ""}
    view = PACKAGE.view(PKG, locations=lambda locations: [p.upper() for p in locations])
    assert list(view) == [k for k in PACKAGE.keys if k not in ("kind", "metadata")]
    assert view["locations"] == ["/LIB/APK/DB/INSTALLED"] and view["layer"] == LAYER.view(LAYER_0)
    assert WARNING.view(Warning_("a", "b")) == {"where": "a", "message": "b"}


def test_loader_decodes_the_named_fields_with_the_given_functions() -> None:
    seen: list[object] = []

    def layer(data: object) -> LayerInfo:
        seen.append(data)
        return LAYER_0

    loaded = PACKAGE.loader(layer=layer)(PACKAGE.dump(PKG))
    assert loaded == PKG and loaded.layer is LAYER_0 and seen == [LAYER.dump(LAYER_0)]
    with pytest.raises(TypeError, match="no field nope"):
        PACKAGE.loader(nope=layer)


def test_an_os_stored_before_its_cpe_was_recorded_loads_with_none() -> None:
    rhel = OSInfo("rhel", "9.4", cpe="cpe:/o:redhat:enterprise_linux:9::baseos")
    assert OS.load(json.loads(json.dumps(OS.dump(rhel)))) == rhel
    stored = OS.dump(OS_INFO)
    del stored["cpe"]
    assert OS.load(stored) == OS_INFO
    missing_other = OS.dump(OS_INFO)
    del missing_other["id"]
    with pytest.raises(KeyError):
        OS.load(missing_other)


def test_a_finding_stored_before_its_risk_loads_unscored_and_a_scored_one_round_trips() -> None:
    finding = Finding("CVE-2024-0001", (), PKG, "1.2.4-r2", "1.2.4-r3", "fixed", "High", "nvd", None, "os", risk=25.0)
    assert FINDING.load(json.loads(json.dumps(FINDING.dump(finding)))) == finding
    stored = {k: v for k, v in FINDING.dump(finding).items() if k not in ("risk", "kev", "epss")}
    assert FINDING.load(stored) == dataclasses.replace(finding, risk=0.0)
