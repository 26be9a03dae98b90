"""The compressed dense index: inverted lists of product-quantised codes, re-scored exactly.

FAISS holds only short codes (``PQ_M`` bytes a vector, with its id) in ``nlist`` lists around k-means
centroids; the float vectors stay in ``vectors.npy``, memory-mapped, and only the top
``RESCORE_DEPTH`` candidates of a search are read back and scored exactly. That keeps recall
close to exact search while the index's own memory is about a fifteenth of the floats
(BENCHMARKS.md, "The compressed index (ivf)").

Training (k-means for the lists, and the product quantiser) uses a sample of at most
``TRAIN_SAMPLE`` rows. The trained, empty index is saved with the generation as ``TRAINED``, and
the next reindex adds its vectors to a copy of it instead of training again, until
``retrain_reason`` says the quantiser no longer fits: the index grew ``GROWTH`` times past the size
its lists were chosen for, or the vectors fit the centroids worse than the sample did by more than
``DRIFT`` (mean cosine to the nearest centroid; what a drift costs in recall is measured there).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

TRAINED = "ivf.trained.faiss"
TRAIN_SAMPLE = 100_000
# Bytes of code per vector (8-bit sub-quantisers): the largest divisor of the dimension up to this.
# 96 over 48: recall@10 0.996 against 0.983 at 1M, for 0.2 ms (BENCHMARKS.md).
PQ_M = 96
# Lists searched per query (at most nlist): recall@10 and latency at 1M, BENCHMARKS.md.
NPROBE = 32
# Candidates re-scored on the float vectors (at least 2k); recall@10 at 1M: BENCHMARKS.md.
RESCORE_DEPTH = 200
# A filter that keeps at most this many rows is scored exactly: 10 ms at 20k rows of 1M, where
# probing more lists under the filter is 6 ms at the same recall, and 4 ms against 34 at 50k.
EXACT_FILTERED_ROWS = 20_000
GROWTH = 4
# A mean-cosine drop of 0.13 cost 0.003 recall@10 and one of 0.31 cost 0.14 (BENCHMARKS.md): retrain early.
DRIFT = 0.05
_ROWS_PER_LIST = 24
_FIT_SAMPLE = 20_000
# Below this the mean fit is noise (one new chunk among ten moves it by 0.04); growth still counts.
_MIN_DRIFT_ROWS = 1_000
_ADD_BATCH = 100_000


@dataclass(frozen=True)
class IvfInfo:
    """How a generation's IVF index was trained, as the manifest records it under ``index.ivf``.

    >>> info = IvfInfo(nlist=64, code="PQ96x8", sized_for=5000, trained_rows=5000,
    ...                trained_in="gen-1", fit=0.71, reason="first build")
    >>> IvfInfo.from_json(info.to_json()) == info
    True
    """

    nlist: int
    code: str
    sized_for: int  # rows in the index when it was trained: what ``nlist`` was chosen for
    trained_rows: int
    trained_in: str  # the generation whose build trained it; later ones reuse it
    fit: float  # mean cosine of rows to their nearest centroid, at training
    reason: str  # why it was trained then

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IvfInfo:
        return cls(nlist=int(data["nlist"]), code=str(data["code"]),
                   sized_for=int(data["sized_for"]), trained_rows=int(data["trained_rows"]),
                   trained_in=str(data["trained_in"]), fit=float(data["fit"]), reason=str(data["reason"]))


@dataclass
class Trained:
    """A trained, empty IVF index and what trained it."""

    index: faiss.Index
    info: IvfInfo


def nlist_for(n: int, sample: int | None = None) -> int:
    """Lists for ``n`` rows: the power of two nearest 4 * sqrt(n), but no more than one per 24
    training rows (4,096 lists from 100k rows: 0.98 recall@10 at 1M, BENCHMARKS.md; FAISS asks
    for 39 and warns below that).

    >>> nlist_for(1_000_000), nlist_for(10_000_000), nlist_for(10_000), nlist_for(9)
    (4096, 4096, 256, 1)
    """
    rows = min(n, TRAIN_SAMPLE) if sample is None else sample
    wanted = round(math.log2(4 * math.sqrt(max(n, 1))))
    cap = math.floor(math.log2(rows / _ROWS_PER_LIST)) if rows >= _ROWS_PER_LIST else 0
    return 1 << max(0, min(wanted, cap))


def depth(k: int) -> int:
    """How many candidates a search for the top ``k`` re-scores."""
    return max(RESCORE_DEPTH, 2 * k)


def train(vectors: np.ndarray, generation: str, sized_for: int | None = None, reason: str = "first build",
          seed: int = 0) -> Trained:
    """An empty IVF-PQ index trained on a sample of ``vectors`` (L2-normalised rows).

    ``sized_for``: the rows the index will hold (default ``len(vectors)``), which sets ``nlist``.
    """
    n, dim = vectors.shape
    rows = np.arange(n)
    if n > TRAIN_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(n, TRAIN_SAMPLE, replace=False))
    sample = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    nlist = nlist_for(sized_for or n, len(sample))
    m = max(d for d in range(1, min(PQ_M, dim) + 1) if dim % d == 0)
    # 8-bit sub-quantisers need 256 training rows; a tiny index gets fewer centroids per sub-space.
    nbits = max(1, min(8, int(math.log2(max(len(sample), 2)))))
    code = f"PQ{m}x{nbits}"
    # "np": no polysemous training, which took minutes and only serves Hamming-distance filtering.
    index = faiss.index_factory(dim, f"IVF{nlist},{code}np", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.spherical = True  # centroids on the unit sphere, like the rows they stand for
    ivf.cp.seed = seed
    # The sizes above already keep enough rows per centroid; FAISS's warnings below 39 are noise.
    ivf.cp.min_points_per_centroid = 1
    ivf.pq.cp.min_points_per_centroid = 1
    index.train(sample)
    ivf.nprobe = min(NPROBE, nlist)  # what FAISS searches with by default; DenseSearcher passes its own
    info = IvfInfo(nlist=nlist, code=code, sized_for=sized_for or n,
                   trained_rows=len(sample), trained_in=generation, fit=fit(index, vectors, seed), reason=reason)
    return Trained(index, info)


def fill(trained: faiss.Index, vectors: np.ndarray) -> faiss.Index:
    """A copy of the trained, empty ``trained`` holding ``vectors`` as rows 0..n-1; no training."""
    index = faiss.clone_index(trained)
    for lo in range(0, len(vectors), _ADD_BATCH):
        index.add(np.ascontiguousarray(vectors[lo:lo + _ADD_BATCH], dtype=np.float32))
    return index


def fit(index: faiss.Index, vectors: np.ndarray, seed: int = 0) -> float:
    """Mean cosine of (a sample of) ``vectors`` to their nearest centroid of ``index``."""
    n = len(vectors)
    if n == 0:
        return 0.0
    rows = np.arange(n) if n <= _FIT_SAMPLE else np.sort(np.random.default_rng(seed + 1).choice(n, _FIT_SAMPLE, replace=False))
    scores, _ = faiss.extract_index_ivf(index).quantizer.search(np.ascontiguousarray(vectors[rows], dtype=np.float32), 1)
    return round(float(scores.mean()), 4)


def retrain_reason(info: IvfInfo, fit_now: float, n: int) -> str | None:
    """Why a quantiser trained as ``info`` says should not take ``n`` rows that fit it ``fit_now``;
    None when it still fits.

    >>> info = IvfInfo(64, "PQ96x8", 5000, 5000, "gen-1", 0.70, "first build")
    >>> retrain_reason(info, 0.69, 6000) is None, retrain_reason(info, 0.60, 6000)
    (True, 'the vectors drifted from the training sample (mean cosine to the nearest centroid 0.600, 0.700 at training)')
    """
    if n >= GROWTH * info.sized_for and nlist_for(n) > info.nlist:
        return f"the index grew from {info.sized_for} rows at training to {n}"
    if n >= _MIN_DRIFT_ROWS and fit_now < info.fit - DRIFT:
        return (f"the vectors drifted from the training sample (mean cosine to the nearest centroid "
                f"{fit_now:.3f}, {info.fit:.3f} at training)")
    return None


def build_ivf(folder: Path, vectors: np.ndarray, generation: str, previous: Path | None = None,
              previous_info: dict[str, Any] | None = None, reason: str = "first build"
              ) -> tuple[faiss.Index, IvfInfo]:
    """The IVF index over ``vectors`` for the generation being written in ``folder``, and its
    manifest record; the trained, empty index is saved there as ``TRAINED``.

    The previous generation's trained index (``previous``, a generation folder, with its manifest
    record ``previous_info``) is reused when it still fits; otherwise, or when it cannot be read,
    a new one is trained, recording ``reason`` (or why the previous one did not fit).
    """
    trained: Trained | None = None
    if previous is not None and previous_info is not None and (previous / TRAINED).exists():
        try:
            info = IvfInfo.from_json(previous_info)
            index = faiss.read_index(str(previous / TRAINED))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            reason = f"the previous trained index could not be read ({type(exc).__name__}: {exc})"
        else:
            if index.d != vectors.shape[1] or index.ntotal != 0:
                reason = "the previous trained index does not match these vectors"
            else:
                why = retrain_reason(info, fit(index, vectors), len(vectors))
                if why is None:
                    trained = Trained(index, info)
                else:
                    reason = why
    if trained is None:
        trained = train(vectors, generation, reason=reason)
    faiss.write_index(trained.index, str(folder / TRAINED))
    return fill(trained.index, vectors), trained.info
