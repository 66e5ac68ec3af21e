"""With Microsoft Entra ID configured, the host lets token-only callers (Azure's SDKs) reach the handlers, which
check the token themselves; without it, the host requires a function key as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from function_app import app
levels = {}
for f in app.get_functions():
    for b in f.get_bindings():
        if b.type == "httpTrigger":
            levels[f.get_function_name()] = str(b.auth_level).rsplit(".", 1)[-1].upper()
print(json.dumps(levels))
"""


def _levels(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACRGUARD_ENTRA")} | extra
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_function_keys_without_entra_and_tokens_alone_with_it() -> None:
    plain = _levels({})
    assert plain["list_sub_assessments"] == "FUNCTION" and plain["health"] == "ANONYMOUS"
    entra = _levels(
        {
            "ACRGUARD_ENTRA_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "ACRGUARD_ENTRA_AUDIENCE": "api://acrguard",
        }
    )
    assert entra["list_sub_assessments"] == "ANONYMOUS"
    # A registry's notifications never carry Entra tokens: the host still requires their function key.
    assert entra["registry_notifications"] == "FUNCTION"
