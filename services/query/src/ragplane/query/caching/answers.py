"""What an answer cache stores and what makes two questions ask for the same answer."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ragplane.query.domain import Answer, Passage, Question
from ragplane.query.quality.faithfulness import Faithfulness
from ragplane.query.timings import Stage

_SPACES = re.compile(r"\s+")
_TRAILING_PUNCTUATION = re.compile(r"[\s?!.]+$")


def normalise(text: str) -> str:
    """Case, width, spacing and closing punctuation do not change what a question asks."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACES.sub(" ", text).strip()
    return _TRAILING_PUNCTUATION.sub("", text)


def options_fingerprint(question: Question, version: str) -> str:
    """Every request option that changes the answer, and the model/prompt version, as one string.

    Two requests share cached answers only when their fingerprints are equal.
    """
    options = {
        "top_k": question.top_k,
        "alpha": question.alpha,
        # Every kind of filter (equals, any_of, range), in a stable form.
        "filters": sorted(json.dumps(asdict(f), sort_keys=True) for f in question.filters),
        "fusion_type": question.fusion_type,
        "rerank": question.rerank,
        "rerank_candidates": question.rerank_candidates,
        "min_score": question.min_score,
        "max_output_tokens": question.max_output_tokens,
        "temperature": question.temperature,
        # Set by feature flags: another tier or prompt gives another answer.
        "tier": question.tier,
        "prompt_version": question.prompt_version,
        "version": version,
    }
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()


def exact_key(tenant: str, normalised_query: str, fingerprint: str, index_version: int) -> str:
    parts = json.dumps([tenant, normalised_query, fingerprint, index_version])
    return f"ragplane:answer:{hashlib.sha256(parts.encode()).hexdigest()}"


@dataclass(frozen=True)
class CachedAnswer:
    """A generated answer as the caches keep it."""

    query: str
    answer: str
    citations: list[Passage]
    provider: str
    model: str
    cost_usd: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def as_answer(self, deadline_s: float, total_ms: float) -> Answer:
        """As an Answer: no LLM call, no cost, all its time spent in the cache."""
        answer = Answer(
            text=self.answer,
            citations=list(self.citations),
            deadline_s=deadline_s,
            provider=self.provider,
            model=self.model,
            faithfulness=Faithfulness.not_scored("served from the answer cache"),
        )
        answer.timings.add(Stage.CACHE, total_ms)
        return answer

    @classmethod
    def from_json(cls, text: str | bytes) -> CachedAnswer:
        raw = json.loads(text)
        raw["citations"] = [Passage(**c) for c in raw["citations"]]
        return cls(**raw)

    @classmethod
    def of(
        cls,
        query: str,
        answer: str,
        citations: Sequence[Passage],
        provider: str,
        model: str,
        cost: float,
    ) -> CachedAnswer:
        return cls(
            query=query,
            answer=answer,
            citations=list(citations),
            provider=provider,
            model=model,
            cost_usd=cost,
        )
