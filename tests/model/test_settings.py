"""The settings: declared once, read from the environment in one place (`Settings.from_environ`), and
documented by README.md's settings table, which must list exactly the declarations with their meanings."""

from __future__ import annotations

import ast
import logging
import re
from dataclasses import fields
from pathlib import Path

import pytest

from scanner.model.limits import Limits
from scanner.model.settings import SETTINGS, Settings, SettingsError, env_name, timer_schedule

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TABLE_HEAD = "Settings (app settings in Azure, environment variables locally):"
# The names through which a module could read (or change) the process's environment.
ENVIRONMENT_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


def environment_reads(paths: list[Path], root: Path) -> list[str]:
    """`path:line name` for every use of os.environ, os.getenv and their kin in `paths`."""
    found: list[tuple[str, int, str]] = []
    for path in paths:
        where = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES:
                found.append((where, node.lineno, node.attr))
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                found += [(where, node.lineno, a.name) for a in node.names if a.name in ENVIRONMENT_NAMES]
    return [f"{where}:{line} {name}" for where, line, name in sorted(found)]


def test_nothing_but_the_settings_reads_the_environment() -> None:
    sources = [p for p in sorted((ROOT / "scanner").rglob("*.py")) if p != ROOT / "scanner/model/settings.py"]
    assert environment_reads([*sources, ROOT / "function_app.py"], ROOT) == []


def test_the_check_sees_every_way_in(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\nfrom os import getenv, path\nos.environ.get('A')\nos.getenv('B')\n"
        "import os as o\no.putenv('C', '')\n"
    )
    assert environment_reads([module], tmp_path) == [
        "m.py:2 getenv",
        "m.py:3 environ",
        "m.py:4 getenv",
        "m.py:6 putenv",
    ]


# --------------------------------------------------------------------------------------------------
# the declarations


def test_every_field_is_one_declared_setting() -> None:
    assert list(SETTINGS) == [f.name for f in fields(Settings)]
    names = [s.env for s in SETTINGS.values()]
    assert len(names) == len(set(names))
    for name, setting in SETTINGS.items():
        assert re.fullmatch(r"(ACRGUARD|WEBSITE|DOCKER)_[A-Z_]+(<NAME>)?", setting.env), name
        assert setting.meaning and "\n" not in setting.meaning and "|" not in setting.meaning, name
        assert getattr(Settings(), name) == setting.default, name
    assert env_name("store") == "ACRGUARD_STORE"


def test_unset_and_empty_are_the_defaults() -> None:
    assert Settings.from_environ({}) == Settings()
    assert Settings.from_environ({s.env: "" for s in SETTINGS.values() if s.prefix is None}) == Settings()


def readme_settings() -> list[tuple[str, str]]:
    """(variable, meaning) of each row of README.md's settings table."""
    lines = README.read_text(encoding="utf-8").split(TABLE_HEAD, 1)[1].strip().splitlines()
    table = [line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("|"))]]
    assert table[:2] == ["| setting | meaning |", "|---|---|"]
    rows = []
    for line in table[2:]:
        match = re.fullmatch(r"\| `([^`]+)` \| (.+) \|", line)
        assert match is not None, f"README.md settings row not `| \\`NAME\\` | meaning |`: {line}"
        rows.append((match.group(1), match.group(2)))
    return rows


def test_the_readme_table_is_the_declarations() -> None:
    declared = [(s.env, s.meaning) for s in SETTINGS.values()]
    expected = "\n".join(f"| `{env}` | {meaning} |" for env, meaning in declared)
    assert readme_settings() == declared, f"README.md's settings rows should be:\n{expected}"


# --------------------------------------------------------------------------------------------------
# reading values


def test_values_as_read() -> None:
    settings = Settings.from_environ(
        {
            "ACRGUARD_STORE": "  postgresql://db/acrguard  ",
            "ACRGUARD_DB": "/data/vuln db.sqlite",
            "ACRGUARD_API_KEY": " key ",  # secrets are taken as given
            "ACRGUARD_MAX_ATTEMPTS": " 7 ",
            "ACRGUARD_INSECURE_REGISTRIES": "Registry.LAN:5000, ,127.0.0.1:5001",
            "ACRGUARD_DB_ECOSYSTEMS": "PyPI, Alpine,",
            "ACRGUARD_ALLOW_ANONYMOUS": " TRUE ",
            "WEBSITE_INSTANCE_ID": "instance-1",
            "ACRGUARD_LIMIT_MAX_LAYERS": "9",
            "ACRGUARD_JOB_LIMIT_WALL_SECONDS": "60",
            "ACRGUARD_RESCAN_SCHEDULE": "0 30 4 * * *",
            "UNRELATED": "x",
        }
    )
    assert settings.store == "postgresql://db/acrguard"
    assert settings.db == "/data/vuln db.sqlite"
    assert settings.api_key == " key "
    assert settings.max_attempts == 7
    assert settings.insecure_registries == frozenset({"registry.lan:5000", "127.0.0.1:5001"})
    assert settings.db_ecosystems == ("PyPI", "Alpine")
    assert settings.allow_anonymous and settings.on_app_service
    assert settings.limits == Limits(max_layers=9)
    assert settings.job_limits == (("WALL_SECONDS", "60"),)
    assert settings.rescan_schedule == "0 30 4 * * *"
    # Only the word opens anonymous access.
    assert not Settings.from_environ({"ACRGUARD_ALLOW_ANONYMOUS": "yes"}).allow_anonymous
    assert not Settings().on_app_service


def test_secrets_stay_out_of_the_repr() -> None:
    secret = "hunter2-secret"
    names = ["ACRGUARD_API_KEY", "ACRGUARD_API_TOKEN", "ACRGUARD_FUNCTION_KEY", "ACRGUARD_EVENTGRID_TOPIC_KEY"]
    names.append("ACRGUARD_EVENTS_TOKEN")
    settings = Settings.from_environ({**dict.fromkeys(names, secret), "ACRGUARD_REGISTRY_PASSWORD": secret})
    assert settings.api_key == secret and secret not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ACRGUARD_MAX_ATTEMPTS": "many"}, "ACRGUARD_MAX_ATTEMPTS: 'many' is not a whole number of attempts"),
        ({"ACRGUARD_VISIBILITY_TIMEOUT": "5m"}, "ACRGUARD_VISIBILITY_TIMEOUT: '5m' is not a whole number of seconds"),
        ({"ACRGUARD_LIMIT_NOPE": "1"}, "ACRGUARD_LIMIT_NOPE: unknown limit 'NOPE' (known: max_total_bytes"),
        ({"ACRGUARD_LIMIT_MAX_LAYERS": "0"}, "ACRGUARD_LIMIT_MAX_LAYERS: limit max_layers: must be positive, got 0"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_environ(environ)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_timer_window_falls_back_to_its_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="scanner")
    settings = Settings.from_environ({"ACRGUARD_RESCAN_DAYS": "a month", "ACRGUARD_LOG_LOOKBACK_MINUTES": "0"})
    assert (settings.rescan_days, settings.log_lookback_minutes) == (30, 1)
    assert [r.getMessage() for r in caplog.records] == ["ACRGUARD_RESCAN_DAYS='a month' is not a number; using 30"]
    assert (
        Settings.from_environ({"ACRGUARD_RESCAN_DAYS": "-3", "ACRGUARD_LOG_LOOKBACK_MINUTES": "240"}).rescan_days == 1
    )


def test_a_timer_schedule_is_read_alone() -> None:
    broken = {"ACRGUARD_MAX_ATTEMPTS": "many"}  # does not stop the app's blueprints from loading
    assert timer_schedule("rescan_schedule", broken) == "0 0 3 * * *"
    assert timer_schedule("log_schedule", {"ACRGUARD_LOG_SCHEDULE": ""}) == "0 */15 * * * *"
    assert timer_schedule("db_update_schedule", {"ACRGUARD_DB_UPDATE_SCHEDULE": "0 0 1 * * *"}) == "0 0 1 * * *"
