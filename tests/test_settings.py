"""Settings: each one works as an environment variable and as a flag, alike; a bad value stops
the command with exit code 2 naming it; the documented names exist."""

from __future__ import annotations

import asyncio
import pathlib
import re
import sys
import typing
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from ingest.settings import IngestSettings
from msgstatus import cli
from notifier.settings import NotifierSettings, RecoverSettings
from projector.settings import DlqSettings, ProjectorSettings, ReplaySettings
from query_api.settings import ApiSettings
from tests.factories import new_secret

CLASSES: list[type[BaseSettings]] = [
    IngestSettings,
    ApiSettings,
    ProjectorSettings,
    ReplaySettings,
    DlqSettings,
    NotifierSettings,
    RecoverSettings,
]
DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"

# Values whose form a validator fixes; every other one is derived from the field's type.
SAMPLES = {
    "log_format": "text",
    "log_level": "DEBUG",
    "webhook_secret": new_secret(),
    "public_base_url": "https://hooks.example.test/prefix",
    "smpp_timezone": "Europe/Berlin",
    "allow_unsigned_providers": "smpp,events",
    "since": "2026-01-01T00:00:00Z",
    "retry_schedule_s": "1,2.5",
    "redis_url": "redis+cluster://redis-0.test:6379,redis-1.test:6379",
    "tenants_file": str(pathlib.Path(__file__).parent.parent / "docs/examples/tenants.json"),
    "api_keys_file": str(pathlib.Path(__file__).parent.parent / "docs/examples/api-keys.json"),
}
PARTNERS = {
    "infobip_webhook_username": ("infobip_webhook_password", "p"),
    "infobip_webhook_password": ("infobip_webhook_username", "u"),
    "sinch_webhook_username": ("sinch_webhook_password", "p"),
    "sinch_webhook_password": ("sinch_webhook_username", "u"),
    "smpp_receipt_id_base": ("smpp_submit_id_base", "hex"),
    "smpp_submit_id_base": ("smpp_receipt_id_base", "hex"),
}


def sample(cls: type[BaseSettings], name: str) -> str | None:
    """A valid text for the setting that differs from its default; None for an on/off flag."""
    field = cls.model_fields[name]
    default = field.default
    text: str | None
    if name in SAMPLES:
        text = SAMPLES[name]
    elif isinstance(default, bool):
        text = None
    elif isinstance(default, int):
        text = str(default - 1 if default > 1 else default + 1)
    elif isinstance(default, float):
        text = str(default + 0.5)
    elif typing.get_origin(field.annotation) is typing.Literal:
        text = next(a for a in typing.get_args(field.annotation) if a not in (default, "text"))
    elif isinstance(default, list):
        text = "a,b"
    else:
        text = f"sample-{name.replace('_', '-')}"
    return text


def value_of(settings: BaseSettings, name: str) -> Any:
    """A setting's value, secrets revealed, for comparison."""
    value = getattr(settings, name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


CASES = [(cls, name) for cls in CLASSES for name in cls.model_fields]


@pytest.mark.parametrize(("cls", "name"), CASES, ids=[f"{c.__name__}-{n}" for c, n in CASES])
def test_every_setting_works_as_a_flag_and_as_a_variable_alike(
    cls: type[BaseSettings], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--<name> v`` and ``MSGSTATUS_<NAME>=v`` give the same, non-default value."""
    text = sample(cls, name)
    settings: dict[str, str | None] = {name: text}
    if name in PARTNERS:
        settings[PARTNERS[name][0]] = PARTNERS[name][1]
    flags: list[str] = []
    for key, value in settings.items():
        flags += [f"--{key.replace('_', '-')}"] + ([value] if value is not None else [])
    by_flag = cls(_cli_parse_args=flags)
    for key, value in settings.items():
        monkeypatch.setenv(f"MSGSTATUS_{key.upper()}", "true" if value is None else value)
    by_env = cls()
    assert value_of(by_flag, name) == value_of(by_env, name)
    assert value_of(by_flag, name) != cls.model_fields[name].default


def test_every_documented_variable_is_a_setting() -> None:
    """Each MSGSTATUS_* name in the README and docs/operations.md is read by some command."""
    text = (DOCS / "operations.md").read_text() + (DOCS.parent / "README.md").read_text()
    documented = set(re.findall(r"MSGSTATUS_([A-Z][A-Z0-9_]*[A-Z0-9])", text))
    known = {n.upper() for cls in CLASSES for n in cls.model_fields}
    assert documented - known == set()


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["api", "--api-port", "eighty"], {}, "MSGSTATUS_API_PORT"),
        (["ingest"], {"MSGSTATUS_MAX_BODY_BYTES": "-1"}, "MSGSTATUS_MAX_BODY_BYTES"),
        (["projector"], {"MSGSTATUS_TOPIC_PARTITIONS": "0"}, "MSGSTATUS_TOPIC_PARTITIONS"),
        (["replay", "--grace-s", "soon"], {}, "MSGSTATUS_GRACE_S"),
        (["dlq", "list", "--limit", "0"], {}, "MSGSTATUS_LIMIT"),
        (["ingest", "--smpp-timezone", "Mars/Olympus"], {}, "MSGSTATUS_SMPP_TIMEZONE"),
    ],
)
def test_a_bad_setting_exits_2_naming_it(
    argv: list[str],
    env: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`msgstatus <command>` with a bad value: exit code 2, "invalid setting <NAME>", nothing
    started."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(argv) == 2
    assert f"invalid setting {named}:" in capsys.readouterr().err


async def test_the_installed_command_exits_2_on_a_bad_setting() -> None:
    """The real process: `python -m msgstatus ingest --ingest-port x` exits with code 2."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "msgstatus",
        "ingest",
        "--ingest-port",
        "x",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert b"invalid setting MSGSTATUS_INGEST_PORT:" in err
