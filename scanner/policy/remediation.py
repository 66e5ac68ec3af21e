"""Remediation text from user-owned Jinja2 templates (see policies/README.md for every variable).

Package names and versions come from the scanned image, so they are hostile input: commands quote them
with the `shquote` filter, HTML templates are autoescaped, and every printed value has its control
characters removed (no terminal escape sequences smuggled through a package name).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from markupsafe import Markup

from scanner.ecosystems import sort_key
from scanner.ecosystems.catalog import manager_for, manager_named
from scanner.model.errors import AcrguardError
from scanner.model.types import (
    FIX_STATUSES,
    SEVERITY_ORDER,
    BaseImage,
    Finding,
    FixStatus,
    LayerInfo,
    Package,
    Severity,
)
from scanner.policy.image_context import ImageContext
from scanner.versions import VersionError

_PACKAGE = Path(__file__).resolve().parents[1]
# The default templates, the only copy: they ship in the wheel.
PACKAGED_TEMPLATES = _PACKAGE / "data" / "templates"
# Where a git checkout keeps the user's overrides of single templates, when no directory is given.
CHECKOUT_TEMPLATES = _PACKAGE.parent / "policies" / "templates"

COMMANDS_TEMPLATE = "commands.j2"
FINDING_TEMPLATE = "finding.txt.j2"
SUMMARY_TEMPLATE = "summary.txt.j2"
SUMMARY_HTML_TEMPLATE = "summary.html.j2"


# C0/C1 controls except tab and newline: a terminal would act on them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class RemediationError(AcrguardError):
    """A remediation template that is missing, malformed, or uses a variable it was not given."""


@dataclass(frozen=True)
class Action:
    """One upgrade that fixes one or more findings (the summary's "top actions")."""

    package: Package
    manager: str
    fixed_version: str  # the highest fixed version among its findings: the one that fixes them all
    findings: tuple[Finding, ...]
    severity: Severity  # the worst among its findings
    command: str = ""  # commands.j2's upgrade(), as plain text; "" when the manager has no command

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(sorted({f.id for f in self.findings}))


@dataclass(frozen=True)
class BaseImageHint:
    """Set when most of the fixable risk comes from the base image's layers: "rebuild on a newer base"."""

    layer: LayerInfo  # the base layer holding the most fixable findings
    count: int  # fixable findings in base layers
    total: int  # fixable findings
    base_layer_count: int  # layers 0 .. base_layer_count-1 are the base image
    name: str = ""  # the base image's name (org.opencontainers.image.base.name), when the image says
    digest: str = ""
    risk_share: int = 0  # percent of the fixable findings' risk in the base layers
    guessed: bool = False  # the base's extent was guessed (first OS package layer), not read from the history


def template_search(
    template_dir: str | Path | None,
    checkout: Path,
    packaged: Path,
    error: type[AcrguardError],
    what: str,
) -> list[Path]:
    """Where templates are looked up, first match wins: the user's directory (which must exist), else the git
    checkout's `policies/…` directory when there is one, then the templates packaged with acrguard, so that
    overriding one template means writing one file."""
    search: list[Path] = []
    if template_dir:
        user = Path(template_dir)
        if not user.is_dir():
            raise error(f"{user}: {what} directory does not exist or is not a directory")
        search.append(user)
    elif checkout.is_dir():
        search.append(checkout)
    search.append(packaged)
    return search


def make_environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """An environment over `template_dir`, the user's templates, then the defaults packaged with acrguard for
    every template the user's directory does not hold (so overriding one template means writing one file).

    With no directory, the user's templates are those in `policies/templates` of a git checkout, if any.
    """
    search = template_search(template_dir, CHECKOUT_TEMPLATES, PACKAGED_TEMPLATES, RemediationError, "template")
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(p)) for p in search]),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        finalize=_strip_controls,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["shquote"] = shquote
    env.filters["short_digest"] = short_digest
    env.filters["oneline"] = oneline
    env.globals["default_upgrade"] = _DefaultUpgrade(env)
    return env


class _DefaultUpgrade:
    """`default_upgrade(manager, package, version)` in templates: the upgrade command the ecosystem records
    give `manager` (scanner.ecosystems), rendered in this environment; "" when the manager has none.
    The default commands.j2 is this call; a user's commands.j2 can fall back to it."""

    def __init__(self, env: jinja2.Environment) -> None:
        self._env = env
        self._compiled: dict[str, jinja2.Template] = {}

    def __call__(self, manager: str, package: Package, version: str) -> str:
        known = manager_named(str(manager))
        if known is None or not known.upgrade:
            return ""
        template = self._compiled.get(known.name)
        if template is None:
            template = self._compiled[known.name] = self._env.from_string(known.upgrade)
        return template.render(package=package, version=version)


def _autoescape(name: str | None) -> bool:
    # select_autoescape() looks at the last suffix only; "summary.html.j2" must count as HTML.
    return name is not None and name.removesuffix(".j2").endswith((".html", ".htm"))


def _strip_controls(value: Any) -> Any:
    if isinstance(value, Markup):
        return Markup(_CONTROL.sub("", str(value)))
    if isinstance(value, str):
        return _CONTROL.sub("", value)
    return value


def shquote(value: object) -> str:
    """POSIX shell quoting (shlex.quote) of any value."""
    return shlex.quote(str(value))


def short_digest(value: object, length: int = 12) -> str:
    """`sha256:0123…` → `sha256:0123456789ab`."""
    algorithm, sep, encoded = str(value).partition(":")
    return f"{algorithm}:{encoded[:length]}" if sep else str(value)[:length]


def oneline(value: object) -> str:
    """Whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(value).split())


def package_manager(package: Package, image: ImageContext) -> str:
    """The tool that upgrades this package: apt, apk, dnf, yum, zypper, tdnf, rpm, pip, npm, maven, go…;
    "" for a kind with no known tool."""
    manager = manager_for(package.kind, image.os)
    return manager.name if manager is not None else ""


def render_finding(finding: Finding, image: ImageContext, env: jinja2.Environment) -> str:
    manager = package_manager(finding.package, image)
    fixable = finding.fix_status == "fixed" and finding.fixed_version
    context = {
        "finding": finding,
        "package": finding.package,
        "image": image,
        "manager": manager,
        "command": upgrade_command(env, manager, finding.package, finding.fixed_version) if fixable else "",
    }
    return _render(env, FINDING_TEMPLATE, context)


def attach_remediation(findings: Iterable[Finding], image: ImageContext, env: jinja2.Environment) -> list[Finding]:
    return [dataclasses.replace(f, remediation=render_finding(f, image, env)) for f in findings]


def render_summary(
    findings: Sequence[Finding],
    image: ImageContext,
    env: jinja2.Environment,
    *,
    top_actions: int = 5,
    template: str = SUMMARY_TEMPLATE,
) -> str:
    """The image-level summary (`summary.txt.j2`, or `summary.html.j2` through `template`)."""
    return _render(env, template, summary_context(findings, image, env, top_actions))


def summary_context(
    findings: Sequence[Finding],
    image: ImageContext,
    env: jinja2.Environment | None = None,
    top_actions: int = 5,
) -> dict[str, Any]:
    active = [f for f in findings if not f.disabled]
    actions = build_actions(active, image, env)
    counts = {s: sum(1 for f in active if f.severity == s) for s in SEVERITY_ORDER}
    fix_counts: dict[FixStatus, int] = {s: sum(1 for f in active if f.fix_status == s) for s in FIX_STATUSES}
    return {
        "image": image,
        "findings": list(findings),
        "active": active,
        "disabled": [f for f in findings if f.disabled],
        "severities": SEVERITY_ORDER,
        "counts": counts,
        "fix_counts": fix_counts,
        "actions": actions[:top_actions],
        "more_actions": max(0, len(actions) - top_actions),
        "base_image": base_image_hint(active, image.base),
    }


def build_actions(
    active: Iterable[Finding], image: ImageContext, env: jinja2.Environment | None = None
) -> list[Action]:
    """One action per package with fixable findings, most urgent first (most risk removed, then worst severity,
    then most fixed).

    With an environment, each action carries its command from commands.j2.
    """
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in active:
        if f.patchable and f.fixed_version:
            groups.setdefault((f.package.kind, f.package.name), []).append(f)
    actions: list[Action] = []
    for group in groups.values():
        group.sort(key=lambda f: (SEVERITY_ORDER.index(f.severity), f.id))
        package = group[0].package
        version = highest_version(package.ecosystem, [f.fixed_version for f in group])
        manager = package_manager(package, image)
        command = upgrade_command(env, manager, package, version) if env is not None else ""
        actions.append(Action(package, manager, version, tuple(group), group[0].severity, command))
    # The risk an upgrade removes first (the sum of its findings' risk scores), then as before.
    actions.sort(
        key=lambda a: (
            -round(sum(f.risk for f in a.findings), 2),
            SEVERITY_ORDER.index(a.severity),
            -len(a.findings),
            a.package.name,
        )
    )
    return actions


def highest_version(ecosystem: str, versions: list[str]) -> str:
    """The highest version in the ecosystem's own order; text order if the ecosystem has none, so one odd
    advisory cannot break the summary."""
    try:
        return max(versions, key=sort_key(ecosystem))
    except VersionError:
        return max(versions)


def base_image_hint(active: Sequence[Finding], base: BaseImage | None = None) -> BaseImageHint | None:
    """A hint when most of the fixable risk of the active findings sits in the base image's layers.

    Only patchable findings count: a newer base image cannot fix what has no fix yet. "Most" weighs each by its
    risk score (scanner.assess.risk), or counts them where none is scored. The base image is its first
    `base.layers` layers (from the history, scanner.image.base_image); without them, a guess: it ends at the
    first layer that introduced OS packages (where the OS package database appears: layer 0 for most images).
    """
    active = [f for f in active if f.patchable]
    if not active:
        return None
    guessed = not (base and base.layers)
    if base and base.layers:
        base_layer_count = base.layers
    else:
        os_layers = [f.package.layer.index for f in active if f.category == "os" and f.package.layer is not None]
        if not os_layers:
            return None
        base_layer_count = min(os_layers) + 1
    per_layer: dict[int, tuple[LayerInfo, int]] = {}
    in_base: list[Finding] = []
    for f in active:
        layer = f.package.layer
        if layer is not None and layer.index < base_layer_count:
            per_layer[layer.index] = (layer, per_layer.get(layer.index, (layer, 0))[1] + 1)
            in_base.append(f)
    total_risk = sum(f.risk for f in active)
    base_risk = sum(f.risk for f in in_base)
    share = base_risk / total_risk if total_risk > 0 else len(in_base) / len(active)
    if share <= 0.5:
        return None
    layer, _ = max(per_layer.values(), key=lambda item: (item[1], -item[0].index))
    return BaseImageHint(
        layer=layer,
        count=len(in_base),
        total=len(active),
        base_layer_count=base_layer_count,
        name=base.name if base else "",
        digest=base.digest if base else "",
        risk_share=round(share * 100),
        guessed=guessed,
    )


def upgrade_command(env: jinja2.Environment, manager: str, package: Package, version: str) -> str:
    """The `upgrade` macro of commands.j2 called from Python, so as plain text.

    HTML templates must use this (Action.command) rather than import commands.j2: Jinja compiles
    commands.j2 without escaping, and an autoescaping caller would mark the macro's output safe unescaped.
    """
    with _template_errors(COMMANDS_TEMPLATE):
        template = env.get_template(COMMANDS_TEMPLATE)
        try:
            upgrade = getattr(template.module, "upgrade")  # noqa: B009 (a template export mypy cannot see)
            return str(upgrade(manager, package, version)).strip()
        except Exception:
            # Outside render() Jinja leaves tracebacks on generated Python lines; this re-raises with
            # template lines, as render() would.
            env.handle_exception()


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    with _template_errors(name):
        return env.get_template(name).render(context).strip() + "\n"


@contextmanager
def _template_errors(name: str) -> Iterator[None]:
    """Jinja errors as one-line RemediationErrors naming the template file and line."""
    try:
        yield
    except jinja2.TemplateNotFound as e:
        raise RemediationError(f"template '{e.name}' not found (rendering {name})") from e
    except jinja2.TemplateSyntaxError as e:
        raise RemediationError(f"{e.filename or e.name or name}, line {e.lineno}: syntax error: {e.message}") from e
    except jinja2.TemplateError as e:
        path, line = _template_frame(e.__traceback__)
        where = f"{path}, line {line}" if path else name
        rendering = "" if Path(path).name == name else f" (rendering {name})"
        raise RemediationError(f"{where}{rendering}: {e.message or type(e).__name__}") from e


def _template_frame(tb: TracebackType | None) -> tuple[str, int]:
    """File and line of the innermost template frame: Jinja compiles templates under their own file
    names and rewrites tracebacks to template lines, so any frame not from a .py file is a template."""
    found: tuple[str, int] = ("", 0)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.endswith(".py") and not filename.startswith("<"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found
