"""An instance's directory, which outlives its server (stop keeps everything in it):

    var/notebooks/<pk>-<created µs>/
        work/        what JupyterLab shows: the user's code, demo/, data/ (the storage path)
        env/         the instance's Python: a venv layered over the appliance's packages,
                     so `pip install` in a notebook lands here and not in the appliance
        home/        HOME: Jupyter's config, lab settings and workspaces, pip's cache, runtime
        server.log   the Jupyter server's output
        disk.json    the last disk usage measured, read by the quota contents manager

Creating one is a few directory writes and a venv without pip (about 50 ms), so creating
an instance takes well under a second; the spec's cloud takes "about 1 minute".
"""

import json
import os
import shutil
import site
import sys
import venv
from pathlib import Path

from django.conf import settings

DEMO_SOURCE = Path(settings.BASE_DIR) / "fixtures" / "notebooks" / "demo"
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
# JupyterLab asks new users whether to fetch news from the internet; this appliance is
# offline, so the question is answered "no" for them (they can still change it).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def notebooks_root() -> Path:
    return Path(settings.VAR_DIR) / "notebooks"


def instance_dir(notebook) -> Path:
    # The creation time too: a restored (or test) database may give a new instance the id
    # of a deleted one, and it must not find the old one's files.
    return notebooks_root() / f"{notebook.pk}-{int(notebook.created_at.timestamp() * 1e6)}"


def work_dir(notebook) -> Path:
    return instance_dir(notebook) / "work"


def env_dir(notebook) -> Path:
    return instance_dir(notebook) / "env"


def home_dir(notebook) -> Path:
    return instance_dir(notebook) / "home"


def runtime_dir(notebook) -> Path:
    return home_dir(notebook) / ".local" / "share" / "jupyter" / "runtime"


def create(notebook) -> Path:
    """Lay out a new instance's directory (idempotent: a missing part is added again)."""
    root = instance_dir(notebook)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    work = work_dir(notebook)
    (work / "data").mkdir(parents=True, exist_ok=True)
    if not (work / "demo").exists() and DEMO_SOURCE.is_dir():
        shutil.copytree(DEMO_SOURCE, work / "demo", copy_function=shutil.copy)  # new mtimes
        os.utime(work / "demo")
    _create_env(env_dir(notebook))
    _write_kernel_spec(notebook)
    _write_lab_settings(home_dir(notebook))
    return root


def _create_env(env: Path) -> None:
    python = env / "bin" / "python"
    if python.exists():
        return
    venv.EnvBuilder(symlinks=True, with_pip=False).create(env)
    site_packages = env / "lib" / PY / "site-packages"
    # The appliance's packages (torch, paddle, sklearn, the bml SDK...) are seen after the
    # instance's own, as with --system-site-packages; addsitedir also runs their .pth files
    # (editable installs). pip, importable from there, installs into this venv's prefix and
    # leaves the appliance's copy of a package alone ("outside environment").
    lines = [f"import site; site.addsitedir({p!r})" for p in appliance_site_packages()]
    (site_packages / "_bml_appliance.pth").write_text("\n".join(lines) + "\n")
    for name in ("pip", "pip3", f"pip{sys.version_info.major}.{sys.version_info.minor}"):
        script = env / "bin" / name
        script.write_text(
            f"#!{python}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n"
        )
        script.chmod(0o755)


def appliance_site_packages() -> list[str]:
    return [p for p in site.getsitepackages() if Path(p).is_dir()]


def _write_kernel_spec(notebook) -> None:
    """The "python3" kernel runs the instance's Python (it shadows the built-in spec)."""
    spec_dir = home_dir(notebook) / ".local" / "share" / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [
            str(env_dir(notebook) / "bin" / "python"),
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))


def _write_lab_settings(home: Path) -> None:
    user_settings = home / ".jupyter" / "lab" / "user-settings"
    for relative, values in LAB_SETTINGS.items():
        path = user_settings / relative
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=1))


def remove(notebook) -> None:
    shutil.rmtree(instance_dir(notebook), ignore_errors=True)


def scan(notebook) -> tuple[int, float]:
    """(bytes the instance takes on disk, the newest modification time of its work/ files),
    in one walk, links not followed. The second is activity: a user editing and saving."""
    root, work = str(instance_dir(notebook)), str(work_dir(notebook))
    total, newest = 0, 0.0
    stack = [root]
    while stack:
        folder = stack.pop()
        in_work = folder == work or folder.startswith(work + os.sep)
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += info.st_blocks * 512
                if in_work and info.st_mtime > newest:
                    newest = info.st_mtime
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return total, newest


def record_disk_usage(notebook, used: int) -> None:
    """What the quota contents manager reads before each save."""
    path = instance_dir(notebook) / "disk.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"used": used, "quota": notebook.disk_quota_bytes}))
    os.replace(tmp, path)


def notebook_files(notebook, limit: int = 200) -> list[str]:
    """The .ipynb files of the workspace (relative paths), for "submit as job"."""
    found = []
    work = work_dir(notebook)
    for dirpath, dirnames, filenames in os.walk(work):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".ipynb"):
                found.append(os.path.relpath(os.path.join(dirpath, name), work))
                if len(found) >= limit:
                    return found
    return found
