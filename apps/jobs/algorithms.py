"""What a job runs, per kind and algorithm. A later job kind (machine learning, AutoDL,
AutoML) registers its algorithms here; the engine (scheduler, supervise) never changes.

An algorithm validates its parameters (ValidationError naming the field and the rule) and,
at start, prepares the instance's workspace and returns the command to run there.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError

MAX_CODE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Release:
    """What "Release to model warehouse" fills in for a succeeded job: the warehouse model
    type (apps.warehouse.models.ModelType) and the file or folder of the job's results
    (relative to <output>/<job_id>/) that holds a model of that type."""

    model_type: str
    subpath: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Algorithm:
    kind: str
    name: str
    title: str
    validate: Callable[[dict], dict]
    # prepare(params, workspace) -> (argv, extra stage_in items {uri, dest, shard?,
    # split_rows?}); an item with shard true gives each instance its share of the files
    # (data-parallel inputs); with split_rows true too it is line-oriented, and with fewer
    # files than instances each instance gets its share of the lines (grants.input_files).
    prepare: Callable[[dict, Path], tuple[list[str], list[dict]]]
    # Workspace folders uploaded to <output path>/<job_id>/<folder>/ when the job succeeds
    # (the spec's layout per algorithm: output, or data, model, evaluate, predict, cluster).
    outputs: tuple[str, ...] = ("output",)
    # Data-parallel algorithms write part-<rank> files: every instance uploads its folders.
    outputs_from_every_instance: bool = False
    # The job's training/test data paths are staged as train_data/ and test_data/ (each
    # instance its share); an algorithm that stages its inputs itself says False.
    stages_data_paths: bool = True
    # Those data paths are line-oriented samples (the machine learning runners' input): with
    # fewer files than instances (one big file) they are shared by rows, not left to one
    # instance. Off for user code (deep learning, RAPIDS): its files may be binary, or CSVs
    # with a header that only the first share would hold, so they always go whole.
    split_data_rows: bool = False
    needs_train_data: bool = False
    # Params that hold bos:// paths (code, further inputs): like the job's own paths they
    # must lie in the job's project, and a value there that is not such a path is refused.
    # Any other param that looks like a bos:// path is checked too (apps.storage.ownership),
    # so forgetting a declaration does not open a hole; declaring states what a field is.
    path_params: tuple[str, ...] = ()
    # check_inputs(params + train_data_path/test_data_path) may look at the inputs in the
    # store (e.g. "is this standardized data?") once they are known to be the user's.
    check_inputs: Callable[[dict], None] | None = None
    # Internal algorithms are steps of another module (a data set's conversion): they run
    # on the engine like any job, but are not listed or counted among the user's jobs.
    internal: bool = False
    # Whether its runs report training curves (bml.report): the job page shows the curves
    # box only then (user code may report; the built-in steps that have no curve say so).
    reports_curves: bool = True
    # release(params) -> Release | None: what its succeeded jobs release to the warehouse by
    # default (None: nothing servable, e.g. data standardization). Every job kind that
    # produces a model (AutoML, AutoDL, visual modeling, smart vision) says it here.
    release: Callable[[dict], "Release | None"] | None = None
    # (fewest, most) instances the algorithm runs on, where the spec narrows the engine's
    # 1-4 (AutoML: 2-4, its trials run in parallel over them).
    instances: tuple[int, int] | None = None


_registry: dict[tuple[str, str], Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    _registry[(algorithm.kind, algorithm.name)] = algorithm
    return algorithm


def get(kind: str, name: str) -> Algorithm:
    try:
        return _registry[(kind, name)]
    except KeyError:
        known = ", ".join(f"{k}/{n}" for k, n in sorted(_registry)) or "none"
        raise ValidationError(
            {"algorithm": f"Unknown algorithm {kind}/{name}; known: {known}."}
        ) from None


def all_algorithms() -> list[Algorithm]:
    return list(_registry.values())


def internal_kinds() -> set[str]:
    return {algorithm.kind for algorithm in _registry.values() if algorithm.internal}


# -- Deep learning: the user's own code ----------------------------------------------------


def _validate_custom_code(params: dict) -> dict:
    from apps.jobs import frameworks

    framework = params.get("framework") or "pytorch"
    if not isinstance(framework, str) or framework not in frameworks.FRAMEWORKS:
        known = ", ".join(frameworks.FRAMEWORKS)
        raise ValidationError({"framework": f"Framework must be one of {known}."})
    if not frameworks.installed(framework):
        raise ValidationError({"framework": frameworks.missing_message(framework)})
    code, code_path = params.get("code"), params.get("code_path")
    if bool(code) == bool(code_path):
        raise ValidationError(
            {"code": "Give either the code itself or a bos:// code path with a start command."}
        )
    if code is not None:
        if not isinstance(code, str) or len(code.encode()) > MAX_CODE_BYTES:
            raise ValidationError({"code": "Code must be text of at most 1 MB."})
        # A browser's textarea sends CRLF line ends (the HTML form rules); stored as Python
        # writes them, the code shown, cloned and run is the code as typed.
        return {"framework": framework, "code": code.replace("\r\n", "\n").replace("\r", "\n")}
    from apps.storage.paths import parse_bos_uri

    parse_bos_uri(code_path, field="code_path")
    command = params.get("start_command") or ""
    command = command.strip() if isinstance(command, str) else ""
    if not command:
        raise ValidationError({"start_command": "A code path needs a start command."})
    return {"framework": framework, "code_path": code_path, "start_command": command}


# What the framework's code templates save (apps/jobs/code_templates/): a servable model.
_CODE_RELEASES = {
    "pytorch": Release("pytorch", "output/model.pt"),  # TorchScript
    "paddlepaddle": Release("paddle", "output/inference/"),  # paddle.jit.save
    "sklearn": Release("sklearn", "output/"),
    "tensorflow": Release("keras", "output/"),
}


def _release_custom_code(params: dict) -> Release:
    return _CODE_RELEASES.get(params.get("framework"), Release("custom", "output/"))


def _prepare_custom_code(params: dict, workspace: Path):
    import sys

    if "code" in params:
        (workspace / "main.py").write_text(params["code"])
        return [sys.executable, "main.py"], []
    stage = [{"uri": params["code_path"], "dest": "code"}]
    return ["bash", "-c", f"cd code && {params['start_command']}"], stage


CUSTOM_CODE = register(
    Algorithm(
        kind="deep_learning",
        name="custom_code",
        title="Deep learning: your own code",
        validate=_validate_custom_code,
        prepare=_prepare_custom_code,
        path_params=("code_path",),
        release=_release_custom_code,
    )
)
