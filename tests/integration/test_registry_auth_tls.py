"""A real registry with TLS from a private CA and htpasswd basic auth: --ca-file, credentials from the
environment, a docker config file and --password-stdin; and clear one-line errors when any is wrong."""

from __future__ import annotations

import base64
import io
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from scanner.cli.main import main
from tests import ports
from tests.childenv import minimal_env
from tests.integration import realparts
from tests.ocibuild import Entry, Image, Layer, layer_tar, write_layout
from tests.tlspki import make_pki

pytestmark = pytest.mark.integration
USER, PASSWORD = "scanner", "s3cret-pa55"


CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
auth:
  htpasswd:
    realm: acrguard-test
    path: {htpasswd}
http:
  addr: {addr}
  relativeurls: true
  tls:
    certificate: {cert}
    key: {key}
"""


@dataclass
class SecureRegistry:
    host: str
    ca: Path
    other_ca: Path
    reference: str


@pytest.fixture(scope="module")
def secure_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRegistry]:
    work = tmp_path_factory.mktemp("secure-registry")
    ca, cert, key = make_pki(work)
    other = work / "other"
    other.mkdir()
    other_ca, _, _ = make_pki(other)
    htpasswd = work / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")
    config = work / "config.yml"
    config.write_text(CONFIG.format(root=work / "storage", htpasswd=htpasswd, addr="127.0.0.1:0", cert=cert, key=key))
    log = (work / "registry.log").open("wb")
    process = subprocess.Popen(
        [realparts.registry_binary(), "serve", str(config)], env=minimal_env(), stdout=log, stderr=log
    )

    def log_tail() -> str:
        return (work / "registry.log").read_text()[-2000:]

    try:
        # Port 0: the system's choice, read back from the registry process, so no other can hold it.
        host = f"127.0.0.1:{ports.wait_listening(process, 'the TLS registry', log_tail)}"
    except AssertionError as err:
        process.kill()
        pytest.fail(str(err))
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"https://{host}/v2/", context=context, timeout=2)
        except urllib.error.HTTPError as err:
            if err.code == 401:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"TLS registry did not start: {log_tail()}")
        time.sleep(0.1)
    layer = layer_tar(
        [
            Entry("etc/alpine-release", b"3.20.3\n"),
            Entry("lib/apk/db/installed", b"P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\nP:zlib\nV:1.3.1-r1\nA:x86_64\n\n"),
        ]
    )
    layout = write_layout(work / "layout", [Image([Layer(layer)])])
    certs = work / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca.read_bytes())
    reference = f"{host}/team/app:1.0"
    realparts.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-creds",
            f"{USER}:{PASSWORD}",
            "--dest-cert-dir",
            str(certs),
            f"oci:{layout}:latest",
            f"docker://{reference}",
        ]
    )
    try:
        yield SecureRegistry(host, ca, other_ca, reference)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def sbom(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(["sbom", *argv])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_env_credentials_and_private_ca(
    secure_registry: SecureRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACRGUARD_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("ACRGUARD_REGISTRY_PASSWORD", PASSWORD)
    monkeypatch.setenv("ACRGUARD_REGISTRIES", f"{secure_registry.host}=basic")  # the credentials' one host
    code, doc, err = sbom(capsys, secure_registry.reference, "--ca-file", str(secure_registry.ca))
    assert code == 0, err
    assert {(p["name"], p["version"]) for p in doc["packages"]} == {("musl", "1.2.5-r0"), ("zlib", "1.3.1-r1")}
    assert doc["image"]["digest"].startswith("sha256:")


def test_docker_config_credentials(
    secure_registry: SecureRegistry, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {secure_registry.host: {"auth": auth}}}))
    code, doc, err = sbom(
        capsys, secure_registry.reference, "--ca-file", str(secure_registry.ca), "--docker-config", str(config)
    )
    assert code == 0, err
    assert doc["status"] == "Scanned"


def test_password_from_stdin(
    secure_registry: SecureRegistry, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, doc, err = sbom(
        capsys, secure_registry.reference, "--ca-file", str(secure_registry.ca), "--username", USER, "--password-stdin"
    )
    assert code == 0, err
    assert len(doc["packages"]) == 2


@pytest.mark.parametrize(
    "password,ca,expected",
    [
        (None, "right", "authentication required"),
        ("wrong", "right", "authentication failed"),
        (PASSWORD, None, "certificate verify failed"),
        (PASSWORD, "other", "certificate verify failed"),
    ],
)
def test_wrong_or_missing_credentials_and_ca_fail_in_one_line(
    secure_registry: SecureRegistry,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    password: str | None,
    ca: str | None,
    expected: str,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent")
    monkeypatch.delenv("ACRGUARD_REGISTRY_USERNAME", raising=False)
    monkeypatch.delenv("ACRGUARD_REGISTRY_PASSWORD", raising=False)
    if password is not None:
        monkeypatch.setenv("ACRGUARD_REGISTRY_USERNAME", USER)
        monkeypatch.setenv("ACRGUARD_REGISTRY_PASSWORD", password)
        monkeypatch.setenv("ACRGUARD_REGISTRIES", f"{secure_registry.host}=basic")
    argv = [secure_registry.reference]
    if ca is not None:
        argv += ["--ca-file", str(secure_registry.ca if ca == "right" else secure_registry.other_ca)]
    code, _, err = sbom(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("acrguard: "), err
    assert expected in lines[0]
    assert "team/app:1.0" in lines[0]
