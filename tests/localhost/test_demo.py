"""README command 1 (`bash scripts/demo.sh`): the local stack brought up for real — bubblewrap, Debian's
docker-registry notifying `acrguard serve`, skopeo pushing the sample — with the findings printed and the
printed curl commands run as a user would. Each run gets its own ports, demo directory and HOME, so the
vulnerability database is built from the bundled snapshot as on a fresh machine, and a minimal environment
(none of the developer's ACRGUARD_* settings or proxies).

The demo takes its ports as settings, so they are picked before it starts: a run that finds one taken by
then is run again on others. The demo runs in its own session with SIGINT at its default, as from a
terminal, however the suite itself was started (a background job ignores SIGINT, and so would the demo).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.childenv import minimal_env

from .stack import realparts

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.sh"


# What the demo says when a port it was given is taken: its own check, or serve's or the registry's bind.
PORT_TAKEN = ("is taken; stop what listens there", "already in use")
ATTEMPTS = 5


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return minimal_env({"HOME": str(home), "ACRGUARD_DEMO_DIR": str(tmp_path / "demo")})


def _with_ports(env: dict[str, str], registry_port: int | None = None) -> dict[str, str]:
    """`env` with ports that are free now for serve and (unless given) the registry."""
    registry = registry_port if registry_port is not None else realparts.free_port()
    return {**env, "ACRGUARD_DEMO_PORT": str(realparts.free_port()), "ACRGUARD_DEMO_REGISTRY_PORT": str(registry)}


def _default_sigint() -> None:
    # In the child before exec: SIGINT as a terminal's foreground job has it, whatever this process inherited.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _group(pgid: int) -> list[str]:
    """The live processes of process group `pgid`, with their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(f"{entry.name} {command}")
    return found


def _demo(env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`scripts/demo.sh --once` in a session of its own; whatever it started is checked gone when it ends."""
    process = subprocess.Popen(
        ["bash", str(DEMO), "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Everything it started (serve, the registry) is gone with it: nothing of its process group is left.
    assert _group(process.pid) == [], f"left running by the demo: {_group(process.pid)}"
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _port_taken(output: str) -> bool:
    return any(sign in output for sign in PORT_TAKEN)


def _demo_on_free_ports(env: dict[str, str]) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """`_demo` on ports free when it starts, run again on others if one was taken by the time it bound it."""
    for attempt in range(1, ATTEMPTS + 1):
        run_env = _with_ports(env)
        result = _demo(run_env)
        if result.returncode == 0 or not _port_taken(result.stderr) or attempt == ATTEMPTS:
            return run_env, result
    raise AssertionError("unreachable")


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
    result = subprocess.run(
        [*command, "--fail-with-body"], env=minimal_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{shlex.join(command)}: {result.stdout} {result.stderr}"
    return json.loads(result.stdout)


def test_demo_brings_up_the_stack_and_prints_working_queries(demo_env: dict[str, str], tmp_path: Path) -> None:
    demo_env, result = _demo_on_free_ports(demo_env)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    out = result.stdout
    registry = f"127.0.0.1:{demo_env['ACRGUARD_DEMO_REGISTRY_PORT']}"
    # The real findings of the sample: musl's CVE-2019-14697 and openssl's three, from the bundled snapshot.
    assert f"{registry}/samples/alpine-app:3.10 is Unhealthy: 8 finding(s)" in out
    lines = [line.split() for line in out.splitlines()]
    # Highest risk first; rated by the snapshot's NVD records (Alpine's secdb rates nothing): musl 9.8, openssl's
    # CVE-2019-1547 4.7; EPSS from the snapshot's real slice of FIRST's file; every package from the base layer.
    header = next(i for i, line in enumerate(lines) if line[:3] == ["RISK", "SEVERITY", "RATED"])
    rows = lines[header + 1 : header + 9]
    risks = [float(row[0]) for row in rows]
    assert risks == sorted(risks, reverse=True)
    assert rows[0][1:8] == [
        "Critical",
        "cve:nvd:cvss:3.1",
        "ALPINE-CVE-2019-14697",
        "musl",
        "[base]",
        "1.1.22-r2",
        "1.1.22-r3",
    ]
    assert rows[0][8:10] == ["EPSS", "2.5%"]
    assert ["Medium", "cve:nvd:cvss:3.1", "ALPINE-CVE-2019-1547", "libssl1.1", "[base]", "1.1.1c-r0", "1.1.1d-r0"] in [
        row[1:8] for row in rows
    ]
    assert not any("KEV" in row for row in rows)  # none of the sample's CVEs is in CISA's catalog
    snapshots = list((Path(demo_env["HOME"]) / ".cache" / "acrguard").glob("osv-snapshot-*.sqlite"))
    assert len(snapshots) == 1, "the database was not built from the bundled snapshot"
    _keys_stay_out_of_the_registry_log(Path(demo_env["ACRGUARD_DEMO_DIR"]), out)

    # The printed commands query a running stack, so bring one up again and run them: the demo starts afresh
    # (a new push and scan), on ports of its own.
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
        denied = subprocess.run(
            [*keyless, "-o", "/dev/null", "-w", "%{http_code}"], env=minimal_env(), capture_output=True, text=True
        )
        assert denied.stdout == "401"
        _the_dashboard_opens_with_the_printed_key(output)


def _the_dashboard_opens_with_the_printed_key(output: str) -> None:
    """README command 1 ends with the dashboard's URL and how to sign in: the printed key signs in (a session
    cookie) and the printed image page shows the sample's findings."""
    (page,) = re.findall(r"^Dashboard: (\S+)$", output, re.M)
    (login, key) = re.findall(r"^  open (\S+) and sign in with this run's API key: (\S+)$", output, re.M)[0]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"key": key, "next": urllib.parse.urlsplit(page).path}).encode()
    with opener.open(urllib.request.Request(f"{login}/login", data=form, method="POST"), timeout=30) as answer:
        assert answer.status == 200 and "CVE-2019-14697" in answer.read().decode()  # redirected to the image page
    assert any(cookie.name for cookie in jar)


def _keys_stay_out_of_the_registry_log(demo_dir: Path, output: str) -> None:
    """The registry sends its credentials as notification headers, not in the URL, and its log (which names
    each endpoint's URL and, at info, its headers) holds none of this run's keys."""
    config = (demo_dir / "registry" / "config.yml").read_text()
    (url,) = [line.split("url:", 1)[1].strip() for line in config.splitlines() if line.strip().startswith("url:")]
    assert url.endswith("/api/registry-notifications"), url
    (token,) = re.findall(r'Authorization: \["Bearer ([^"]+)"\]', config)
    printed = _curl_commands(output)["image"]
    keys = {token} | {part.split(": ", 1)[1] for part in printed if part.startswith(("x-api-key:", "x-functions-key:"))}
    assert len(keys) == 3 and all(len(key) >= 20 for key in keys)
    log = (demo_dir / "registry.log").read_text(errors="replace")
    assert [key for key in keys if key in log] == []
    assert stat.S_IMODE((demo_dir / "registry" / "config.yml").stat().st_mode) == 0o600


class _serving:
    """`scripts/demo.sh` without --once, in its own session with SIGINT at its default; Ctrl-C (SIGINT to
    the process group, as a terminal sends it) on exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.returncode: int | None = None

    def __enter__(self) -> str:
        for attempt in range(1, ATTEMPTS + 1):
            output = self._start(_with_ports(self.env))
            if "serving until Ctrl-C" in output:
                return output
            assert self.process is not None
            self.process.wait()
            assert _group(self.process.pid) == [], f"left running by the demo: {_group(self.process.pid)}"
            if not _port_taken(output) or attempt == ATTEMPTS:
                raise AssertionError(f"the demo ended before serving (exit {self.process.returncode}):\n{output}")
        raise AssertionError("unreachable")

    def _start(self, env: dict[str, str]) -> str:
        """The demo's output up to the line saying it serves, or all of it if it ended first."""
        self.process = subprocess.Popen(
            ["bash", str(DEMO)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        assert self.process.stdout is not None
        output = ""
        for line in self.process.stdout:
            output += line
            if "serving until Ctrl-C" in line:
                break
        return output

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.returncode = self.process.wait(timeout=120)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        assert self.returncode == 130, self.returncode
        # Everything it started (serve, the registry) is gone with it.
        assert _group(self.process.pid) == [], f"left running by the demo: {_group(self.process.pid)}"


def test_a_taken_port_is_a_one_line_error(demo_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for attempt in range(1, ATTEMPTS + 1):
            env = _with_ports(demo_env, registry_port=int(port))
            result = _demo(env, timeout=600)
            # serve's port is checked first: should it have been taken meanwhile, again with another.
            serve_taken = f"port {env['ACRGUARD_DEMO_PORT']} on 127.0.0.1 (acrguard serve) is taken"
            if serve_taken not in result.stderr or attempt == ATTEMPTS:
                break
    assert result.returncode == 1
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
    result = _demo({**_with_ports(demo_env), "PATH": str(trimmed)}, timeout=600)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "demo: skopeo still missing after scripts/install-demo-deps.sh"
