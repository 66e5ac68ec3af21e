"""The squashed tree as plain data: what is written comes back node for node, and nothing else is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.image.tree import Content, Dir, File, Link, Tree, Unread, split
from scanner.image.tree_state import StateError, dump_tree, load_tree, tree_paths


def _tree() -> Tree:
    tree = Tree()
    tree.put(split("/usr/lib/os-release"), File(0, Content(3, data=b"a=b")), 0)
    tree.put(split("/etc/os-release"), Link(0, "../usr/lib/os-release"), 0)
    tree.put(split("/bin"), Link(0, "usr/bin"), 0)
    shared = Content(4, data=b"\x7fELF")
    tree.put(split("/usr/bin/prog"), File(1, shared), 1)
    tree.put(split("/usr/local/bin/prog-hard"), File(2, shared), 2)  # a hard link: one content, two paths
    tree.put(split("/opt/big"), File(2, Unread(10, b"head")), 2)
    tree.put(split("/empty-dir"), Dir(3), 3)
    tree.take_touched()
    return tree


def _round_trip(tree: Tree) -> tuple[Tree, list[Content]]:
    contents: list[Content] = []
    numbers: dict[int, int] = {}

    def number(content: Content) -> int:
        if id(content) not in numbers:
            numbers[id(content)] = len(contents)
            contents.append(content)
        return numbers[id(content)]

    doc = dump_tree(tree, number)
    return load_tree(doc, contents, tree.max_symlink_depth), contents


def test_a_tree_comes_back_node_for_node() -> None:
    tree = _tree()
    loaded, _ = _round_trip(tree)
    assert tree_paths(loaded) == tree_paths(tree)
    assert sorted(loaded.files) == sorted(tree.files) and sorted(loaded.links) == sorted(tree.links)
    for path, node in tree.files.items():
        assert loaded.files[path].layer == node.layer and loaded.files[path].content is node.content
    assert loaded.resolve("/bin/prog") == "/usr/bin/prog"
    assert loaded.read("/etc/os-release") is not None and loaded.take_touched() == set()
    # Hard links share their content again; each node keeps the layer that wrote it (whiteouts compare it).
    assert loaded.files["/usr/bin/prog"].content is loaded.files["/usr/local/bin/prog-hard"].content
    node = loaded.lookup("/empty-dir")
    assert isinstance(node, Dir) and node.layer == 3
    loaded.remove(split("/usr/bin/prog"), 4)
    assert "/usr/bin/prog" not in loaded.files


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([[1, "x", "d", 0, 0]], "parent"),
        ([[0, "..", "d", 0, 0]], "name"),
        ([[0, "a/b", "d", 0, 0]], "name"),
        ([[0, "x", "d", 0, 0], [0, "x", "d", 0, 0]], "twice"),
        ([[0, "x", "f", 0, 5]], "content number"),
        ([[0, "x", "l", 0, ""]], "target"),
        ([[0, "x", "q", 0, 0]], "kind"),
        ([[0, "x", "d", True, 0]], "layer"),
        ([[0, "x", "d", 0]], "parent, name"),
    ],
)
def test_anything_else_is_refused(nodes: list[Any], message: str) -> None:
    with pytest.raises(StateError, match=message):
        load_tree({"root": -1, "nodes": nodes}, [Content(1, data=b"x")], 40)


def test_a_document_of_another_shape_is_refused() -> None:
    with pytest.raises(StateError):
        load_tree({"nodes": []}, [], 40)
    with pytest.raises(StateError):
        load_tree({"root": -1, "nodes": {}}, [], 40)
