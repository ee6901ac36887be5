"""A hundred texts of many lengths for comparing embedding backends: short phrases, whole
paragraphs, and texts past the model's 256 tokens (truncated), made from the test documents."""

from __future__ import annotations

from tests.conftest import DATA


def hundred_texts() -> list[str]:
    words = " ".join(path.read_text() for path in sorted(DATA.rglob("*.md"))).split()
    texts = []
    for i in range(100):
        # Lengths from 1 to about 400 words, in no order, so every batch mixes them.
        length = 1 + (i * 37) % 400
        start = (i * 53) % len(words)
        texts.append(" ".join((words * (length // len(words) + 2))[start : start + length]))
    return texts
