"""Running the app under uvicorn, as ``rag serve`` does."""

from __future__ import annotations

import copy
import sys

import uvicorn

from .app import build_pipeline, create_app
from .settings import ApiSettings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(settings: ApiSettings, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Load the models, print the URL and a curl example, then serve until interrupted.

    Loading comes first, so that a model that cannot load is one error line (from the CLI),
    not a traceback from inside the server's start-up.

    >>> # serve(ApiSettings(index_dir=Path("index")))   # blocks
    """
    pipeline = build_pipeline(settings)
    announce(settings, host, port)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["api"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    uvicorn.run(create_app(settings, pipeline), host=host, port=port, log_config=log_config)
    return 0


def announce(settings: ApiSettings, host: str, port: int, how: str = "") -> None:
    """Print the URL (``how`` says what serves it, e.g. "2 replicas on Ray Serve"), a curl example,
    and a warning when anyone on the network may reindex."""
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    print(f"serving on {url}{f' with {how}' if how else ''} (API docs: {url}/docs)")
    if settings.retrieval_only:
        print(f"try: curl -s '{url}/search?q=What+did+Blinken+say+about+China%3F&k=3'")
    else:
        print(f"try: curl -s {url}/ask -H 'Content-Type: application/json' "
              """-d '{"question": "What did Blinken say about China?"}'""")
    if host not in LOOPBACK and not settings.api_key:
        print(f"warning: listening on {host} with no RAG_API_KEY: anyone who can reach it can reindex",
              file=sys.stderr)
    sys.stdout.flush()
