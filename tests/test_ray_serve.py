"""Serving on a Ray cluster (``rag serve --ray``): the app behind Ray Serve's HTTP proxy answers as a
plain server does, from every replica; a killed replica is replaced and retried requests succeed;
a reindex reaches every replica.

A real cluster on this machine: a head and one worker node of 1 CPU each
(``ray.cluster_utils.Cluster``, as in test_ray.py), two replicas of 1 CPU (one per node), the real
model and a real index on disk, real HTTP (httpx) through Serve's proxies. The cluster tests are
marked ``ray``: left out of make test-fast. The command-line checks need no cluster.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

MiB = 2**20
# As in test_ray.py: every node on 127.0.0.1, no auth token; set before Ray is first imported.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(RAY_ENV)

from conftest import free_port, wait_for, write_corpus  # noqa: E402

from rag import Pipeline, Settings  # noqa: E402

QUESTIONS = ["What did Blinken say about China?", "North Korea artillery shells for Russia",
             "Fed raises interest rates", "most expensive city for expats"]
ZANZIBAR = """---
title: Zanzibar ferry service doubles its crossings
date: 2024-02-01
source: example.org
---
The Zanzibar ferry operator will double its daily crossings to Dar es Salaam from March.
Harbour officials said the new catamarans carry twice as many passengers as the old boats.
"""


def without_timings(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "timings"}


# -- the command line, without a cluster ------------------------------------------------------
def test_serve_ray_without_ray_installed_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from api.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    assert main(["serve", "--ray", "--index", str(tmp_path / "index")]) == 1
    assert capsys.readouterr().err == (
        "error: rag serve --ray needs Ray Serve, which is not installed (import of ray halted; None in "
        "sys.modules): pip install 'newsrag[ray]' (in a checkout: make ray)\n")


@pytest.mark.parametrize("args, message", [
    (["--replicas", "3"], "--replicas needs --ray: a plain server is one process"),
    (["--ray", "--replicas", "0"], "--replicas 0: serve at least 1 replica"),
    (["--ray", "10.0.0.5"], ("Ray address '10.0.0.5' is not HOST:PORT (e.g. 10.0.0.5:6379, what 'ray start "
                             "--head' prints)")),
    (["--ray", "--refresh", "15m"], ("--refresh (or $RAG_REFRESH) with --ray would refresh from every replica: "
                                     "run 'rag watch --every INTERVAL' beside the cluster instead")),
])
def test_serve_options_it_cannot_take_are_one_error_line(tmp_path, capsys, monkeypatch, args, message):
    from api.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # refused before Ray would be needed
    assert main(["serve", "--index", str(tmp_path / "index"), *args]) == 1
    assert capsys.readouterr() == ("", f"error: {message}\n")


# -- a cluster, the app on two replicas -------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """A head and one worker node of 1 CPU each, this process connected to it."""
    pytest.importorskip("ray.serve", reason="needs Ray Serve: pip install '.[ray]' (make ray)")
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 150 * MiB}
    c = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        c.add_node(**node)
        c.wait_for_nodes()
        ray.init(address=c.address, logging_level="warning")
        yield c
    finally:
        if ray.is_initialized():
            serve.shutdown()
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    """A real index over the test corpus; the reindex test adds an article to it."""
    root = tmp_path_factory.mktemp("serve")
    Pipeline(Settings(index_dir=root / "index")).reindex([write_corpus(root / "news")])
    return root / "index"


@pytest.fixture(scope="module")
def served(cluster, index):
    """The app on two replicas, its proxy on a free loopback port: an httpx client to it."""
    import httpx

    from api import ApiSettings
    from api.ray_serve import RayServeOptions, start

    server = start(ApiSettings(index_dir=index), RayServeOptions(replicas=2, port=free_port()))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def plain(index):
    """The same app as ``rag serve`` runs it: one process, in this one."""
    from fastapi.testclient import TestClient

    from api import ApiSettings, create_app

    with TestClient(create_app(ApiSettings(index_dir=index))) as client:
        yield client


def from_every_replica(send, check=None, replicas: int = 2, tries: int = 40) -> dict[str, object]:
    """``send()`` until each of ``replicas`` replicas has answered: each one's JSON body, by its
    X-Replica. ``check(body)`` must hold for every answer."""
    bodies: dict[str, object] = {}
    for _ in range(tries):
        response = send()
        assert response.status_code == 200, response.text
        body = response.json()
        if check is not None:
            assert check(body), body
        bodies.setdefault(response.headers["X-Replica"], body)
        if len(bodies) == replicas:
            return bodies
    pytest.fail(f"{tries} requests reached only the replicas {sorted(bodies)}", pytrace=False)


@pytest.mark.ray
def test_every_replica_answers_as_a_plain_server_does(served, plain):
    for q in QUESTIONS:
        expected = plain.get("/search", params={"q": q, "k": 5}).json()
        assert expected  # the question finds something: the comparison means something
        bodies = from_every_replica(lambda q=q: served.get("/search", params={"q": q, "k": 5}))
        assert list(bodies.values()) == [expected, expected]

        expected = without_timings(plain.post("/ask", json={"question": q}).json())
        bodies = from_every_replica(lambda q=q: served.post("/ask", json={"question": q}))
        assert [without_timings(b) for b in bodies.values()] == [expected, expected]
    assert "X-Replica" not in plain.get("/health").headers


def replica_states() -> dict[str, int]:
    from ray import serve

    from api.ray_serve import APP_NAME, DEPLOYMENT

    states = serve.status().applications[APP_NAME].deployments[DEPLOYMENT].replica_states
    return {getattr(state, "value", state): n for state, n in states.items()}


@pytest.mark.ray
def test_a_killed_replica_is_replaced_and_retried_requests_all_succeed(served, plain):
    import httpx
    import ray

    q = QUESTIONS[1]
    expected = plain.get("/search", params={"q": q, "k": 5}).json()
    before = set(from_every_replica(lambda: served.get("/health")))
    victim = min(before)
    answered: list[tuple[str, int]] = []  # who answered each request, after how many attempts
    failures: list[BaseException] = []
    stop = threading.Event()

    def retried(http: httpx.Client) -> tuple[str, int]:
        """One request, sent again (for 60 s at most) until a replica answers it."""
        deadline = time.monotonic() + 60
        for attempts in itertools.count(1):
            try:
                r = http.get("/search", params={"q": q, "k": 5})
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code == 200:
                assert r.json() == expected
                return r.headers["X-Replica"], attempts
            assert r is None or r.status_code >= 500, r.text  # only the replica's death may fail it
            assert time.monotonic() < deadline, f"no replica answered in 60 s ({attempts} attempts)"
            time.sleep(0.1)
        raise AssertionError("unreachable")

    def client() -> None:
        try:
            with httpx.Client(base_url=served.base_url, timeout=60) as http:
                while not stop.is_set():
                    answered.append(retried(http))
        except BaseException as exc:  # handed to the test's thread, which fails with it
            failures.append(exc)

    clients = [threading.Thread(target=client, daemon=True) for _ in range(2)]
    for thread in clients:
        thread.start()
    try:
        wait_for(lambda: {replica for replica, _ in answered} == before or failures, 60, "answers from both")
        name = next(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                    if a["name"].startswith("SERVE_REPLICA::") and a["name"].endswith(f"#{victim}"))
        ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
        killed_at = len(answered)
        # Replaced: two replicas running again, and the new one answering.
        wait_for(lambda: failures or (replica_states() == {"RUNNING": 2}
                                      and {replica for replica, _ in answered[killed_at:]} - before), 120,
                 "Serve to replace the killed replica")
    finally:
        stop.set()
        for thread in clients:
            thread.join(90)
    assert not failures, failures[0]
    after = set(from_every_replica(lambda: served.get("/health")))
    assert len(after) == 2 and victim not in after and len(after & before) == 1
    assert len(answered) > killed_at  # every request sent was answered, those in flight at the kill too


@pytest.mark.ray
def test_a_reindex_reaches_every_replica(served, plain, index):
    news = index.parent / "news"
    before = from_every_replica(lambda: served.get("/health"))
    assert [b["articles"] for b in before.values()] == [6, 6]

    (news / "zanzibar.md").write_text(ZANZIBAR, encoding="utf-8")
    summary = Pipeline(Settings(index_dir=index)).reindex([news])  # as `rag reindex` does
    assert (summary.added, summary.articles) == (1, 7)

    def zanzibar_first(body: list[dict]) -> bool:
        return body[0]["title"] == "Zanzibar ferry service doubles its crossings"

    expected = plain.get("/search", params={"q": "Zanzibar ferry crossings", "k": 3}).json()
    assert zanzibar_first(expected)
    bodies = from_every_replica(lambda: served.get("/search", params={"q": "Zanzibar ferry crossings", "k": 3}),
                                check=zanzibar_first)
    assert list(bodies.values()) == [expected, expected]
    after = from_every_replica(lambda: served.get("/health"))
    assert [b["articles"] for b in after.values()] == [7, 7]
    assert json.loads((index / "manifest.json").read_text())["counts"]["articles"] == 7


@pytest.mark.ray
def test_more_replicas_than_the_cluster_has_cpus_is_one_error(cluster, index):
    from api import ApiSettings
    from api.ray_serve import RayServeOptions, start
    from rag.errors import ClusterError

    with pytest.raises(ClusterError) as err:
        start(ApiSettings(index_dir=index), RayServeOptions(replicas=3, port=free_port()))
    assert str(err.value) == ("3 replicas of 1 CPU need 3 CPUs, and the Ray cluster has 2: serve fewer replicas "
                              "(--replicas) or add nodes")


@pytest.mark.ray
def test_a_replica_that_cannot_load_its_model_is_the_librarys_one_error(cluster, index, tmp_path):
    """Last of the cluster tests: deploying replaces the application the tests above share."""
    from ray import serve

    from api import ApiSettings
    from api.ray_serve import APP_NAME, RayServeOptions, start
    from rag import ModelError

    model = tmp_path / "no-model"
    with pytest.raises(ModelError) as err:
        start(ApiSettings(index_dir=index, model=str(model)), RayServeOptions(replicas=1, port=free_port()))
    assert str(err.value) == (f"on a Ray Serve replica: model folder {str(model)!r} does not exist: pass a local "
                              "model folder, or leave the model unset to use the packaged all-MiniLM-L6-v2")
    assert APP_NAME not in serve.status().applications  # taken off the cluster


# -- the command ------------------------------------------------------------------------------
@pytest.mark.ray
def test_rag_serve_ray_starts_ray_here_serves_and_stops_on_ctrl_c(index, tmp_path):
    import signal
    import subprocess

    import httpx
    from conftest import stop_server

    port, url = free_port(), None
    env = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)
    # Files, not pipes: Ray's logs could fill a pipe nobody reads until the end.
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--ray", "--index", str(index),
                                 "--port", str(port)], stdout=out, stderr=err, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        # Printed once every replica serves (the proxy answers 404 or 503 before).
        wait_for(lambda: "try: curl" in (tmp_path / "out").read_text() or proc.poll() is not None, 180,
                 "the command to print the URL")
        health = httpx.get(f"{url}/health", timeout=30)
        assert health.json()["index_loaded"] is True and health.headers["X-Replica"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            stop_server(proc)
    lines = [line for line in (tmp_path / "out").read_text().splitlines() if line.startswith(("serving", "try"))]
    assert lines == [
        f"serving on {url} with 2 replicas on Ray Serve (a Ray started on this machine) (API docs: {url}/docs)",
        f"try: curl -s {url}/ask -H 'Content-Type: application/json' "
        """-d '{"question": "What did Blinken say about China?"}'"""]
    assert "stopping: taking the application off the Ray cluster" in (tmp_path / "err").read_text()
    with pytest.raises(httpx.TransportError):  # the proxy went with the Ray it started
        httpx.get(f"{url}/health", timeout=5)
