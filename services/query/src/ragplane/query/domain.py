"""What the query service works with, as plain data: no protobuf here.

The gRPC edge (requests.py, responses.py) and the clients of the other services (backends.py)
translate between these types and the contracts; everything in between speaks only these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from ragplane.query.quality.confidence import Confidence
from ragplane.query.quality.faithfulness import Faithfulness, JudgeUsage
from ragplane.query.timings import Stage, StageTimings


class Cause(IntEnum):
    """Why a stage was degraded (the values of the contract's DegradationCause)."""

    UNSPECIFIED = 0
    UNAVAILABLE = 1
    TIMEOUT = 2
    # Too little of the request's deadline was left to start the stage.
    NO_TIME_LEFT = 3
    CIRCUIT_OPEN = 4
    CONTEXT_LIMIT = 5


@dataclass(frozen=True)
class Degradation:
    """A stage that answered worse than it should have, and why."""

    stage: Stage
    cause: Cause
    reason: str
    dependency: str = ""


@dataclass(frozen=True)
class ValueBounds:
    """Bounds on a metadata value; unset bounds are open."""

    greater_than: str | None = None
    greater_or_equal: str | None = None
    less_than: str | None = None
    less_or_equal: str | None = None


@dataclass(frozen=True)
class MetadataFilter:
    """One condition on a chunk's metadata: equality, membership or a range."""

    field: str
    equals: str = ""
    any_of: tuple[str, ...] = ()
    bounds: ValueBounds | None = None


@dataclass(frozen=True)
class FlagsServed:
    """Which feature flags served an answer (empty without a flags file)."""

    flag_set: str = ""
    version: str = ""
    experiment: str = ""
    variant: str = ""


@dataclass(frozen=True)
class ShadowPlan:
    """A share of generation calls also sent to a shadow tier or prompt (0: as the caller's)."""

    share: float
    tier: int = 0
    prompt_version: int = 0


@dataclass(frozen=True)
class AppliedFlags:
    """What the feature flags decide besides the request's options; None keeps the service's
    setting."""

    served: FlagsServed = field(default_factory=FlagsServed)
    escalate_confidence: float | None = None
    cache_ttl_s: int | None = None
    semantic_threshold: float | None = None
    streaming: bool = True
    shadow: ShadowPlan | None = None


@dataclass(frozen=True)
class Question:
    """A validated question with its options; 0 and None leave a downstream default."""

    tenant: str
    text: str
    top_k: int
    alpha: float | None = None
    filters: tuple[MetadataFilter, ...] = ()
    max_output_tokens: int = 0
    # The retrieval service's FusionType and RerankMode values.
    fusion_type: int = 0
    rerank: int = 0
    rerank_candidates: int = 0
    min_score: float | None = None
    # Above 0 the answer caches are bypassed.
    temperature: float | None = None
    # The generation service's ModelTier to force; 0 lets it route.
    tier: int = 0
    # The generation service's PromptVersion; 0 leaves its default.
    prompt_version: int = 0
    flags: AppliedFlags = field(default_factory=AppliedFlags)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk, as it goes from the search to the prompt and to the citations."""

    document_id: str
    chunk_id: str
    text: str
    score: float
    # Cosine similarity to the question (the retrieval service's); None without an embedding.
    similarity: float | None = None


@dataclass(frozen=True)
class SearchResult:
    """A search's passages, best first, with what the retrieval service says about them."""

    passages: list[Passage]
    # Rerank degradations: the reranker was asked for and could not run.
    degradations: list[Degradation]
    # Time the reranker took inside the search; 0 when it did not run.
    rerank_ms: float
    # Hybrid weight the search used (0 for BM25 only), and whether the reranker ordered it.
    alpha: float = 0.0
    reranked: bool = False


@dataclass(frozen=True)
class GeneratedAnswer:
    text: str
    cited_chunk_ids: list[str]
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    degradations: list[Degradation]
    tier: int = 0
    tier_reason: str = ""
    # Why the model stopped ("stop", "length"; "extractive" when no provider answered).
    finish_reason: str = ""


@dataclass(frozen=True)
class QuestionEmbedding:
    """The question's vector, made before the pipeline ran (by the semantic cache lookup)."""

    vector: list[float]
    duration_ms: float


@dataclass
class Answer:
    """The answer to a question, as built up stage by stage."""

    text: str = ""
    citations: list[Passage] = field(default_factory=list)
    # The whole time the request was given, in seconds.
    deadline_s: float = 0.0
    timings: StageTimings = field(default_factory=StageTimings)
    provider: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    degradations: list[Degradation] = field(default_factory=list)
    tier: int = 0
    tier_reason: str = ""
    finish_reason: str = ""
    # True when the text quotes the passages instead of being generated.
    extractive: bool = False
    faithfulness: Faithfulness = field(default_factory=lambda: Faithfulness.not_scored(""))
    confidence: Confidence = field(default_factory=Confidence)
    # True when a shadow generation was started beside this answer.
    shadowed: bool = False

    def degrade(self, stage: Stage, cause: Cause, reason: str, dependency: str = "") -> None:
        self.degradations.append(Degradation(stage, cause, reason, dependency))

    def add_judge_usage(self, usage: JudgeUsage) -> None:
        """The LLM judge's call is part of what the answer cost (spend budgets count it)."""
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cost_usd += usage.cost_usd

    def take_generated(self, generated: GeneratedAnswer, passages: Sequence[Passage]) -> None:
        self.text = generated.text
        self.citations = _grounding(passages, generated.cited_chunk_ids)
        self.provider = generated.provider
        self.model = generated.model
        self.input_tokens = generated.input_tokens
        self.output_tokens = generated.output_tokens
        self.cost_usd = generated.cost_usd
        self.degradations.extend(generated.degradations)
        self.tier = generated.tier
        # A reason the pipeline gave already (a low-confidence escalation) is the real one.
        self.tier_reason = self.tier_reason or generated.tier_reason
        self.finish_reason = generated.finish_reason
        self.extractive = generated.finish_reason == EXTRACTIVE_FINISH


# The generation service's finish reason when no provider answered and it quoted the passages.
EXTRACTIVE_FINISH = "extractive"


def _grounding(passages: Sequence[Passage], cited_chunk_ids: Sequence[str]) -> list[Passage]:
    """The passages the answer cites; all passages it was given when it cites none."""
    by_id = {passage.chunk_id: passage for passage in passages}
    cited = [by_id[chunk_id] for chunk_id in cited_chunk_ids if chunk_id in by_id]
    return cited or list(passages)


@dataclass(frozen=True)
class Sources:
    """Streamed first: the passages the answer will be grounded on."""

    passages: list[Passage]


# What the pipeline's stream yields: the sources, then answer text deltas, then the answer.
StreamEvent = Sources | str | Answer


@dataclass(frozen=True)
class CacheOutcome:
    """What the answer caches did for one question."""

    hit: bool = False
    # "exact" or "semantic" on a hit.
    layer: str = ""
    similarity: float = 0.0
    cached_question: str = ""
    saved_usd: float = 0.0


@dataclass(frozen=True)
class SourceDocument:
    document_id: str
    text: str
    title: str
    metadata: dict[str, str]


@dataclass
class Chunk:
    """A piece of a document on its way to the index."""

    document_id: str
    chunk_index: int
    text: str
    title: str
    metadata: dict[str, str]
    vector: list[float] = field(default_factory=list)

    @property
    def chunk_id(self) -> str:
        return f"{self.document_id}#{self.chunk_index}"


@dataclass
class DocumentOutcome:
    document_id: str
    chunks: list[Chunk] = field(default_factory=list)
    error: str = ""

    @property
    def indexed(self) -> bool:
        return not self.error
