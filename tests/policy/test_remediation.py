"""Remediation templates: exact commands per package manager, hostile names, strict variables, summaries."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import pytest

from scanner.model.types import BaseImage, Finding, FixStatus, LayerInfo, OSInfo, Package
from scanner.policy.image_context import ImageContext
from scanner.policy.remediation import (
    CHECKOUT_TEMPLATES,
    PACKAGED_TEMPLATES,
    RemediationError,
    attach_remediation,
    base_image_hint,
    build_actions,
    make_environment,
    render_finding,
    render_summary,
)

BASE = LayerInfo(0, "sha256:" + "1" * 64, created_by="/bin/sh -c #(nop) ADD file:9a8b in / ")
APP = LayerInfo(3, "sha256:" + "2" * 64, created_by="COPY app /app # buildkit")


def image(os_id: str = "debian", version: str = "12") -> ImageContext:
    return ImageContext("myacr.azurecr.io", "team/api", "sha256:" + "f" * 64, ("1.0",), OSInfo(os_id, version), ())


def package(
    kind: str, name: str, version: str, source: str = "", location: str = "", layer: LayerInfo = BASE
) -> Package:
    ecosystems = {"deb": "Debian:12", "apk": "Alpine:v3.19", "rpm": "AlmaLinux:9", "pypi": "PyPI", "npm": "npm"}
    return Package(
        name=name,
        version=version,
        ecosystem=ecosystems.get(kind, {"maven": "Maven", "golang": "Go"}.get(kind, "x")),
        purl=f"pkg:{kind}/{name}@{version}",
        source_name=source,
        source_version=version,
        arch="",
        locations=(location or f"/loc/{kind}",),
        kind=kind,
        detector="d@1",
        layer=layer,
    )


def finding(pkg: Package, fix_status: FixStatus = "fixed", fixed: str = "", **changes: Any) -> Finding:
    f = Finding(
        id=changes.pop("id", "CVE-2023-1234"),
        aliases=(),
        package=pkg,
        installed_version=pkg.version,
        fixed_version=fixed if fix_status == "fixed" else "",
        fix_status=fix_status,
        severity=changes.pop("severity", "High"),
        severity_source="test",
        cvss=None,
        category="os" if pkg.kind in ("deb", "apk", "rpm") else "language",
    )
    return dataclasses.replace(f, **changes)


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_environment()


# (kind, package, fixed version, image, the exact command) for every package manager.
FIXED: list[tuple[str, Package, str, ImageContext, str]] = [
    (
        "deb",
        package("deb", "libssl3", "3.0.9-1", "openssl"),
        "3.0.11-1~deb12u2",
        image(),
        "apt-get update && apt-get install -y --only-upgrade 'libssl3=3.0.11-1~deb12u2'",
    ),
    (
        "apk",
        package("apk", "libcrypto3", "3.1.4-r1", "openssl"),
        "3.1.4-r5",
        image("alpine", "3.19.1"),
        "apk add --upgrade 'libcrypto3>=3.1.4-r5'",
    ),
    (
        "rpm-dnf",
        package("rpm", "openssl-libs", "1:3.0.7-6.el9", "openssl"),
        "1:3.0.7-24.el9",
        image("almalinux", "9.4"),
        "dnf upgrade -y openssl-libs-1:3.0.7-24.el9",
    ),
    (
        "rpm-yum",
        package("rpm", "openssl-libs", "1:1.0.2k-19.el7"),
        "1:1.0.2k-26.el7_9",
        image("centos", "7"),
        "yum update -y openssl-libs-1:1.0.2k-26.el7_9",
    ),
    (
        "rpm-zypper",
        package("rpm", "libopenssl3", "3.0.8-1.1"),
        "3.0.8-150500.5.14.1",
        image("sles", "15.5"),
        "zypper --non-interactive update libopenssl3",
    ),
    (
        "rpm-tdnf",
        package("rpm", "openssl", "3.3.0-1.azl3"),
        "3.3.2-1.azl3",
        image("azurelinux", "3.0"),
        "tdnf update -y openssl",
    ),
    ("pypi", package("pypi", "requests", "2.28.0"), "2.31.0", image(), "pip install 'requests>=2.31.0'"),
    ("npm", package("npm", "lodash", "4.17.15"), "4.17.21", image(), "npm install lodash@4.17.21"),
    (
        "npm-scoped",
        package("npm", "@babel/traverse", "7.23.0"),
        "7.23.2",
        image(),
        "npm install @babel/traverse@7.23.2",
    ),
    (
        "maven",
        package("maven", "com.fasterxml.jackson.core:jackson-databind", "2.9.1", location="/app/app.jar"),
        "2.15.0",
        image(),
        "mvn versions:use-dep-version -Dincludes=com.fasterxml.jackson.core:jackson-databind "
        "-DdepVersion=2.15.0 -DforceVersion=true",
    ),
    (
        "maven-no-group",
        package("maven", "log4j-core", "2.14.0", location="/app/app.jar"),
        "2.17.1",
        image(),
        "mvn versions:use-dep-version '-Dincludes=*:log4j-core' -DdepVersion=2.17.1 -DforceVersion=true",
    ),
    (
        "golang",
        package("golang", "golang.org/x/net", "v0.10.0", location="/app/server"),
        "0.17.0",
        image(),
        "go get golang.org/x/net@v0.17.0 && go mod tidy",
    ),
]


@pytest.mark.parametrize(("kind", "pkg", "fixed", "img", "command"), FIXED, ids=[c[0] for c in FIXED])
def test_fixed_finding_gives_the_exact_upgrade_command(
    env: jinja2.Environment, kind: str, pkg: Package, fixed: str, img: ImageContext, command: str
) -> None:
    text = render_finding(finding(pkg, "fixed", fixed), img, env)
    lines = text.splitlines()
    assert lines[0] == f"Fix CVE-2023-1234: upgrade {pkg.name} {pkg.version} to {fixed} or later."
    assert lines[1] == "  " + command
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_debian_note_names_the_source_package(env: jinja2.Environment) -> None:
    text = render_finding(finding(FIXED[0][1], "fixed", "3.0.11-1~deb12u2"), image(), env)
    assert "the fix is in openssl 3.0.11-1~deb12u2; upgrade every installed package built from it" in text


def test_alpine_note_names_a_different_origin_only(env: jinja2.Environment) -> None:
    text = render_finding(finding(FIXED[1][1], "fixed", "3.1.4-r5"), image("alpine", "3.19"), env)
    assert "the fix is in openssl 3.1.4-r5" in text
    same = package("apk", "busybox", "1.36.1-r1", "busybox")
    assert "origin" not in render_finding(finding(same, "fixed", "1.36.1-r2"), image("alpine", "3.19"), env)


def test_versionless_managers_say_which_version_to_reach(env: jinja2.Environment) -> None:
    _, pkg, fixed, img, _ = FIXED[4]
    assert f"Check that the installed version is then {fixed} or later." in render_finding(
        finding(pkg, "fixed", fixed), img, env
    )


def test_bundled_packages_point_at_the_artifact(env: jinja2.Environment) -> None:
    for _, pkg, fixed, img, _ in FIXED[9:]:
        text = render_finding(finding(pkg, "fixed", fixed), img, env)
        assert f"It is built into {pkg.locations[0]}: update the dependency" in text


def test_go_stdlib_means_a_newer_toolchain(env: jinja2.Environment) -> None:
    pkg = package("golang", "stdlib", "v1.21.0", location="/app/server")
    lines = render_finding(finding(pkg, "fixed", "1.21.3"), image(), env).splitlines()
    assert lines == [
        "Fix CVE-2023-1234: upgrade stdlib v1.21.0 to 1.21.3 or later.",
        "  Rebuild /app/server with Go 1.21.3 or later: the standard library comes with the Go toolchain.",
    ]


def test_unknown_rpm_distribution_and_unknown_kind_get_prose(env: jinja2.Environment) -> None:
    rpm = render_finding(finding(package("rpm", "openssl", "1"), "fixed", "2"), image("mystery", "1"), env)
    assert rpm.splitlines()[1] == "  Use the image's package manager (rpm)."
    gem = render_finding(finding(package("gem", "rack", "2.0"), "fixed", "2.2.8"), image(), env)
    assert gem.splitlines()[1] == "  Use the image's package manager (gem)."
    odd = render_finding(finding(package("swift", "x", "1"), "fixed", "2"), image(), env)
    assert odd.splitlines()[1] == "  Use the image's package manager."


KINDS = [(c[0], c[1], c[3]) for c in FIXED] + [("stdlib", package("golang", "stdlib", "v1.21.0"), image())]


@pytest.mark.parametrize(("kind", "pkg", "img"), KINDS, ids=[k[0] for k in KINDS])
def test_not_fixed_guidance(env: jinja2.Environment, kind: str, pkg: Package, img: ImageContext) -> None:
    text = render_finding(finding(pkg, "not_fixed"), img, env)
    assert text.splitlines() == [
        f"CVE-2023-1234 in {pkg.name} {pkg.version} has no fix yet.",
        f"  Mitigate: remove {pkg.name} if the image does not need it, or limit exposure of the affected feature.",
        "  Monitor: scan again regularly; the finding becomes fixable when a fixed version is published.",
        "  Accept: disable it with a rule in policies/rules/ (with a justification and an expiry date), matching "
        f"ids: [CVE-2023-1234] and packages: [{pkg.name}].",
    ]


@pytest.mark.parametrize(("kind", "pkg", "img"), KINDS, ids=[k[0] for k in KINDS])
def test_wont_fix_guidance(env: jinja2.Environment, kind: str, pkg: Package, img: ImageContext) -> None:
    text = render_finding(finding(pkg, "wont_fix"), img, env)
    lines = text.splitlines()
    by = f" by {img.os.id} in this release" if pkg.kind in ("deb", "apk", "rpm") and img.os else ""
    assert lines[0] == f"CVE-2023-1234 in {pkg.name} {pkg.version} will not be fixed{by}."
    assert lines[1].startswith(f"  Mitigate: remove {pkg.name} if the image does not need it, or move to a newer")
    assert lines[2].startswith("  Accept: disable it with a rule in policies/rules/")
    assert len(lines) == 3


@pytest.mark.parametrize(("kind", "pkg", "fixed", "img", "command"), FIXED, ids=[c[0] for c in FIXED])
def test_summaries_render_every_kind_and_status(
    env: jinja2.Environment, kind: str, pkg: Package, fixed: str, img: ImageContext, command: str
) -> None:
    findings = [
        finding(pkg, "fixed", fixed),
        finding(pkg, "not_fixed", id="CVE-2"),
        finding(pkg, "wont_fix", id="CVE-3"),
    ]
    text = render_summary(findings, img, env)
    html = render_summary(findings, img, env, template="summary.html.j2")
    assert f"1. Upgrade {pkg.name} to {fixed} or later: fixes 1 finding (worst: High).\n   {command}\n" in text
    assert f"<br><code>{markupsafe.escape(command)}</code></li>" in html
    assert "3 active findings: 3 High." in text
    assert "Fixable by an upgrade: 1; no fix yet: 1; will not be fixed: 1." in text
    for f in findings:
        assert f"<td>{markupsafe.escape(f.id)}</td>" in html or f">{markupsafe.escape(f.id)}</a></td>" in html


def test_summary_text_exactly(env: jinja2.Environment) -> None:
    ssl = package("deb", "libssl3", "3.0.9-1", "openssl")
    app = package("pypi", "requests", "2.28.0", layer=APP)
    findings = [
        finding(ssl, "fixed", "3.0.9-1+deb12u1", id="CVE-1", severity="High"),
        finding(ssl, "fixed", "3.0.11-1~deb12u2", id="CVE-2", severity="Critical"),
        finding(ssl, "not_fixed", id="CVE-3", severity="Low"),
        finding(app, "fixed", "2.31.0", id="GHSA-1", severity="Medium"),
        finding(app, "fixed", "2.31.0", id="GHSA-2", severity="Low", disabled=True, disabled_by="accepted"),
    ]
    assert render_summary(findings, image(), env) == (
        "Image: myacr.azurecr.io/team/api (sha256:ffffffffffff)\n"
        "4 active findings: 1 Critical, 1 High, 1 Medium, 1 Low.\n"
        "1 disabled by rules.\n"
        "Fixable by an upgrade: 3; no fix yet: 1; will not be fixed: 0.\n"
        "\n"
        "Top actions:\n"
        "1. Upgrade libssl3 to 3.0.11-1~deb12u2 or later: fixes 2 findings (worst: Critical).\n"
        "   apt-get update && apt-get install -y --only-upgrade 'libssl3=3.0.11-1~deb12u2'\n"
        "2. Upgrade requests to 2.31.0 or later: fixes 1 finding (worst: Medium).\n"
        "   pip install 'requests>=2.31.0'\n"
        "\n"
        "Most fixable findings (2 of 3) come from what looks like the base image (layer sha256:111111111111, "
        "`/bin/sh -c #(nop) ADD file:9a8b in /`): rebuild on a newer base image.\n"
    )


def test_summary_names_the_annotated_base_and_weighs_risk(env: jinja2.Environment) -> None:
    """With the base's extent from the history and its name from the annotations, the advice names it; most of
    the fixable risk, not most findings, decides."""
    base = BaseImage(name="docker.io/library/debian:12", digest="sha256:" + "a" * 64, layers=2)
    ctx = dataclasses.replace(image(), base=base)
    ssl = package("deb", "libssl3", "3.0.9-1", "openssl")
    app = [finding(package("pypi", f"a{i}", "1", layer=APP), "fixed", "2", id=f"G{i}", risk=10.0) for i in range(3)]
    findings = [finding(ssl, "fixed", "3.0.11-1", id="CVE-1", risk=70.0), *app]
    text = render_summary(findings, ctx, env)
    assert text.endswith(
        "70% of the fixable risk (1 of 4 fixable findings) comes from the base image docker.io/library/debian:12 "
        "(sha256:aaaaaaaaaaaa) (layers 1-2 of the image): rebuild on a newer base image "
        "(pull docker.io/library/debian:12 again and rebuild).\n"
    )
    html = render_summary(findings, ctx, env, template="summary.html.j2")
    assert "comes from the base image <code>docker.io/library/debian:12</code>" in html
    low_base = [finding(ssl, "fixed", "3.0.11-1", id=f"CVE-{i}", risk=5.0) for i in range(3)]
    assert base_image_hint([*low_base, *app], base) is None  # 3 of 6 findings but 15 of 45 risk


def test_summary_of_a_clean_image(env: jinja2.Environment) -> None:
    assert (
        render_summary([], image(), env)
        == "Image: myacr.azurecr.io/team/api (sha256:ffffffffffff)\nNo vulnerabilities found.\n"
    )
    html = render_summary([], image(), env, template="summary.html.j2")
    assert "<p>No vulnerabilities found.</p>" in html


def test_summary_lists_top_actions_and_counts_the_rest(env: jinja2.Environment) -> None:
    findings = [finding(package("pypi", f"p{i}", "1.0"), "fixed", "2.0", id=f"CVE-{i}") for i in range(7)]
    text = render_summary(findings, image(), env, top_actions=3)
    assert "3. Upgrade p2" in text and "4. Upgrade" not in text
    assert "... and 4 more package upgrades." in text


# --- actions and the base-image hint ----------------------------------------------------------------------


def test_action_takes_the_highest_fixed_version_by_ecosystem_rules() -> None:
    pkg = package("pypi", "django", "3.2.0")
    findings = [finding(pkg, "fixed", v, id=f"CVE-{v}") for v in ("3.2.9", "3.2.10", "3.2.2")]
    (action,) = build_actions(findings, image())
    assert (action.fixed_version, action.manager, action.ids) == (
        "3.2.10",
        "pip",
        ("CVE-3.2.10", "CVE-3.2.2", "CVE-3.2.9"),
    )
    deb = package("deb", "libc6", "2.36-9")
    (action,) = build_actions([finding(deb, "fixed", v) for v in ("2.36-9+deb12u4", "2.36-9+deb12u10")], image())
    assert action.fixed_version == "2.36-9+deb12u10"


def test_actions_most_urgent_first() -> None:
    low_many = [finding(package("pypi", "a", "1"), "fixed", "2", id=f"C{i}", severity="Low") for i in range(3)]
    high = [finding(package("pypi", "b", "1"), "fixed", "2", severity="High")]
    high_two = [finding(package("pypi", "c", "1"), "fixed", "2", id=f"D{i}", severity="High") for i in range(2)]
    actions = build_actions(low_many + high + high_two, image())
    assert [a.package.name for a in actions] == ["c", "b", "a"]


def test_actions_removing_the_most_risk_come_first() -> None:
    low_many = [
        finding(package("pypi", "a", "1"), "fixed", "2", id=f"C{i}", severity="Low", risk=30.0) for i in range(3)
    ]
    high = [finding(package("pypi", "b", "1"), "fixed", "2", severity="High", risk=50.0)]
    assert [a.package.name for a in build_actions(low_many + high, image())] == ["a", "b"]  # 90 before 50


def test_base_image_hint_needs_more_than_half() -> None:
    base = [finding(package("deb", f"b{i}", "1"), "fixed", "2") for i in range(2)]
    app = [finding(package("pypi", f"a{i}", "1", layer=APP), "fixed", "2") for i in range(2)]
    assert base_image_hint(base + app) is None  # exactly half
    hint = base_image_hint([*base, *app[:1]])
    assert hint is not None and (hint.count, hint.total, hint.layer, hint.base_layer_count) == (2, 3, BASE, 1)
    assert base_image_hint([]) is None
    assert base_image_hint(app) is None  # no OS findings: no base layers to infer


def test_base_image_hint_with_a_given_base_layer_count() -> None:
    mid = LayerInfo(2, "sha256:" + "3" * 64, created_by="RUN pip install x")
    findings = [finding(package("pypi", f"m{i}", "1", layer=mid), "fixed", "2") for i in range(3)]
    findings.append(finding(package("deb", "b", "1"), "fixed", "2"))
    assert base_image_hint(findings) is None  # inferred base: layer 0 only, 1 of 4
    hint = base_image_hint(findings, BaseImage(layers=3))
    assert hint is not None and (hint.layer, hint.count, hint.total) == (mid, 4, 4)


def test_default_base_ends_at_the_first_os_package_layer() -> None:
    later = LayerInfo(1, "sha256:" + "4" * 64)
    findings = [finding(package("rpm", f"r{i}", "1", layer=later), "fixed", "2") for i in range(2)]
    findings.append(finding(package("pypi", "x", "1", layer=APP), "fixed", "2"))
    hint = base_image_hint(findings)
    assert hint is not None and hint.base_layer_count == 2 and hint.layer == later


def test_disabled_findings_do_not_count(env: jinja2.Environment) -> None:
    base = [finding(package("deb", f"b{i}", "1"), "fixed", "2", disabled=True, disabled_by="r") for i in range(5)]
    app = [finding(package("pypi", "a", "1", layer=APP), "fixed", "2")]
    text = render_summary(base + app, image(), env)
    assert "base image" not in text
    assert "1 active finding: 1 High." in text and "5 disabled by rules." in text


# --- hostile input ---------------------------------------------------------------------------------------


HOSTILE = "<script>alert('x')</script>; rm -rf / $(id) `id`"


def test_commands_quote_hostile_names_and_versions(env: jinja2.Environment) -> None:
    for kind, manager_args in [("pypi", ["pip", "install"]), ("npm", ["npm", "install"]), ("deb", None)]:
        pkg = package(kind, HOSTILE, "1.0")
        text = render_finding(finding(pkg, "fixed", "2.0'; reboot #"), image(), env)
        command = text.splitlines()[1].strip()
        words = shlex.split(command)
        if manager_args:
            assert words[:2] == manager_args and len(words) == 3 and HOSTILE in words[2]
        else:
            assert words[-1] == f"{HOSTILE}=2.0'; reboot #"


def test_html_summary_escapes_hostile_names(env: jinja2.Environment) -> None:
    pkg = package("pypi", HOSTILE, "1.0<b>", layer=APP)
    findings = [finding(pkg, "fixed", "2.0", disabled=False), finding(pkg, "not_fixed", id="<img src=x>")]
    html = render_summary(findings, image(), env, template="summary.html.j2")
    assert "<script>" not in html and "<img" not in html and "1.0<b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "https://osv.dev/vulnerability/%3Cimg%20src%3Dx%3E" in html


def test_text_output_loses_control_characters(env: jinja2.Environment) -> None:
    pkg = package("pypi", "evil\x1b[2J\x07name", "1.0\r")
    text = render_finding(finding(pkg, "not_fixed"), image(), env)
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "evil[2Jname 1.0 has no fix yet" in text


def test_attach_remediation(env: jinja2.Environment) -> None:
    f = finding(package("pypi", "requests", "2.28.0"), "fixed", "2.31.0")
    (out,) = attach_remediation([f], image(), env)
    assert out.remediation == render_finding(f, image(), env)
    assert "pip install 'requests>=2.31.0'" in out.remediation and f.remediation == ""


# --- template environment ---------------------------------------------------------------------------------


def test_undefined_variable_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "finding.txt.j2").write_text("Line one\n{{ finding.id }} {{ no_such_variable }}\n")
    env = make_environment(tmp_path)
    with pytest.raises(RemediationError) as err:
        render_finding(finding(package("pypi", "x", "1"), "not_fixed"), image(), env)
    assert str(err.value) == f"{tmp_path / 'finding.txt.j2'}, line 2: 'no_such_variable' is undefined"


def test_undefined_attribute_in_the_commands_macro_names_it(tmp_path: Path) -> None:
    (tmp_path / "commands.j2").write_text(
        "{% macro upgrade(manager, package, version) %}{{ package.nope }}{% endmacro %}\n"
    )
    env = make_environment(tmp_path)
    with pytest.raises(RemediationError) as err:
        render_finding(finding(package("pypi", "x", "1"), "fixed", "2"), image(), env)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'commands.j2'}, line 1: ")
    assert "has no attribute 'nope'" in message


def test_syntax_error_names_template_and_line(tmp_path: Path) -> None:
    (tmp_path / "summary.txt.j2").write_text("ok\n{% if %}\n")
    with pytest.raises(RemediationError, match=r"summary.txt.j2, line 2: syntax error: "):
        render_summary([], image(), make_environment(tmp_path))


def test_missing_template_and_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(RemediationError, match="does not exist"):
        make_environment(tmp_path / "nope")
    with pytest.raises(RemediationError, match=r"template 'other\.j2' not found"):
        render_summary([], image(), make_environment(tmp_path), template="other.j2")


def test_user_templates_override_and_fall_back(tmp_path: Path) -> None:
    (tmp_path / "finding.txt.j2").write_text("custom {{ finding.id }} via {{ manager }}")
    env = make_environment(tmp_path)
    assert (
        render_finding(finding(package("npm", "x", "1"), "not_fixed"), image(), env) == "custom CVE-2023-1234 via npm\n"
    )
    assert render_summary([], image(), env).endswith("No vulnerabilities found.\n")  # packaged summary


def test_autoescape_only_for_html(tmp_path: Path) -> None:
    (tmp_path / "finding.txt.j2").write_text("{{ package.name }}")
    (tmp_path / "finding.html.j2").write_text("{{ package.name }}")
    env = make_environment(tmp_path)
    f = finding(package("npm", "<b>", "1"), "not_fixed")
    assert render_finding(f, image(), env) == "<b>\n"
    assert env.get_template("finding.html.j2").render(package=f.package) == "&lt;b&gt;"


def test_the_packaged_templates_are_the_only_copy_of_the_defaults() -> None:
    # policies/templates of a checkout holds the user's overrides only; the defaults ship in the wheel.
    assert sorted(p.name for p in PACKAGED_TEMPLATES.glob("*.j2")) == [
        "commands.j2",
        "finding.txt.j2",
        "summary.html.j2",
        "summary.txt.j2",
    ]
    assert sorted(CHECKOUT_TEMPLATES.glob("*.j2")) == []


def test_a_users_commands_override_one_manager_and_fall_back_to_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "commands.j2").write_text(
        "{% macro upgrade(manager, package, version) %}\n"
        "{% if manager == 'pip' %}uv pip install {{ (package.name ~ '==' ~ version) | shquote }}\n"
        "{% else %}{{ default_upgrade(manager, package, version) }}{% endif %}\n"
        "{% endmacro %}\n"
    )
    env = make_environment(tmp_path)
    pip = render_finding(finding(package("pypi", "requests", "2.28.0"), "fixed", "2.31.0"), image(), env)
    assert pip.splitlines()[1] == "  uv pip install requests==2.31.0"
    npm = render_finding(finding(package("npm", "lodash", "4.17.20"), "fixed", "4.17.21"), image(), env)
    assert npm.splitlines()[1] == "  npm install lodash@4.17.21"
    # finding.txt.j2 is still the packaged one.
    assert npm == render_finding(
        finding(package("npm", "lodash", "4.17.20"), "fixed", "4.17.21"), image(), make_environment()
    )


def test_default_upgrade_of_a_manager_without_a_command_is_empty(env: jinja2.Environment) -> None:
    render = env.from_string("[{{ default_upgrade(manager, package, '2') }}]").render
    assert render(manager="gem", package=package("gem", "rack", "1")) == "[]"
    assert render(manager="no-such-tool", package=package("gem", "rack", "1")) == "[]"


def test_without_a_directory_the_checkouts_overrides_come_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanner.policy import remediation

    (tmp_path / "summary.txt.j2").write_text("override for {{ image.repository }}")
    monkeypatch.setattr(remediation, "CHECKOUT_TEMPLATES", tmp_path)
    env = make_environment()
    assert render_summary([], image(), env) == "override for team/api\n"
    assert "pip install" in render_finding(finding(package("pypi", "x", "1"), "fixed", "2"), image(), env)


def test_error_in_an_included_template_names_both(tmp_path: Path) -> None:
    (tmp_path / "finding.txt.j2").write_text("{% include 'part.j2' %}\n")
    (tmp_path / "part.j2").write_text("\n\n{{ missing }}\n")
    with pytest.raises(RemediationError) as err:
        render_finding(finding(package("pypi", "x", "1"), "not_fixed"), image(), make_environment(tmp_path))
    assert str(err.value) == f"{tmp_path / 'part.j2'}, line 3 (rendering finding.txt.j2): 'missing' is undefined"
