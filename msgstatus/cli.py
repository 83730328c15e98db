"""The ``msgstatus`` command: one subcommand per process (docs/design.md §1).

Each subcommand builds its frozen settings from ``MSGSTATUS_*`` environment variables and
the same names as flags (``--kafka-bootstrap-servers``), then runs its component.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from runtime import logs
from runtime.redact import secrets_of

USAGE = """usage: msgstatus <command> [--setting-name value ...]

commands:
  ingest      webhook receiver: provider callbacks -> Kafka   (port 8081)
  projector   Kafka -> Redis projection (consumer group)
  api         read API over the Redis projection             (port 8080)
  replay      rebuild the projection from the log: --since ISO-8601, --in-place, --workers N
  dlq list    show dead-lettered events with their reasons (--limit N)
  dlq replay  send dead-lettered events through the fold again (--from-beginning)
  notifier    push status changes to senders as signed webhooks (docs/push.md)
  notifier recover --since ISO-8601   take the change log in again from a time
  audit       list audited reads: --since ISO-8601 [--key KEY-ID]
  keys hash   print the SHA-256 of a key read from standard input (for the keys file)
  keys add    --file PATH --id KEY-ID [--tenant T] [--services A,B]: make a key, add its
              hash to the keys file, print the key once

Every setting is an environment variable MSGSTATUS_<NAME> or a flag --<name>;
'msgstatus <command> --help' lists them.
"""


def _ingest(argv: Sequence[str]) -> None:
    from ingest.app import create_app  # noqa: PLC0415 - import only the component that runs
    from ingest.settings import IngestSettings  # noqa: PLC0415
    from runtime.web import run  # noqa: PLC0415

    settings = IngestSettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus ingest")  # type: ignore[call-arg]
    # Every tenant's credentials are masked in the logs, not only the default tenant's.
    secrets = [s for tenant in settings.tenants().values() for s in secrets_of(tenant)]
    logs.configure(settings.log_level, settings.log_format, secrets)
    run(create_app(settings), settings.host, settings.ingest_port, settings.shutdown_timeout_s)


def _api(argv: Sequence[str]) -> None:
    from query_api.app import create_app  # noqa: PLC0415
    from query_api.settings import ApiSettings  # noqa: PLC0415
    from runtime.web import run  # noqa: PLC0415

    settings = ApiSettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus api")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format, secrets_of(settings))
    run(create_app(settings), settings.host, settings.api_port, settings.shutdown_timeout_s)


def _projector(argv: Sequence[str]) -> None:
    from projector.runner import main as run_projector  # noqa: PLC0415
    from projector.settings import ProjectorSettings  # noqa: PLC0415

    settings = ProjectorSettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus projector")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format, secrets_of(settings))
    run_projector(settings)


def _replay(argv: Sequence[str]) -> None:
    import asyncio  # noqa: PLC0415

    from projector.errors import GenerationError, ReplayRefused  # noqa: PLC0415
    from projector.replay import Replay  # noqa: PLC0415
    from projector.settings import ReplaySettings  # noqa: PLC0415
    from schemas.timefmt import parse_iso_ms  # noqa: PLC0415

    settings = ReplaySettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus replay")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format, secrets_of(settings))
    since = parse_iso_ms(settings.since) if settings.since else None
    if settings.metrics_port:  # msgstatus_replay_progress_ratio for a dashboard
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(settings.metrics_port, addr=settings.host)
    replay = Replay(
        settings,
        since_ms=since,
        in_place=settings.in_place,
        grace_s=settings.grace_s,
        workers=settings.workers,
    )
    try:
        result = asyncio.run(replay.run())
    except (ReplayRefused, GenerationError) as exc:
        sys.stderr.write(f"msgstatus replay: {exc}\n")
        raise SystemExit(1) from None
    sys.stdout.write(
        f"replayed {result.records} events into generation {result.generation} in "
        f"{result.seconds:.1f} s; {'switched' if result.switched else 'in place'}\n"
    )


def _dlq(argv: Sequence[str]) -> None:
    import asyncio  # noqa: PLC0415

    import orjson  # noqa: PLC0415

    from projector.dlq import list_letters, replay_letters  # noqa: PLC0415
    from projector.settings import DlqSettings  # noqa: PLC0415

    action, rest = (argv[0], argv[1:]) if argv and argv[0] in ("list", "replay") else ("", argv)
    if not action:
        sys.stderr.write("usage: msgstatus dlq list|replay [--limit N] [--from-beginning]\n")
        raise SystemExit(2)
    settings = DlqSettings(_cli_parse_args=list(rest), _cli_prog_name=f"msgstatus dlq {action}")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format, secrets_of(settings))
    if action == "list":
        for letter in asyncio.run(list_letters(settings, settings.limit)):
            sys.stdout.write(orjson.dumps(letter).decode() + "\n")
    else:
        sent = asyncio.run(replay_letters(settings, settings.from_beginning))
        sys.stdout.write(f"sent {sent} dead-lettered events through the fold again\n")


def _notifier(argv: Sequence[str]) -> None:
    from notifier.endpoints import ConfigError  # noqa: PLC0415

    if argv and argv[0] == "recover":
        _recover(argv[1:])
        return
    from notifier.runner import main as run_notifier  # noqa: PLC0415
    from notifier.settings import NotifierSettings  # noqa: PLC0415

    settings = NotifierSettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus notifier")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format)
    try:
        run_notifier(settings)
    except ConfigError as exc:
        sys.stderr.write(f"msgstatus notifier: {exc}\n")
        raise SystemExit(2) from None


def _recover(argv: Sequence[str]) -> None:
    import asyncio  # noqa: PLC0415

    from notifier.recover import recover  # noqa: PLC0415
    from notifier.settings import RecoverSettings  # noqa: PLC0415
    from schemas.timefmt import TimestampError, parse_iso_ms  # noqa: PLC0415

    prog = "msgstatus notifier recover"
    settings = RecoverSettings(_cli_parse_args=list(argv), _cli_prog_name=prog)  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format)
    try:
        since = parse_iso_ms(settings.since)
    except TimestampError as exc:
        sys.stderr.write(f"{prog}: --since needs an ISO 8601 time: {exc}\n")
        raise SystemExit(2) from None
    queued = asyncio.run(recover(settings, since))
    sys.stdout.write(f"queued {queued} deliveries from the change log since {settings.since}\n")


def _audit(argv: Sequence[str]) -> None:
    import asyncio  # noqa: PLC0415

    from query_api.audit import list_audit  # noqa: PLC0415
    from query_api.settings import AuditSettings  # noqa: PLC0415
    from schemas.timefmt import TimestampError, parse_iso_ms  # noqa: PLC0415

    settings = AuditSettings(_cli_parse_args=list(argv), _cli_prog_name="msgstatus audit")  # type: ignore[call-arg]
    logs.configure(settings.log_level, settings.log_format)
    try:
        since = parse_iso_ms(settings.since)
    except TimestampError as exc:
        sys.stderr.write(f"msgstatus audit: --since needs an ISO 8601 time: {exc}\n")
        raise SystemExit(2) from None
    for entry in asyncio.run(list_audit(settings, since, settings.key or None)):
        sys.stdout.write(entry.to_json().decode() + "\n")


def _keys(argv: Sequence[str]) -> None:
    import argparse  # noqa: PLC0415

    from query_api.keys import add_key, hash_key  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="msgstatus keys")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("hash", help="SHA-256 of a key read from standard input")
    add = sub.add_parser("add", help="make a key and add its hash to the keys file")
    add.add_argument("--file", required=True, help="the keys file (MSGSTATUS_API_KEYS_FILE)")
    add.add_argument("--id", required=True, help="the key id shown in the audit")
    add.add_argument("--tenant", default="_", help="the key's tenant (default '_')")
    add.add_argument("--services", default="", help="reference.service values, a,b (all)")
    args = parser.parse_args(list(argv))
    if args.action == "hash":
        key = sys.stdin.readline().strip()
        if not key:
            sys.stderr.write("msgstatus keys hash: no key on standard input\n")
            raise SystemExit(2)
        sys.stdout.write(hash_key(key) + "\n")
        return
    services = [s.strip() for s in args.services.split(",") if s.strip()] or None
    try:
        key = add_key(args.file, args.id, args.tenant, services)
    except ValueError as exc:
        sys.stderr.write(f"msgstatus keys add: {exc}\n")
        raise SystemExit(2) from None
    sys.stdout.write(key + "\n")


COMMANDS: dict[str, Callable[[Sequence[str]], None]] = {
    "ingest": _ingest,
    "projector": _projector,
    "api": _api,
    "replay": _replay,
    "dlq": _dlq,
    "notifier": _notifier,
    "audit": _audit,
    "keys": _keys,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        sys.stderr.write(USAGE)
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        COMMANDS[args[0]](args[1:])
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            name = "MSGSTATUS_" + "_".join(str(p) for p in err["loc"]).upper()
            sys.stderr.write(f"msgstatus {args[0]}: invalid setting {name}: {err['msg']}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
