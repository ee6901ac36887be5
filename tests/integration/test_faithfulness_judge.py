"""The LLM-as-judge faithfulness mode against the stack's SmolLM2: a judged score, its tokens
counted; and when the generation service does not answer the judge in its time, the evidence
score instead, the answer unharmed."""

from __future__ import annotations

from pathlib import Path

from ragplane.cli.stack import Stack
from ragplane.v1 import query_pb2
from tests.integration.corpus import VENV_QUESTION, VENV_TOP_K
from tests.integration.orchestrator import query_service

JUDGE_CALLS = "ragplane_query_faithfulness_judge_total"
# Asked in turn until the judge's reply is readable: the 135M model's is about 3 times in 4
# (`make eval-faithfulness JUDGE=1`: 29 of 40); at temperature 0 a tree gives the same replies.
JUDGED_QUESTIONS = (
    VENV_QUESTION,
    "How do I activate a virtual environment?",
    "What is a virtual environment?",
)


def test_the_judge_scores_the_answer_and_its_tokens_are_counted(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    with query_service(stack, tmp_path, faithfulness_judge="on") as service:
        for question in JUDGED_QUESTIONS:
            response = service.ask_briefly(docs_tenant, question, VENV_TOP_K, temperature=0)
            if response.quality.faithfulness_method == query_pb2.FAITHFULNESS_METHOD_JUDGE:
                break
        judged = service.process.metric(JUDGE_CALLS, 'outcome="judged"')
        judge_tokens = service.process.metric(
            "ragplane_query_faithfulness_judge_tokens_total", 'direction="input"'
        )
    quality = response.quality
    assert response.provider, response
    assert quality.faithfulness_method == query_pb2.FAITHFULNESS_METHOD_JUDGE, quality
    assert 0 <= quality.faithfulness <= 1
    assert quality.faithfulness_note.startswith("judged by ")
    assert judged == 1
    # The judge read the passages and the answer: more input than the question alone.
    assert quality.judge_usage.input_tokens > 50
    # Unreadable replies before it count their tokens too.
    assert judge_tokens >= quality.judge_usage.input_tokens
    # The response's usage is the answer's and the judge's together.
    assert response.usage.input_tokens > quality.judge_usage.input_tokens
    assert response.usage.output_tokens > quality.judge_usage.output_tokens > 0


def test_a_judge_no_model_answers_in_time_leaves_the_evidence_score(
    stack: Stack, docs_tenant: str, tmp_path: Path
) -> None:
    # 0.6 s leaves the generation service less than a model call needs after its own reserve:
    # it skips its providers and quotes passages, which is no verdict. The answer itself has
    # the generation stage's usual time.
    with query_service(
        stack, tmp_path, faithfulness_judge="on", faithfulness_judge_timeout_s="0.6"
    ) as service:
        response = service.ask_briefly(docs_tenant, VENV_QUESTION, VENV_TOP_K)
        failed = service.process.metric(JUDGE_CALLS, 'outcome="failed"')
    quality = response.quality
    assert response.provider, response
    assert quality.faithfulness_method == query_pb2.FAITHFULNESS_METHOD_EVIDENCE, quality
    assert quality.faithfulness_note.startswith("no judge: no model"), quality
    assert failed == 1
    assert not response.degradations
