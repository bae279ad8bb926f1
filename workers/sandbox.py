"""Confinement of untrusted code: job runs, notebook servers and their kernels, model
replicas, model load checks. No Django import: supervise and the replicas use it too.

Mechanisms that exist and are maintained, not home-made ones:
- Debian's bubblewrap (`bwrap`) builds each run a mount namespace of its own: read-only
  system folders, the Python install and the appliance's code; the run's own folders
  read-write; an empty /tmp; everything else (var/ with the database, the store's keys and
  data, the Django secret, other runs and notebooks) simply is not there. Its own pid
  namespace (no other process visible in /proc, none to signal or ptrace), its own IPC and
  UTS namespaces, a new session (no terminal to inject into), and no_new_privs.
- When the appliance runs as root, the code runs as an unprivileged user of its own
  (`setpriv` from util-linux drops to uid BML_SANDBOX_UID_BASE + project id inside the
  sandbox, groups cleared): it cannot read what root keeps to itself, even outside the
  folders it is shown. As an ordinary user, bwrap makes an unprivileged user namespace and
  the code keeps the appliance's uid, confined by the namespaces alone.
- Resource limits (setrlimit): file size, core dumps off, open files, and as root the
  number of processes of the run's user; the package's memory and a process count through
  a control group of the run's own (workers.cgroups) where the host lets us make one.

The network is shared with the host (runs reach the package registry, the store's S3 port
with their own presigned grant, the appliance's API with their token); every internal port
answers only with credentials a run never sees (see README, "Security model").

BML_SANDBOX: "auto" (default: confine when bwrap works here, say so when it does not),
"required" (refuse to start a run unconfined), "off" (no confinement; for debugging).
"""

import functools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from workers import cgroups

BASE_DIR = Path(__file__).resolve().parent.parent
# Files a run may write at most, when its caller does not say (the startup disk of a notebook
# or a job's quota says otherwise).
DEFAULT_FILE_SIZE = 64 * 1024**3
DEFAULT_OPEN_FILES = 65536
DEFAULT_PROCESSES = 4096
SYSTEM_DIRS = ("/usr", "/etc", "/opt")
MERGED_USR_LINKS = ("/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin")
DEVICE_GLOBS = ("nvidia*", "xpu*", "dri")


class SandboxUnavailable(RuntimeError):
    """BML_SANDBOX=required and bwrap cannot confine runs on this host."""


def mode() -> str:
    value = os.environ.get("BML_SANDBOX", "auto").strip().lower()
    return value if value in ("auto", "required", "off") else "auto"


def uid_base() -> int:
    return int(os.environ.get("BML_SANDBOX_UID_BASE", "2000000"))


def run_uid(project_id: int) -> int | None:
    """The user a project's runs run as when the appliance is root (None otherwise)."""
    return uid_base() + int(project_id) if os.geteuid() == 0 else None


@dataclass
class Confinement:
    """What one run is shown and allowed. Paths are host paths, shown at the same place."""

    workdir: Path  # read-write, the run's working directory
    writable: list[Path] = field(default_factory=list)  # more read-write folders
    readable: list[Path] = field(default_factory=list)  # more read-only folders or files
    hidden: list[Path] = field(default_factory=list)  # covered by an empty folder (var/)
    uid: int | None = None  # the run's own user (the appliance runs as root)
    devices: bool = False  # GPUs/XPUs leased: their device nodes are shown
    file_size: int = DEFAULT_FILE_SIZE
    cpus: list[int] = field(default_factory=list)
    memory_mb: int | None = None  # the lease's memory: a control group's limit
    group: str = ""  # the run's control group's name ("" for none)
    # Files of this host shown read-only at another place, inside the run's own folders
    # (inputs an earlier run left here: workers.supervise); not part of the JSON form.
    shown: list[tuple[Path, Path]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict, workdir: Path) -> "Confinement":
        return cls(
            workdir=Path(workdir),
            writable=[Path(p) for p in data.get("writable", [])],
            readable=[Path(p) for p in data.get("readable", [])],
            hidden=[Path(p) for p in data.get("hidden", [])],
            uid=data.get("uid"),
            devices=bool(data.get("devices")),
            file_size=int(data.get("file_size") or DEFAULT_FILE_SIZE),
            cpus=list(data.get("cpus") or []),
            memory_mb=data.get("memory_mb"),
            group=data.get("group") or "",
        )

    def to_json(self) -> dict:
        return {
            "writable": [str(p) for p in self.writable],
            "readable": [str(p) for p in self.readable],
            "hidden": [str(p) for p in self.hidden],
            "uid": self.uid,
            "devices": self.devices,
            "file_size": self.file_size,
            "cpus": self.cpus,
            "memory_mb": self.memory_mb,
            "group": self.group,
        }


def bwrap_binary() -> str | None:
    return shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin")


def setpriv_binary() -> str | None:
    return shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")


@functools.cache
def probe() -> str:
    """ "" when bwrap confines a trial command here, else why not (once per process)."""
    if mode() == "off":
        return "turned off (BML_SANDBOX=off)"
    if not bwrap_binary():
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    if os.geteuid() == 0 and not setpriv_binary():
        return "setpriv (util-linux) is not installed"
    trial = Confinement(workdir=Path("/"), uid=run_uid(0))
    try:
        done = subprocess.run(
            command(["/bin/true"], trial, force=True),
            capture_output=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
            preexec_fn=limits(trial),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not start: {exc}"
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap failed here: {error[-1] if error else done.returncode}"
    return ""


def active() -> bool:
    """Whether runs are confined. BML_SANDBOX=required raises instead of answering False."""
    problem = probe()
    if problem and mode() == "required":
        raise SandboxUnavailable(f"BML_SANDBOX=required but {problem}")
    return not problem


def describe() -> str:
    """One line for the start-up log: which protections are active."""
    problem = probe()
    if problem:
        return (
            f"Sandbox OFF: {problem}. User code (jobs, notebooks, model code) runs with the "
            "appliance's own rights and can read var/ (database, store keys)."
        )
    who = (
        f"its own unprivileged user (uid {uid_base()} + project id)"
        if os.geteuid() == 0
        else "the appliance's user inside a user namespace (run the appliance as root for a "
        "separate user per project)"
    )
    groups = cgroups.available()
    memory = (
        "the package's memory and a process count enforced by control groups"
        if not groups
        else f"memory NOT limited ({groups})"
    )
    return (
        "Sandbox on (bubblewrap): runs see only their own folders, read-only system and "
        "appliance code, no var/; own pid, IPC and UTS namespaces; no_new_privs; "
        f"file-size, open-file and process limits; {memory}; runs as {who}."
    )


def _merged_usr_links() -> list[str]:
    """/bin, /lib, ... as the host has them: links into /usr, or folders of their own."""
    args = []
    for path in MERGED_USR_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def host_paths() -> list[Path]:
    """What every run reads: the system folders, the interpreter with its standard library
    and the venv's packages wherever they live, the appliance's code, and the resolver
    configuration (which may point into /run, systemd-resolved's, where runs get a tmpfs)."""
    paths = {Path(p) for p in SYSTEM_DIRS if os.path.isdir(p)}
    paths |= {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), BASE_DIR}
    paths.add(Path(os.path.realpath(sys.executable)).parent)
    resolv = Path(os.path.realpath("/etc/resolv.conf"))
    if resolv.exists():
        paths.add(resolv)
    system = [Path(p) for p in SYSTEM_DIRS]
    inside_system = [p for p in paths if any(s in p.parents for s in system)]
    return sorted(paths - set(inside_system))


def _device_binds(confinement: Confinement) -> list[str]:
    if not confinement.devices:
        return []
    args = []
    for pattern in DEVICE_GLOBS:
        for node in sorted(Path("/dev").glob(pattern)):
            args += ["--dev-bind", str(node), str(node)]
    return args


def _mounts(confinement: Confinement, readable: list[Path], writable: list[Path]) -> list[str]:
    """The run's own view, mounted outside in: a folder is made (world-traversable) where a
    bound path's parent lies on an empty tmpfs, since bwrap would copy the host's mode there
    and /root (0700) above a Python under pyenv would shut the run's user out."""
    kinds = {Path("/tmp"): "tmpfs", Path("/run"): "tmpfs"}
    kinds.update({Path(p): "ro" for p in readable if Path(p).exists()})
    kinds.update({Path(p): "tmpfs" for p in confinement.hidden if Path(p).exists()})
    kinds.update({Path(p): "rw" for p in writable})

    def covering(path: Path) -> str:
        for candidate in (path, *path.parents):
            if candidate in kinds:
                return kinds[candidate]
        return "tmpfs"  # bwrap's own root

    for target in list(kinds):
        for parent in target.parents:
            # On an empty tmpfs (ours, or a folder we made on one): make it, or bwrap copies
            # the host's mode (a 0700 run folder would shut the run's user out).
            if parent not in kinds and parent != Path("/") and covering(parent) in ("tmpfs", "dir"):
                kinds[parent] = "dir"
    rank = {"dir": 0, "ro": 1, "tmpfs": 2, "rw": 3}
    args = []
    for path, kind in sorted(kinds.items(), key=lambda item: (len(item[0].parts), rank[item[1]])):
        if kind == "dir":
            args += ["--perms", "0755", "--dir", str(path)]
        elif kind == "ro":
            args += ["--ro-bind", str(path), str(path)]
        elif kind == "tmpfs":
            perms = "1777" if path == Path("/tmp") else "0755"
            args += ["--perms", perms, "--tmpfs", str(path)]
        else:
            args += ["--bind", str(path), str(path)]
    return args


def command(argv: list[str], confinement: Confinement, force: bool = False) -> list[str]:
    """`argv` confined as `confinement` says; `argv` itself when the sandbox is off."""
    if not force and not active():
        return list(argv)
    readable = [*host_paths(), *confinement.readable]
    writable = [confinement.workdir, *confinement.writable]
    args = [
        bwrap_binary(),
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "bml-run",
        "--die-with-parent",
        "--new-session",
        *_merged_usr_links(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        # A /dev/shm of its own, writable by the run's user (bwrap's --dev makes it root's
        # 0755): POSIX shared memory and semaphores are how multiprocessing and PyTorch's
        # DataLoader workers pass data; other runs' and the host's segments stay unseen.
        "--perms",
        "1777",
        "--tmpfs",
        "/dev/shm",
        "--ro-bind-try",
        "/sys",
        "/sys",
    ]
    args += _mounts(confinement, readable, writable)
    args += _device_binds(confinement)
    for source, target in confinement.shown:  # after the folders they land in
        args += ["--ro-bind", str(source), str(target)]
    args += ["--chdir", str(confinement.workdir)]
    if confinement.uid is not None:
        # bwrap runs as root here (it can bind what root can read); the code itself runs as
        # the project's own user. Dropping the uid drops every capability with it.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
        args += [setpriv_binary(), f"--reuid={confinement.uid}", f"--regid={confinement.uid}"]
        args += ["--clear-groups", "--inh-caps=-all", "--"]
    else:
        args += ["--"]
    return [*args, *argv]


def control_groups(confinement: Confinement) -> list[Path]:
    """The run's control group(s), made now with its memory and process limits; [] where
    groups cannot be made here or the run is not confined."""
    if not confinement.group or cgroups.available() or not active():
        return []
    memory = confinement.memory_mb * 1024**2 if confinement.memory_mb else None
    return cgroups.create(confinement.group, memory, DEFAULT_PROCESSES)


def limits(confinement: Confinement, groups: list[Path] = ()):
    """preexec_fn for the confined process: limits, CPU pinning and its control groups,
    inherited by all the code starts."""
    cpus = set(confinement.cpus) & os.sched_getaffinity(0)

    def apply() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        size = confinement.file_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        cap = DEFAULT_OPEN_FILES
        if hard != resource.RLIM_INFINITY:
            cap = min(hard, cap)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, cap) if soft > 0 else cap, cap))
        if confinement.uid is not None:
            # Counted per user: only meaningful when the run has a user of its own.
            resource.setrlimit(resource.RLIMIT_NPROC, (DEFAULT_PROCESSES, DEFAULT_PROCESSES))
        cgroups.enter(groups)

    return apply


def give_to_run(path: Path, uid: int | None) -> None:
    """Make a folder the run's own (as root: its user owns every file in it)."""
    if uid is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            try:
                if os.lstat(name).st_uid != uid:
                    os.lchown(name, uid, uid)
            except FileNotFoundError:
                continue
