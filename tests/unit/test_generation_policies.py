"""The generation service's plain policies: backoff, Retry-After, routing, token counting,
fitting, extraction."""

from __future__ import annotations

import email.utils
from pathlib import Path

import pytest
from pydantic import ValidationError

from ragplane.generation.config import GenerationSettings, ProviderSettings
from ragplane.generation.fitting import fit_prompt
from ragplane.generation.pricing import (
    cost_usd,
    estimate_prompt_tokens,
    estimate_tokens,
    tokenizer_count,
)
from ragplane.generation.prompt import ContextPassage, build_messages
from ragplane.generation.providers import Provider, parse_retry_after
from ragplane.generation.router import route
from ragplane.runtime.bundled import bundled_model_dir
from ragplane.runtime.extractive import extractive_answer, first_sentence


def _passage(n: int, text: str) -> ContextPassage:
    return ContextPassage(f"doc{n}.md", f"doc{n}.md#0", text, 1.0 / n)


def test_retry_after_header_as_seconds_or_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(10.0)
    assert parse_retry_after(date, now=2_000_000) == 0.0


@pytest.mark.parametrize(
    ("question", "passages", "tier", "cue"),
    [
        ("How do I create a virtual environment?", 3, "small", "short"),
        ("Compare venv and virtualenv.", 3, "large", "compare"),
        ("What is the difference between a list and a tuple?", 3, "large", "difference"),
        ("Why does pip refuse to install?", 3, "large", "why"),
        ("What is venv? How do I activate it?", 3, "large", "2 questions"),
        ("What is venv?", 12, "large", "12 passages"),
        ("x" * 400, 1, "large", "long question"),
    ],
)
def test_router_explains_its_tier(question: str, passages: int, tier: str, cue: str) -> None:
    chosen = route(question, passages)
    assert chosen.tier == tier
    assert cue in chosen.reason


def test_fitting_keeps_the_best_passages_cuts_the_next_and_drops_the_rest() -> None:
    passages = [_passage(n, "word " * 300) for n in range(1, 6)]  # ~500 tokens each (chars/3)
    fitted = fit_prompt("What?", passages, prompt_budget_tokens=1200)
    assert fitted is not None
    assert fitted.passages[:2] == passages[:2]
    # The third gets the room that is left, its beginning kept.
    third = fitted.passages[2]
    assert passages[2].text.strip().startswith(third.text)
    assert len(third.text) < 1000
    assert (fitted.dropped, fitted.cut, fitted.trimmed) == (2, True, True)
    assert fitted.estimated_tokens <= 1200
    whole = fit_prompt("What?", passages, prompt_budget_tokens=10_000)
    assert whole is not None
    assert not whole.trimmed
    assert fit_prompt("x" * 3000, [], prompt_budget_tokens=100) is None


def test_fifty_long_passages_keep_what_fits_instead_of_none() -> None:
    # Each passage alone is larger than the whole budget: before, every one was dropped.
    passages = [_passage(n, "Pumps are inspected yearly. " * 300) for n in range(1, 51)]
    fitted = fit_prompt("How often are pumps inspected?", passages, prompt_budget_tokens=1700)
    assert fitted is not None
    assert len(fitted.passages) == 1
    assert fitted.cut
    assert fitted.dropped == 49
    assert fitted.estimated_tokens <= 1700


def test_cjk_text_is_estimated_by_its_bytes_not_as_english() -> None:
    question = "数据库" * 667
    # Three UTF-8 bytes a character: about 6,000 tokens, not the 667 of chars/3.
    assert estimate_tokens(question) == 3 * len(question)
    assert estimate_tokens("abc def") == 3
    assert fit_prompt(question, [], prompt_budget_tokens=1700) is None


def test_a_provider_tokenizer_counts_exactly_and_keeps_what_the_estimate_would_drop() -> None:
    # Any model's tokenizer.json will do; the bundled embedding model's is at hand offline.
    count = tokenizer_count(bundled_model_dir() / "tokenizer.json")
    assert count("the cat sat on the mat") == 6
    passages = [_passage(1, "internationalization " * 60)]  # long words, few tokens each
    exact = estimate_prompt_tokens(build_messages("What?", passages), count)
    estimated = estimate_prompt_tokens(build_messages("What?", passages))
    assert exact < estimated
    with_tokenizer = fit_prompt("What?", passages, exact, count)
    assert with_tokenizer is not None
    assert (with_tokenizer.dropped, with_tokenizer.estimated_tokens) == (0, exact)
    estimate_only = fit_prompt("What?", passages, exact)
    assert estimate_only is not None
    assert estimate_only.trimmed


def test_a_missing_tokenizer_file_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="tokenizer_path"):
        ProviderSettings(
            name="p", base_url="http://x/v1", model="m", tokenizer_path=Path("/no/such.json")
        )


def test_api_key_from_a_mounted_secret_file_or_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "api-key"
    secret.write_text("sk-from-file\n")
    from_file = Provider(
        ProviderSettings(name="f", base_url="http://x/v1", model="m", api_key_file=secret), "d"
    )
    assert from_file._client.api_key == "sk-from-file"
    monkeypatch.setenv("P_KEY", "sk-from-env")
    from_env = ProviderSettings(name="e", base_url="http://x/v1", model="m", api_key_env="P_KEY")
    assert Provider(from_env, "d")._client.api_key == "sk-from-env"
    monkeypatch.delenv("P_KEY")
    with pytest.raises(ValueError, match="environment variable P_KEY is not set"):
        Provider(from_env, "d")
    with pytest.raises(ValidationError, match="not both"):
        ProviderSettings(
            name="b", base_url="http://x/v1", model="m", api_key_env="P_KEY", api_key_file=secret
        )


def test_cost_from_the_price_table_and_conservative_token_estimate() -> None:
    provider = ProviderSettings(
        name="p",
        base_url="http://x/v1",
        model="m",
        input_price_per_mtok_usd=0.5,
        output_price_per_mtok_usd=1.5,
    )
    assert cost_usd(provider, 1_000_000, 2_000_000) == pytest.approx(3.5)
    assert estimate_tokens("abcdefg") == 3  # 7 chars / 3, rounded up


def test_extractive_answer_quotes_first_sentences_with_citations() -> None:
    passages = [
        _passage(1, "The venv module creates environments.  It ships with Python."),
        _passage(2, "Activate it with source bin/activate! Then install."),
        _passage(3, "A third passage."),
        _passage(4, "Not used."),
    ]
    answer = extractive_answer(passages, count=3)
    assert answer.text == (
        "The venv module creates environments. [1] "
        "Activate it with source bin/activate! [2] A third passage. [3]"
    )
    assert answer.cited == passages[:3]
    assert extractive_answer([], count=3).cited == []
    assert first_sentence("word " * 200).endswith(" ...")


def test_providers_from_json_and_the_single_provider_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENERATION_BASE_URL", "http://127.0.0.1:9/v1")
    single = GenerationSettings().chain()
    assert [(p.name, p.base_url, p.tier) for p in single] == [
        ("local-smollm2", "http://127.0.0.1:9/v1", "small")
    ]
    monkeypatch.setenv(
        "GENERATION_PROVIDERS",
        '[{"name": "a", "base_url": "http://a/v1", "model": "m", "tier": "large",'
        ' "api_key_env": "A_KEY", "input_price_per_mtok_usd": 0.1, "context_window": 8192},'
        ' {"name": "b", "base_url": "http://b/v1", "model": "m"}]',
    )
    chain = GenerationSettings().chain()
    assert [(p.name, p.tier, p.context_window) for p in chain] == [
        ("a", "large", 8192),
        ("b", "small", 2048),
    ]
    assert chain[0].api_key_env == "A_KEY"
