"""A warm start for notebook servers: a process that has imported JupyterLab once and forks
a ready interpreter for each server it is asked to start (no Django here).

Importing jupyterlab and jupyter_server is most of a server's start (about 1.5 s of 3 on an
idle 2-core machine, 4 of 6 on a busy one); a fork of this process skips it. The scheduler
loop (apps.notebooks.servers) asks over a unix socket with one JSON line: the server's
arguments, environment, working directory, log file, cores and file-size limit; the answer
is the child's pid. The child is made exactly as a fresh start would be: its own session,
the environment replaced, limits set, descriptors redirected to its log; then it runs
JupyterLab and never returns here. Its process name is `name` (/proc/<pid>/comm), which is
how the scheduler tells it from any other process.

    python -P -m workers.notebook_zygote /path/to/zygote.sock
"""

import json
import os
import resource
import signal
import socket
import sys


def reap(*_):
    """Children are servers in their own sessions; collect their exit statuses."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def become_server(request: dict, listener: socket.socket) -> None:
    """In the forked child: turn into the requested Jupyter server (never returns)."""
    code = 1
    try:
        listener.close()
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        os.setsid()
        with open(f"/proc/{os.getpid()}/comm", "w") as comm:
            comm.write(request["name"][:15])
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        if request.get("cpus"):
            os.sched_setaffinity(0, request["cpus"])
        limit = request["fsize"]
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        os.environ.clear()
        os.environ.update(request["env"])
        import tempfile

        tempfile.tempdir = None  # computed again from the new TMPDIR
        sys.argv = ["jupyter-lab", *request["args"]]
        from jupyterlab.labapp import LabApp

        LabApp.launch_instance(argv=request["args"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(path: str) -> None:
    # The expensive part, once: what every server would import first.
    import jupyter_server.serverapp  # noqa: F401
    import jupyterlab.labapp  # noqa: F401

    signal.signal(signal.SIGCHLD, reap)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    print("ready", flush=True)
    while True:
        try:
            connection, _ = listener.accept()
        except InterruptedError:
            continue
        with connection:
            try:
                request = json.loads(connection.makefile("rb").readline())
            except (ValueError, OSError):
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                connection.close()
                become_server(request, listener)
            try:
                connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            except OSError:
                pass


if __name__ == "__main__":
    serve(sys.argv[1])
