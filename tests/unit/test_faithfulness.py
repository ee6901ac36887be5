"""The faithfulness score: sentences, their citations, lexical evidence, and the test set."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from bench.faithfulness.evalset import auc, load_triples
from ragplane.query.config import QuerySettings
from ragplane.query.quality.evidence import Sentence, key_terms, split_sentences
from ragplane.query.quality.faithfulness import FaithfulnessScorer, Method
from tests.unit.in_process_embedding import embed

PASSAGES = [
    "functools.lru_cache(maxsize=128, typed=False) saves up to the maxsize most recent calls.",
    "If maxsize is set to None, the LRU feature is disabled and the cache can grow without bound.",
]


def scorer() -> FaithfulnessScorer:
    return FaithfulnessScorer(embed, QuerySettings().evidence_thresholds())


def test_sentences_keep_their_citations_wherever_the_model_puts_them() -> None:
    answer = "Run python -m venv .venv [1]. It puts bin first on PATH. [2][3] Done, see [1, 2]"
    assert split_sentences(answer) == [
        Sentence("Run python -m venv .venv.", (1,)),
        Sentence("It puts bin first on PATH.", (2, 3)),
        Sentence("Done, see", (1, 2)),
    ]


def test_numbers_names_and_identifiers_are_key_terms_but_the_first_word_is_not() -> None:
    terms = key_terms("Tim Peters set sys.setrecursionlimit to 1000 with --bind and parse_args")
    assert terms == {"Peters", "sys.setrecursionlimit", "1000", "--bind", "parse_args"}


async def test_a_changed_number_makes_its_sentence_unsupported() -> None:
    answer = (
        "By default lru_cache keeps the 256 most recent calls [1]. "
        "Setting maxsize to None disables the LRU feature so the cache grows without bound [2]."
    )
    got = await scorer().score(answer, PASSAGES, extractive=False, timeout_s=5)
    assert (got.score, got.unsupported, got.method) == (0.5, (0,), Method.EVIDENCE)


async def test_citation_coverage_is_the_share_of_sentences_citing_a_passage() -> None:
    answer = (
        "lru_cache saves up to the maxsize most recent calls [1]. "
        "With maxsize None the cache can grow without bound."
    )
    got = await scorer().score(answer, PASSAGES, extractive=False, timeout_s=5)
    # The uncited sentence is judged against every passage, and is supported by the second.
    assert (got.score, got.unsupported, got.citation_coverage) == (1.0, (), 0.5)


async def test_a_paraphrase_far_from_the_passage_words_is_supported_by_its_embedding() -> None:
    passages = ["Fields without a default value cannot appear after fields with default values."]
    answer = "A field without a default may not follow a field that has one [1]."
    judged = await scorer().score(answer, passages, extractive=False, timeout_s=5)
    by_words = await scorer().score(answer, passages, extractive=False, timeout_s=0)
    assert (judged.score, by_words.score) == (1.0, 0.0)


async def test_an_extractive_answer_scores_1_and_says_why() -> None:
    answer = "functools.lru_cache(maxsize=128, typed=False) saves up to the maxsize calls. [1]"
    got = await scorer().score(answer, PASSAGES, extractive=True, timeout_s=5)
    assert (got.score, got.method, got.note) == (1.0, Method.EXTRACTIVE, "quoted from the passages")


async def test_without_time_for_an_embedding_the_words_alone_decide() -> None:
    # Half of the sentence's content words are in its passage: the embedding would decide.
    answer = "The cache remembers results of the latest calls up to maxsize [1]."
    got = await scorer().score(answer, PASSAGES, extractive=False, timeout_s=0)
    assert got.note == "no time left for the embedding: sentences judged by their words alone"


def test_the_test_set_has_40_triples_half_with_an_unsupported_claim_of_each_kind() -> None:
    triples = load_triples()
    assert len(triples) >= 40
    assert len({t.triple_id for t in triples}) == len(triples)
    assert sum(t.faithful for t in triples) * 2 == len(triples)
    flaws = Counter(t.flaw for t in triples if not t.faithful)
    assert set(flaws) == {"number", "name", "step"}
    assert min(flaws.values()) >= 5


async def test_the_score_separates_faithful_answers_with_an_auc_of_at_least_085() -> None:
    triples = load_triples()
    judge = scorer()
    scores = {t.triple_id: await judge.score(t.answer, t.passages, False, 5) for t in triples}
    faithful = [scores[t.triple_id].score for t in triples if t.faithful]
    unfaithful = [scores[t.triple_id].score for t in triples if not t.faithful]
    assert auc(faithful, unfaithful) >= 0.85


def test_coverage_thresholds_must_leave_room_for_the_embedding() -> None:
    with pytest.raises(ValidationError, match="UNSUPPORTED_COVERAGE must be less"):
        QuerySettings(faithfulness_supported_coverage=0.5, faithfulness_unsupported_coverage=0.5)
