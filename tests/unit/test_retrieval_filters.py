"""Filters are checked before they reach Weaviate; mistakes name the field and the fix."""

from __future__ import annotations

import pytest

from ragplane.retrieval.filters import FieldFilter, FilterBuilder
from ragplane.runtime.errors import InvalidArgument

BUILDER = FilterBuilder({"section": "text", "year": "number"})


@pytest.mark.parametrize(
    "condition",
    [
        FieldFilter("section", equals="library"),
        FieldFilter("document_id", any_of=["a.md", "b.md"]),
        FieldFilter("year", greater_or_equal="2020", less_than="2024"),
        FieldFilter("section", greater_than="howto"),
    ],
)
def test_valid_conditions_build_a_filter(condition: FieldFilter) -> None:
    assert BUILDER.build([condition]) is not None


def test_no_conditions_means_no_filter() -> None:
    assert BUILDER.build([]) is None


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ([FieldFilter("colour", equals="red")], "filters[0].field: 'colour' is not filterable"),
        (
            [FieldFilter("section", equals="a"), FieldFilter("section")],
            "filters[1]: set exactly one of equals, any_of or range",
        ),
        (
            [FieldFilter("section", equals="a", any_of=["b"])],
            "filters[0]: set exactly one of equals, any_of or range",
        ),
        ([FieldFilter("year", equals="recent")], "filters[0].equals: 'recent' is not a number"),
        (
            [FieldFilter("year", any_of=["2020", "x"])],
            "filters[0].any_of[1]: 'x' is not a number",
        ),
        (
            [FieldFilter("year", less_than="inf")],
            "filters[0].range.less_than: 'inf' is not a finite number",
        ),
    ],
)
def test_bad_conditions_are_invalid_argument_naming_the_field(
    conditions: list[FieldFilter], message: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        BUILDER.build(conditions)
    assert raised.value.message.startswith(message)


def test_the_error_for_an_unknown_field_lists_the_filterable_ones() -> None:
    with pytest.raises(InvalidArgument) as raised:
        BUILDER.build([FieldFilter("colour", equals="red")])
    assert raised.value.message.endswith("filterable: document_id, section, year")
