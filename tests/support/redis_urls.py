"""Test Redis URLs: a database of a test module's own, where there are databases."""

from __future__ import annotations

from runtime import redis_client


def database(url: str, db: int) -> str:
    """``url`` with database ``db`` on a single node. A Redis Cluster has database 0 only:
    there the URL itself, and tests keep apart by their generations and names."""
    if redis_client.is_cluster_url(url):
        return url
    return f"{url.rsplit('/', 1)[0]}/{db}"
