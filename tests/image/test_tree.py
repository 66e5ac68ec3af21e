"""The squashed tree: whiteouts, opaque directories, links clamped to the root, loops."""

from __future__ import annotations

import io
import mmap
from pathlib import Path

import pytest

from scanner.image.content import ContentStore
from scanner.image.tree import Content, Dir, File, Link, PathError, Tree
from scanner.model.limits import Limits


def put_file(tree: Tree, path: str, layer: int, data: bytes = b"x") -> None:
    tree.put(path.strip("/").split("/"), File(layer, Content(len(data), data=data)), layer)


def test_whiteout_removes_lower_file_only() -> None:
    tree = Tree()
    put_file(tree, "/etc/a", 0)
    put_file(tree, "/etc/b", 1)
    tree.remove(["etc", "a"], 1)
    tree.remove(["etc", "b"], 1)  # same-layer entry wins over its own layer's whiteout
    assert sorted(tree.files) == ["/etc/b"]


def test_opaque_keeps_same_layer_children_and_drops_lower_descendants() -> None:
    tree = Tree()
    put_file(tree, "/d/sub/old", 0)
    put_file(tree, "/d/top", 0)
    tree.put(["d", "sub"], Dir(1), 1)
    put_file(tree, "/d/sub/new", 1)
    tree.make_opaque(["d"], 1)
    assert sorted(tree.files) == ["/d/sub/new"]


def test_directory_whiteout_then_recreation() -> None:
    tree = Tree()
    put_file(tree, "/app/x", 0)
    tree.remove(["app"], 1)
    put_file(tree, "/app/y", 2)
    assert sorted(tree.files) == ["/app/y"]


def test_absolute_and_dotdot_links_stay_inside_root() -> None:
    tree = Tree()
    put_file(tree, "/usr/lib/os-release", 0, b"ID=debian\n")
    tree.put(["etc", "os-release"], Link(0, "../usr/lib/os-release"), 0)
    tree.put(["a", "escape"], Link(0, "../../../../../../usr/lib/os-release"), 0)
    tree.put(["b", "abs"], Link(0, "/../../usr/lib/os-release"), 0)
    for path in ("/etc/os-release", "/a/escape", "/b/abs"):
        content = tree.read(path)
        assert content is not None and content.read() == b"ID=debian\n"


def test_symlink_loop_does_not_resolve() -> None:
    tree = Tree(max_symlink_depth=40)
    tree.put(["x"], Link(0, "/y"), 0)
    tree.put(["y"], Link(0, "/x"), 0)
    assert tree.resolve("/x") is None
    with pytest.raises(PathError):
        tree.put(["x", "child"], Dir(0), 0)


def test_writes_go_through_directory_links_like_the_kernel() -> None:
    tree = Tree()
    tree.put(["lib"], Link(0, "usr/lib"), 0)
    put_file(tree, "/lib/apk/db/installed", 1)
    assert "/usr/lib/apk/db/installed" in tree.files


def test_claircore_concat_directory_over_directory_link() -> None:
    # Part 2 of concat.tar declares var/run/ as a directory where part 1 made var/run -> ../run.
    tree = Tree()
    tree.put(["run", "logs"], Dir(0), 0)
    put_file(tree, "/run/logs/log.txt", 0)
    tree.put(["var", "run"], Link(0, "../run"), 0)
    tree.put(["var", "run"], Dir(0), 0)
    put_file(tree, "/var/run/console/algo.txt", 0)
    assert sorted(tree.files) == ["/run/console/algo.txt", "/run/logs/log.txt"]


def test_file_replacing_directory_drops_its_subtree() -> None:
    tree = Tree()
    put_file(tree, "/opt/app/package.json", 0)
    tree.put(["opt", "app"], None, 1)
    assert tree.files == {}
    assert tree.take_touched() == {"/opt/app/package.json"}


def test_large_captured_content_spills_to_scratch(tmp_path: Path) -> None:
    store = ContentStore(Limits(spill_threshold=10), scratch_dir=str(tmp_path))
    content = store.capture(io.BytesIO(b"0123456789abcdef"), 16, "test")
    assert content.read() == b"0123456789abcdef"
    store.close()


def test_spilled_contents_share_one_unnamed_scratch_file_and_map_without_copying(tmp_path: Path) -> None:
    """Hundreds of programs spilled cost one file, which no name in the scratch directory points to; each
    content reads back exactly, and a view of it is a read-only map (not a copy) that behaves like the bytes."""
    store = ContentStore(Limits(spill_threshold=10), scratch_dir=str(tmp_path))
    payloads = [bytes([n]) * (5000 + n * 777) for n in range(1, 40)] + [b"", b"\x7fELF" + b"z" * 70_000]
    contents = [store.capture(io.BytesIO(p + b"trailing bytes of the next member"), len(p), f"f{i}", spill=True)
                for i, p in enumerate(payloads)]  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # one file, unlinked (O_TMPFILE) and never named after a member
    for payload, content in zip(payloads, contents, strict=True):
        assert content.size == len(payload)
        assert content.read() == payload
        view = content.view()
        assert len(view) == len(payload) and view[:] == payload
        if payload:
            assert isinstance(view, mmap.mmap)
            assert view[0] == payload[0] and view.find(payload[-1:]) == payload.find(payload[-1:])
    assert contents[-1].view()[:4] == b"\x7fELF"
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_a_spilled_view_falls_back_to_reading_where_the_kernel_refuses_the_map(tmp_path: Path) -> None:
    store = ContentStore(Limits(spill_threshold=10), scratch_dir=str(tmp_path))
    content = store.capture(io.BytesIO(b"a" * 5000), 5000, "f", spill=True)

    def refuse(*_args: object, **_kwargs: object) -> mmap.mmap:
        raise OSError(12, "Cannot allocate memory")

    real = mmap.mmap
    mmap.mmap = refuse  # type: ignore[misc,assignment]
    try:
        assert content.view() == b"a" * 5000
    finally:
        mmap.mmap = real  # type: ignore[misc]
    store.close()


def test_a_spilled_content_is_not_read_once_its_store_is_closed(tmp_path: Path) -> None:
    """Its scratch file is gone: reading raises rather than reading whatever file reused the descriptor."""
    store = ContentStore(Limits(spill_threshold=10), scratch_dir=str(tmp_path))
    content = store.capture(io.BytesIO(b"b" * 5000), 5000, "f", spill=True)
    store.close()
    with open(tmp_path / "other", "wb+") as other:  # likely to get the closed file's descriptor number
        other.write(b"not the content" * 400)
        other.flush()
        with pytest.raises(ValueError):
            content.read()
        with pytest.raises(ValueError):
            content.view()
