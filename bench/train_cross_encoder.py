"""Fine-tune the shipped MiniLM as a cross-encoder that reads a question and one candidate answer
sentence together and scores whether the sentence answers it.

Every question is asked as ``rag ask`` asks it (as of its date, through the shipped passage
ranker, 8 passages), and the extractive answerer's own shortlist of 16 sentences is recorded with
its hand-weighted scores. A sentence is labelled 1 when it contains the gold answer
(rag.evaluate.contains). "What did X say?" questions are left out: they keep the speaker path.

Training: the encoder of all-MiniLM-L6-v2 (from the installed package) plus one linear layer over
the [CLS] position, on "question [SEP] title: sentence" pairs, with a listwise loss (softmax over
each question's shortlist, questions whose shortlist holds the answer). The last fifth of the
questions by date is held back: it chooses the epoch and the weight the answerer gives the score.
The other year is never read here: report the model on it with ``rag eval``.

    .venv/bin/python bench/train_cross_encoder.py --index bench-out/rtqa24/idx-i8 \\
        --questions ../shared/datasets/realtimeqa-2024-2025/questions.jsonl \\
        --out rag/answer/cross_encoder

Shortlists are cached in bench-out/ (keyed by index generation and questions).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.evaluate import contains, read_questions  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.text.quotes import asked_speaker  # noqa: E402

ANSWER_K = 8  # passages per answer, as rag ask and rag eval
SEED = 7
# Weights tried for the cross-encoder's probability beside the hand-weighted score (about 0 to 1.5).
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)


def shortlists(index_dir: Path, questions_path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Per question: its shortlisted sentences (text, title, label, the hand-weighted score and
    relevance), as the shipped answerer scores them."""
    pipeline = Pipeline(Settings(index_dir=index_dir))
    index = pipeline.index()
    answerer = pipeline.answerer()
    key = hashlib.sha1(f"{index.manifest.generation}|{questions_path.resolve()}|{limit}|{ANSWER_K}|"
                       f"{answerer.settings.max_candidates}".encode()).hexdigest()[:12]
    cache = ROOT / "bench-out" / f"ce-shortlists-{key}.jsonl"
    if cache.exists():
        return [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()]
    questions, _ = read_questions(questions_path)
    questions = [q for q in questions if asked_speaker(q.question) is None]
    questions = questions[:limit] if limit else questions
    out, started = [], time.perf_counter()
    for n, q in enumerate(questions, start=1):
        hits, as_of = pipeline.retrieve(q.question, k=ANSWER_K, as_of=q.date)
        quotes = index.store.quotes_for(sorted({h.article.id for h in hits}))
        candidates = answerer._candidates(hits, quotes)
        shortlist, _ = answerer._score(q.question, candidates, as_of=as_of.isoformat()) if candidates else ([], False)
        wrong = [c for c in q.choices if c != q.answer]
        out.append({"id": q.id, "day": as_of.isoformat(), "question": q.question, "answer": q.answer,
                    "sentences": [{"text": c.text, "title": c.hit.article.title, "rank": c.hit.rank,
                                   "score": round(c.score, 5), "relevance": round(c.relevance, 5),
                                   "novelty": round(c.novelty, 5),
                                   "label": int(contains(c.text, q.answer)),
                                   "other": int(any(contains(c.text, w) for w in wrong))}
                                  for c in shortlist]})
        if n % 200 == 0:
            print(f"{n}/{len(questions)} questions, {time.perf_counter() - started:.0f}s", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("".join(json.dumps(g) + "\n" for g in out), encoding="utf-8")
    return out


def split_by_date(groups: list[dict[str, Any]], share: float) -> tuple[list[dict], list[dict]]:
    """The earliest (1 - share) of the questions to train, the latest ``share`` to validate."""
    ordered = sorted(groups, key=lambda g: g["day"])
    cut = int(len(ordered) * (1 - share))
    return ordered[:cut], ordered[cut:]


def pair_of(sentence: dict[str, Any]) -> str:
    """What the model reads beside the question, exactly as the answerer will give it."""
    from rag.answer.cross_encoder import pair_text

    return pair_text(sentence["title"], sentence["text"])


def simulate(groups: list[dict[str, Any]], scores: list[np.ndarray], weight: float, keep_ratio: float = 0.65,
             abstain_below: float = 0.40, max_sentences: int = 3, top: int | None = None) -> dict[str, float]:
    """Accuracy, strict accuracy and abstention of answers made of the top sentences by the
    hand-weighted score plus ``weight`` times the cross-encoder's probability (abstention as the
    answerer decides it, on relevance; near-copies are not merged here). ``top``: only the best
    ``top`` by the hand-weighted score are read by the cross-encoder (the rest get no bonus)."""
    correct = strict = abstained = 0
    for g, ce in zip(groups, scores):
        s = g["sentences"]
        anchor = max(s, key=lambda x: x["score"] - x["novelty"], default=None)
        if anchor is None or anchor["score"] - anchor["novelty"] < 0 or anchor["relevance"] < abstain_below:
            abstained += 1
            continue
        hand = np.asarray([x["score"] for x in s])
        if top is not None:
            ce = ce.copy()
            ce[np.argsort(-hand, kind="stable")[top:]] = 0.0
        total = hand + weight * ce
        order = np.argsort(-total, kind="stable")
        kept = [i for i in order if total[i] >= keep_ratio * total[order[0]] and total[i] > 0][:max_sentences]
        hit = any(s[i]["label"] for i in kept)
        correct += hit
        strict += hit and not any(s[i]["other"] for i in kept)
    n = max(len(groups), 1)
    return {"accuracy": round(correct / n, 4), "strict": round(strict / n, 4), "abstained": round(abstained / n, 4)}


def first_hit(groups: list[dict[str, Any]], scores: list[np.ndarray]) -> float:
    """Share of questions whose top sentence by ``scores`` holds the answer."""
    return round(float(np.mean([g["sentences"][int(np.argmax(s))]["label"] if g["sentences"] else 0
                                for g, s in zip(groups, scores)])), 4)


class CrossEncoder:
    """MiniLM's encoder and a linear layer over [CLS]: one logit per (question, sentence)."""

    def __init__(self, source: Path, max_length: int) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(source))
        self.encoder = AutoModel.from_pretrained(str(source), attn_implementation="eager")
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)
        torch.nn.init.normal_(self.head.weight, std=0.02)
        torch.nn.init.zeros_(self.head.bias)
        self.max_length = max_length

    def parameters(self) -> Any:
        return [*self.encoder.parameters(), *self.head.parameters()]

    def logits(self, questions: list[str], texts: list[str]) -> Any:
        batch = self.tokenizer(questions, texts, padding=True, truncation="only_second",
                               max_length=self.max_length, return_tensors="pt")
        hidden = self.encoder(**batch).last_hidden_state[:, 0]
        return self.head(hidden).squeeze(-1)

    def score(self, groups: list[dict[str, Any]]) -> list[np.ndarray]:
        self.encoder.eval()
        out = []
        with self.torch.no_grad():
            for g in groups:
                if not g["sentences"]:
                    out.append(np.zeros(0))
                    continue
                texts = [pair_of(s) for s in g["sentences"]]
                out.append(self.torch.sigmoid(self.logits([g["question"]] * len(texts), texts)).numpy())
        return out


def train(model: CrossEncoder, groups: list[dict[str, Any]], valid: list[dict[str, Any]], epochs: int,
          lr: float, per_step: int) -> list[dict[str, Any]]:
    """Listwise training over the questions whose shortlist holds the answer; the state after
    each epoch is kept in memory, with its validation figures."""
    import torch

    usable = [g for g in groups if any(s["label"] for s in g["sentences"])]
    params = model.parameters()
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * ((len(usable) + per_step - 1) // per_step)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, (steps - s) / steps))
    rng = random.Random(SEED)
    history = []
    for epoch in range(1, epochs + 1):
        model.encoder.train()
        rng.shuffle(usable)
        started, losses = time.perf_counter(), []
        for at in range(0, len(usable), per_step):
            step = usable[at:at + per_step]
            questions, texts, sizes, targets = [], [], [], []
            for g in step:
                texts += [pair_of(s) for s in g["sentences"]]
                questions += [g["question"]] * len(g["sentences"])
                sizes.append(len(g["sentences"]))
                labels = torch.tensor([float(s["label"]) for s in g["sentences"]])
                targets.append(labels / labels.sum())
            logits = model.logits(questions, texts)
            # Listwise: each question's shortlist is one softmax, its positives share the target,
            # plus a pointwise term so that the probability means something on its own.
            loss = torch.stack([-(t * torch.log_softmax(part, 0)).sum()
                                for part, t in zip(torch.split(logits, sizes), targets)]).mean()
            flat = torch.cat(targets).clamp(max=1.0).ceil()
            loss = loss + 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(logits, flat)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        scores = model.score(valid)
        figures = {"epoch": epoch, "loss": round(float(np.mean(losses)), 4),
                   "seconds": round(time.perf_counter() - started), "first_sentence": first_hit(valid, scores),
                   "weights": {w: simulate(valid, scores, w) for w in WEIGHTS}}
        print(json.dumps(figures), file=sys.stderr, flush=True)
        history.append({"figures": figures,
                        "state": {k: v.detach().clone() for k, v in
                                  [*model.encoder.state_dict().items(),
                                   *(("head." + k, v) for k, v in model.head.state_dict().items())]}})
    return history


def export(model: CrossEncoder, state: dict[str, Any], folder: Path) -> None:
    """``state`` as int8 ONNX in ``folder`` (``MODEL_FILE``), quantised as the embedder's export is."""
    import warnings

    import torch

    from rag.answer.cross_encoder import MODEL_FILE
    from rag.embed.onnx_export import quantize_int8

    model.encoder.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")})
    model.head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
    model.encoder.eval()

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = model.encoder, model.head

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state[:, 0]
            return self.head(hidden).squeeze(-1)

    sample = model.tokenizer(["who won?", "which band will reunite?"], ["a title: a sentence", "b: c"],
                             padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    folder.mkdir(parents=True, exist_ok=True)
    float_file = ROOT / "bench-out" / f"{folder.name}-float.onnx"  # 90 MB: kept out of the package
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Whole().eval(), tuple(sample[n] for n in names), str(float_file), input_names=names,
                          output_names=["logit"], dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names},
                                                                "logit": {0: "batch"}},
                          opset_version=17, dynamo=False)
    quantize_int8(float_file, folder / MODEL_FILE, op_types=("MatMul", "Gather"))


def report(groups: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """The model in ``folder`` on every question of ``groups``, against the hand-set weights, as
    the simulation scores them: whole answers, and the first sentence alone."""
    from rag.answer.cross_encoder import SentenceCrossEncoder

    model = SentenceCrossEncoder.load(folder)
    scores = [model.score(g["question"], [pair_of(s) for s in g["sentences"]]) for g in groups]
    hand = [np.asarray([s["score"] for s in g["sentences"]]) for g in groups]
    combined = [h + model.weight * c for h, c in zip(hand, scores)]
    return {"questions": len(groups), "weight": model.weight,
            "answer_in_shortlist": round(float(np.mean([any(s["label"] for s in g["sentences"]) for g in groups])), 4),
            "hand_weights": simulate(groups, hand, 0.0), "with_cross_encoder": simulate(groups, scores, model.weight),
            "first_sentence": {"hand_weights": first_hit(groups, hand), "cross_encoder_alone": first_hit(groups, scores),
                               "combined": first_hit(groups, combined)},
            "one_sentence_answers": {"hand_weights": simulate(groups, hand, 0.0, max_sentences=1),
                                     "with_cross_encoder": simulate(groups, scores, model.weight, max_sentences=1)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "rag" / "answer" / "cross_encoder")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--validation", type=float, default=0.2, help="latest share held back")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--per-step", type=int, default=4, help="questions (of 16 sentences) per step")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--shortlists-only", action="store_true")
    parser.add_argument("--state", type=Path, help="export these trained weights instead of training")
    parser.add_argument("--state-epoch", type=int, default=0, help="which epoch --state is, for the card")
    parser.add_argument("--history", type=Path, help="the training run's figures per epoch, for the card")
    parser.add_argument("--report", action="store_true",
                        help="no training: score every question's shortlist with the model in --out "
                             "(for the other year, after training) and print the figures")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    torch.manual_seed(SEED)
    groups = shortlists(args.index, args.questions, args.limit)
    train_groups, valid = split_by_date(groups, args.validation)
    print(f"{len(train_groups)} training questions "
          f"({sum(any(s['label'] for s in g['sentences']) for g in train_groups)} with the answer shortlisted), "
          f"{len(valid)} held back", file=sys.stderr)
    hand = [np.asarray([s["score"] for s in g["sentences"]]) for g in valid]
    print(json.dumps({"hand": simulate(valid, hand, 0.0), "hand_first_sentence": first_hit(valid, hand)}),
          file=sys.stderr)
    if args.shortlists_only:
        return 0
    if args.report:
        print(json.dumps(report(groups, args.out), indent=2))
        return 0
    from rag.answer.cross_encoder import CROSS_ENCODER_FORMAT, SentenceCrossEncoder
    from rag.embed.model import DEFAULT_MODEL, resolve_model_path

    model = CrossEncoder(Path(resolve_model_path(DEFAULT_MODEL)), args.max_length)
    if args.state:
        # A run's saved epoch (bench-out/cross-encoder-epochN.pt), with that run's figures.
        history = json.loads(args.history.read_text(encoding="utf-8")) if args.history else []
        chosen = {"figures": {"epoch": args.state_epoch}, "state": torch.load(args.state)}
    else:
        runs = train(model, train_groups, valid, args.epochs, args.lr, args.per_step)
        for h in runs:
            torch.save(h["state"], ROOT / "bench-out" / f"cross-encoder-epoch{h['figures']['epoch']}.pt")
        history = [h["figures"] for h in runs]
        # The epoch: best accuracy + strict accuracy on the held-back fifth, at its best weight.
        chosen = max(runs, key=lambda h: max(f["accuracy"] + f["strict"] for f in h["figures"]["weights"].values()))
    export(model, chosen["state"], args.out)
    card = {"format": CROSS_ENCODER_FORMAT, "name": f"answer-cross-encoder-{args.questions.parent.name}",
            "weight": 1.0, "max_length": args.max_length}
    (args.out / "card.json").write_text(json.dumps(card) + "\n", encoding="utf-8")
    # Figures from the int8 export itself, as the answerer will run it.
    shipped = SentenceCrossEncoder.load(args.out)
    scores = [shipped.score(g["question"], [pair_of(s) for s in g["sentences"]]) for g in valid]
    weights = {w: simulate(valid, scores, w) for w in WEIGHTS}
    weight = max(weights, key=lambda w: (weights[w]["accuracy"] + weights[w]["strict"], -w))
    card.update({
        "weight": weight,
        "trained_on": {"questions": str(args.questions), "answer_k": ANSWER_K, "train_questions": len(train_groups),
                       "with_answer_shortlisted": sum(any(s["label"] for s in g["sentences"]) for g in train_groups),
                       "validation_questions": len(valid), "validation_from": valid[0]["day"] if valid else None},
        "training": {"epochs": len(history), "chosen_epoch": chosen["figures"]["epoch"], "lr": args.lr,
                     "questions_per_step": args.per_step, "loss": "listwise softmax + 0.5 pointwise BCE",
                     "history": history},
        "validation": {"hand_weights": simulate(valid, hand, 0.0), "hand_first_sentence": first_hit(valid, hand),
                       "int8_by_weight": {str(w): f for w, f in weights.items()},
                       "int8_first_sentence_alone": first_hit(valid, scores),
                       # Fewer sentences read make a faster answer: what each shortlist size keeps.
                       "int8_reading_only_the_top": {n: simulate(valid, scores, weight, top=n) for n in (4, 8, 12)}},
    })
    (args.out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card["validation"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
