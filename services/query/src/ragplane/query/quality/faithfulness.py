"""Faithfulness: the share of an answer's sentences that the passages they cite support.

Decided per sentence, cheapest evidence first, so that most answers cost no model call:
1. a number, name or code identifier that no cited passage holds: unsupported;
2. most of its content words in the cited passages: supported; almost none: unsupported;
3. in between, the embedding model the stack already runs compares the sentence with the cited
   passage sentence closest to it (one Embed call for the whole answer).
An extractive answer quotes its passages, so it scores 1 by construction.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from ragplane.query.quality.evidence import PassageEvidence, Sentence, split_sentences
from ragplane.runtime.errors import ServiceError

# texts, timeout in seconds -> one vector per text (Dependencies.embed).
Embed = Callable[[Sequence[str], float], Awaitable[list[list[float]]]]


class Method(IntEnum):
    """How the score was reached (the values of the contract's FaithfulnessMethod)."""

    UNSPECIFIED = 0
    NOT_SCORED = 1
    EXTRACTIVE = 2
    EVIDENCE = 3
    JUDGE = 4


@dataclass(frozen=True)
class JudgeUsage:
    """What the LLM-as-judge call cost (quality/judge.py); zero when no judge was asked."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Faithfulness:
    score: float
    # Indexes, from 0, of the answer's sentences that their passages do not support.
    unsupported: tuple[int, ...]
    # Share of the sentences that cite at least one passage.
    citation_coverage: float
    method: Method
    # Why the answer was not scored, or what the score could not use.
    note: str = ""
    judge_usage: JudgeUsage = JudgeUsage()

    @classmethod
    def not_scored(cls, note: str) -> Faithfulness:
        return cls(0.0, (), 0.0, Method.NOT_SCORED, note)

    @property
    def scored(self) -> bool:
        return self.method in (Method.EVIDENCE, Method.EXTRACTIVE, Method.JUDGE)


@dataclass(frozen=True)
class EvidenceThresholds:
    # Content words found in the cited passages at or above which a sentence is supported
    # without an embedding, and below which it is unsupported.
    supported_coverage: float
    unsupported_coverage: float
    # Cosine similarity to the closest cited passage sentence that supports a sentence.
    similarity: float
    # Sentences compared by embedding per answer; the others are judged by their words.
    max_embedded: int


@dataclass(frozen=True)
class _Claim:
    index: int
    sentence: Sentence
    evidence: PassageEvidence


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


class FaithfulnessScorer:
    def __init__(self, embed: Embed, thresholds: EvidenceThresholds) -> None:
        self._embed = embed
        self._thresholds = thresholds

    async def score(
        self, answer: str, passages: Sequence[str], extractive: bool, timeout_s: float
    ) -> Faithfulness:
        """``passages`` in the order the answer's [n] marks number them."""
        sentences = split_sentences(answer)
        if not sentences:
            return Faithfulness.not_scored("the answer has no sentence")
        coverage = sum(bool(s.cited) for s in sentences) / len(sentences)
        if extractive:
            return Faithfulness(1.0, (), coverage, Method.EXTRACTIVE, "quoted from the passages")
        claims = [
            _Claim(index, sentence, PassageEvidence.of(_cited(sentence, passages)))
            for index, sentence in enumerate(sentences)
        ]
        supported, note = await self._judge(claims, timeout_s)
        unsupported = tuple(c.index for c in claims if c.index not in supported)
        score = 1 - len(unsupported) / len(sentences)
        return Faithfulness(score, unsupported, coverage, Method.EVIDENCE, note)

    async def _judge(self, claims: Sequence[_Claim], timeout_s: float) -> tuple[set[int], str]:
        """Indexes of the supported sentences, and what the judgement could not use."""
        limits = self._thresholds
        supported: set[int] = set()
        undecided: list[_Claim] = []
        for claim in claims:
            text = claim.sentence.text
            if claim.evidence.missing_terms(text):
                continue
            coverage = claim.evidence.coverage(text)
            if coverage >= limits.supported_coverage:
                supported.add(claim.index)
            elif coverage >= limits.unsupported_coverage:
                undecided.append(claim)
        compared, left = undecided[: limits.max_embedded], undecided[limits.max_embedded :]
        note = f"{len(left)} sentences judged by their words alone" if left else ""
        if compared and timeout_s <= 0:
            compared, left = [], undecided
            note = "no time left for the embedding: sentences judged by their words alone"
        try:
            supported |= await self._similar(compared, timeout_s)
        except ServiceError as error:
            left = undecided
            note = f"no embedding ({error.message}): sentences judged by their words alone"
        middle = (limits.supported_coverage + limits.unsupported_coverage) / 2
        supported |= {c.index for c in left if c.evidence.coverage(c.sentence.text) >= middle}
        return supported, note

    async def _similar(self, claims: Sequence[_Claim], timeout_s: float) -> set[int]:
        """The claims whose sentence is close to the passage sentence sharing most words."""
        pairs = [(c, c.evidence.closest_sentence(c.sentence.text)) for c in claims]
        pairs = [(claim, source) for claim, source in pairs if source]
        if not pairs:
            return set()
        vectors = await self._embed([t for c, s in pairs for t in (c.sentence.text, s)], timeout_s)
        return {
            claim.index
            for (claim, _), sentence, source in zip(pairs, vectors[::2], vectors[1::2], strict=True)
            if _cosine(sentence, source) >= self._thresholds.similarity
        }


def _cited(sentence: Sentence, passages: Sequence[str]) -> list[str]:
    """The passages the sentence cites; all of them for a sentence that cites none."""
    cited = [passages[n - 1] for n in sentence.cited if 1 <= n <= len(passages)]
    return cited or list(passages)
