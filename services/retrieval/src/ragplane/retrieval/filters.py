"""Filters on chunk fields: equality, membership and ranges, checked before they reach Weaviate."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from weaviate.classes.query import Filter
from weaviate.collections.classes.filters import _Filters

from ragplane.runtime.errors import InvalidArgument

FieldType = Literal["text", "number"]
# Fields every chunk has, filterable whatever the configuration declares.
FIXED_FIELDS: dict[str, FieldType] = {"document_id": "text"}


def metadata_property(key: str) -> str:
    """The Weaviate property that holds a declared metadata field."""
    return f"meta_{key}"


@dataclass(frozen=True)
class FieldFilter:
    """One condition; exactly one of equals, any_of or a range (one or more bounds) is set."""

    field: str
    equals: str = ""
    any_of: Sequence[str] = ()
    greater_than: str | None = None
    greater_or_equal: str | None = None
    less_than: str | None = None
    less_or_equal: str | None = None

    def bounds(self) -> dict[str, str]:
        named = {
            "greater_than": self.greater_than,
            "greater_or_equal": self.greater_or_equal,
            "less_than": self.less_than,
            "less_or_equal": self.less_or_equal,
        }
        return {name: value for name, value in named.items() if value is not None}


@dataclass
class FilterBuilder:
    """Turns FieldFilters into one Weaviate filter (all must match), naming any bad field."""

    declared: Mapping[str, FieldType]
    _fields: dict[str, FieldType] = field(init=False)

    def __post_init__(self) -> None:
        self._fields = {**FIXED_FIELDS, **self.declared}

    def build(self, filters: Sequence[FieldFilter]) -> _Filters | None:
        conditions = [self._condition(f, f"filters[{i}]") for i, f in enumerate(filters)]
        return Filter.all_of(conditions) if conditions else None

    def _condition(self, condition: FieldFilter, where: str) -> _Filters:
        field_type = self._fields.get(condition.field)
        if field_type is None:
            allowed = ", ".join(sorted(self._fields))
            raise InvalidArgument.of(
                f"{where}.field", f"{condition.field!r} is not filterable; filterable: {allowed}"
            )
        prop = self._property(condition.field)
        kinds = [bool(condition.equals), bool(condition.any_of), bool(condition.bounds())]
        if sum(kinds) != 1:
            raise InvalidArgument.of(where, "set exactly one of equals, any_of or range")
        target = Filter.by_property(prop)
        if condition.equals:
            return target.equal(_typed(condition.equals, field_type, f"{where}.equals"))
        if condition.any_of:
            values = [
                _typed(v, field_type, f"{where}.any_of[{n}]")
                for n, v in enumerate(condition.any_of)
            ]
            return target.contains_any(values)  # type: ignore[arg-type]
        return self._range(prop, condition.bounds(), field_type, f"{where}.range")

    def _range(
        self, prop: str, bounds: Mapping[str, str], field_type: FieldType, where: str
    ) -> _Filters:
        parts = []
        for name, raw in bounds.items():
            value = _typed(raw, field_type, f"{where}.{name}")
            parts.append(getattr(Filter.by_property(prop), name)(value))
        return Filter.all_of(parts)

    def _property(self, name: str) -> str:
        return name if name in FIXED_FIELDS else metadata_property(name)


def _typed(value: str, field_type: FieldType, where: str) -> str | float:
    return value if field_type == "text" else parse_number(value, where)


def parse_number(value: str, where: str) -> float:
    """A value of a field declared as a number; INVALID_ARGUMENT naming ``where`` otherwise."""
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgument.of(where, f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise InvalidArgument.of(where, f"{value!r} is not a finite number")
    return number
