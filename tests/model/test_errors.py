"""One line per error, whatever the exception held."""

from __future__ import annotations

from scanner.model.errors import AcrguardError, one_line


def test_one_line_folds_white_space_names_the_type_when_empty_and_is_bounded() -> None:
    assert one_line(ValueError("bad\n  value\tin x")) == "bad value in x"
    assert one_line(TimeoutError()) == "TimeoutError"
    assert one_line(RuntimeError("y" * 900)) == "y" * 500
    assert one_line(RuntimeError("y" * 900), 300) == "y" * 300
    assert str(AcrguardError("a\nb")) == one_line(AcrguardError("a\nb")) == "a b"
