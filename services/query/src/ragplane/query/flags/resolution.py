"""What the flags say for one query: the tenant's flags, its caller's variant, kill switches
applied, and the question as it will be answered."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ragplane.query.domain import AppliedFlags, FlagsServed, Question, ShadowPlan
from ragplane.query.flags.assignment import variant_for
from ragplane.query.flags.model import (
    PROMPT_VERSIONS,
    TIERS,
    Behaviour,
    FlagFile,
    Shadow,
    TenantFlags,
)
from ragplane.v1 import retrieval_pb2

DEFAULT_SET = "defaults"


@dataclass(frozen=True)
class Resolved:
    behaviour: Behaviour
    shadow: Shadow | None
    served: FlagsServed


def resolve(flags: FlagFile, tenant: str, caller: str) -> Resolved:
    own = flags.tenants.get(tenant)
    tenant_flags = TenantFlags() if own is None else own
    behaviour = tenant_flags.over(flags.defaults)
    killed = flags.kill_switches
    experiment = tenant_flags.experiment or flags.defaults.experiment
    served = FlagsServed(flag_set=DEFAULT_SET if own is None else tenant, version=flags.version)
    if experiment is not None and "experiments" not in killed:
        variant = variant_for(experiment, tenant, caller)
        behaviour = variant.over(behaviour)
        served = replace(served, experiment=experiment.name, variant=variant.name)
    shadow = None if "shadow" in killed else tenant_flags.shadow or flags.defaults.shadow
    return Resolved(behaviour.without(killed), shadow, served)


def applied(resolved: Resolved, question: Question, top_k_asked: bool) -> Question:
    """``question`` as the flags answer it; options the request set itself are kept."""
    behaviour = resolved.behaviour
    changes: dict[str, object] = {}
    if behaviour.tier is not None:
        changes["tier"] = TIERS[behaviour.tier]
    if behaviour.prompt_version is not None:
        changes["prompt_version"] = PROMPT_VERSIONS[behaviour.prompt_version]
    if behaviour.context_passages is not None and not top_k_asked:
        changes["top_k"] = behaviour.context_passages
    if behaviour.rerank is not None and question.rerank == retrieval_pb2.RERANK_MODE_UNSPECIFIED:
        changes["rerank"] = (
            retrieval_pb2.RERANK_MODE_ON if behaviour.rerank else retrieval_pb2.RERANK_MODE_OFF
        )
    changes["flags"] = AppliedFlags(
        served=resolved.served,
        escalate_confidence=behaviour.confidence_threshold,
        cache_ttl_s=behaviour.cache_ttl_s,
        semantic_threshold=behaviour.semantic_threshold,
        streaming=behaviour.streaming is not False,
        shadow=_plan(resolved.shadow),
    )
    return replace(question, **changes)  # type: ignore[arg-type]


def _plan(shadow: Shadow | None) -> ShadowPlan | None:
    if shadow is None or shadow.share == 0:
        return None
    return ShadowPlan(
        share=shadow.share,
        tier=TIERS[shadow.tier] if shadow.tier else 0,
        prompt_version=PROMPT_VERSIONS[shadow.prompt_version] if shadow.prompt_version else 0,
    )
