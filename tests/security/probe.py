"""What a hostile user would try from inside a run: a job, a notebook kernel, a model's own
code. Standard library only (it runs as user code); `attack(targets)` answers, for every
attempt, "blocked: <why>" or "LEAKED: <what came back>". The tests embed this file's source
in the user code they run and assert that nothing leaked.

targets:
    read        [path]: files that must stay unreadable (database, store keys, secret, the
                files of other runs and notebooks)
    list        [path]: folders that must show nothing but the way down to the run's own
                working folder (var/ holds the run's folder, and nothing else may show)
    write       [path]: files that must not be creatable
    pids        [pid]: processes of the appliance and of other runs: signal, ptrace, environ
    http        [{name, url, secret?, method?}]: internal ports; leaked if a 2xx answer comes
                back (or the body holds `secret`)
"""

import ctypes
import json
import os
import signal
import urllib.error
import urllib.request


def _read(path):
    try:
        with open(path, "rb") as fh:
            data = fh.read(64)
        return f"LEAKED: read {len(data)} bytes"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}: {exc.strerror}"


def _list(path):
    own = os.path.relpath(os.getcwd(), path)
    allowed = set() if own.startswith("..") else {own.split(os.sep)[0]}
    try:
        extra = sorted(set(os.listdir(path)) - allowed)
        return f"LEAKED: listed {extra[:5]}" if extra else "blocked: nothing else there"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}: {exc.strerror}"


def _write(path):
    try:
        with open(path, "wb") as fh:
            fh.write(b"pwned")
        return "LEAKED: written"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}: {exc.strerror}"


def _signal(pid):
    try:
        os.kill(pid, 0)  # the permission check of a real signal, without the harm
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
        return "LEAKED: the process could be signalled"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}: {exc.strerror}"


def _ptrace(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    PTRACE_ATTACH, PTRACE_DETACH = 16, 17
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
        libc.ptrace(PTRACE_DETACH, pid, None, None)
        return "LEAKED: attached"
    return f"blocked: {os.strerror(ctypes.get_errno())}"


def _http(target):
    request = urllib.request.Request(target["url"], method=target.get("method", "GET"))
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read(1 << 20)
            status = answer.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(1 << 20), exc.code
    except OSError as exc:
        return f"blocked: {type(exc).__name__}: {exc}"
    secret = target.get("secret", "").encode()
    if 200 <= status < 300 or (secret and secret in body):
        return f"LEAKED: {status} {body[:80]!r}"
    return f"blocked: HTTP {status}"


def attack(targets):
    report = {}
    for path in targets.get("read", []):
        report[f"read {path}"] = _read(path)
    for path in targets.get("list", []):
        report[f"list {path}"] = _list(path)
    for path in targets.get("write", []):
        report[f"write {path}"] = _write(path)
    for pid in targets.get("pids", []):
        report[f"signal {pid}"] = _signal(pid)
        report[f"ptrace {pid}"] = _ptrace(pid)
        report[f"environ {pid}"] = _read(f"/proc/{pid}/environ")
        report[f"cwd {pid}"] = _list(f"/proc/{pid}/cwd")
    for target in targets.get("http", []):
        report[f"http {target['name']}"] = _http(target)
    return report


def leaks(report):
    return {name: outcome for name, outcome in report.items() if outcome.startswith("LEAKED")}


def source() -> str:
    with open(__file__) as fh:
        return fh.read()


def program(targets, report_path) -> str:
    """User code that runs the attacks and writes the report to `report_path`."""
    return (
        source()
        + f"\n\njson.dump(attack(json.loads({json.dumps(json.dumps(targets))})),"
        + f" open({report_path!r}, 'w'), indent=1)\n"
    )
