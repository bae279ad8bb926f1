"""An instance's life through the appliance's proxy: code runs, packages installed with pip
and files survive a stop and a start; strangers and anonymous users do not get in."""

import base64
import hashlib
import os
import signal
import zipfile

from apps.notebooks import workspace
from apps.projects.services import add_member
from tests.conftest import wait_until
from tests.notebooks.conftest import Jupyter, create, session_for, wait_status


def tiny_wheel(directory) -> str:
    """A real pure-Python wheel, built by hand (the test machine may be offline)."""
    name, version = "bmltinypkg", "1.0"
    files = {
        f"{name}/__init__.py": b"ANSWER = 42\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{name}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(directory, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def test_code_packages_and_files_survive_stop_and_start(notebooks, owner, project, cpu_package):
    notebook = wait_status(create(owner, project, cpu_package), "running")
    jupyter = Jupyter(notebooks, notebook, session_for(owner))
    assert jupyter.get("api/status").status_code == 200

    kernel = jupyter.start_kernel()
    assert jupyter.execute(kernel, "1 + 1")["result"] == "2"
    wheel = tiny_wheel(workspace.work_dir(notebook))  # the kernel sees only its instance
    installed = jupyter.execute(
        kernel,
        f"import subprocess, sys\n"
        f"r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', {wheel!r}],"
        f" capture_output=True, text=True)\nprint(r.returncode, r.stdout[-300:], r.stderr[-300:])",
    )
    assert installed["stdout"].startswith("0 "), installed
    written = jupyter.put(
        "api/contents/kept.py", {"type": "file", "format": "text", "content": "X = 1\n"}
    )
    assert written.status_code in (200, 201), written.text
    # pip installed into the instance's own environment, not the appliance's.
    assert list((workspace.env_dir(notebook) / "lib").glob("python3*/site-packages/bmltinypkg"))
    import importlib.util

    assert importlib.util.find_spec("bmltinypkg") is None

    jupyter.post(f"api/kernels/{kernel}/interrupt")
    from apps.notebooks import services

    services.stop_notebook(owner, notebook)
    wait_status(notebook, "stopped")
    assert notebook.pid is None and notebook.lease_id is None
    assert jupyter.get("api/status").status_code == 503

    services.start_notebook(owner, notebook)
    wait_status(notebook, "running")
    kernel = jupyter.start_kernel()
    result = jupyter.execute(
        kernel, "import bmltinypkg, kept\nprint(bmltinypkg.ANSWER, kept.X, bmltinypkg.__file__)"
    )
    assert result["error"] is None, result
    answer, kept, where = result["stdout"].split()
    assert (answer, kept) == ("42", "1")
    assert where.startswith(str(workspace.env_dir(notebook)))
    assert jupyter.get("api/contents/demo").json()["type"] == "directory"


def test_strangers_get_404_viewers_403_and_anonymous_users_the_login_page(
    notebooks, owner, project, cpu_package, make_user
):
    from apps.projects.models import Role

    notebook = wait_status(create(owner, project, cpu_package), "running")
    stranger, viewer = make_user(), make_user()
    add_member(owner, project, viewer, Role.VIEWER)

    assert Jupyter(notebooks, notebook, session_for(stranger)).get("lab").status_code == 404
    assert Jupyter(notebooks, notebook, session_for(viewer)).get("lab").status_code == 403
    anonymous = Jupyter(notebooks, notebook, "")
    redirect = anonymous.get("lab")
    assert redirect.status_code == 302
    assert redirect.headers["location"].startswith("/login/?next=")
    login_page = anonymous.get("lab", follow_redirects=True)
    assert login_page.status_code == 200 and "password" in login_page.text.lower()
    # A forged session is anonymous too.
    assert Jupyter(notebooks, notebook, "not-a-session").get("api/status").status_code == 302
    # The member's console session never reaches Jupyter (its users control its config).
    member = Jupyter(notebooks, notebook, session_for(owner))
    assert member.get("lab").status_code == 200
    assert "sessionid" not in member.get("api/me").text


def test_a_killed_jupyter_process_is_never_shown_running(notebooks, owner, project, cpu_package):
    notebook = wait_status(create(owner, project, cpu_package), "running")
    first_pid = notebook.pid
    os.killpg(first_pid, signal.SIGKILL)

    # The loop notices within a tick: the dead server is off the books and a new one starts.
    def noticed():
        notebook.refresh_from_db()
        return notebook.pid != first_pid

    wait_until(noticed, 5, interval=0.05, what="the exit noticed")
    seen = set()

    def restarted():
        notebook.refresh_from_db()
        seen.add(notebook.status)
        return notebook.status == "running"

    wait_until(restarted, 60, interval=0.05, what="the instance restarted")
    assert seen & {"restarting", "starting"}
    assert notebook.pid not in (None, first_pid)
    assert notebook.restarts == 1
    assert "exited" in notebook.reason
    jupyter = Jupyter(notebooks, notebook, session_for(owner))
    wait_until(lambda: jupyter.get("api/status").status_code == 200, 10, what="proxy")
