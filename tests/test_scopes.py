"""Access scopes (issue 17): tenants bound to ingest credentials, hashed API keys bound to a
tenant and services, reads within the key's scope, scope-bound cursors, key rotation
without a restart, the audit trail, push per tenant. Against the real Kafka and Redis."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from pydantic import SecretStr, ValidationError

from ingest.settings import IngestSettings
from notifier.endpoints import Directory, SubscriptionsFile
from query_api.keys import KeyRing, KeysFileError, hash_key
from query_api.settings import ApiSettings
from schemas.audit import audit_topic, mask_phone
from schemas.changes import ChangeRecord
from schemas.events import EventRecord
from schemas.status import Status
from schemas.tenancy import DEFAULT_TENANT, Scope
from tests.factories import acceptance, new_secret, random_phone, receipt
from tests.support.kafka_util import read_all
from tests.support.providers import basic
from tests.support.stack import Stack, new_stack

ACME_KEY = "acme-all-" + uuid.uuid4().hex
ACME_OTP_KEY = "acme-otp-" + uuid.uuid4().hex
GLOBEX_KEY = "globex-all-" + uuid.uuid4().hex


def _keys_file(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write a keys file atomically (as an operator's tooling would)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"keys": entries}))
    os.replace(temporary, path)


async def msgstatus(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> tuple[int, str, str]:
    """Run the ``msgstatus`` command; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "msgstatus",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _entry(key_id: str, key: str, tenant: str, services: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": key_id, "sha256": hash_key(key), "tenant": tenant}
    if services is not None:
        out["services"] = services
    return out


class Tenants:
    """A stack with three tenants: the default one (the stack's own secret and plain key),
    ``acme`` and ``globex`` (secrets in a tenants file, keys in a keys file)."""

    def __init__(self, stack: Stack, folder: Path, secrets: dict[str, str]) -> None:
        self.stack = stack
        self.folder = folder
        self.secrets = secrets

    async def get(self, path: str, key: str, **headers: str) -> Any:
        async with self.stack.http.get(
            self.stack.api_url + path, headers={"X-Api-Key": key, **headers}
        ) as resp:
            body = await resp.read()
            return resp.status, dict(resp.headers), orjson.loads(body) if body else None


@pytest.fixture(scope="module")
async def tenants(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Tenants]:
    folder = tmp_path_factory.mktemp("tenants")
    secrets = {"acme": new_secret(), "globex": new_secret()}
    (folder / "tenants.json").write_text(
        json.dumps(
            {
                "tenants": {
                    "acme": {
                        "webhook_secret": secrets["acme"],
                        "infobip_webhook_username": "acme",
                        "infobip_webhook_password": "acme-infobip-password",
                    },
                    "globex": {"webhook_secret": secrets["globex"]},
                }
            }
        )
    )
    _keys_file(
        folder / "keys.json",
        [
            _entry("acme-all", ACME_KEY, "acme"),
            _entry("acme-otp", ACME_OTP_KEY, "acme", ["OTP"]),
            _entry("globex-all", GLOBEX_KEY, "globex"),
        ],
    )
    stack = new_stack()
    await stack.start(
        tenants_file=str(folder / "tenants.json"),
        infobip_webhook_username="default-user",
        infobip_webhook_password=SecretStr("default-infobip-password"),
        api_overrides={"api_keys_file": str(folder / "keys.json"), "api_keys_poll_s": 0.2},
    )
    yield Tenants(stack, folder, secrets)
    await stack.close()


async def _post(t: Tenants, tenant: str, events: list[dict[str, Any]]) -> None:
    secret = t.stack.secret if tenant == DEFAULT_TENANT else t.secrets[tenant]
    reply = await t.stack.post(events, secret=secret)
    assert reply.status == 202, reply.body


async def _wait(t: Tenants, path: str, key: str, count: int) -> Any:
    deadline = time.monotonic() + 15
    while True:
        status, headers, body = await t.get(path, key)
        if status == 200 and len(body["messages"]) >= count:
            return status, headers, body
        assert time.monotonic() < deadline, (path, status, body)
        await asyncio.sleep(0.05)


# --- ingest: the credential names the tenant ---------------------------------------------


async def test_every_record_carries_the_tenant_of_the_secret_that_signed_it(
    tenants: Tenants,
) -> None:
    ids = {name: str(uuid.uuid4()) for name in ("_", "acme", "globex")}
    for tenant, mid in ids.items():
        await _post(tenants, tenant, [acceptance(mid)])
    records = await read_all(tenants.stack.kafka, tenants.stack.topic, timeout_ms=1500)
    by_id = {r["messageId"]: r for r in records if r.get("messageId") in ids.values()}
    assert "tenant" not in by_id[ids["_"]]  # the default tenant's records are as before
    assert by_id[ids["acme"]]["tenant"] == "acme"
    assert by_id[ids["globex"]]["tenant"] == "globex"
    assert EventRecord.from_json(orjson.dumps(by_id[ids["_"]])).tenant == DEFAULT_TENANT


async def test_a_secret_of_no_tenant_is_refused(tenants: Tenants) -> None:
    reply = await tenants.stack.post([acceptance(str(uuid.uuid4()))], secret=new_secret())
    assert reply.status == 401


async def test_provider_credentials_name_their_tenant(tenants: Tenants) -> None:
    """Infobip callbacks with acme's basic-auth user are acme's; the default user's are the
    default tenant's; an unknown password is 401."""
    from tests.test_providers_e2e import infobip_report  # noqa: PLC0415

    stack = tenants.stack
    pids = [uuid.uuid4().hex, uuid.uuid4().hex]
    auths = [
        basic("acme", "acme-infobip-password"),
        basic("default-user", "default-infobip-password"),
    ]
    for pid, auth in zip(pids, auths, strict=True):
        body = orjson.dumps(
            {"results": [infobip_report(pid, 5, "DELIVERED_TO_HANDSET", "DELIVERED")]}
        )
        async with stack.http.post(
            stack.ingest_url + "/webhooks/infobip",
            data=body,
            headers={"Authorization": auth, "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 200, await resp.text()
    async with stack.http.post(
        stack.ingest_url + "/webhooks/infobip",
        data=b'{"results": []}',
        headers={"Authorization": basic("acme", "wrong"), "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 401
    records = await read_all(stack.kafka, stack.topic, timeout_ms=1500)
    tenant_of = {
        r["provider"]["id"]: r.get("tenant", DEFAULT_TENANT)
        for r in records
        if r.get("source") == "infobip"
    }
    assert tenant_of[pids[0]] == "acme"
    assert tenant_of[pids[1]] == DEFAULT_TENANT


def test_tenants_file_mistakes_stop_ingest(tmp_path: Path) -> None:
    secret = new_secret()
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"tenants": {"a": {"webhook_secret": secret}}}))
    with pytest.raises(ValidationError, match="also tenant"):
        IngestSettings(webhook_secret=SecretStr(secret), tenants_file=str(path))
    path.write_text(json.dumps({"tenants": {"_": {"webhook_secret": new_secret()}}}))
    with pytest.raises(ValidationError, match="default tenant"):
        IngestSettings(tenants_file=str(path))
    path.write_text(json.dumps({"tenants": {"a": {"infobip_webhook_username": "u"}}}))
    with pytest.raises(ValidationError, match="go together"):
        IngestSettings(tenants_file=str(path))
    path.write_text(json.dumps({"tenants": {"a b": {}}}))
    with pytest.raises(ValidationError, match="tenant"):
        IngestSettings(tenants_file=str(path))
    assert set(IngestSettings(tenants_file="docs/examples/tenants.json").tenants()) == {
        "_",
        "acme",
        "globex",
    }


# --- reads within the key's scope ---------------------------------------------------------


async def _seed_services(t: Tenants) -> tuple[str, str, dict[str, str]]:
    """acme: three messages to one number and reference key, services OTP, OTP, SIGN."""
    phone, ref = random_phone(), "ref-" + uuid.uuid4().hex
    ids = {}
    events = []
    for i, service in enumerate(("OTP", "OTP", "SIGN")):
        mid = str(uuid.uuid4())
        ids[f"{service}{i}"] = mid
        events.append(
            acceptance(
                mid,
                phone=phone,
                at=f"2026-02-04T06:5{i}:00Z",
                reference={"service": service, "action": "A", "key": ref},
            )
        )
    await _post(t, "acme", events)
    await _wait(t, f"/api/messagestatus/phonenumber/{quote(phone)}", ACME_KEY, 3)
    return phone, ref, ids


async def test_a_service_scoped_key_sees_only_its_services(tenants: Tenants) -> None:
    phone, ref, ids = await _seed_services(tenants)
    for path in (
        f"/api/messagestatus/phonenumber/{quote(phone)}",
        f"/api/messagestatus/reference/{ref}",
    ):
        status, _, body = await tenants.get(path, ACME_OTP_KEY)
        assert status == 200
        assert [m["message"]["id"] for m in body["messages"]] == [ids["OTP1"], ids["OTP0"]]
        _, _, everything = await tenants.get(path, ACME_KEY)
        assert len(everything["messages"]) == 3
    for suffix in ("", "/history"):
        status, _, body = await tenants.get(
            f"/api/messagestatus/{ids['SIGN2']}{suffix}", ACME_OTP_KEY
        )
        assert status == 404, (suffix, body)
        assert body["type"] == "/problems/not-found"
        status, _, _ = await tenants.get(f"/api/messagestatus/{ids['OTP0']}{suffix}", ACME_OTP_KEY)
        assert status == 200, suffix
    await _no_deliveries_for(tenants, ids["SIGN2"], ACME_OTP_KEY)


async def test_a_cursor_is_bound_to_the_scope_it_was_made_for(tenants: Tenants) -> None:
    phone, _, ids = await _seed_services(tenants)
    path = f"/api/messagestatus/phonenumber/{quote(phone)}"
    # Paging with the service-scoped key: one message per page, only its services.
    seen, url = [], f"{path}?count=1"
    while url:
        status, headers, body = await tenants.get(url, ACME_OTP_KEY)
        assert status == 200, body
        seen += [m["message"]["id"] for m in body["messages"]]
        link = headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
        if url:
            cursor = url.split("cursor=")[1]
            assert cursor.endswith("." + Scope("acme", frozenset({"OTP"})).tag())
            for other in (ACME_KEY, GLOBEX_KEY, tenants.stack.api_key):
                refused, _, problem = await tenants.get(url, other)
                assert refused == 400, (other, problem)
                assert problem["errors"][0]["field"] == "cursor"
    assert seen == [ids["OTP1"], ids["OTP0"]]
    # The default key's cursors keep their form, and are refused for the tenants' keys.
    status, headers, _ = await tenants.get(f"{path}?count=1", ACME_KEY)
    acme_next = headers["Link"][1 : headers["Link"].index(">")]
    assert (await tenants.get(acme_next, ACME_KEY))[0] == 200
    assert (await tenants.get(acme_next, tenants.stack.api_key))[0] == 400


async def _no_deliveries_for(t: Tenants, message_id: str, key: str) -> None:
    """Deliveries of a message outside the key's scope read as an unknown id's: none, and a
    resend queues none."""
    status, _, body = await t.get(f"/api/messagestatus/{message_id}/deliveries", key)
    assert (status, body) == (200, {"messageId": message_id, "endpoints": [], "attempts": []})
    async with t.stack.http.post(
        f"{t.stack.api_url}/api/messagestatus/{message_id}/deliveries/resend",
        headers={"X-Api-Key": key},
    ) as resp:
        assert resp.status == 202
        assert (await resp.json())["queued"] == 0


# --- tenants apart (the projection keys carry the tenant) -------------------------------------


async def _seed_two_tenants(t: Tenants) -> tuple[str, str, dict[str, list[str]]]:
    phone, ref = random_phone(), "shared-" + uuid.uuid4().hex
    ids: dict[str, list[str]] = {"acme": [], "globex": []}
    for tenant, n in (("acme", 2), ("globex", 3)):
        events = []
        for i in range(n):
            mid = str(uuid.uuid4())
            ids[tenant].append(mid)
            events.append(
                acceptance(mid, phone=phone, at=f"2026-02-04T07:0{i}:00Z", reference={"key": ref})
            )
        await _post(t, tenant, events)
    for tenant, key in (("acme", ACME_KEY), ("globex", GLOBEX_KEY)):
        for mid in ids[tenant]:
            deadline = time.monotonic() + 15
            while (await t.get(f"/api/messagestatus/{mid}", key))[0] != 200:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    return phone, ref, ids


async def test_two_tenants_with_one_number_and_reference_see_only_their_own(
    tenants: Tenants,
) -> None:
    phone, ref, ids = await _seed_two_tenants(tenants)
    for tenant, key, other in (("acme", ACME_KEY, "globex"), ("globex", GLOBEX_KEY, "acme")):
        for path in (
            f"/api/messagestatus/phonenumber/{quote(phone)}",
            f"/api/messagestatus/reference/{ref}",
        ):
            seen, url = [], f"{path}?count=1"
            while url:
                status, headers, body = await tenants.get(url, key)
                assert status == 200, body
                seen += [m["message"]["id"] for m in body["messages"]]
                link = headers.get("Link")
                url = link[1 : link.index(">")] if link else ""
            assert sorted(seen) == sorted(ids[tenant])
        for mid in ids[other]:
            for suffix in ("", "/history"):
                assert (await tenants.get(f"/api/messagestatus/{mid}{suffix}", key))[0] == 404
            await _no_deliveries_for(tenants, mid, key)
    status, _, body = await tenants.get(
        f"/api/messagestatus/phonenumber/{quote(phone)}", tenants.stack.api_key
    )
    assert status == 200
    assert body["messages"] == []


async def test_a_cursor_of_one_tenant_is_refused_for_another(tenants: Tenants) -> None:
    phone, _, _ = await _seed_two_tenants(tenants)
    path = f"/api/messagestatus/phonenumber/{quote(phone)}?count=1"
    _, headers, _ = await tenants.get(path, GLOBEX_KEY)
    globex_next = headers["Link"][1 : headers["Link"].index(">")]
    assert (await tenants.get(globex_next, GLOBEX_KEY))[0] == 200
    status, _, problem = await tenants.get(globex_next, ACME_KEY)
    assert status == 400
    assert problem["errors"][0]["field"] == "cursor"


# --- keys: rotation without a restart -------------------------------------------------------


async def _until_refused(t: Tenants, key: str, within_s: float) -> float:
    started = time.monotonic()
    while (await t.get("/api/messagestatus/" + str(uuid.uuid4()), key))[0] != 403:
        assert time.monotonic() - started < within_s, "the removed key still works"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_rotated_key_stops_working_within_a_second(tenants: Tenants) -> None:
    old, new = "old-" + uuid.uuid4().hex, "new-" + uuid.uuid4().hex
    keys = tenants.folder / "keys.json"
    base = json.loads(keys.read_text())["keys"]
    _keys_file(keys, [*base, _entry("rotating", old, "acme")])
    deadline = time.monotonic() + 2
    while (await tenants.get("/api/messagestatus/" + str(uuid.uuid4()), old))[0] != 404:
        assert time.monotonic() < deadline, "the added key does not work"
        await asyncio.sleep(0.02)
    _keys_file(keys, [*base, _entry("rotating", new, "acme")])
    assert await _until_refused(tenants, old, 1.0) < 1.0
    assert (await tenants.get("/api/messagestatus/" + str(uuid.uuid4()), new))[0] == 404
    _keys_file(keys, base)


async def test_sighup_reloads_the_keys_file(tmp_path: Path) -> None:
    """A rewrite the poll cannot see (same inode, size and modification time) takes effect
    on SIGHUP."""
    path = tmp_path / "keys.json"
    first, second = "k1-" + uuid.uuid4().hex, "k2-" + uuid.uuid4().hex
    _keys_file(path, [_entry("k", first, "acme")])
    ring = KeyRing(str(path), poll_s=0.1)
    async with ring.follow():
        assert ring.lookup(first) is not None
        before = os.stat(path)
        with path.open("r+") as f:  # in place, same length: only the hash differs
            f.write(json.dumps({"keys": [_entry("k", second, "acme")]}))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        await asyncio.sleep(0.3)
        assert ring.lookup(first) is not None  # the poll saw no change
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 1
        while ring.lookup(first) is not None:
            assert time.monotonic() < deadline, "SIGHUP did not reload the keys"
            await asyncio.sleep(0.01)
        found = ring.lookup(second)
        assert found is not None
        assert found.scope == Scope("acme")
        assert found.key_id == "k"


def test_keys_file_rules(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    plain = KeyRing("", ["plain-key"])
    found = plain.lookup("plain-key")
    assert found is not None
    assert found.scope == Scope()
    assert found.key_id.startswith("env-")
    assert plain.lookup("") is None
    assert plain.lookup("plain-kex") is None
    for bad in (
        [_entry("a", "k", "acme"), _entry("a", "l", "acme")],  # an id twice
        [{"id": "a", "sha256": "00", "tenant": "acme"}],  # not a SHA-256
        [_entry("a", "k", "acme", [])],  # no service at all
        [_entry("a", "k", "no such tenant")],
    ):
        _keys_file(path, bad)
        with pytest.raises(KeysFileError):
            KeyRing(str(path))
        with pytest.raises(ValidationError, match="MSGSTATUS_API_KEYS_FILE"):
            ApiSettings(api_keys_file=str(path))
    # A bad file at a reload keeps the keys in use.
    _keys_file(path, [_entry("a", "k", "acme")])
    ring = KeyRing(str(path))
    path.write_text("{not json")
    assert not ring.reload()
    assert ring.lookup("k") is not None
    ApiSettings(api_keys_file="docs/examples/api-keys.json")


async def test_keys_add_writes_a_hash_and_prints_the_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    add = ("keys", "add", "--file", str(path))
    code, out, err = await msgstatus(
        *add, "--id", "desk-1", "--tenant", "acme", "--services", "OTP,SIGN"
    )
    assert code == 0, err
    key = out.strip()
    entry = json.loads(path.read_text())["keys"][0]
    assert entry == {
        "id": "desk-1",
        "sha256": hashlib.sha256(key.encode()).hexdigest(),
        "tenant": "acme",
        "services": ["OTP", "SIGN"],
    }
    assert key not in path.read_text()
    code, _, err = await msgstatus(*add, "--id", "desk-1")
    assert code == 2
    assert "exists already" in err
    code, out, _ = await msgstatus("keys", "hash", stdin=key + "\n")
    assert code == 0
    assert out.strip() == entry["sha256"]


# --- audit ------------------------------------------------------------------------------


async def test_every_phone_lookup_is_audited_once_and_listed(tenants: Tenants) -> None:
    stack = tenants.stack
    phone, ref, _ = await _seed_services(tenants)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    path = f"/api/messagestatus/phonenumber/{quote(phone)}"
    request_id = "audit-" + uuid.uuid4().hex[:12]
    status, _, _ = await tenants.get(path, ACME_OTP_KEY, **{"X-Request-Id": request_id})
    assert status == 200
    await tenants.get(f"/api/messagestatus/reference/{ref}", ACME_KEY)
    masked = mask_phone(phone)
    deadline = time.monotonic() + 15
    while True:
        records = await read_all(stack.kafka, audit_topic(stack.topic), timeout_ms=500)
        mine = [r for r in records if r["requestId"] == request_id]
        if mine:
            break
        assert time.monotonic() < deadline, "no audit record"
    await asyncio.sleep(0.5)
    records = await read_all(stack.kafka, audit_topic(stack.topic), timeout_ms=500)
    mine = [r for r in records if r["requestId"] == request_id]
    assert len(mine) == 1, mine
    (entry,) = mine
    assert (entry["keyId"], entry["tenant"], entry["via"]) == ("acme-otp", "acme", "api")
    assert (entry["action"], entry["subject"], entry["results"]) == ("phonenumber", masked, 2)
    assert phone not in json.dumps(records)
    assert ACME_OTP_KEY not in json.dumps(records)
    # Reads by id are audited only when the desk makes them.
    mid = str(uuid.uuid4())
    await tenants.get(f"/api/messagestatus/{mid}", ACME_KEY)
    await tenants.get(
        f"/api/messagestatus/{mid}/history", ACME_KEY, **{"X-Msgstatus-Client": "desk"}
    )

    async def cli(*extra: str) -> list[dict[str, Any]]:
        env = {
            "MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS": stack.kafka,
            "MSGSTATUS_TOPIC": stack.topic,
            "MSGSTATUS_LOG_FORMAT": "text",
        }
        code, out, err = await msgstatus("audit", "--since", since, *extra, env=env)
        assert code == 0, err
        return [json.loads(line) for line in out.splitlines()]

    deadline = time.monotonic() + 15
    while not any(r["subject"] == mid for r in await cli()):
        assert time.monotonic() < deadline, "the desk's read was not audited"
    listed = await cli()
    assert [r["requestId"] for r in listed].count(request_id) == 1
    assert [(r["action"], r["via"]) for r in listed if r["subject"] == mid] == [("history", "desk")]
    assert {r["keyId"] for r in await cli("--key", "acme-otp")} == {"acme-otp"}
    assert any(r["subject"] == ref for r in await cli("--key", "acme-all"))


# --- push per tenant ------------------------------------------------------------------------


def test_subscriptions_get_only_their_tenants_changes() -> None:
    config = SubscriptionsFile.model_validate(
        {
            "subscriptions": [
                {"id": "default", "url": "https://a.example.com/s"},
                {"id": "acme", "url": "https://b.example.com/s", "tenant": "acme"},
                {
                    "id": "acme-otp",
                    "url": "https://c.example.com/s",
                    "tenant": "acme",
                    "service": "OTP",
                },
            ]
        }
    )
    directory = Directory(config, [new_secret()], allow_hosts=())

    def change(tenant: str | None, service: str) -> ChangeRecord:
        mid = str(uuid.uuid4())
        message = {"id": mid, "reference": {"service": service}}
        return ChangeRecord(
            messageId=mid,
            sequence=1,
            status=Status.DELIVERED,
            message=message,
            emittedAt=1,
            tenant=tenant,
        )

    def ids(record: ChangeRecord) -> set[str]:
        return {e.id for e in directory.endpoints(record, None)}

    assert ids(change(None, "OTP")) == {"default"}
    assert ids(change("acme", "OTP")) == {"acme", "acme-otp"}
    assert ids(change("acme", "SIGN")) == {"acme"}
    assert ids(change("globex", "OTP")) == set()


async def test_change_records_carry_the_messages_tenant(tenants: Tenants) -> None:
    from schemas.changes import changes_topic  # noqa: PLC0415

    mid = str(uuid.uuid4())
    await _post(
        tenants,
        "globex",
        [acceptance(mid), receipt("DELIVERED", "2026-02-04T06:55:00Z", message_id=mid)],
    )
    deadline = time.monotonic() + 15
    while True:
        records = await read_all(tenants.stack.kafka, changes_topic(tenants.stack.topic), 500)
        mine = [r for r in records if r["messageId"] == mid]
        if mine:
            break
        assert time.monotonic() < deadline, "no change record"
    assert {r["tenant"] for r in mine} == {"globex"}


# --- the projection keeps tenants apart: provider ids, the sweep, a replay -------------------


async def test_provider_receipts_and_the_sweep_stay_within_their_tenant() -> None:
    """Two tenants' messages with one provider id, number and reference: a receipt by
    provider id reaches only its own tenant's message, each tenant's index holds only its
    own, and the expiry sweep visits every tenant's buckets."""
    from redis import Redis as SyncRedis  # noqa: PLC0415
    from redis.asyncio import Redis  # noqa: PLC0415

    from projector import generations  # noqa: PLC0415
    from projector.store import ProjectionStore  # noqa: PLC0415
    from projector.sweep import sweep_step  # noqa: PLC0415
    from query_api.reader import Reader  # noqa: PLC0415
    from tests.factories import record  # noqa: PLC0415
    from tests.support.stack import REDIS_URL  # noqa: PLC0415

    day = 86_400_000
    redis = Redis.from_url(REDIS_URL, decode_responses=False)
    gen = f"tn{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    try:
        layout = await generations.layout(redis, gen, 5)
        assert layout is not None
        store = ProjectionStore(SyncRedis.from_url(REDIS_URL), layout, day)
        acme, globex = str(uuid.uuid4()), str(uuid.uuid4())
        phone = "+4930555222"

        def of(tenant: str, event: EventRecord) -> EventRecord:
            return event.model_copy(update={"tenant": tenant})

        accept = Status.PROVIDER_ACCEPTANCE
        await store.apply(
            [
                of(
                    "acme",
                    record(accept, now - 1000, message_id=acme, phone=phone, received_ms=now),
                ),
                of(
                    "globex",
                    record(accept, now - 900, message_id=globex, phone=phone, received_ms=now),
                ),
            ]
        )
        delivered = record(Status.DELIVERED, now - 500, received_ms=now).model_copy(
            update={"message_id": None, "provider": record(accept, 0).provider}
        )
        await store.apply([of("acme", delivered)])
        reader = Reader(redis, day, pinned=gen)
        await reader.start()

        async def status(mid: str, tenant: str) -> str | None:
            doc = await reader.document(mid, tenant)
            return None if doc is None else orjson.loads(doc)["message"]["status"]

        assert await status(acme, "acme") == "DELIVERED"
        assert await status(globex, "globex") == "PROVIDER_ACCEPTANCE"
        assert await status(acme, "globex") is None
        assert await status(globex, DEFAULT_TENANT) is None
        for tenant, mid in (("acme", acme), ("globex", globex)):
            joined, _ = await reader.page(
                reader.index_key("p", phone, tenant), now + 1, 10, None, tenant
            )
            assert [m["message"]["id"] for m in orjson.loads(b"[" + joined + b"]")] == [mid]
        assert await reader.page(reader.index_key("p", phone), now + 1, 10, None) == (b"", None)
        # Three days later both have expired: the sweep removes them from both tenants.
        removed = sweep_step(store, 5, now + 3 * day)
        assert removed == 2
        assert await store_has(redis, store.layout_of("acme").message_key(acme), acme) is False
        assert await redis.zcard(store.layout_of("globex").phone_index_key(phone)) == 0
    finally:
        await generations.delete(redis, gen)
        await redis.aclose()


async def store_has(redis: Any, key: str, field: str) -> bool:
    return bool(await redis.hexists(key, field))


async def test_a_replay_keeps_tenants_apart() -> None:
    """The log of two tenants replayed into a new generation: each tenant's reads there
    see only its own messages."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415
    from redis.asyncio import Redis  # noqa: PLC0415

    from projector.replay import Replay  # noqa: PLC0415
    from projector.settings import ProjectorSettings  # noqa: PLC0415
    from query_api.reader import Reader  # noqa: PLC0415
    from runtime.topics import ensure_topics  # noqa: PLC0415
    from schemas.events import record_key  # noqa: PLC0415
    from tests.factories import record  # noqa: PLC0415
    from tests.support.stack import KAFKA, REDIS_URL  # noqa: PLC0415

    url = REDIS_URL.rsplit("/", 1)[0] + "/5"  # a database of this test's own
    redis = Redis.from_url(url, decode_responses=False)
    await redis.flushdb()
    settings = ProjectorSettings(
        kafka_bootstrap_servers=KAFKA,
        redis_url=url,
        topic=f"test-replay-tenants-{uuid.uuid4().hex[:8]}",
        topic_partitions=2,
        metrics_port=0,
    )
    await ensure_topics(settings)
    phone, now = "+4930555333", int(time.time() * 1000)
    ids = {"acme": str(uuid.uuid4()), "globex": str(uuid.uuid4())}
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await producer.start()
    try:
        for tenant, mid in ids.items():
            event = record(
                Status.PROVIDER_ACCEPTANCE, now - 1000, message_id=mid, phone=phone, received_ms=now
            ).model_copy(update={"tenant": tenant})
            await producer.send_and_wait(settings.topic, event.to_json(), key=record_key(event))
    finally:
        await producer.stop()
    try:
        result = await Replay(settings, grace_s=0.2).run()
        assert result.records == 2
        reader = Reader(redis, settings.retention_ms)
        await reader.start()
        await reader.stop()
        assert reader.generation == result.generation
        for tenant, mid in ids.items():
            joined, _ = await reader.page(
                reader.index_key("p", phone, tenant), now + 1, 10, None, tenant
            )
            assert [m["message"]["id"] for m in orjson.loads(b"[" + joined + b"]")] == [mid]
            other = next(m for t, m in ids.items() if t != tenant)
            assert await reader.document(other, tenant) is None
    finally:
        await redis.flushdb()
        await redis.aclose()
