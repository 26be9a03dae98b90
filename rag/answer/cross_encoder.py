"""A cross-encoder for answer sentences: MiniLM reading the question and one sentence together.

The answerer's own score compares a sentence with the question from outside: the embedding
similarity of the two, and the question's words found in the sentence. Neither sees whether the
sentence *answers* the question, so "Which band will reunite?" is answered as readily by a
sentence that repeats it as by the one that names the band. This model reads both texts in one
pass, as "question [SEP] title: sentence", and gives the probability that the sentence holds
the answer. The answerer adds ``weight`` times that probability to each shortlisted sentence's
score; it does not decide whether to answer at all, which stays with the calibrated relevance.

It is the shipped all-MiniLM-L6-v2 encoder plus one linear layer over [CLS], fine-tuned on
RealTime QA 2024-2025 (``bench/train_cross_encoder.py``) and exported to int8 ONNX; the
tokenizer is the shipped model's own. The folder holds ``model-int8.onnx`` and ``card.json``
(format, weight, max_length, what it was trained on and how it measured).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rag.errors import ModelError

CROSS_ENCODER_FORMAT = 1
DEFAULT_CROSS_ENCODER = Path(__file__).resolve().parent / "cross_encoder"
MODEL_FILE = "model-int8.onnx"
_FIX = "retrain it with 'python bench/train_cross_encoder.py', or turn it off (Settings.cross_encoder=False)"


class SentenceCrossEncoder:
    """A loaded cross-encoder: ``score`` gives one probability per sentence."""

    def __init__(self, session: Any, tokenizer: Any, card: dict[str, Any], folder: Path) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.card = card
        self.folder = folder
        self._inputs = [i.name for i in session.get_inputs()]

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.folder.name))

    @property
    def weight(self) -> float:
        """How much a probability of 1 adds to a sentence's score (fitted beside the model)."""
        return float(self.card["weight"])

    @property
    def max_length(self) -> int:
        return int(self.card["max_length"])

    @classmethod
    def load(cls, folder: Path | None = None, threads: int | None = None) -> SentenceCrossEncoder:
        """The model in ``folder`` (None: the one that ships); ModelError saying what is wrong."""
        folder = folder or DEFAULT_CROSS_ENCODER
        try:
            card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"the answer cross-encoder in {folder} has no readable card.json ({exc}): {_FIX}") from None
        if (not isinstance(card, dict) or card.get("format") != CROSS_ENCODER_FORMAT
                or not isinstance(card.get("weight"), (int, float)) or not isinstance(card.get("max_length"), int)):
            found = card.get("format") if isinstance(card, dict) else None
            raise ModelError(f"the answer cross-encoder in {folder} has a card this version cannot use "
                             f"(format {found!r}, expected {CROSS_ENCODER_FORMAT} with a weight and a "
                             f"max_length): {_FIX}")
        from transformers import AutoTokenizer

        from rag.embed.model import DEFAULT_MODEL, resolve_model_path
        from rag.embed.runtimes import cpu_session

        try:
            session = cpu_session(folder / MODEL_FILE, threads)
        except Exception as exc:  # ONNX Runtime raises its own types for a missing or damaged file
            raise ModelError(f"the answer cross-encoder model {folder / MODEL_FILE} cannot be loaded "
                             f"({type(exc).__name__}: {exc}): {_FIX}") from None
        return cls(session, AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL)), card, folder)

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """For each of ``texts`` (as :func:`pair_text` makes them), the probability that it holds
        the answer to ``question``."""
        if not texts:
            return np.zeros(0)
        enc = self.tokenizer([question] * len(texts), list(texts), padding=True, truncation="only_second",
                             max_length=self.max_length, return_tensors="np")
        logits = self.session.run(None, {n: enc[n].astype(np.int64) for n in self._inputs})[0]
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64).reshape(-1)))


def pair_text(title: str, sentence: str) -> str:
    """What the model reads beside the question: the article's title gives the sentence its subject
    ("He said the band would tour" in a story titled "Oasis announce reunion")."""
    return f"{title}: {sentence}"
