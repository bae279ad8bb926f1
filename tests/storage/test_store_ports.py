"""Only the S3 port, with the appliance's keys, reaches objects of the embedded SeaweedFS.

Runs (jobs, notebooks) share this host's network, so each request below is what untrusted
code could send: plain HTTP to the filer, volume, master and admin ports, HTTP/2 (gRPC) to
every gRPC port and its Unix socket in /tmp, in the clear and over TLS without a client
certificate. Each must be refused, and the object must still be there afterwards. Where a
test uses the appliance's own secrets (the certificate, a JWT signed with its key), it is
a control: the probe does get an answer when it holds the credentials, so a refusal is a
refusal, not a broken probe.
"""

import base64
import hashlib
import hmac
import http.client
import io
import json
import os
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3
from minio import Minio
from minio.datatypes import PostPolicy

from apps.storage.embedded import EmbeddedStore

ACCESS_KEY, SECRET_KEY = "ports-test-ak", "ports-test-secret-key-123"
BUCKET, KEY = "ports-test", "secret/report.bin"
PAYLOAD = os.urandom(64 * 1024)  # random, so it can be found in the volume's .dat file
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
COMPONENTS = ("s3", "master", "volume", "filer", "admin")  # EmbeddedStore.weed_ports order


def start_store(root: Path) -> EmbeddedStore:
    store = EmbeddedStore(root / "store", ACCESS_KEY, SECRET_KEY, root / "store.log")
    if store.kind != "seaweedfs":
        pytest.skip("a minio server on PATH is the store here")
    return store.start()


def s3(store) -> Minio:
    return Minio(
        store.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
        http_client=urllib3.PoolManager(timeout=10, retries=False),
    )


def read_via_s3(store) -> bytes:
    response = s3(store).get_object(BUCKET, KEY)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module, started with an environment that tries to switch weed's
    checks off (WEED_* variables, a $HOME/.seaweedfs/security.toml with empty keys): the
    appliance's own security.toml must be the one in force."""
    root = tmp_path_factory.mktemp("ports")
    home = root / "home"
    (home / ".seaweedfs").mkdir(parents=True)
    (home / ".seaweedfs" / "security.toml").write_text(
        '[jwt.signing.read]\nkey = ""\n[grpc]\nca = ""\n[guard]\nwhite_list = ""\n'
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(home))
        env.setenv("WEED_JWT_SIGNING_READ_KEY", "")
        env.setenv("WEED_JWT_SIGNING_KEY", "")
        env.setenv("WEED_GRPC_CA", "")
        store = start_store(root)
    try:
        client = s3(store)
        client.make_bucket(BUCKET)
        client.put_object(BUCKET, KEY, io.BytesIO(PAYLOAD), len(PAYLOAD))
        yield store
    finally:
        store.stop()


def ports(store) -> dict[str, int]:
    return dict(zip(COMPONENTS, store.weed_ports[::2], strict=True))


def http_request(port, method, path, headers=None, body=None, unix=None):
    """(status, body) of one plain HTTP/1.1 request, or (None, error) if none came."""
    try:
        if unix:
            connection = http.client.HTTPConnection("localhost", timeout=10)
            connection.sock = socket.socket(socket.AF_UNIX)
            connection.sock.settimeout(10)
            connection.sock.connect(unix)
        else:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        result = response.status, response.read()
        connection.close()
        return result
    except OSError as exc:
        return None, repr(exc).encode()


def assert_refused(status, body, allowed=(400, 401, 403, 404, 405)):
    assert status is None or status in allowed, (status, body[:300])
    assert PAYLOAD[:64] not in body


def tls_context(cert_dir: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # what an attacker would do; we test the server
    if cert_dir is not None:
        context.load_cert_chain(cert_dir / "weed.pem", cert_dir / "weed.key")
    return context


def connect(target, timeout=10) -> socket.socket:
    if isinstance(target, str):  # a Unix socket
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(timeout)
        sock.connect(target)
        return sock
    return socket.create_connection(("127.0.0.1", target), timeout=timeout)


def http2_answer(target, tls: ssl.SSLContext | None = None) -> bytes:
    """Send the HTTP/2 client preface and a SETTINGS frame (what a gRPC client sends first)
    and return what comes back before the connection ends (b"" if refused or reset)."""
    received = b""
    try:
        sock = connect(target)
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
            sock = tls.wrap_socket(sock)
        with sock:
            sock.sendall(HTTP2_PREFACE)
            while len(received) < 9:
                chunk = sock.recv(9 - len(received))
                if not chunk:
                    break
                received += chunk
    except (OSError, ssl.SSLError):
        pass
    return received


def https_answer(port, path, tls: ssl.SSLContext) -> bytes:
    """The start of the answer to a GET over TLS, b"" when the server refuses the
    handshake (TLS 1.3 reports a missing client certificate at the first read)."""
    received = b""
    try:
        with tls.wrap_socket(connect(port)) as conn:
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            while len(received) < 12:
                chunk = conn.recv(100)
                if not chunk:
                    break
                received += chunk
    except (OSError, ssl.SSLError):
        pass
    return received


def is_settings_frame(head: bytes) -> bool:
    return len(head) == 9 and head[3] == 4 and head[5:9] == bytes(4)


def wait_listening(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def find_fid(store) -> str:
    """The object's file id, read the way only the appliance can: from the volume's .dat
    file under the data dir. The needle header (cookie, id, size) is followed by the data
    size and the data."""
    for dat in (store.data_dir / "seaweedfs").rglob("*.dat"):
        content = dat.read_bytes()
        at = content.find(PAYLOAD)
        if at < 20:
            continue
        cookie, needle_id = content[at - 20 : at - 16], content[at - 16 : at - 8]
        assert int.from_bytes(content[at - 4 : at], "big") == len(PAYLOAD)
        volume_id = int(dat.stem.rsplit("_", 1)[-1])
        key = (needle_id + cookie).lstrip(b"\0")
        return f"{volume_id},{key.hex()}"
    raise AssertionError("the object's bytes are in no .dat file")


def volume_jwt(store, fid: str) -> str:
    """A read JWT for one file id, signed (HS256) with the appliance's volume read key."""
    secret = json.loads((store.data_dir / "security-keys.json").read_text())["volume_read"]

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"fid": fid, "exp": int(time.time()) + 60}).encode())
    signature = hmac.new(secret.encode(), header + b"." + claims, hashlib.sha256).digest()
    return (header + b"." + claims + b"." + b64(signature)).decode()


def test_the_s3_port_still_serves_the_object(store):
    assert read_via_s3(store) == PAYLOAD
    # Unsigned S3 requests are refused, on the port and on weed's S3 Unix socket.
    status, body = http_request(store.port, "GET", f"/{BUCKET}/{KEY}")
    assert_refused(status, body)
    status, body = http_request(
        None, "GET", f"/{BUCKET}/{KEY}", unix=f"/tmp/seaweedfs-s3-{store.port}.sock"
    )
    assert_refused(status, body)


def test_the_s3_port_keeps_presigned_urls_post_policies_and_multipart(store):
    client, http = s3(store), urllib3.PoolManager(retries=False)
    url = client.presigned_get_object(BUCKET, KEY)
    assert http.request("GET", url).data == PAYLOAD
    url = client.presigned_put_object(BUCKET, "presigned/put.bin")
    assert http.request("PUT", url, body=b"put via url").status == 200
    policy = PostPolicy(BUCKET, datetime.now(UTC) + timedelta(minutes=5))
    policy.add_starts_with_condition("key", "posted/")
    policy.add_content_length_range_condition(0, 1024 * 1024)
    fields = client.presigned_post_policy(policy)
    form = {**fields, "key": "posted/form.bin", "file": ("form.bin", b"posted via form")}
    posted = http.request("POST", f"http://{store.endpoint}/{BUCKET}", fields=form)
    assert posted.status in (200, 204), posted.data
    form["key"] = "elsewhere/form.bin"  # outside the policy's prefix
    assert http.request("POST", f"http://{store.endpoint}/{BUCKET}", fields=form).status == 403
    big = os.urandom(11 * 1024 * 1024)  # three parts of 5 MiB or less
    client.put_object(BUCKET, "multi/part.bin", io.BytesIO(big), len(big), part_size=5 << 20)
    got = client.get_object(BUCKET, "multi/part.bin")
    try:
        assert got.read() == big
    finally:
        got.close()
        got.release_conn()
    for key, data in (
        ("presigned/put.bin", b"put via url"),
        ("posted/form.bin", b"posted via form"),
    ):
        got = client.get_object(BUCKET, key)
        try:
            assert got.read() == data
        finally:
            got.close()
            got.release_conn()
        client.remove_object(BUCKET, key)
    client.remove_object(BUCKET, "multi/part.bin")


def test_the_filer_http_port_serves_no_object_and_no_listing(store):
    filer = ports(store)["filer"]
    socket_path = f"/tmp/seaweedfs-filer-{filer}.sock"
    for unix in (None, socket_path):
        for path in (
            f"/buckets/{BUCKET}/{KEY}",
            f"/buckets/{BUCKET}/{KEY}?metadata=true",  # would give the chunks' file ids
            f"/buckets/{BUCKET}/secret/",
            f"/buckets/{BUCKET}/?pretty=y",
        ):
            status, body = http_request(filer, "GET", path, unix=unix)
            assert_refused(status, body, allowed=(401, 403, 404))
            assert b"report.bin" not in body
        status, body = http_request(filer, "DELETE", f"/buckets/{BUCKET}/{KEY}", unix=unix)
        assert_refused(status, body, allowed=(401, 403, 404, 405))
        status, body = http_request(
            filer, "PUT", f"/buckets/{BUCKET}/{KEY}", body=b"overwritten", unix=unix
        )
        assert_refused(status, body, allowed=(401, 403, 404, 405))
    assert read_via_s3(store) == PAYLOAD


def test_the_master_http_port_does_not_hand_out_locations_or_delete(store):
    master = ports(store)["master"]
    for method, path in (
        ("GET", f"/col/delete?collection={BUCKET}"),
        ("POST", f"/col/delete?collection={BUCKET}"),
        ("GET", "/dir/assign"),
        ("POST", "/dir/assign"),
        ("GET", "/dir/lookup?volumeId=1"),  # with read JWTs when a file id is given
        ("GET", "/dir/status"),
        ("GET", "/vol/status"),
        ("GET", "/vol/grow?count=1"),
        ("GET", "/vol/vacuum?garbageThreshold=0"),
        ("GET", "/"),
    ):
        status, body = http_request(master, method, path)
        assert_refused(status, body, allowed=(400, 401, 403, 404))
        assert b'"fid"' not in body and BUCKET.encode() not in body
    # Over TLS without a client certificate there is no HTTP answer at all; with the
    # appliance's certificate (control) there is one, and the handlers are not even there.
    col_delete = f"/col/delete?collection={BUCKET}"
    assert https_answer(master, col_delete, tls_context()) == b""
    assert https_answer(master, col_delete, tls_context(store.data_dir / "tls")).startswith(
        b"HTTP/1.1 404"
    )
    assert read_via_s3(store) == PAYLOAD
    assert s3(store).bucket_exists(BUCKET)


def test_the_object_s_file_id_is_not_given_out(store):
    """The file id (volume, needle, random cookie) is what a volume read needs: neither
    the filer's metadata nor the master's lookup gives it to a caller without credentials."""
    fid = find_fid(store)
    p = ports(store)
    status, body = http_request(p["filer"], "GET", f"/buckets/{BUCKET}/{KEY}?metadata=true")
    assert status != 200 and fid.encode() not in body
    status, body = http_request(p["master"], "GET", f"/dir/lookup?fileId={fid}&read=yes")
    assert status != 200 and b"auth" not in body


def test_the_volume_http_port_needs_a_jwt_even_with_the_file_id(store):
    volume = ports(store)["volume"]
    fid = find_fid(store)
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        status, body = http_request(volume, "GET", f"/{fid}", headers=headers)
        assert status == 401 and PAYLOAD[:64] not in body, (status, body[:200])
    status, body = http_request(volume, "GET", "/1,01637037d6")  # a guessed file id
    assert status == 401
    status, body = http_request(volume, "DELETE", f"/{fid}")
    assert status == 401, body
    status, body = http_request(
        volume, "POST", f"/{fid}", body=b"overwritten", headers={"Content-Type": "text/plain"}
    )
    assert status == 401, body
    # Control: with a JWT signed with the appliance's key the same request reads the bytes,
    # so the 401s above are the JWT check, not a wrong file id.
    status, body = http_request(
        volume, "GET", f"/{fid}", headers={"Authorization": f"Bearer {volume_jwt(store, fid)}"}
    )
    assert status == 200 and body == PAYLOAD
    assert read_via_s3(store) == PAYLOAD


def test_the_admin_http_port_needs_a_client_certificate(store):
    admin = ports(store)["admin"]
    wait_listening(admin)  # the admin starts last, after S3 is ready
    for path in ("/metrics", "/health", "/api/cluster/topology", "/"):
        status, body = http_request(admin, "GET", path)
        assert_refused(status, body, allowed=(400,))
    assert https_answer(admin, "/metrics", tls_context()) == b""
    control = https_answer(admin, "/health", tls_context(store.data_dir / "tls"))
    assert control.startswith(b"HTTP/1.1 200")


def test_every_grpc_port_and_socket_needs_a_client_certificate(store):
    wait_listening(ports(store)["admin"] + 10000)
    targets = []
    for name, port in ports(store).items():
        targets += [port + 10000, f"/tmp/seaweedfs-{name}-grpc-{port + 10000}.sock"]
    cert_dir = store.data_dir / "tls"
    for target in targets:
        if isinstance(target, str) and not Path(target).exists():
            continue  # weed made no socket for this one
        plaintext = http2_answer(target)
        assert not is_settings_frame(plaintext), f"{target} speaks gRPC in the clear"
        anonymous = http2_answer(target, tls_context())
        assert not is_settings_frame(anonymous), f"{target} speaks gRPC to TLS without a cert"
        # Control: with the appliance's certificate the same probe gets HTTP/2 SETTINGS.
        assert is_settings_frame(http2_answer(target, tls_context(cert_dir))), target
    assert read_via_s3(store) == PAYLOAD


def test_secrets_are_private_and_survive_a_restart(tmp_path):
    store = start_store(tmp_path)
    kept = [
        "s3-identities.json",
        "security-keys.json",
        "security.toml",
        "tls/ca.pem",
        "tls/weed.pem",
        "tls/weed.key",
    ]
    try:
        client = s3(store)
        client.make_bucket(BUCKET)
        client.put_object(BUCKET, KEY, io.BytesIO(PAYLOAD), len(PAYLOAD))
        before = {name: (store.data_dir / name).read_bytes() for name in kept}
        for name in kept:
            assert (store.data_dir / name).stat().st_mode & 0o077 == 0, name
        assert not (store.data_dir / "tls" / "ca.key").exists()  # no more certificates
    finally:
        store.stop()
    store = start_store(tmp_path)
    try:
        assert read_via_s3(store) == PAYLOAD
        for name in kept:  # no new keys or certificates (security.toml holds no ports)
            assert (store.data_dir / name).read_bytes() == before[name], name
    finally:
        store.stop()
