"""Multi-layer images over real base layers, for the layer-prefix cache's exactness tests.

The base layers are real: the bookworm layer mmdebstrap and umoci made for the integration suite
(`tests.integration.realparts`) and an rpm database rpmbuild and rpm made (`tests.rpmimages`). The layers above
are written with `tests.ocibuild` and hold what a replay carries across layers: whiteouts and opaque markers
removing package databases and directories lower layers made, links made in one layer and followed in another
(a lower link that now resolves to an upper file, an upper file written through a lower directory link), and
hard links to lower files.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from scanner.model.codec import inventory_to_dict
from scanner.model.types import Inventory
from scanner.report.inventory_json import inventory_dict
from tests import ocibuild
from tests.integration import realparts
from tests.rpmimages import Rpm, rpm_image

SITE = "usr/local/lib/python3.11/site-packages"


def _dist_info(site: str, name: str, version: str) -> ocibuild.Entry:
    text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    return ocibuild.Entry(f"{site}/{name}-{version}.dist-info/METADATA", text.encode())


def _layout_layers(ref: str) -> list[ocibuild.Layer]:
    """The layers of the one image an `oci:PATH[:TAG]` reference names, as ocibuild layers (blobs kept as they are)."""
    path, _, tag = ref.removeprefix("oci:").partition(":")
    layout = Path(path)
    index = json.loads((layout / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if not tag or m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"].split(":")[1]).read_bytes())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"].split(":")[1]).read_bytes())
    layers = []
    for descriptor, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        blob = (layout / "blobs/sha256" / descriptor["digest"].split(":")[1]).read_bytes()
        layers.append(
            ocibuild.Layer(b"", blob=blob, media_type=descriptor["mediaType"], diff_id=diff_id, created_by="base")
        )
    return layers


def _bookworm_status(base: ocibuild.Layer) -> bytes:
    with tarfile.open(fileobj=gzip.GzipFile(fileobj=io.BytesIO(base.blob)), mode="r|") as tar:
        for member in tar:
            if member.name.lstrip("./") == "var/lib/dpkg/status":
                handle = tar.extractfile(member)
                assert handle is not None
                return handle.read()
    raise AssertionError("the bookworm layer has no dpkg status")


def debian_layers(built: realparts.BuiltImages) -> list[ocibuild.Layer]:
    """Four layers: the real bookworm layer, then links across layers, whiteouts and an opaque directory, and a
    smaller dpkg database where the whiteout removed the real one."""
    base = _layout_layers(built.oci("bookworm"))[0]
    stanzas = _bookworm_status(base).split(b"\n\n")
    E, T = ocibuild.Entry, tarfile
    one = [
        # /etc/os-release is the base's link to ../usr/lib/os-release: it now resolves to this layer's file.
        E("usr/lib/os-release", b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nPRETTY_NAME="changed"\n'),
        E("usr/local/app", kind=T.DIRTYPE, mode=0o755),
        E("opt/app", kind=T.SYMTYPE, linkname="/usr/local/app"),
        _dist_info("usr/local/app/lib/python3.11/site-packages", "kept", "1.0"),
        _dist_info(SITE, "probe-one", "1.0"),
    ]
    two = [
        E("var/lib/dpkg/.wh.status"),  # the package database is gone from here on
        E("usr/local/app/.wh..wh..opq"),  # and everything layer 1 put under /usr/local/app
        # Written through layer 1's directory link /opt/app -> /usr/local/app.
        _dist_info("opt/app/lib/python3.11/site-packages", "through-link", "2.0"),
        E(f"{SITE}/.wh.probe_one-1.0.dist-info"),  # whiteout of a name that never existed: nothing happens
        E(f"{SITE}/.wh.probe-one-1.0.dist-info"),
    ]
    three = [
        E("var/lib/dpkg/status", b"\n\n".join(stanzas[:5]) + b"\n"),
        E("usr/lib/os-release-copy", kind=T.LNKTYPE, linkname="usr/lib/os-release"),
        _dist_info(SITE, "probe-three", "3.0"),
    ]
    return [
        base,
        ocibuild.Layer(ocibuild.layer_tar(one), created_by="COPY links"),
        ocibuild.Layer(ocibuild.layer_tar(two), created_by="RUN rm"),
        ocibuild.Layer(ocibuild.layer_tar(three), created_by="COPY status"),
    ]


def program_link_layers(built: realparts.BuiltImages) -> list[ocibuild.Layer]:
    """The bookworm layer, then a layer linking (symbolic and hard) to programs of the base: the files a prefix
    state keeps as their size alone, asked for under new names."""
    base = _layout_layers(built.oci("bookworm"))[0]
    E, T = ocibuild.Entry, tarfile
    links = [
        E("usr/local/bin/getty2", kind=T.SYMTYPE, linkname="/usr/sbin/agetty"),
        E("usr/local/bin/tset2", kind=T.LNKTYPE, linkname="usr/bin/tset"),
    ]
    return [base, ocibuild.Layer(ocibuild.layer_tar(links), created_by="RUN ln")]


def rpm_layers() -> list[ocibuild.Layer]:
    """A real rpm database layer, a layer whiting it out, and one bringing another database back."""
    release = {"etc/os-release": 'ID="almalinux"\nVERSION_ID="9.4"\nPRETTY_NAME="AlmaLinux 9.4"\n'}
    first = _layout_layers(rpm_image(release, [Rpm("bash", "5.1.8", "9.el9"), Rpm("zlib", "1.2.11", "40.el9")]))
    second = _layout_layers(rpm_image(release, [Rpm("openssl-libs", "3.0.7", "27.el9", epoch=1)]))
    whiteout = ocibuild.Layer(ocibuild.layer_tar([ocibuild.Entry("var/lib/rpm/.wh.rpmdb.sqlite")]), created_by="rm")
    return [first[0], whiteout, second[0]]


def write(root: Path, layers: list[ocibuild.Layer]) -> str:
    """An `oci:` reference to a layout of one image with `layers`."""
    ocibuild.write_layout(root, [ocibuild.Image(layers)])
    return f"oci:{root}"


def suite_images(debian_images: realparts.BuiltImages, root: Path, tags: tuple[str, ...]) -> dict[str, str]:
    """The suite's images with `tags`, and the three multi-layer images above written under `root`, each as an
    `oci:` reference by name."""
    found = {tag: debian_images.oci(tag) for tag in tags}
    found["debian-whiteouts"] = write(root / "deb", debian_layers(debian_images))
    found["program-links"] = write(root / "prog", program_link_layers(debian_images))
    found["rpm-whiteouts"] = write(root / "rpm", rpm_layers())
    return found


def documents(inv: Inventory) -> list[Any]:
    """Both documents: the exact (codec) form the service stores and the inventory JSON users get."""
    return [inventory_to_dict(inv), inventory_dict(inv)]


def both_documents(inv: Inventory) -> str:
    """`documents` as one string, to compare byte for byte."""
    return "".join(json.dumps(document, sort_keys=True) for document in documents(inv))
