"""Real parts for the Python front's tests: the project's fake provider over a real socket and a
real redis-server, both started here; caches in temporary files."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import llm_caching

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]


def _binary(variable: str, default: str) -> str:
    path = os.environ.get(variable) or str(ROOT / "build" / "release" / default)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is not built: build the project (or set {variable})")
    return path


class FakeProvider:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [_binary("LLMC_FAKE_PROVIDER", "tools/fake-provider/llm-caching-fake-provider"),
             "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"fake provider did not start: {line!r}")
        self.address = line[len("listening on "):]
        self.url = f"http://{self.address}"

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/_stats", timeout=5) as response:
            return json.load(response)

    def calls(self) -> int:
        return self.stats()["total"]

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/_reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=5).read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def fake_provider(tmp_path_factory: pytest.TempPathFactory):
    provider = FakeProvider()
    home = tmp_path_factory.mktemp("cache-home")
    saved = dict(os.environ)
    os.environ.update({
        "OPENAI_BASE_URL": provider.url + "/v1",
        "ANTHROPIC_BASE_URL": provider.url,
        # google-genai reads its base URL from here; the core keys by it like any other host
        "GOOGLE_GEMINI_BASE_URL": provider.url,
        "OPENAI_API_KEY": "sk-test-openai",
        "ANTHROPIC_API_KEY": "sk-test-anthropic",
        "GEMINI_API_KEY": "test-gemini",
        "XDG_CACHE_HOME": str(home),
    })
    os.environ.pop("GOOGLE_API_KEY", None)
    yield provider
    provider.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def fresh_cache(fake_provider: FakeProvider, tmp_path: Path):
    """Each test its own cache file (what a call that names none uses) and fresh counters."""
    fake_provider.reset()
    llm_caching.configure(cache_url=f"sqlite:///{tmp_path}/cache.db")
    yield tmp_path
    llm_caching.configure()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (scripts/install-deps.sh installs it)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)
