"""Hypothesis strategies for every public request: a valid request with some fields replaced.

Built from the message descriptors, so a field added to a .proto is fuzzed without a change here.
Each field either keeps the valid request's value or gets a generated one: strings (control and
invisible characters, any non-surrogate Unicode, now and then up to 1.5 MB), floats (NaN,
infinities, extremes), integers (limits of int32), enum values in and out of range, lists of a
few elements or several hundred, maps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from tests.integration.hostile import DIMENSIONS

# Cases per RPC: a few in `make test`, many in `make fuzz`.
EXAMPLES = int(os.environ.get("RAGPLANE_FUZZ_EXAMPLES", "12"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    # A fixed seed: the same cases on every run.
    derandomize=True,
    database=None,
    # Calls to a live stack are slow by Hypothesis's standards and their time varies with load.
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    # No shrinking: every extra case is a real call, and the first failing one says enough.
    phases=[Phase.explicit, Phase.generate],
    print_blob=False,
    report_multiple_bugs=False,
)

# Sentinel: the field keeps the valid request's value.
KEEP = object()
HUGE_SIZES = (10_000, 100_001, 1_500_000)
PLAIN = (
    "",
    " ",
    "\n",
    "demo\n",
    "../x",
    "a" * 65,
    "数据库" * 50,
    "x@y.example",
    "\x00\x01\x02\x1b",
    "\u200b\u00a0\ufeff\u2060",
    "How often is the Aurora 7 impeller inspected?",
)
INT32 = (-(2**31), -1, 0, 1, 2, 3, 5, 8, 20, 21, 101, 201, 1001, 2**31 - 1)
FLOATS = (
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    -1.0,
    0.2,
    0.5,
    1.0,
    2.0,
    2.5,
    1e30,
    -1e30,
    3.4e38,
    1e-45,
)
# Output lengths: the invalid ones, and short valid ones (the 135M model writes ~40 tokens/s).
MAX_OUTPUT_TOKENS = (-(2**31), -1, 0, 1, 4, 8, 1025, 2**31 - 1)
LIST_SIZES = (257, 513, 1001)
SMALL_ELEMENT_BYTES = 2_000


def huge_strings() -> st.SearchStrategy[str]:
    return st.builds(
        lambda pattern, size: (pattern * size)[:size],
        st.sampled_from(["a", "x@", "\x00", "数", "\u200b", "a\n"]),
        st.sampled_from(HUGE_SIZES),
    )


def strings() -> st.SearchStrategy[str]:
    """Mostly short; one time in twenty, 10 kB to 1.5 MB."""
    short = st.one_of(
        st.sampled_from(PLAIN),
        st.text(max_size=40),
        st.text(
            alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Zl", "Zp"]),
            max_size=20,
        ),
    )
    return st.integers(0, 19).flatmap(lambda roll: huge_strings() if roll == 0 else short)


def floats() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(FLOATS), st.floats(width=32))


def ints() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(INT32), st.integers(-10, 50))


def vectors() -> st.SearchStrategy[list[float]]:
    """Vectors of the model's dimension or not, with an odd value somewhere."""
    return st.builds(
        lambda size, odd, at: [odd if i == at % max(size, 1) else 0.1 for i in range(size)],
        st.sampled_from([0, 3, DIMENSIONS, DIMENSIONS, DIMENSIONS + 1]),
        floats(),
        st.integers(0, DIMENSIONS),
    )


def sized_lists(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """A few elements, or one small element repeated past the usual limits."""
    return st.one_of(
        st.lists(element, max_size=3),
        st.builds(_repeated_small, element, st.sampled_from(LIST_SIZES)),
    )


def _repeated_small(one: Any, size: int) -> list[Any]:
    """``size`` copies of ``one`` when it is small; a long list of huge ones would be gigabytes."""
    held = one.ByteSize() if isinstance(one, Message) else len(one) if isinstance(one, str) else 8
    return [one] * size if held <= SMALL_ELEMENT_BYTES else [one]


def enums(field: FieldDescriptor) -> st.SearchStrategy[int]:
    assert field.enum_type is not None
    known = [value.number for value in field.enum_type.values]
    return st.sampled_from([*known, -1, 99, 2**31 - 1])


Overrides = Mapping[str, st.SearchStrategy[Any]]


def request_strategy(valid: Message, overrides: Overrides) -> st.SearchStrategy[Message]:
    """``valid`` with any of its fields (at any depth) replaced by generated values.

    ``overrides`` gives the strategy of a field by name (tenant, document ids, ...).
    """
    return _message(valid.DESCRIPTOR, valid, overrides)


def _message(
    descriptor: Any, base: Message | None, overrides: Overrides
) -> st.SearchStrategy[Message]:
    choices = {
        member.name: st.one_of(st.just(KEEP), _field(member, base, overrides))
        for member in descriptor.fields
    }
    return st.fixed_dictionaries(choices).map(_builder(descriptor, base))


def _builder(descriptor: Descriptor, base: Message | None) -> Callable[[dict[str, Any]], Message]:
    def build(choices: dict[str, Any]) -> Message:
        message = GetMessageClass(descriptor)()
        if base is not None:
            message.CopyFrom(base)
        for name, value in choices.items():
            if value is not KEEP:
                _assign(message, descriptor.fields_by_name[name], value)
        return message

    return build


def _repeated(member: FieldDescriptor) -> bool:
    return bool(member.is_repeated)


def _field(
    member: FieldDescriptor, base: Message | None, overrides: Overrides
) -> st.SearchStrategy[Any]:
    if member.name in overrides:
        single = overrides[member.name]
        return sized_lists(single) if _repeated(member) else single
    entry = member.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key = _scalar(entry.fields_by_name["key"])
        value = _scalar(entry.fields_by_name["value"])
        return st.dictionaries(key, value, max_size=3)
    if entry is not None:
        held = getattr(base, member.name) if base is not None else None
        if _repeated(member):
            element_base = held[0] if held else None
            return sized_lists(_message(entry, element_base, overrides))
        nested_base = held if base is not None and base.HasField(member.name) else None
        return _message(entry, nested_base, overrides)
    if member.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE) and _repeated(
        member
    ):
        return vectors()
    scalar = _scalar(member)
    return sized_lists(scalar) if _repeated(member) else scalar


def _scalar(member: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = member.type
    if kind == FieldDescriptor.TYPE_STRING:
        return strings()
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return floats()
    if kind == FieldDescriptor.TYPE_ENUM:
        return enums(member)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    return ints()


def _assign(message: Message, member: FieldDescriptor, value: Any) -> None:
    held = getattr(message, member.name)
    entry = member.message_type
    if entry is not None and entry.GetOptions().map_entry:
        held.clear()
        held.update(value)
    elif _repeated(member):
        del held[:]
        held.extend(value)
    elif entry is not None:
        held.CopyFrom(value)
    else:
        setattr(message, member.name, value)
