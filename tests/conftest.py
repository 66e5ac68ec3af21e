"""What tests in every folder share: the `acrguard` command run in process, with its exit code and output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scanner.cli.main import main


class Run:
    """One `acrguard` run: exit code, stdout and stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def acrguard(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
