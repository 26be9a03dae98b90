"""The HTTP API as a Ray Serve application: what ``rag serve --ray`` runs.

The app ``create_app`` builds, unchanged, in ``replicas`` copies spread over a Ray cluster, behind
Serve's HTTP proxy on ``host:port`` (one proxy on every node that holds a replica). Each replica is
a Ray actor that loads and warms its own Pipeline, as a plain server does, from the index folder at
the same path on every node (a shared disk). A reindex writes a new generation there and swaps the
manifest; every replica serves it from its next request on, since the pipeline checks the manifest
at each call. Serve replaces a replica that dies: the requests it was answering may fail, and a
retry goes to a live one.

Every response carries ``X-Replica``, the id of the Serve replica that answered.

>>> RayServeOptions(replicas=3).proxy_location
'EveryNode'
>>> # serve_on_ray(ApiSettings(index_dir=Path("index")), RayServeOptions("10.0.0.5:6379"))  # blocks
"""

from __future__ import annotations

import functools
import logging
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.errors import BadSetting, ClusterError, RagError

from .settings import ApiSettings

APP_NAME = "newsrag"
DEPLOYMENT = "newsrag"
REPLICA_HEADER = "X-Replica"
INSTALL = "pip install 'newsrag[ray]' (in a checkout: make ray)"
# Requests one replica holds at once. Enough that the app's own answer queue (two slots and
# RAG_ASK_QUEUE waiting) decides when /ask is busy and answers 503, rather than Serve queueing
# without bound in front of it; the router still sends each request to the less loaded of two.
MAX_ONGOING = 32
# What a replica's process needs that a plain `rag` command sets for itself (api.cli.main).
REPLICA_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
CONNECT_TIMEOUT_S = 5.0
_ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")  # as rag reindex --ray
_RAISED = re.compile(r"rag\.errors\.(\w+): ([^\n]+)")


@dataclass(frozen=True)
class RayServeOptions:
    """Where and how the app runs on Ray.

    - ``address``: ``HOST:PORT`` of a running cluster's head; None starts Ray on this machine for
      the server alone (and stops it with the server).
    - ``replicas``: copies of the app, each reserving ``cpus_per_replica`` CPUs (and running its
      models on as many threads).
    - ``host``/``port``: where Serve's HTTP proxy listens; ``proxy_location``: on every node that
      holds a replica (put a load balancer in front), or on the head only.
    """

    address: str | None = None
    replicas: int = 2
    cpus_per_replica: float = 1.0
    host: str = "127.0.0.1"
    port: int = 8000
    proxy_location: Literal["EveryNode", "HeadOnly"] = "EveryNode"

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise BadSetting(f"--replicas {self.replicas}: serve at least 1 replica")
        if self.cpus_per_replica <= 0:
            raise BadSetting(f"{self.cpus_per_replica:g} CPUs per replica: give each replica more than 0")
        if self.address is not None and not _ADDRESS.match(self.address):
            raise BadSetting(f"Ray address {self.address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, what "
                             "'ray start --head' prints)")


class ReplicaHeader:
    """Tag every HTTP response with the replica that answered it."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.replica = replica

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REPLICA_HEADER, self.replica)
            await send(message)

        await self.app(scope, receive, send_tagged)


class Replica:
    """One replica of the deployment: the app is built in the replica's own process (Serve calls
    ``__serve_build_asgi_app__`` there), so nothing but the settings travels from the driver.

    The pipeline is loaded before the app, as ``rag serve`` does: an error there (a model that
    cannot load) reaches the deployment's status, and so the command's one error line, where one
    in the app's lifespan would only be logged on the replica's node."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings

    def __serve_build_asgi_app__(self) -> ASGIApp:
        from ray import serve

        from .app import build_pipeline, create_app

        app = create_app(self.settings, build_pipeline(self.settings))
        app.add_middleware(ReplicaHeader, replica=serve.get_replica_context().replica_tag)
        return app


@dataclass
class RayServer:
    """The running application: its URL, and ``stop()``, which takes it off the cluster (and
    stops the Ray this process started, if it did)."""

    url: str
    options: RayServeOptions
    started_ray: bool = False
    connected: bool = False
    deployed: bool = False
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        import ray
        from ray import serve
        from ray.serve.exceptions import RayServeException

        if not ray.is_initialized():
            return
        if self.started_ray:
            serve.shutdown()
        elif self.deployed:
            try:
                serve.delete(APP_NAME)
            except (ConnectionError, RuntimeError, RayServeException, ray.exceptions.RayError) as exc:
                # The cluster may be gone already: nothing is left to take down.
                logging.getLogger("api").warning("could not delete the Serve application: %s", exc)
        if self.connected:
            ray.shutdown()


def application(settings: ApiSettings, options: RayServeOptions) -> Any:
    """The Serve application (``Deployment.bind``): ``options.replicas`` copies of the app."""
    _, serve = _import_serve()
    from ray.serve.config import RequestRouterConfig

    ingress = serve.ingress()(Replica)
    deployment = serve.deployment(
        ingress, name=DEPLOYMENT, num_replicas=options.replicas, max_ongoing_requests=MAX_ONGOING,
        request_router_config=RequestRouterConfig(request_router_class=f"{__name__}:SpreadRouter"),
        ray_actor_options={"num_cpus": options.cpus_per_replica, "runtime_env": {"env_vars": REPLICA_ENV}})
    return deployment.bind(portable(settings))


@functools.cache
def _spread_router() -> type:
    """Serve's power of two choices, over every replica. Serve's own router tries the replicas on
    the proxy's node first and leaves them only once one holds ``max_ongoing_requests``: clients
    that all reach the head's proxy would keep the other nodes idle. A request takes 10 ms to
    seconds, a hop to another node well under one.

    Serve imports it by name (``api.ray_serve:SpreadRouter``) in every proxy; the module-level
    ``__getattr__`` makes it then, so that this module imports without Ray."""
    import random

    from ray.serve.request_router import RequestRouter

    class SpreadRouter(RequestRouter):
        async def choose_replicas(self, candidate_replicas: list[Any],
                                  pending_request: Any = None) -> list[list[Any]]:
            # Of the two, Serve sends the request to the one with the shorter queue.
            return [random.sample(candidate_replicas, min(2, len(candidate_replicas)))]

    SpreadRouter.__qualname__ = SpreadRouter.__name__
    return SpreadRouter


def __getattr__(name: str) -> Any:
    if name == "SpreadRouter":
        return _spread_router()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def start(settings: ApiSettings, options: RayServeOptions) -> RayServer:
    """Deploy the app and return once every replica is serving.

    Joins the Ray this process is already connected to, else the cluster at ``options.address``,
    else starts one on this machine. Raises ClusterError when Ray Serve is not installed, the
    cluster cannot be reached or lacks the CPUs, or the replicas cannot start (with the library's
    own error when a replica raised one, e.g. a model that cannot load).

    >>> # server = start(ApiSettings(index_dir=Path("/shared/index")), RayServeOptions())
    >>> # server.url, server.stop()
    """
    ray, serve = _import_serve()
    host = f"[{options.host}]" if ":" in options.host else options.host
    server = RayServer(url=f"http://{host}:{options.port}", options=options)
    if not ray.is_initialized():
        _connect(ray, options.address)
        server.connected, server.started_ray = True, options.address is None
    try:
        cpus = float(ray.cluster_resources().get("CPU", 0))
        wanted = options.replicas * options.cpus_per_replica
        if wanted > cpus:
            raise ClusterError(f"{options.replicas} replicas of {options.cpus_per_replica:g} CPU need {wanted:g} "
                               f"CPUs, and the Ray cluster has {cpus:g}: serve fewer replicas (--replicas) or "
                               "add nodes")
        serve.start(proxy_location=options.proxy_location,
                    http_options={"host": options.host, "port": options.port})
        server.deployed = True
        serve.run(application(settings, options), name=APP_NAME, route_prefix="/")
    except BaseException as exc:
        failed = isinstance(exc, (RuntimeError, ray.exceptions.RayError))
        why = f"{exc}\n{_replica_errors(serve)}" if failed and server.deployed else str(exc)
        server.stop()
        if failed:
            raise _explain(exc, why) from None
        raise
    return server


def serve_on_ray(settings: ApiSettings, options: RayServeOptions) -> int:
    """``rag serve --ray``: deploy, print the URL, and serve until Ctrl-C (or SIGTERM), then take the
    application off the cluster."""
    from .server import announce

    main = threading.current_thread() is threading.main_thread()
    # A service manager's SIGTERM takes the application off the cluster as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    server = None
    try:
        server = start(settings, options)  # stops what it started if interrupted
        where = options.address or "a Ray started on this machine"
        announce(settings, options.host, options.port,
                 how=f"{options.replicas} replica{'s' if options.replicas != 1 else ''} on Ray Serve ({where})")
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping: taking the application off the Ray cluster", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def portable(settings: ApiSettings) -> ApiSettings:
    """``settings`` with absolute paths: a replica does not run in this process's folder."""
    def absolute(path: Path | None) -> Path | None:
        return path.resolve() if path is not None else None

    model = settings.model
    if model is not None and Path(model).exists():
        model = str(Path(model).resolve())
    return settings.replace(index_dir=absolute(settings.index_dir), cache_dir=absolute(settings.cache_dir),
                            ranker_path=absolute(settings.ranker_path), model=model)


def _import_serve() -> tuple[Any, Any]:
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise ClusterError(f"rag serve --ray needs Ray Serve, which is not installed ({exc}): {INSTALL}") from None
    return ray, serve


def _connect(ray: Any, address: str | None) -> None:
    if address is not None:
        match = _ADDRESS.match(address)
        assert match is not None  # RayServeOptions checked it
        try:
            with socket.create_connection((match.group(2).strip("[]"), int(match.group(3))),
                                          timeout=CONNECT_TIMEOUT_S):
                pass
        except OSError as exc:
            raise ClusterError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start its "
                               "head with 'ray start --head --port PORT', check the address, or leave it out "
                               "to run Ray on this machine") from None
    try:
        # "local": a Ray of its own even where $RAY_ADDRESS is set or another Ray runs here.
        ray.init(address=address or "local", logging_level=logging.WARNING,
                 include_dashboard=False if address is None else None)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        raise ClusterError(f"cannot connect to the Ray cluster at {address or 'this machine'} ({exc}): check that "
                           "it runs ('ray status'), with the same Ray and Python versions and, if it asks for "
                           "one, its auth token (RAY_AUTH_MODE, ~/.ray/auth_token)") from None


def _replica_errors(serve: Any) -> str:
    """What the deployment's status says went wrong in its replicas (their tracebacks), or ""."""
    import ray
    from ray.serve.exceptions import RayServeException

    try:
        app = serve.status().applications.get(APP_NAME)
    except (ConnectionError, RuntimeError, RayServeException, ray.exceptions.RayError):
        return ""  # only a better message is lost: the deployment failed anyway
    return "\n".join(d.message for d in app.deployments.values()) if app is not None else ""


def _explain(exc: BaseException, text: str) -> RagError:
    """The error a deployment that failed raises: the library's own when a replica raised one
    (each loads the models before its app), else a ClusterError saying where to look."""
    from rag import errors

    for name, message in reversed(_RAISED.findall(text)):
        error = getattr(errors, name, None)
        if isinstance(error, type) and issubclass(error, RagError):
            return error(f"on a Ray Serve replica: {message}")
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return ClusterError(f"the Ray Serve application did not start ({first[:300]}): check every node runs the "
                        f"same newsrag and Ray ({INSTALL}), and the replicas' logs ('ray logs', "
                        "/tmp/ray/session_latest/logs/serve/)")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
