"""The SSRF guard: only public addresses are dialled, checked on the address actually used.

A push URL comes from a sender (the acceptance's ``webhook``), so it may name an internal
service. Three checks (docs/push.md): at configuration (:func:`check_url` on configured
subscriptions), before each attempt (:func:`check_url`: scheme, and an IP-literal host, which
aiohttp dials without asking a resolver), and in :class:`GuardedResolver`, the resolver of
the client's connector, which drops every non-public address a name resolves to, so the
address checked is the address connected to (no check-then-resolve gap). Redirects are never
followed. Hosts on the allow-list (local testing) skip the address checks and may use http.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CGNAT = ipaddress.ip_network("100.64.0.0/10")
ULA = ipaddress.ip_network("fc00::/7")


class RefusedAddress(OSError):  # noqa: N818 - names the outcome, like ReplayRefused
    """A push URL that may not be dialled: not https, or a non-public address. Not retriable:
    the delivery is dead-lettered (a resend after fixing the URL or DNS sends it again)."""


def is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address; False for loopback, private ranges,
    link-local (169.254.0.0/16 with the cloud metadata address, fe80::/10), CGNAT
    (100.64.0.0/10), ULA (fc00::/7), multicast, reserved, unspecified and any IPv4-mapped
    or -translated IPv6 address (checked as refused outright: it reaches IPv4 hosts)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None or ip.sixtofour is not None or ip.teredo is not None:
            return False
        if ip in ULA or ip in ipaddress.ip_network("64:ff9b::/96"):
            return False
    elif ip in CGNAT:
        return False
    return bool(
        ip.is_global
        and not (
            ip.is_loopback
            or ip.is_private
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
        )
    )


def check_url(url: str, allow_hosts: Collection[str]) -> None:
    """Refuse a URL that is not https (unless allow-listed) or names a non-public IP literal.

    Raises :class:`RefusedAddress` naming the reason; host names are checked on resolution.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in allow_hosts:
        if parts.scheme not in ("http", "https"):
            raise RefusedAddress(f"scheme {parts.scheme!r} is not http(s)")
        return
    if parts.scheme != "https":
        raise RefusedAddress(f"only https URLs are dialled, not {parts.scheme!r}")
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if not is_public(literal):
        raise RefusedAddress(f"address {literal} is not public")


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then keeps only public addresses.

    Raises :class:`RefusedAddress` when none is left (the connector reports it as a
    ``ClientConnectorDNSError`` whose ``os_error`` is this exception).
    """

    def __init__(self, allow_hosts: Collection[str]) -> None:
        self.allow_hosts = frozenset(h.lower() for h in allow_hosts)
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The public addresses of ``host`` (all of them for an allow-listed host)."""
        found = await self._inner.resolve(host, port, family)
        if host.lower() in self.allow_hosts:
            return found
        kept = [r for r in found if is_public(ipaddress.ip_address(r["host"].split("%", 1)[0]))]
        if not kept:
            shown = ", ".join(sorted({r["host"] for r in found}))
            log.warning("refused to dial %s: it resolves to non-public %s", host, shown)
            raise RefusedAddress(f"{host} resolves to non-public addresses ({shown})")
        return kept

    async def close(self) -> None:
        """Close the underlying resolver."""
        await self._inner.close()
