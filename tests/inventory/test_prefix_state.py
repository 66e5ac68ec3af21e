"""Prefix states of small hand-made images: a replay resumed from one is the whole replay, and a state that is
not exactly what the replay wrote is refused, naming what is wrong."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from scanner.image.tree_state import StateError
from scanner.inventory import prefix_state
from scanner.inventory.build import ScanOptions, Segment, inventory, inventory_or_state
from scanner.inventory.detectors.plugins import default_registry
from scanner.model.codec import inventory_to_dict
from scanner.model.errors import ImageError
from scanner.model.limits import Limits
from tests import ocibuild

E = ocibuild.Entry
STATUS = b"Package: %s\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"


def _image(root: Path) -> str:
    layers = [
        [
            E("usr/lib/os-release", b'ID=debian\nVERSION_ID="12"\n'),
            E("etc/os-release", kind=b"2", linkname="../usr/lib/os-release"),
            E("var/lib/dpkg/status", STATUS % b"first"),
            E("usr/bin/tool", b"\x7fELF not really a program"),
        ],
        [
            E("var/lib/dpkg/.wh.status"),
            E("usr/local/lib/python3.11/site-packages/a-1.0.dist-info/METADATA", b"Name: a\nVersion: 1.0\n"),
        ],
        [E("var/lib/dpkg/status", STATUS % b"second"), E("usr/lib/os-release", b'ID=debian\nVERSION_ID="13"\n')],
    ]
    ocibuild.write_layout(root, [ocibuild.Image([ocibuild.Layer(ocibuild.layer_tar(x)) for x in layers])])
    return f"oci:{root}"


def _doc(ref: str, segment: Segment | None = None) -> str:
    found = inventory(ref)[0] if segment is None else inventory_or_state(ref, ScanOptions(), segment)
    assert not isinstance(found, bytes)
    return json.dumps(inventory_to_dict(found), sort_keys=True)


def _state(ref: str, stop: int) -> bytes:
    state = inventory_or_state(ref, ScanOptions(), Segment(0, None, stop, 1 << 30))
    assert isinstance(state, bytes)
    return state


def test_resuming_from_any_prefix_is_the_whole_replay(tmp_path: Path) -> None:
    ref = _image(tmp_path)
    whole = _doc(ref)
    assert '"second"' in whole and '"first"' not in whole
    for stop in (1, 2):
        assert _doc(ref, Segment(stop, _state(ref, stop))) == whole
    header = prefix_state.read_header(_state(ref, 2))
    assert len(header.layers) == len(header.diff_ids) == 2


def test_a_state_too_large_to_keep_is_not_returned(tmp_path: Path) -> None:
    ref = _image(tmp_path)
    assert _doc(ref, Segment(0, None, 1, 10)) == _doc(ref)  # over max_state_bytes: on to the inventory


def test_a_state_of_other_layers_is_refused(tmp_path: Path) -> None:
    ref = _image(tmp_path / "a")
    other = _image_other(tmp_path / "b")
    with pytest.raises(ImageError, match="not of this image's first 1 layers"):
        inventory_or_state(ref, ScanOptions(), Segment(1, _state(other, 1)))


def _image_other(root: Path) -> str:
    layers = [[E("etc/hostname", b"x")], [E("etc/hosts", b"y")]]
    ocibuild.write_layout(root, [ocibuild.Image([ocibuild.Layer(ocibuild.layer_tar(x)) for x in layers])])
    return f"oci:{root}"


def _rewrite_body(state: bytes, change: object) -> bytes:
    _header, at = prefix_state._split(state)
    (length,) = struct.unpack_from(">Q", state, at)
    body = json.loads(state[at + 8 : at + 8 + length])
    assert callable(change)
    change(body)
    new = json.dumps(body).encode()
    return state[:at] + struct.pack(">Q", len(new)) + new + state[at + 8 + length :]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: s[:20], "truncated|not a prefix state"),
        (lambda s: b"x" + s[1:], "not a prefix state"),
        (lambda s: s[: len(s) // 2], "truncated|past the end"),
        (lambda s: _rewrite_body(s, lambda b: b["runs"].update({"no-such-detector": []})), "unknown detector"),
        (lambda s: _rewrite_body(s, lambda b: b["contents"].append(["d", 10**9, 5])), "past the end"),
        (lambda s: _rewrite_body(s, lambda b: b.update(counters=[1, 2])), "counters"),
        (lambda s: _rewrite_body(s, lambda b: b.pop("os")), "not this format"),
        (lambda s: _rewrite_body(s, lambda b: b["tree"]["nodes"].append([999, "x", "d", 0, 0])), "parent"),
    ],
)
def test_a_damaged_state_is_refused(tmp_path: Path, damage: object, message: str) -> None:
    state = _state(_image(tmp_path), 2)
    assert callable(damage)
    with pytest.raises(StateError, match=message):
        prefix_state.decode(damage(state), default_registry(), 40)


def test_a_program_kept_as_its_size_alone_cannot_be_read(tmp_path: Path) -> None:
    state = _state(_image(tmp_path), 1)
    decoded = prefix_state.decode(state, default_registry(), 40)
    tool = decoded.body["tree"].files["/usr/bin/tool"].content
    with pytest.raises(prefix_state.PrefixContentMissing):
        tool.read()


def test_a_state_decoded_and_built_ahead_replays_as_its_bytes(tmp_path: Path) -> None:
    """What a warm sandboxed child does with the state it expects: decoded and its detector results made into
    objects before the job; the replay from it is the replay from the bytes."""
    ref = _image(tmp_path)
    whole = _doc(ref)
    for stop in (1, 2):
        state = _state(ref, stop)
        decoded = prefix_state.decode(state, default_registry(), Limits().max_symlink_depth)
        built = prefix_state.build(decoded)
        assert built is decoded and decoded.built is not None
        found = inventory_or_state(ref, ScanOptions(), Segment(stop, state, decoded=decoded))
        assert not isinstance(found, bytes)
        assert json.dumps(inventory_to_dict(found), sort_keys=True) == whole
        assert decoded.built is None  # the objects went to that replay's analysis
