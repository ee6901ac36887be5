"""The flags file: what it may say, validated whole before any of it is used.

A flag left unset keeps the service's own setting (its environment variables). The file's
``defaults`` apply to every tenant; a tenant's own entry overrides them field by field; an
experiment's variant overrides both for the callers assigned to it. A kill switch turns every
flag about its feature off at once, back to the service's own setting, whatever the tenants say.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragplane.v1 import generation_pb2

Tier = Literal["auto", "small", "large"]
PromptVersion = Literal["cited", "concise"]
Feature = Literal[
    "tier",
    "prompt_version",
    "context_passages",
    "rerank",
    "cache",
    "streaming",
    "escalation",
    "experiments",
    "shadow",
]

# The generation service's ModelTier and PromptVersion values of the names above.
TIERS: dict[Tier, int] = {
    "auto": generation_pb2.MODEL_TIER_UNSPECIFIED,
    "small": generation_pb2.MODEL_TIER_SMALL,
    "large": generation_pb2.MODEL_TIER_LARGE,
}
PROMPT_VERSIONS: dict[PromptVersion, int] = {
    "cited": generation_pb2.PROMPT_VERSION_CITED,
    "concise": generation_pb2.PROMPT_VERSION_CONCISE,
}
# Which Behaviour fields each kill switch turns off.
_FIELDS_OF: dict[Feature, tuple[str, ...]] = {
    "tier": ("tier",),
    "prompt_version": ("prompt_version",),
    "context_passages": ("context_passages",),
    "rerank": ("rerank",),
    "cache": ("cache_ttl_s", "semantic_threshold"),
    "streaming": ("streaming",),
    "escalation": ("confidence_threshold",),
}
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Behaviour(_Strict):
    """How to answer; None keeps the service's setting."""

    tier: Tier | None = None
    prompt_version: PromptVersion | None = None
    # Passages retrieved and given to the model (the request's top_k, when it sets none).
    context_passages: int | None = Field(default=None, ge=1, le=20)
    rerank: bool | None = None
    cache_ttl_s: int | None = Field(default=None, ge=1)
    semantic_threshold: float | None = Field(default=None, gt=0, le=1)
    # False: QueryStream sends the whole answer in one piece once it is generated.
    streaming: bool | None = None
    # Retrieval confidence below which the answer goes to the large tier (with
    # QUERY_CONFIDENCE_ROUTING on).
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)

    def over(self, base: Behaviour) -> Behaviour:
        """This behaviour's set fields on top of ``base``."""
        return base.model_copy(update=self._set_fields())

    def without(self, killed: frozenset[Feature]) -> Behaviour:
        """The fields of killed features back to unset."""
        update = {name: None for feature in killed for name in _FIELDS_OF.get(feature, ())}
        return self.model_copy(update=update)

    def _set_fields(self) -> dict[str, object]:
        return {
            name: getattr(self, name)
            for name in Behaviour.model_fields
            if name in self.model_fields_set
        }


class Variant(Behaviour):
    """One arm of an experiment: its share of the callers, and how it answers."""

    name: str = Field(pattern=_NAME)
    weight: float = Field(gt=0)


class Experiment(_Strict):
    """An A/B (or canary) split of a tenant's callers between variants, by weight."""

    name: str = Field(pattern=_NAME)
    variants: list[Variant] = Field(min_length=2)

    @field_validator("variants")
    @classmethod
    def _unique_names(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        return variants


class Shadow(_Strict):
    """A share of generation calls also sent, in the background, to a shadow model or prompt."""

    share: float = Field(ge=0, le=1)
    tier: Tier | None = None
    prompt_version: PromptVersion | None = None


class TenantFlags(Behaviour):
    experiment: Experiment | None = None
    shadow: Shadow | None = None


class FlagFile(_Strict):
    """The whole file (JSON or YAML)."""

    # The operator's name for this revision of the file; each response carries it.
    version: str = Field(min_length=1, max_length=64)
    kill_switches: frozenset[Feature] = frozenset()
    defaults: TenantFlags = TenantFlags()
    tenants: dict[str, TenantFlags] = Field(default_factory=dict)
