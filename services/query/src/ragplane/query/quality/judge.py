"""LLM-as-judge faithfulness (QUERY_FAITHFULNESS_JUDGE=on): one generation call per answer.

The generation service is asked, through the query service's own client and breaker, whether
the passages support each sentence of the answer, and must reply with one numbered yes/no line
per sentence. A judge that fails, has no time left or replies in another shape costs the answer
nothing but that time: the evidence score (faithfulness.py) is given instead, saying why. The
call's tokens and cost are counted either way.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from ragplane.query.domain import EXTRACTIVE_FINISH, GeneratedAnswer, Passage, Question
from ragplane.query.metrics import JUDGE_CALLS, JUDGE_COST, JUDGE_TOKENS
from ragplane.query.quality.evidence import split_sentences
from ragplane.query.quality.faithfulness import Faithfulness, JudgeUsage, Method
from ragplane.runtime.errors import ServiceError

# The question, the passages it is about, timeout in seconds -> the generation service's answer.
Ask = Callable[[Question, Sequence[Passage], float], Awaitable[GeneratedAnswer]]
# The evidence score, computed when it is needed (its timeout is taken from what is left then).
Fallback = Callable[[], Awaitable[Faithfulness]]

INSTRUCTION = (
    "Do the context passages support each statement below? Reply with one line per statement, "
    'in order, written as the statement\'s number, a colon and yes or no, for example "1: yes". '
    "Write nothing else."
)
# Reply tokens allowed per statement ("12: yes" and a line break, with room for a full stop).
TOKENS_PER_VERDICT = 6

# "1: yes", "1. Yes.", "**2)** no", "Statement 3 - NO": a number first, then the verdict.
_NUMBERED = re.compile(r"^\W*(?:statement|sentence|claim)?\s*(\d+)\b(.*)$", re.IGNORECASE)
_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_verdicts(reply: str, count: int) -> list[bool] | None:
    """One verdict per statement (True: supported), read from the judge's reply.

    Numbered lines are matched to their statements, whatever their order; numbers past
    ``count`` are ignored (a model that runs on). Without any numbered line, as many bare
    yes/no lines as statements are taken in order. None when a statement has no verdict, two
    different ones, or a line says both yes and no.
    """
    numbered: dict[int, bool] = {}
    bare: list[bool] = []
    for line in reply.splitlines():
        match = _NUMBERED.match(line)
        words = {w.lower() for w in _VERDICT.findall(match.group(2) if match else line)}
        if not words:
            continue
        if len(words) > 1:
            return None
        verdict = words == {"yes"}
        if match is None:
            bare.append(verdict)
            continue
        number = int(match.group(1))
        if number > count:
            continue
        if numbered.setdefault(number, verdict) != verdict:
            return None
    if numbered:
        return [numbered[n] for n in range(1, count + 1)] if len(numbered) == count else None
    return bare if len(bare) == count else None


def judge_question(tenant: str, statements: Sequence[str], tier: int) -> Question:
    """The question asked of the generation service: deterministic, with a short reply."""
    listed = "\n".join(f"{n}. {text}" for n, text in enumerate(statements, start=1))
    return Question(
        tenant=tenant,
        text=f"{INSTRUCTION}\n\nStatements:\n{listed}",
        top_k=0,
        max_output_tokens=TOKENS_PER_VERDICT * len(statements) + 4,
        temperature=0.0,
        tier=tier,
    )


@dataclass(frozen=True)
class JudgeSettings:
    # The generation service's ModelTier value the judge asks for.
    tier: int
    # Less time than this left: no judge call, the evidence score.
    min_s: float
    # Answers with more sentences are scored by evidence (the question would grow too long).
    max_sentences: int


@dataclass(frozen=True)
class FaithfulnessJudge:
    ask: Ask
    settings: JudgeSettings

    async def score(
        self,
        tenant: str,
        answer: str,
        passages: Sequence[Passage],
        timeout_s: float,
        fallback: Fallback,
    ) -> Faithfulness:
        """The judge's score of ``answer``; ``fallback``'s, noting why, when it gives none."""
        sentences = split_sentences(answer)
        if not sentences:
            return await fallback()
        limits = self.settings
        if len(sentences) > limits.max_sentences:
            too_long = f"more than {limits.max_sentences} sentences"
            return await _instead(fallback, "skipped", too_long)
        if timeout_s < limits.min_s:
            return await _instead(fallback, "skipped", "no time left for it")
        question = judge_question(tenant, [s.text for s in sentences], limits.tier)
        try:
            reply = await self.ask(question, passages, timeout_s)
        except ServiceError as error:
            return await _instead(fallback, "failed", error.message)
        usage = _count(reply)
        if reply.finish_reason == EXTRACTIVE_FINISH:
            why = "no model of the generation service answered it"
            return replace(await _instead(fallback, "failed", why), judge_usage=usage)
        verdicts = parse_verdicts(reply.text, len(sentences))
        if verdicts is None:
            why = f"its reply {reply.text[:80]!r} gives no yes/no line per sentence"
            return replace(await _instead(fallback, "unreadable", why), judge_usage=usage)
        JUDGE_CALLS.labels("judged").inc()
        unsupported = tuple(index for index, supported in enumerate(verdicts) if not supported)
        return Faithfulness(
            score=1 - len(unsupported) / len(sentences),
            unsupported=unsupported,
            citation_coverage=sum(bool(s.cited) for s in sentences) / len(sentences),
            method=Method.JUDGE,
            note=f"judged by {reply.model} ({reply.provider})",
            judge_usage=usage,
        )


async def _instead(fallback: Fallback, outcome: str, why: str) -> Faithfulness:
    """The evidence score, its note saying why the judge's was not given."""
    JUDGE_CALLS.labels(outcome).inc()
    scored = await fallback()
    note = f"no judge: {why}; {scored.note}" if scored.note else f"no judge: {why}"
    return replace(scored, note=note)


def _count(reply: GeneratedAnswer) -> JudgeUsage:
    JUDGE_TOKENS.labels("input").inc(reply.input_tokens)
    JUDGE_TOKENS.labels("output").inc(reply.output_tokens)
    JUDGE_COST.inc(reply.cost_usd)
    return JudgeUsage(reply.input_tokens, reply.output_tokens, reply.cost_usd)
