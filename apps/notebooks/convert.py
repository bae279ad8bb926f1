"""A notebook of an instance as the code of a deep learning job ("submit as job").

`jupyter nbconvert --to python` (the spec's FAQ) leaves IPython-only lines such as
`get_ipython().system('pip install x')`, which fail in a job's plain Python. Here `!cmd`
and `%pip` become subprocess calls that work in a job, other magics are commented out with
a note, and the result is the job form's code.
"""

import os
import re
from pathlib import Path

from django.core.exceptions import ValidationError

from apps.notebooks import workspace

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
SHELL = re.compile(r"^(\s*)get_ipython\(\)\.system\((.*)\)\s*$")
PIP = re.compile(r"^(\s*)get_ipython\(\)\.run_line_magic\('pip', (.*)\)\s*$")
OTHER_MAGIC = re.compile(r"^(\s*)(get_ipython\(\)\..*)$")
PRELUDE = "import shlex\nimport subprocess\nimport sys\n\n"


def notebook_path(notebook, relative: str) -> Path:
    """The workspace file `relative`, refused when it leaves the workspace (../, links)."""
    relative = (relative or "").strip().lstrip("/")
    if not relative.endswith(".ipynb"):
        raise ValidationError({"path": "Choose a notebook (.ipynb) of the instance."})
    work = workspace.work_dir(notebook).resolve()
    path = (work / relative).resolve()
    if work not in path.parents:
        raise ValidationError({"path": f"'{relative}' is not inside the instance's files."})
    if not path.is_file():
        raise ValidationError({"path": f"'{relative}' does not exist in the instance."})
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValidationError({"path": "The notebook is over 20 MB (outputs?): clear them."})
    return path


def to_job_code(notebook, relative: str) -> str:
    import nbformat
    from nbconvert import PythonExporter

    path = notebook_path(notebook, relative)
    try:
        document = nbformat.read(os.fspath(path), as_version=4)
        code, _ = PythonExporter().from_notebook_node(document)
    except Exception as exc:  # not JSON, not a notebook, a cell IPython cannot parse
        raise ValidationError({"path": f"'{relative}' could not be converted: {exc}"}) from None
    return job_ready(code)


def job_ready(code: str) -> str:
    lines, changed = [], False
    for line in code.splitlines():
        if match := SHELL.match(line):
            indent, command = match.groups()
            lines.append(f"{indent}subprocess.run({command}, shell=True, check=True)")
            changed = True
        elif match := PIP.match(line):
            indent, arguments = match.groups()
            lines.append(
                f"{indent}subprocess.run([sys.executable, '-m', 'pip', "
                f"*shlex.split({arguments})], check=True)"
            )
            changed = True
        elif match := OTHER_MAGIC.match(line):
            indent, magic = match.groups()
            lines.append(f"{indent}pass  # notebook only, not run in a job: {magic}")
        else:
            lines.append(line)
    text = "\n".join(lines).strip() + "\n"
    return PRELUDE + text if changed else text
