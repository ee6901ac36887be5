"""Scale-out for real: calls spread over every replica, a replica added under load takes calls
within the connection age, and replicas going away (SIGTERM, SIGKILL) cost no query.

One stack with 3 embedding, 2 retrieval and 2 generation replicas behind CoreDNS; the tests run
in file order on it (the replica set each one leaves is the next one's start).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from ragplane.cli.stack import Replicas, Stack
from tests.integration.polling import wait_until
from tests.integration.replicas import (
    CONNECTION_AGE_S,
    QueryLoad,
    replicated_stack,
    served,
    shares,
)

pytestmark = pytest.mark.integration

# Queries of the distribution test: about 15 Embed calls per embedding replica.
QUERIES = 45
# The share of the calls each replica must serve: about 1/3 and 1/2 give or take the load's jitter.
BOUNDS = {"embedding": (0.20, 0.47), "retrieval": (0.30, 0.70), "generation": (0.30, 0.70)}


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    replicas = Replicas(embedding=3, retrieval=2, generation=2)
    with replicated_stack(tmp_path_factory.mktemp("replicated"), replicas) as stack:
        yield stack


def test_each_replica_serves_its_share_of_the_calls(replicated: Stack) -> None:
    before = {service: served(replicated, service) for service in BOUNDS}
    with QueryLoad(replicated) as load:
        outcomes = load.wait_for(QUERIES)
    assert outcomes.failed == 0, load.errors
    for service, (low, high) in BOUNDS.items():
        parts = shares(before[service], served(replicated, service))
        print(f"{service}: " + ", ".join(f"{name} {part:.0%}" for name, part in parts.items()))
        assert all(low <= part <= high for part in parts.values()), (service, parts)


def test_a_replica_added_under_load_takes_calls_within_the_connection_age(
    replicated: Stack,
) -> None:
    with QueryLoad(replicated) as load:
        load.wait_for(3)
        replicated.scale("embedding", 4, report=lambda line: None)
        ready = time.monotonic()
        wait_until(
            lambda: served(replicated, "embedding").get("embedding-4", 0) > 0,
            CONNECTION_AGE_S + 10,
            "the 4th embedding replica to serve an Embed call",
            interval_s=0.2,
        )
        print(f"embedding-4 served its first call {time.monotonic() - ready:.1f} s after ready")
        # Back to 3: the replica leaves the DNS records, then drains; no query may notice.
        replicated.scale("embedding", 3, report=lambda line: None)
        load.wait_for(3)
    outcomes = load.outcomes()
    print(f"during the scale-up and down: {outcomes}")
    assert outcomes.failed == 0, load.errors


def test_replicas_stopped_and_killed_under_load_cost_no_query(replicated: Stack) -> None:
    with QueryLoad(replicated) as load:
        load.wait_for(3)
        start = load.outcomes()
        replicated.stop("embedding-3", sig=signal.SIGTERM)
        load.wait_for(3)
        replicated.stop("embedding-2", sig=signal.SIGKILL, timeout_s=0)
        load.wait_for(10)
        window = load.outcomes().since(start)
    print(f"failed {window.failed}, degraded {window.degraded}, total {window.total}")
    assert window.failed == 0, load.errors
    assert window.degraded <= 0.01 * window.total
