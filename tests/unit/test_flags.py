"""Feature flags: what the file may say, what applies to one query, sticky A/B assignment, and
a changed file applied or refused without a restart."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from ragplane.query.domain import Question
from ragplane.query.flags.assignment import variant_for
from ragplane.query.flags.model import Experiment, Variant
from ragplane.query.flags.resolution import applied, resolve
from ragplane.query.flags.source import FlagsFileError, FlagSource, parse_flags
from ragplane.v1 import generation_pb2, retrieval_pb2

FLAGS = {
    "version": "7",
    "defaults": {"prompt_version": "cited", "rerank": False, "cache_ttl_s": 600},
    "tenants": {
        "acme": {
            "tier": "large",
            "rerank": True,
            "context_passages": 3,
            "confidence_threshold": 0.6,
            "experiment": {
                "name": "prompt-test",
                "variants": [
                    {"name": "control", "weight": 1},
                    {"name": "concise", "weight": 1, "prompt_version": "concise"},
                ],
            },
            "shadow": {"share": 0.5, "tier": "small"},
        }
    },
}
QUESTION = Question("acme", "How do I make a venv?", 5)


def _with(**changes: object) -> dict[str, object]:
    return {**FLAGS, **changes}


def test_a_tenant_gets_its_own_flags_over_the_defaults_and_its_variant() -> None:
    flags = parse_flags(json.dumps(FLAGS))
    got = resolve(flags, "acme", "caller-1")
    assert got.behaviour.tier == "large"
    assert got.behaviour.rerank is True
    assert got.behaviour.cache_ttl_s == 600
    assert got.served.flag_set == "acme"
    assert (got.served.version, got.served.experiment) == ("7", "prompt-test")
    expected_prompt = "concise" if got.served.variant == "concise" else "cited"
    assert got.behaviour.prompt_version == expected_prompt


def test_a_tenant_without_flags_of_its_own_gets_the_defaults() -> None:
    got = resolve(parse_flags(json.dumps(FLAGS)), "globex", "caller-1")
    assert got.served.flag_set == "defaults"
    assert (got.behaviour.tier, got.behaviour.rerank, got.shadow) == (None, False, None)


def test_the_flags_become_the_questions_options_but_the_requests_own_stay() -> None:
    resolved = resolve(parse_flags(json.dumps(FLAGS)), "acme", "caller-1")
    question = applied(resolved, QUESTION, top_k_asked=False)
    assert question.tier == generation_pb2.MODEL_TIER_LARGE
    assert question.top_k == 3
    assert question.rerank == retrieval_pb2.RERANK_MODE_ON
    assert question.flags.escalate_confidence == 0.6
    assert question.flags.cache_ttl_s == 600
    assert question.flags.shadow is not None
    assert question.flags.shadow.tier == generation_pb2.MODEL_TIER_SMALL
    asked = replace(QUESTION, top_k=8, rerank=retrieval_pb2.RERANK_MODE_OFF)
    kept = applied(resolved, asked, top_k_asked=True)
    assert (kept.top_k, kept.rerank) == (8, retrieval_pb2.RERANK_MODE_OFF)


def test_a_kill_switch_turns_its_feature_back_to_the_services_setting() -> None:
    killed = parse_flags(json.dumps(_with(kill_switches=["rerank", "experiments", "shadow"])))
    got = resolve(killed, "acme", "caller-1")
    assert got.behaviour.rerank is None
    assert (got.served.experiment, got.served.variant) == ("", "")
    assert got.shadow is None
    assert got.behaviour.tier == "large"


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        (_with(tenants={"acme": {"context_passages": 0}}), "tenants.acme.context_passages"),
        (_with(tenants={"acme": {"tier": "huge"}}), "tenants.acme.tier"),
        (_with(defaults={"rerank_on": True}), "defaults.rerank_on"),
        (_with(kill_switches=["everything"]), "kill_switches"),
        ({"defaults": {}}, "version"),
    ],
)
def test_a_bad_file_is_refused_naming_the_key(flags: dict[str, object], key: str) -> None:
    with pytest.raises(FlagsFileError, match=f"key {re.escape(key)}"):
        parse_flags(json.dumps(flags))


def test_variants_need_unique_names_and_two_of_them() -> None:
    one = _with(defaults={"experiment": {"name": "x", "variants": [{"name": "a", "weight": 1}]}})
    with pytest.raises(FlagsFileError, match=r"defaults\.experiment\.variants"):
        parse_flags(json.dumps(one))


def test_yaml_that_does_not_parse_is_refused() -> None:
    with pytest.raises(FlagsFileError, match="not valid YAML"):
        parse_flags("version: [1\n")


def test_assignment_is_sticky_and_follows_the_weights() -> None:
    experiment = Experiment(
        name="canary",
        variants=[Variant(name="stable", weight=9), Variant(name="canary", weight=1)],
    )
    callers = [f"caller-{n}" for n in range(4000)]
    first = [variant_for(experiment, "acme", c).name for c in callers]
    assert first == [variant_for(experiment, "acme", c).name for c in callers]
    share = Counter(first)["canary"] / len(callers)
    assert 0.08 < share < 0.12, share


def test_a_changed_file_is_applied_and_a_bad_one_keeps_the_last_good(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(json.dumps(FLAGS))
    source = FlagSource(path, poll_s=1.0)
    source.reload(json.dumps(_with(version="8")))
    assert source.flags is not None
    assert source.flags.version == "8"
    source.reload(json.dumps(_with(version="9", tenants={"acme": {"tier": "huge"}})))
    assert source.flags.version == "8"
