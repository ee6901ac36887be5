"""A 3-node Weaviate with replication factor 3 loses no acknowledged chunk when a node dies
during an ingest, keeps answering searches while it is down, and holds every chunk on every
node again once the node is back (read at consistency level ALL)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from ragplane.cli.stack import Stack
from tests.integration.durability import InFlightUpsert, document, wait_until_handled
from tests.integration.polling import wait_until
from tests.integration.weaviate_cluster import (
    acknowledged_chunk_ids,
    cluster_retrieval,
    found_chunk_ids,
    weaviate_cluster,
)

pytestmark = pytest.mark.integration

# 4 documents of 20 chunks: every chunk fits in one search's results (top_k 100).
CHUNKS = 20
DOCUMENTS = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with weaviate_cluster(tmp_path_factory.mktemp("weaviate-cluster")) as stack:
        yield stack


def test_a_node_killed_during_ingest_loses_no_acknowledged_chunk(
    cluster: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    logs = tmp_path_factory.mktemp("cluster-retrieval")
    with cluster_retrieval(cluster, "QUORUM", logs) as (service, ledger):
        assert ledger.upsert(document("doc-0", CHUNKS, 1))
        in_flight = InFlightUpsert(ledger, document("doc-1", CHUNKS, 1))
        wait_until_handled(service.metrics_port, in_flight)
        cluster.stop("weaviate-3", sig=signal.SIGKILL, timeout_s=0)
        in_flight.join()
        for index in range(2, DOCUMENTS):
            ledger.upsert(document(f"doc-{index}", CHUNKS, 1))
        # One node down: a quorum (2 of 3) still answers searches, and finds every chunk.
        acknowledged = acknowledged_chunk_ids(ledger)
        print(f"acknowledged {len(acknowledged)} chunks; refused: {ledger.refused}")
        assert acknowledged <= found_chunk_ids(ledger, top_k=100)
    cluster.up(["weaviate-3"], timeout_s=180, report=lambda line: None)
    with cluster_retrieval(cluster, "ALL", logs) as (_, every_node):
        wait_until(
            lambda: acknowledged <= found_chunk_ids(every_node, top_k=100),
            120,
            "a search at consistency level ALL to find every acknowledged chunk",
            interval_s=1.0,
        )
