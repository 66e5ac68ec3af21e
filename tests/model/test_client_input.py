"""The edge's JSON and text checks (`scanner.model.client_input`): bounded depth and size, strict UTF-8, no lone
surrogate, no NUL, each refusal one line naming the problem, and no recursion at any depth."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.model.client_input import (
    MAX_DEPTH,
    ClientInputError,
    check_json,
    decode_json,
    text_problem,
)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_the_bound_is_exact_and_any_depth_past_it_is_a_400() -> None:
    assert decode_json(nested(MAX_DEPTH), "body") is not None
    for depth in (MAX_DEPTH + 1, 1_024, 1_025, 200_000):
        with pytest.raises(ClientInputError, match=f"^body: JSON nested deeper than {MAX_DEPTH} levels$") as err:
            decode_json(nested(depth), "body")
        assert err.value.status == 400 and err.value.code == "BadRequest"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": "x\\u0000"}', "rule: the string at $.a contains NUL (\\u0000)"),
        (b'{"a": [{"k\\u0000": 1}]}', "rule: a key in $.a[0] contains NUL (\\u0000)"),
        (b'["\\ud800"]', "rule: a string escapes a lone surrogate (\\ud800-\\udfff unpaired)"),
        (b'["\\udfff\\ud800"]', "rule: a string escapes a lone surrogate (\\ud800-\\udfff unpaired)"),
        (b'["\xed\xa0\x80"]', "rule: body is not valid UTF-8 (byte 2)"),
        (b'{"a": "\xff"}', "rule: body is not valid UTF-8 (byte 7)"),
        (b"", "rule: body is not JSON: "),
        (b"{", "rule: body is not JSON: "),
        (b"[NaN]", "rule: body is not JSON: "),
        (b'"a\x00"', "rule: body is not JSON: "),  # a raw control character in a string
    ],
)
def test_each_refusal_names_its_problem(body: bytes, message: str) -> None:
    with pytest.raises(ClientInputError) as err:
        decode_json(body, "rule")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert err.value.status == 400


def test_a_body_over_the_size_bound_is_a_413_before_it_is_parsed() -> None:
    with pytest.raises(ClientInputError, match="over the limit of 10 bytes") as err:
        decode_json(b'"' + b"a" * 20 + b'"', "scan request", max_bytes=10)
    assert (err.value.status, err.value.code) == (413, "PayloadTooLarge")


def test_good_json_comes_back_as_the_standard_library_reads_it() -> None:
    body = b'{"a": [1, 2.5, "\\ud83d\\ude00", null, true], "b": {"c": "\\u00e9"}}'
    assert decode_json(body, "x") == {"a": [1, 2.5, "\U0001f600", None, True], "b": {"c": "é"}}


@pytest.mark.parametrize(
    "value",
    [
        {"data": {"target": {"repository": "a\x00b"}}},  # decoded by someone else (the Functions worker)
        ["ok", {"k": ["\udc00"]}],
        {"\x00": 1},
    ],
)
def test_values_decoded_elsewhere_are_checked_too(value: Any) -> None:
    with pytest.raises(ClientInputError):
        check_json(value, "event")


def test_checking_a_value_deeper_than_pythons_recursion_limit_does_not_recurse() -> None:
    value: Any = "leaf"
    for _ in range(100_000):
        value = [value]
    with pytest.raises(ClientInputError, match="nested deeper"):
        check_json(value, "event")
    check_json(value, "event", max_depth=100_001)  # the whole walk, iteratively


def test_text_problem() -> None:
    assert text_problem("sha256:abc") is None and text_problem("é😀") is None
    assert text_problem("a\x00") == "contains NUL (\\u0000)"
    assert text_problem("\ud800") == "contains a lone surrogate (not Unicode text)"
