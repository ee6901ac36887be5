"""Hand-written question pairs through the real semantic cache: the real embedding model (the
stack's embedding service), the real Weaviate collection and the gate.

A paraphrase of a cached question must be a hit; its negation, or the same question with
another number or another name, must be a miss, although many of those score above the 0.95
cosine threshold (the similarity each pair reached is in the failure message).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from ragplane.cli.stack import Stack
from ragplane.query.caching.answers import CachedAnswer
from ragplane.query.caching.semantic import SemanticCache
from ragplane.runtime.settings import WeaviateSettings
from ragplane.runtime.weaviate_client import weaviate_client
from ragplane.v1 import embedding_pb2, embedding_pb2_grpc

THRESHOLD = 0.95
FINGERPRINT = "same-options"
GENERATION = 1

PARAPHRASES = [
    ("How do I create a virtual environment?", "How can I create a virtual environment?"),
    (
        "How often is the Aurora 7 impeller inspected?",
        "How frequently is the Aurora 7 impeller inspected?",
    ),
    ("What is the default port of Weaviate?", "What's the default port of Weaviate?"),
    (
        "How often is the Aurora 7 impeller inspected?",
        "How often does the Aurora 7 impeller get inspected?",
    ),
    ("How do I read a CSV file in Python?", "How do you read a CSV file in Python?"),
    ("What does the venv module do?", "What does the venv module do exactly?"),
    ("How do I install packages with pip?", "How can I install packages using pip?"),
    (
        "How long is the Zephyr kiln held at peak temperature?",
        "How long is the Zephyr kiln kept at peak temperature?",
    ),
    ("What is a Python list comprehension?", "What's a list comprehension in Python?"),
    ("How do I exit the Python interpreter?", "How can I exit the Python interpreter?"),
]
DIFFERENT = [
    # negations
    ("How do I enable logging in Django?", "How do I disable logging in Django?"),
    ("Is the Aurora 7 pump safe to run dry?", "Is the Aurora 7 pump not safe to run dry?"),
    ("Can I use venv on Windows?", "Can't I use venv on Windows?"),
    ("Which files should be committed to git?", "Which files should never be committed to git?"),
    (
        "Does pip install dependencies automatically?",
        "Does pip not install dependencies automatically?",
    ),
    # changed numbers
    ("What changed in Python 3.11?", "What changed in Python 3.12?"),
    ("Is the impeller inspected every 400 hours?", "Is the impeller inspected every 500 hours?"),
    ("How do I fire the kiln to cone 6?", "How do I fire the kiln to cone 10?"),
    ("List three ways to read a file", "List four ways to read a file"),
    ("What is the warranty for 2 years of use?", "What is the warranty for 3 years of use?"),
    # changed names
    ("How do I install Django?", "How do I install Flask?"),
    (
        "How often is the Aurora 7 impeller inspected?",
        "How often is the Borealis 7 impeller inspected?",
    ),
    ("Who maintains the Zephyr kiln?", "Who maintains the Mistral kiln?"),
    ("How do I connect to PostgreSQL from Python?", "How do I connect to MySQL from Python?"),
    ("What is new in Weaviate hybrid search?", "What is new in Elasticsearch hybrid search?"),
]


@pytest.fixture(scope="module")
async def semantic_cache(stack: Stack) -> AsyncIterator[SemanticCache]:
    client = weaviate_client(
        WeaviateSettings(
            weaviate_http_port=stack.ports.weaviate_http,
            weaviate_grpc_port=stack.ports.weaviate_grpc,
            weaviate_timeout_s=10.0,
        )
    )
    cache = SemanticCache(
        client, f"PairsTest{uuid.uuid4().hex[:8]}", ttl_s=3600, candidates=3, timeout_s=2.0
    )
    yield cache
    await cache.close()


async def _embed(stack: Stack, texts: list[str]) -> list[list[float]]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports.embedding}") as channel:
        reply = await embedding_pb2_grpc.EmbeddingServiceStub(channel).Embed(
            embedding_pb2.EmbedRequest(texts=texts), timeout=120
        )
    return [list(item.values) for item in reply.embeddings]


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return float(dot / norm)


async def _served(
    stack: Stack, cache: SemanticCache, tenant: str, cached: str, incoming: str
) -> tuple[bool, float]:
    """Cache an answer for ``cached`` in its own tenant, then look ``incoming`` up."""
    cached_vector, incoming_vector = await _embed(stack, [cached, incoming])
    answer = CachedAnswer.of(cached, "an answer", [], "provider", "model", 0.001)
    await cache.store(tenant, cached_vector, FINGERPRINT, GENERATION, answer)
    hit = await cache.lookup(tenant, incoming, incoming_vector, FINGERPRINT, GENERATION, THRESHOLD)
    return hit is not None, _cosine(cached_vector, incoming_vector)


@pytest.mark.parametrize(("cached", "incoming"), PARAPHRASES)
async def test_a_paraphrase_is_a_hit(
    stack: Stack, semantic_cache: SemanticCache, cached: str, incoming: str
) -> None:
    tenant = f"pair-{uuid.uuid4().hex[:10]}"
    served, similarity = await _served(stack, semantic_cache, tenant, cached, incoming)
    assert served, f"similarity {similarity:.3f}"


@pytest.mark.parametrize(("cached", "incoming"), DIFFERENT)
async def test_a_negation_or_changed_number_or_name_is_a_miss(
    stack: Stack, semantic_cache: SemanticCache, cached: str, incoming: str
) -> None:
    tenant = f"pair-{uuid.uuid4().hex[:10]}"
    served, similarity = await _served(stack, semantic_cache, tenant, cached, incoming)
    assert not served, f"similarity {similarity:.3f}"
