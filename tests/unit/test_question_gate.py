"""The semantic cache's gate: similar questions must carry the same numbers, negations, names."""

from __future__ import annotations

import pytest

from ragplane.query.caching.gate import QuestionGate, marks_of

gate = QuestionGate()


@pytest.mark.parametrize(
    ("cached", "incoming"),
    [
        ("How do I create a virtual environment?", "How can I create a virtual environment?"),
        ("What does venv do?", "what does venv do"),
        ("What is a Python list comprehension?", "What's a list comprehension in Python?"),
        (
            "How often is the Aurora 7 impeller inspected?",
            "How often do we inspect the Aurora 7 impeller?",
        ),
        ("Why can't I import the module?", "Why cannot I import the module?"),
        ("List two ways to read a file", "Give 2 ways to read a file"),
    ],
)
def test_same_question_in_other_words_passes(cached: str, incoming: str) -> None:
    assert gate.check(cached, incoming).agrees, gate.check(cached, incoming).reason


@pytest.mark.parametrize(
    ("cached", "incoming", "difference"),
    [
        ("How do I enable logging?", "How do I disable logging?", "negations"),
        ("Is the pump safe to run dry?", "Is the pump not safe to run dry?", "negations"),
        ("Can I use venv on Windows?", "Can't I use venv on Windows?", "negations"),
        ("What changed in Python 3.11?", "What changed in Python 3.12?", "numbers"),
        ("Inspect every 500 hours?", "Inspect every 1,000 hours?", "numbers"),
        ("List three ways to read a file", "List four ways to read a file", "numbers"),
        ("How do I install Django?", "How do I install Flask?", "names"),
        ("Who maintains the Zephyr kiln?", "Who maintains the Aurora kiln?", "names"),
        ('What does "pip freeze" print?', 'What does "pip list" print?', "names"),
    ],
)
def test_changed_number_negation_or_name_is_refused(
    cached: str, incoming: str, difference: str
) -> None:
    verdict = gate.check(cached, incoming)
    assert not verdict.agrees
    assert verdict.reason.startswith(difference)


def test_marks_read_digits_number_words_and_names() -> None:
    marks = marks_of("Does the iPhone 15 need two USB-C cables from Apple?")
    assert marks.numbers == {"15", "2"}
    assert marks.negations == 0
    assert {"iphone", "usb-c", "apple"} <= marks.names
    assert "does" not in marks.names
