"""runtime.redis_client: the cluster URL form and the one factory of clients."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from query_api.settings import ApiSettings
from runtime import redis_client
from runtime.redis_client import ClusterUrl, parse_cluster_url
from schemas import deliveries


def test_cluster_url_seeds_credentials_and_tls() -> None:
    assert parse_cluster_url("redis+cluster://127.0.0.1:7001,127.0.0.1:7002") == ClusterUrl(
        (("127.0.0.1", 7001), ("127.0.0.1", 7002)), None, None, False
    )
    assert parse_cluster_url("rediss+cluster://u:p%40ss@redis-0:6379/0") == ClusterUrl(
        (("redis-0", 6379),), "u", "p@ss", True
    )
    assert parse_cluster_url("redis+cluster://:secret@[::1]:7001/") == ClusterUrl(
        (("::1", 7001),), None, "secret", False
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://127.0.0.1:7001/3",  # a cluster has database 0 only
        "redis+cluster://127.0.0.1",  # no port
        "redis+cluster://127.0.0.1:7001,:7002",
        "redis+cluster://127.0.0.1:99999",
    ],
)
def test_bad_cluster_urls_are_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValidationError, match="redis_url"):
        ApiSettings(redis_url=url)


def test_single_node_urls_stay_the_default() -> None:
    assert ApiSettings.model_fields["redis_url"].default == "redis://127.0.0.1:6379/0"
    assert not ApiSettings(redis_url="redis://127.0.0.1:6379/0").redis_cluster
    assert ApiSettings(redis_url="rediss://h:6380/2").redis_url == "rediss://h:6380/2"
    assert ApiSettings(redis_url="redis+cluster://h:7001").redis_cluster
    with pytest.raises(ValidationError, match="redis_url"):
        ApiSettings(redis_url="http://127.0.0.1:6379")


async def test_factory_returns_a_cluster_client_only_for_a_cluster_url() -> None:
    # The asyncio clients connect on their first command: no server is needed here.
    single = redis_client.async_client("redis://127.0.0.1:1/0", max_connections=4)
    cluster = redis_client.async_client("redis+cluster://127.0.0.1:1,127.0.0.1:2", timeout_s=1)
    try:
        assert isinstance(single, Redis)
        assert not redis_client.is_cluster(single)
        assert isinstance(cluster, RedisCluster)
        assert redis_client.is_cluster(cluster)
        assert redis_client.is_cluster(cluster.pipeline(transaction=False))
    finally:
        await single.aclose()
        await cluster.aclose()


def test_notifier_keys_share_one_slot_on_a_cluster() -> None:
    ns = deliveries.key_namespace("notify", cluster=True)
    keys = [
        deliveries.hook_key(ns, "a"),
        deliveries.pending_key(ns, "b"),
        deliveries.due_key(ns),
        deliveries.dead_key(ns),
    ]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert deliveries.key_namespace("notify", cluster=False) == "notify"
    assert deliveries.hook_key("notify", "a") == "msgstatus:notify:hook:{a}"
