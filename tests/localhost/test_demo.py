"""README command 1 (`bash scripts/demo.sh`): the local stack brought up for real — bubblewrap, Debian's
docker-registry notifying `acrguard serve`, skopeo pushing the sample — with the findings printed and the
printed curl commands run as a user would. Each run gets its own ports, demo directory and HOME, so the
vulnerability database is built from the bundled snapshot as on a fresh machine.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .stack import realparts

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.sh"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ACRGUARD_")}
    return {
        **environment,
        "HOME": str(home),
        "ACRGUARD_DEMO_DIR": str(tmp_path / "demo"),
        "ACRGUARD_DEMO_PORT": str(realparts.free_port()),
        "ACRGUARD_DEMO_REGISTRY_PORT": str(realparts.free_port()),
    }


def _curl_commands(output: str) -> dict[str, list[str]]:
    """The printed curl commands by what they query."""
    commands = [shlex.split(line.strip()) for line in output.splitlines() if line.strip().startswith("curl ")]
    by_kind: dict[str, list[str]] = {}
    for command in commands:
        url = command[-1]
        kind = (
            "sub-assessments"
            if "/subAssessments" in url
            else "cve"
            if "/vulnerabilities/" in url
            else "image"
            if "/images/" in url
            else "images"
        )
        by_kind[kind] = command
    return by_kind


def _run_curl(command: list[str]) -> Any:
    assert shutil.which("curl"), "curl is needed to run the demo's printed commands: apt-get install curl"
    result = subprocess.run([*command, "--fail-with-body"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{shlex.join(command)}: {result.stdout} {result.stderr}"
    return json.loads(result.stdout)


def test_demo_brings_up_the_stack_and_prints_working_queries(demo_env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(DEMO), "--once"], cwd=ROOT, env=demo_env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    out = result.stdout
    registry = f"127.0.0.1:{demo_env['ACRGUARD_DEMO_REGISTRY_PORT']}"
    # The real findings of the sample: musl's CVE-2019-14697 and openssl's three, from the bundled snapshot.
    assert f"{registry}/samples/alpine-app:3.10 is Unhealthy: 8 finding(s)" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["Unknown", "ALPINE-CVE-2019-14697", "musl", "1.1.22-r2", "->", "1.1.22-r3"] in lines
    assert ["Unknown", "ALPINE-CVE-2019-1547", "libssl1.1", "1.1.1c-r0", "->", "1.1.1d-r0"] in lines
    snapshots = list((Path(demo_env["HOME"]) / ".cache" / "acrguard").glob("osv-snapshot-*.sqlite"))
    assert len(snapshots) == 1, "the database was not built from the bundled snapshot"

    # Everything it started is gone: both ports are free again.
    assert _free(int(demo_env["ACRGUARD_DEMO_PORT"])) and _free(int(demo_env["ACRGUARD_DEMO_REGISTRY_PORT"]))

    # The printed commands query a running stack, so bring one up again on the demo's state and run them.
    commands = _curl_commands(out)
    assert sorted(commands) == ["cve", "image", "images", "sub-assessments"]
    with _serving(demo_env) as output:
        printed = _curl_commands(output)  # this run's keys and digest (the same image)
        image = _run_curl(printed["image"])
        assert image["health"] == "Unhealthy"
        assert {("ALPINE-CVE-2019-14697", "musl")} <= {(f["id"], f["package"]["name"]) for f in image["findings"]}
        listed = _run_curl(printed["images"])
        assert [i["digest"] for i in listed["value"]] == [image["digest"]]
        rows = _run_curl(printed["sub-assessments"])["value"]
        assert len(rows) == 8 and all(r["properties"]["status"]["code"] == "Unhealthy" for r in rows)
        cve = _run_curl(printed["cve"])
        assert cve["value"][0]["digest"] == image["digest"]
        # Without the keys the findings are not readable.
        keyless = [part for part in printed["image"] if "key:" not in part and part != "-H"]
        denied = subprocess.run([*keyless, "-o", "/dev/null", "-w", "%{http_code}"], capture_output=True, text=True)
        assert denied.stdout == "401"


class _serving:
    """`scripts/demo.sh` without --once, in its own process group; Ctrl-C (SIGINT to the group) on exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.returncode: int | None = None

    def __enter__(self) -> str:
        self.process = subprocess.Popen(
            ["bash", str(DEMO)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        output = ""
        for line in self.process.stdout:
            output += line
            if "serving until Ctrl-C" in line:
                return output
        self.process.wait(timeout=60)
        raise AssertionError(f"the demo ended before serving (exit {self.process.returncode}):\n{output}")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.returncode = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        assert self.returncode == 130, self.returncode
        assert _free(int(self.env["ACRGUARD_DEMO_PORT"])) and _free(int(self.env["ACRGUARD_DEMO_REGISTRY_PORT"]))


def test_a_taken_port_is_a_one_line_error(demo_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(demo_env["ACRGUARD_DEMO_REGISTRY_PORT"])))
        taken.listen()
        result = subprocess.run(
            ["bash", str(DEMO), "--once"], cwd=ROOT, env=demo_env, capture_output=True, text=True, timeout=600
        )
    assert result.returncode == 1
    port = demo_env["ACRGUARD_DEMO_REGISTRY_PORT"]
    assert result.stderr.strip().splitlines()[-1] == (
        f"demo: port {port} on 127.0.0.1 (docker-registry) is taken; "
        "stop what listens there or set ACRGUARD_DEMO_REGISTRY_PORT"
    )


def test_a_missing_tool_is_named(demo_env: dict[str, str], tmp_path: Path) -> None:
    # A PATH holding every program of the machine except skopeo: the demo asks the project's installer,
    # which finds the Debian package installed, and then names what is still missing.
    trimmed = tmp_path / "bin"
    trimmed.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for program in Path(directory).iterdir() if Path(directory).is_dir() else ():
            target = trimmed / program.name
            if program.name != "skopeo" and not target.exists():
                target.symlink_to(program)
    result = subprocess.run(
        ["bash", str(DEMO), "--once"],
        cwd=ROOT,
        env={**demo_env, "PATH": str(trimmed)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "demo: skopeo still missing after scripts/install-system-deps.sh"
