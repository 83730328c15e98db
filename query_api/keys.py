"""API keys: each bound to a tenant and optionally to ``reference.service`` values.

The keys file (``MSGSTATUS_API_KEYS_FILE``, JSON; docs/operations.md, "Tenants, keys and
audit") holds no key, only its SHA-256::

    {"keys": [{"id": "acme-desk", "sha256": "<64 hex digits>", "tenant": "acme",
               "services": ["DIGITALSIGN"]},            # absent or null: every service
              {"id": "globex-backend", "sha256": "...", "tenant": "globex"}]}

It is read again on SIGHUP and whenever its modification time, size or inode changes
(polled every ``api_keys_poll_s``, 0.5 s by default), so a removed key stops working within a
second without a restart. A file that cannot be read or is invalid at a reload is logged and
the keys in use stay; at start-up it stops the process. ``MSGSTATUS_API_KEYS`` (plain keys)
keeps working: keys of the default tenant with every service, id ``env-<8 hex of its hash>``.

A presented key is hashed and compared with every known hash in constant time
(``hmac.compare_digest``, no early exit), so timing tells nothing about which key is close.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import signal
import threading
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.tenancy import DEFAULT_TENANT, Scope, check_tenant

log = logging.getLogger(__name__)

KEY_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"


class KeysFileError(ValueError):
    """The keys file cannot be read or is not valid."""


class KeyEntry(BaseModel):
    """One key of the file: its id (what the audit shows), hash, tenant and services."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=KEY_ID_PATTERN)
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    tenant: str = DEFAULT_TENANT
    services: list[str] | None = None

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return check_tenant(value)

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("a key with no service would read nothing: leave 'services' out")
        return value


class KeysFile(BaseModel):
    """The whole keys file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: list[KeyEntry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A known key: its id, the SHA-256 of the key, and what it may read."""

    key_id: str
    digest: bytes
    scope: Scope


def hash_key(key: str) -> str:
    """The SHA-256 hex of a key, as the keys file holds it."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A new random API key (256 bits, URL-safe)."""
    return "msk_" + secrets.token_urlsafe(32)


def parse_keys_file(raw: bytes, where: str) -> list[ApiKey]:
    """The keys of a keys file's bytes. Raises :class:`KeysFileError` naming ``where``."""
    try:
        parsed = KeysFile.model_validate_json(raw)
    except ValidationError as exc:
        raise KeysFileError(f"{where}: {exc}") from None
    out: list[ApiKey] = []
    ids: set[str] = set()
    for entry in parsed.keys:
        if entry.id in ids:
            raise KeysFileError(f"{where}: key id {entry.id!r} appears twice")
        ids.add(entry.id)
        services = frozenset(entry.services) if entry.services is not None else None
        scope = Scope(entry.tenant, services)
        out.append(ApiKey(entry.id, bytes.fromhex(entry.sha256), scope))
    return out


def plain_keys(keys: Iterable[str]) -> list[ApiKey]:
    """``MSGSTATUS_API_KEYS``: default tenant, every service, id ``env-<8 hex>``."""
    out = []
    for key in keys:
        if key:
            digest = hashlib.sha256(key.encode()).digest()
            out.append(ApiKey(f"env-{digest.hex()[:8]}", digest, Scope()))
    return out


_RINGS: weakref.WeakSet[KeyRing] = weakref.WeakSet()


def _reload_all() -> None:
    for ring in list(_RINGS):
        ring.reload(reason="SIGHUP")


class KeyRing:
    """The keys the read API accepts now; :meth:`follow` keeps it in step with the file.

    Raises :class:`KeysFileError` at construction when the file cannot be read or is invalid.
    """

    def __init__(self, path: str = "", plain: Iterable[str] = (), poll_s: float = 0.5) -> None:
        self.path = path
        self.poll_s = poll_s
        self._plain = plain_keys(plain)
        self._file_keys: list[ApiKey] = []
        self._signature: tuple[int, int, int] | None = None
        self.keys: tuple[ApiKey, ...] = tuple(self._plain)
        if path:
            self._load()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> None:
        signature = self._stat()
        try:
            raw = Path(self.path).read_bytes()
        except OSError as exc:
            raise KeysFileError(f"MSGSTATUS_API_KEYS_FILE ({self.path}): {exc}") from None
        self._file_keys = parse_keys_file(raw, f"MSGSTATUS_API_KEYS_FILE ({self.path})")
        self._signature = signature
        self.keys = (*self._plain, *self._file_keys)

    def reload(self, reason: str = "") -> bool:
        """Read the file again; on an error keep the keys in use and log it. True on success."""
        if not self.path:
            return False
        try:
            self._load()
        except KeysFileError as exc:
            self._signature = self._stat()  # not again until it changes
            log.error("api keys not reloaded (the keys in use stay): %s", exc)
            return False
        log.info("api keys reloaded%s: %d keys", f" ({reason})" if reason else "", len(self.keys))
        return True

    def changed(self) -> bool:
        """True when the file's modification time, size or inode differ from the last read."""
        return bool(self.path) and self._stat() != self._signature

    def lookup(self, given: str) -> ApiKey | None:
        """The key presented, compared with every known hash in constant time; None if unknown."""
        if not given:
            return None
        digest = hashlib.sha256(given.encode()).digest()
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    @contextlib.asynccontextmanager
    async def follow(self) -> AsyncIterator[None]:
        """While inside: reload on SIGHUP and when the file changes (polled)."""
        if not self.path:
            yield
            return
        _RINGS.add(self)
        loop = asyncio.get_running_loop()
        # Signal handlers belong to the main thread; an app served from another thread (an
        # embedding, a test) still follows the file by polling.
        if threading.current_thread() is threading.main_thread():
            loop.add_signal_handler(signal.SIGHUP, _reload_all)
        task = asyncio.create_task(self._poll(), name="api-keys-poller")
        try:
            yield
        finally:
            _RINGS.discard(self)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            if self.changed():
                self.reload(reason="file changed")


def add_key(path: str, key_id: str, tenant: str, services: list[str] | None) -> str:
    """Make a new key, add its entry to the keys file (created when missing; replaced
    atomically, so a running API reads the old or the new file, never half of one) and
    return the key. Raises ``ValueError`` (:class:`KeysFileError`) when the file is invalid,
    the id is taken or the entry is not valid."""
    file = Path(path)
    raw = file.read_bytes() if file.exists() else b'{"keys": []}'
    parse_keys_file(raw, path)
    current = KeysFile.model_validate_json(raw)
    if any(entry.id == key_id for entry in current.keys):
        raise KeysFileError(f"{path}: key id {key_id!r} exists already")
    key = new_key()
    try:
        entry = KeyEntry(id=key_id, sha256=hash_key(key), tenant=tenant, services=services)
    except ValidationError as exc:
        raise KeysFileError(f"key {key_id!r}: {exc}") from None
    updated = KeysFile(keys=[*current.keys, entry])
    text = updated.model_dump_json(indent=2, exclude_none=True) + "\n"
    temporary = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, file)
    return key
