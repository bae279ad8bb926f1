"""The embedded store keeps its address: a restart, also after a crash, listens on the ports
kept in the data dir, so endpoints and presigned URLs handed out before stay valid."""

import io
import json
import os
import signal
import socket

import pytest
import urllib3
from minio import Minio

from apps.storage.embedded import EmbeddedStore

ACCESS_KEY, SECRET_KEY = "restart-test-ak", "restart-test-secret-key-123"


def make_store(root) -> EmbeddedStore:
    return EmbeddedStore(root / "store", ACCESS_KEY, SECRET_KEY, root / "store.log")


def s3(store) -> Minio:
    return Minio(
        store.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
        http_client=urllib3.PoolManager(timeout=10, retries=False),
    )


def test_a_restart_and_a_crash_keep_the_ports_and_presigned_urls(tmp_path):
    store = make_store(tmp_path).start()
    try:
        endpoint, ports = store.endpoint, list(store.weed_ports)
        s3(store).make_bucket("kept")
        s3(store).put_object("kept", "a.txt", io.BytesIO(b"before"), 6)
        url = s3(store).presigned_get_object("kept", "a.txt")
    finally:
        store.stop()
    kept = json.loads((tmp_path / "store" / "ports.json").read_text())
    assert f"127.0.0.1:{kept['s3']}" == endpoint

    store = make_store(tmp_path).start()  # a new start of the appliance
    try:
        assert store.endpoint == endpoint and store.weed_ports == ports and not store.moved
        http = urllib3.PoolManager(retries=False)
        assert http.request("GET", url).data == b"before"  # a URL handed out before

        os.killpg(store.process.pid, signal.SIGKILL)  # a crash, no clean-up
        store.process.wait(10)
        assert not store.alive()
        store.restart()
        assert store.endpoint == endpoint and store.weed_ports == ports
        assert http.request("GET", url).data == b"before"
    finally:
        store.stop()


def test_a_port_held_by_another_program_moves_the_store_and_says_so(tmp_path):
    store = make_store(tmp_path)
    if store.kind != "seaweedfs":
        pytest.skip("a minio server on PATH is the store here")
    store.start()
    endpoint, filer = store.endpoint, store.weed_ports[6]
    store.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", filer))
        squatter.listen()
        store = make_store(tmp_path).start()
        try:
            assert store.endpoint != endpoint
            assert f"{filer}" in store.moved and "held by another program" in store.moved
            assert store.moved in (tmp_path / "store.log").read_text()
            assert filer not in store.weed_ports
            assert s3(store).list_buckets() == []
        finally:
            store.stop()
    # The new ports are the kept ones from now on.
    kept = json.loads((tmp_path / "store" / "ports.json").read_text())
    assert f"127.0.0.1:{kept['s3']}" == store.endpoint


def test_a_store_left_running_on_the_data_dir_is_ended_and_its_ports_taken_over(tmp_path):
    """After a `kill -9` of the launcher its store is still stopping when `make up` runs
    again: the new start ends it (two servers must not share a data dir) and keeps the
    address instead of moving away from it."""
    earlier = make_store(tmp_path).start()
    try:
        s3(earlier).make_bucket("kept")
        s3(earlier).put_object("kept", "a.txt", io.BytesIO(b"before"), 6)
        store = make_store(tmp_path).start()  # `earlier` is not stopped
        try:
            assert earlier.process.wait(5) is not None
            assert store.endpoint == earlier.endpoint and not store.moved
            assert s3(store).get_object("kept", "a.txt").read() == b"before"
        finally:
            store.stop()
    finally:
        earlier.stop()
