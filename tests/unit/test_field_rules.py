"""Rules for fields that several services check: one rule, one reason, wherever it is checked."""

from __future__ import annotations

import pytest

from ragplane.runtime.errors import InvalidArgument
from ragplane.runtime.fields import (
    check_temperature,
    check_tenant,
    check_vector,
    require_words,
)


@pytest.mark.parametrize("tenant", ["demo", "a", "Tenant_2-b", "x" * 64])
def test_good_tenant_names_pass(tenant: str) -> None:
    check_tenant(tenant)


@pytest.mark.parametrize(
    "tenant", ["", "demo\n", "x" * 65, "../x", "-lead", "a b", "dé", "x\n" * 5_000]
)
def test_bad_tenant_names_are_refused_whole_string(tenant: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^tenant: "):
        check_tenant(tenant)


@pytest.mark.parametrize("temperature", [None, 0.0, 0.7, 2.0])
def test_temperatures_within_the_providers_range_pass(temperature: float | None) -> None:
    check_temperature(temperature)


@pytest.mark.parametrize("temperature", [-1.0, 2.01, 1e30, float("nan"), float("inf")])
def test_other_temperatures_are_refused(temperature: float) -> None:
    with pytest.raises(InvalidArgument, match=r"^temperature: "):
        check_temperature(temperature)


@pytest.mark.parametrize("text", ["\x00\x00\x00", "\u200b\u00a0\ufeff\u2060", "  ?! ", ""])
def test_text_without_a_letter_or_digit_asks_nothing(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^query: has no letter or digit"):
        require_words(text, "query")


@pytest.mark.parametrize("text", ["why?", "数据库", "42"])
def test_text_with_a_letter_or_digit_in_any_script_passes(text: str) -> None:
    require_words(text, "query")


@pytest.mark.parametrize(
    ("values", "problem"),
    [([0.1] * 3, "has 3 values"), ([0.1] * 385, "has 385 values"), ([float("nan")] * 4, "NaN")],
)
def test_vectors_must_match_the_model(values: list[float], problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        check_vector(values, 384 if len(values) != 4 else 4, "query_vector")
