"""The rules every request meets first, before logging, auth, caches or the service see it.

A hostile or broken caller must get a clear INVALID_ARGUMENT at once, not a stalled service:
- the bytes decode as the request message (invalid UTF-8 in a string is the caller's error);
- every string is within its size limit, so no later step (a log line, a Redis key, a metric
  label, a regex) ever handles a megabyte it did not expect;
- every enum holds a value the contract defines, never one silently read as the default;
- every float is finite: no field of any ragplane request means anything as NaN or infinity.

Field-specific rules (ranges, patterns) stay with the request's own model in each service.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from ragplane.runtime.errors import InvalidArgument

# Identifiers, names, filter values: anything a service does not list as longer text.
DEFAULT_STRING_CHARS = 1_024

_FLOATS = (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE)


@dataclass(frozen=True)
class StringLimits:
    """The most characters each string field may hold.

    ``by_field`` is keyed by the field's full protobuf name, for example
    ``ragplane.v1.QueryRequest.query``; every other string field gets ``default_chars``.
    """

    by_field: Mapping[str, int] = field(default_factory=dict)
    default_chars: int = DEFAULT_STRING_CHARS

    def limit(self, descriptor: FieldDescriptor) -> int:
        return self.by_field.get(descriptor.full_name, self.default_chars)


Deserializer = Callable[[bytes], Any]


def decode_request(raw: bytes, deserializer: Deserializer | None, limits: StringLimits) -> Any:
    """The request message, checked; raises INVALID_ARGUMENT naming the offending field."""
    if deserializer is None:
        return raw
    try:
        request = deserializer(raw)
    except DecodeError:
        raise InvalidArgument.of(
            "request",
            "is not a valid message: a string field holds invalid UTF-8, or the bytes are "
            "not the request type",
        ) from None
    if isinstance(request, Message):
        check_message(request, limits)
    return request


def check_message(message: Message, limits: StringLimits, path: str = "") -> None:
    for descriptor, value in message.ListFields():
        where = f"{path}{descriptor.name}"
        if _is_map(descriptor):
            _check_map(descriptor, value, limits, where)
        elif descriptor.is_repeated:
            for index, item in enumerate(value):
                _check_value(descriptor, item, limits, f"{where}[{index}]")
        else:
            _check_value(descriptor, value, limits, where)


def _is_map(descriptor: FieldDescriptor) -> bool:
    message_type = descriptor.message_type
    return message_type is not None and message_type.GetOptions().map_entry


def _check_map(descriptor: FieldDescriptor, value: Any, limits: StringLimits, where: str) -> None:
    entry = descriptor.message_type
    assert entry is not None  # a map field's entry type
    key_field = entry.fields_by_name["key"]
    value_field = entry.fields_by_name["value"]
    for key, item in value.items():
        # The key itself may be the oversized part: never echo it.
        _check_value(key_field, key, limits, f"{where} (a key)")
        _check_value(value_field, item, limits, f"{where}[{_shown_key(key)}]")


def _shown_key(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _check_value(descriptor: FieldDescriptor, value: Any, limits: StringLimits, where: str) -> None:
    kind = descriptor.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        check_message(value, limits, f"{where}.")
    elif kind == FieldDescriptor.TYPE_STRING:
        limit = limits.limit(descriptor)
        if len(value) > limit:
            raise InvalidArgument.of(
                where, f"has {len(value):,} characters; the limit is {limit:,}"
            )
    elif kind == FieldDescriptor.TYPE_ENUM:
        enum_type = descriptor.enum_type
        assert enum_type is not None  # an enum field's type
        if value not in enum_type.values_by_number:
            known = ", ".join(v.name for v in enum_type.values)
            raise InvalidArgument.of(where, f"{value} is not a {enum_type.name} ({known})")
    elif kind in _FLOATS and not math.isfinite(value):
        raise InvalidArgument.of(where, f"must be a finite number, got {value}")
