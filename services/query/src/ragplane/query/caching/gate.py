"""A cheap check that two similar questions really ask the same thing.

Embeddings of "How do I enable X?" and "How do I disable X?", or of the same question with
another number or another name, are often more than 0.95 similar. Before a semantic cache hit
is served, both questions must carry the same numbers, the same negations and the same names.
Plain heuristics, no model: numbers are digit runs and number words, negations a word list,
names the capitalised, mixed-case, digit-bearing or quoted words that are not ordinary words at
the start of a question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "first": "1", "second": "2", "third": "3",
    "half": "0.5", "once": "1", "twice": "2", "single": "1", "double": "2", "dozen": "12",
}  # fmt: skip
_NEGATIONS = {
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot",
    "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "weren't", "won't",
    "wouldn't", "shouldn't", "couldn't", "mustn't", "hasn't", "haven't", "hadn't", "unable",
    "except", "excluding", "disable", "disabled", "disabling", "avoid", "prevent", "stop",
}  # fmt: skip
# Capitalised words that start or fill questions without naming anything.
_ORDINARY_CAPITALISED = {
    "how", "what", "why", "when", "where", "who", "whom", "whose", "which", "is", "are", "was",
    "were", "can", "could", "do", "does", "did", "should", "would", "will", "shall", "may",
    "might", "must", "i", "the", "a", "an", "please", "tell", "explain", "list", "give", "show",
    "describe", "in", "on", "for", "to", "if", "and", "or", "with", "my", "our", "your", "it",
    "there", "this", "that", "these", "those", "any", "some", "at", "by", "from", "of", "we",
    "you", "hi", "hello", "hey", "ok", "so", "then", "also", "find", "get", "help",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'_-]*|\d+(?:[.,]\d+)*")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_QUOTED = re.compile(r"[\"“'`]([^\"”'`]+)[\"”'`]")


@dataclass(frozen=True)
class QuestionMarks:
    """What a question pins down beyond its topic."""

    numbers: frozenset[str]
    negations: int
    names: frozenset[str]


def _number_of(word: str) -> str | None:
    if _DIGITS.fullmatch(word):
        return word.replace(",", "")
    return _NUMBER_WORDS.get(word.lower())


def _is_name(word: str) -> bool:
    # "What's", "I'm": a contraction of an ordinary word is ordinary.
    base = word.lower().split("'")[0]
    if base in _ORDINARY_CAPITALISED or word.lower() in _NEGATIONS:
        return False
    has_digit_and_letter = any(c.isdigit() for c in word) and any(c.isalpha() for c in word)
    mixed_case = any(c.isupper() for c in word[1:])
    return word[0].isupper() or mixed_case or has_digit_and_letter


def marks_of(question: str) -> QuestionMarks:
    question = question.replace("\u2019", "'")
    words = _WORD.findall(question)
    numbers = {number for word in words if (number := _number_of(word)) is not None}
    negations = sum(1 for word in words if word.lower() in _NEGATIONS)
    names = {word.lower() for word in words if _is_name(word) and _number_of(word) is None}
    names |= {quoted.strip().lower() for quoted in _QUOTED.findall(question)}
    return QuestionMarks(frozenset(numbers), negations, frozenset(names))


@dataclass(frozen=True)
class GateVerdict:
    agrees: bool
    reason: str


class QuestionGate:
    """Agrees only when two questions carry the same numbers, negations and names."""

    def check(self, cached: str, incoming: str) -> GateVerdict:
        a, b = marks_of(cached), marks_of(incoming)
        if a.numbers != b.numbers:
            return GateVerdict(False, f"numbers differ: {sorted(a.numbers)} vs {sorted(b.numbers)}")
        if a.negations != b.negations:
            return GateVerdict(False, f"negations differ: {a.negations} vs {b.negations}")
        if a.names != b.names:
            return GateVerdict(False, f"names differ: {sorted(a.names)} vs {sorted(b.names)}")
        return GateVerdict(True, "same numbers, negations and names")
