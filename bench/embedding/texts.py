"""The short texts every phase embeds: one sentence pattern with a running number in it.

All phases embed the same kind of text (about 16 model tokens), so their figures compare. The
number makes every text distinct, so that no cache can answer in the model's place; the load
generators put the request's own number in (ghz through its template, vegeta through one
prepared request per number).
"""

from __future__ import annotations

# {n} is the text's number. Keep the sentence short: the benchmark measures many small calls.
TEXT_PATTERN = "Note {n}: how do I read a CSV file into a table?"

# ghz fills this in for every call with the call's number (a Go template action).
GHZ_REQUEST_NUMBER = "{{.RequestNumber}}"


def short_text(number: int) -> str:
    return TEXT_PATTERN.format(n=number)


def short_texts(count: int) -> list[str]:
    return [short_text(number) for number in range(count)]


def ghz_text_template() -> str:
    """The text with ghz's request number in place of {n}: each call embeds its own text."""
    return TEXT_PATTERN.format(n=GHZ_REQUEST_NUMBER)
