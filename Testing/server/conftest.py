"""Fixtures of the server tests: one shared server (two tokens, the tiny catalogue) for the tests that do not stop
or fill it; tests of restarts and full queues start their own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_helpers import Server, start_server, write_tiny_model, write_tokens


@pytest.fixture(scope="session")
def resources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("resources")
    write_tiny_model(folder)
    return folder


@pytest.fixture(scope="session")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tokens(tmp_path_factory.mktemp("tokens") / "tokens.txt")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, resources: Path, tokens_file: Path) -> Server:
    running = start_server(tmp_path_factory.mktemp("server") / "data", tokens_file, resources)
    yield running
    running.stop()
