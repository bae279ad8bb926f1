"""The embedded store's own housekeeping (the suite's session store is tests/conftest.py)."""

from pathlib import Path

import pytest

from apps.storage.embedded import EmbeddedStore


def weed_sockets(ports) -> list[Path]:
    return [p for port in ports for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]


def test_a_stopped_store_leaves_no_sockets_in_tmp(tmp_path):
    store = EmbeddedStore(
        tmp_path / "store", "housekeeping-ak", "housekeeping-sk-123", tmp_path / "log"
    )
    if store.kind != "seaweedfs":
        pytest.skip("a minio server on PATH is the store here")
    store.start()
    try:
        assert weed_sockets([store.port])  # weed's S3 socket, named with its port
    finally:
        store.stop()
    assert weed_sockets(store.weed_ports) == []
