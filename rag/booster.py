"""A LightGBM model folder, as the learned rankers ship: ``model.txt`` and ``card.json``.

``model.txt`` is the booster in LightGBM's text format, so loading runs no pickled code.
``card.json`` says what the model is: format version, the feature names in order, what it was
trained on and any fitted settings. Loading checks the card against the features the code
computes, so a model trained on other features is refused rather than misread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rag.errors import ModelError


class Booster:
    """A loaded model folder: ``predict`` takes one row per candidate, in ``card["features"]`` order."""

    def __init__(self, booster: Any, card: dict[str, Any], folder: Path) -> None:
        self.booster = booster
        self.card = card
        self.folder = folder

    @property
    def name(self) -> str:
        """What the model says it is, for ``Pipeline.info`` and reports."""
        return str(self.card.get("name", self.folder.name))

    @classmethod
    def load(cls, folder: Path, what: str, fmt: int, features: Sequence[str], fix: str) -> Booster:
        """The model in ``folder``; ModelError naming ``what`` it is and ending in ``fix`` when it
        cannot be used."""
        card_path, model_path = folder / "card.json", folder / "model.txt"
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"the {what} in {folder} has no readable card.json ({exc}): {fix}") from None
        if not isinstance(card, dict) or card.get("format") != fmt or tuple(card.get("features", ())) != tuple(features):
            found = card.get("format") if isinstance(card, dict) else None
            raise ModelError(f"the {what} in {folder} was trained on other features (format {found!r}): {fix}")
        try:
            import lightgbm

            booster = lightgbm.Booster(model_file=str(model_path))
        except Exception as exc:  # LightGBM raises its own error type for a damaged file
            raise ModelError(f"the {what} model {model_path} cannot be loaded ({exc}): {fix}") from None
        return cls(booster, card, folder)

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """One score per row."""
        if len(matrix) == 0:
            return np.zeros(0)
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)
