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
    grant       [{name, bucket, key}]: writes with the run's own upload grant (the POST
                policy in $BML_STORAGE_GRANT) aimed elsewhere; leaked if the store takes one
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


def _post_with_grant(target):
    """A browser-style POST upload with the run's own policy, aimed at another bucket or
    outside the run's folder."""
    path = os.environ.get("BML_STORAGE_GRANT")
    if not path:
        return "blocked: this run holds no grant"
    with open(path) as fh:
        grant = json.load(fh)
    base = grant["url"].rsplit("/", 1)[0]
    job_id = os.environ.get("BML_RUN_ID", "").rsplit("-", 1)[0]
    fields = {**grant["fields"], "key": target["key"].format(job_id=job_id)}
    boundary = "probe-boundary-7f3a"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    body = (
        "".join(parts).encode()
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\npwned\r\n--{boundary}--\r\n"
        ).encode()
    )
    request = urllib.request.Request(
        f"{base}/{target['bucket']}",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return f"LEAKED: the store took it ({answer.status})"
    except urllib.error.HTTPError as exc:
        return f"blocked: HTTP {exc.code}"
    except OSError as exc:
        return f"blocked: {type(exc).__name__}: {exc}"


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
    for target in targets.get("grant", []):
        report[f"grant {target['name']}"] = _post_with_grant(target)
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
