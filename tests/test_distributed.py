"""rag reindex --ray before any cluster is involved: Ray is asked for only with --ray, a missing
Ray says how to install it, and options that cannot work are refused before anything is read.

The reindexes on a real cluster are in test_ray.py (marked ``ray``)."""

from __future__ import annotations

import sys

import pytest

from api.cli import main
from rag.errors import BadSetting
from rag.index.distributed import RayOptions


def test_without_ray_installed_reindex_ray_says_how_to_install_it(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    assert main(["reindex", str(corpus), "--index", str(tmp_path / "index"), "--ray", "auto"]) == 1
    assert capsys.readouterr().err == (
        "error: --ray needs Ray, which is not installed (import of ray halted; None in sys.modules): "
        "pip install 'newsrag[ray]' (in a checkout: make ray)\n")
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("options, message", [
    (["--ray"], "--ray without an address needs $RAY_ADDRESS: pass --ray HOST:PORT of the cluster's head, "
                "or --ray auto to start Ray on this machine"),
    (["--ray", "news/"], "Ray address 'news/' is not HOST:PORT (e.g. 10.0.0.5:6379, what 'ray start --head' "
                         "prints) or auto (start Ray on this machine); sources go before --ray"),
    (["--ray-actors", "2"], "--ray-actors and --ray-actors-per-node need --ray ADDRESS"),
    (["--ray", "auto", "--ray-actors", "4", "--ray-actors-per-node", "2"],
     "give either actors (4) or actors_per_node (2), not both"),
    (["--ray", "auto", "--ray-actors", "0"], "actors=0 must be at least 1"),
    (["--ray", "auto", "--ray-cpus-per-actor", "0"], "cpus_per_actor=0 must be more than 0, e.g. 1"),
    (["--ray", "auto", "--ray-batch", "0"], "batch=0 must be at least 1, e.g. 256"),
])
def test_ray_options_that_cannot_work_are_refused_before_anything_is_read(tmp_path, corpus, capsys, monkeypatch,
                                                                          options, message):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # refused before Ray would be needed
    assert main(["reindex", str(corpus), "--index", str(tmp_path / "index"), *options]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "index").exists()


def test_ray_addresses_are_host_and_port_or_auto():
    for address in ("10.0.0.5:6379", "head.internal:6379", "[::1]:6379", "ray://10.0.0.5:10001", "auto"):
        assert RayOptions(address).address == address
    for address in ("10.0.0.5", ":6379", "http://10.0.0.5:6379", "10.0.0.5:port"):
        with pytest.raises(BadSetting):
            RayOptions(address)
