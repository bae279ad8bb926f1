"""The console's code templates run as real jobs on CPU: they train for real on bundled
data, report curves, and leave their model in storage; the PyTorch one also runs as a
2-instance DistributedDataParallel job (gloo)."""

import io
import json

import pytest
import torch
from django.core.exceptions import ValidationError

from apps.jobs import frameworks, services
from apps.jobs.models import JobStatus
from apps.jobs.templates_code import available_templates
from apps.storage import services as storage
from tests.jobs.helpers import package, run_until, status_of, stored


def submit_template(owner, project, key, instances=1, **kw):
    template = available_templates()[key]
    return services.create_job(
        owner,
        project,
        name=key.replace("_", "-"),
        kind="deep_learning",
        algorithm="custom_code",
        params={"framework": template.framework, "code": template.code},
        package_id=package().pk,
        instances=instances,
        output_path="bos://jobs-out/results/",
        time_limit_s=300,
        **kw,
    )


def finish(job, timeout=180):
    run_until(lambda: status_of(job) not in ("queued", "running"), "job end", timeout=timeout)
    runs = list(job.runs.order_by("index"))
    logs = "\n".join(
        stored(f"results/{job.job_id}/log/{job.job_id}-{r.index}.log").decode() for r in runs
    )
    assert job.status == JobStatus.SUCCEEDED, f"{job.reason}\n{logs}"
    return logs


def curve(job, index=0):
    raw = stored(f"results/{job.job_id}/log/{job.job_id}-{index}.metrics.jsonl").decode()
    return [json.loads(line) for line in raw.splitlines()]


@pytest.mark.parametrize(
    "key, model_file",
    [
        ("pytorch_digits", "model.pt"),
        ("paddle_digits", "model.pdparams"),
        ("sklearn_digits", "model.joblib"),
    ],
)
def test_template_job_trains_with_curves_and_model_in_storage(owner, project, key, model_file):
    job = submit_template(owner, project, key)
    finish(job)
    points = curve(job)
    assert len(points) >= 10 and all("acc" in p for p in points)
    assert points[-1]["acc"] > 0.85, points[-1]  # it really learned the digits
    assert stored(f"results/{job.job_id}/output/{model_file}")
    summary = json.loads(stored(f"results/{job.job_id}/output/metrics.json"))
    assert summary["accuracy"] == pytest.approx(points[-1]["acc"])


def test_pytorch_template_trains_with_ddp_on_two_instances(owner, project):
    job = submit_template(owner, project, "pytorch_digits", instances=2)
    logs = finish(job)
    assert "instance 0 of 2 on cpu" in logs and "instance 1 of 2 on cpu" in logs
    # each instance trained on its half of the data and reported its own curve
    assert "719 training" in logs and "718 training" in logs
    assert len(curve(job, 0)) == len(curve(job, 1)) == 20
    weights = torch.load(io.BytesIO(stored(f"results/{job.job_id}/output/model_state.pt")))
    assert set(weights) >= {"0.weight", "4.bias"}  # the plain model, not the DDP wrapper


def test_template_reads_csv_training_files_when_given(owner, project):
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(200))
    bucket = project.buckets.get(name="jobs-out")
    storage.upload_object(owner, bucket, "train/part-0.csv", io.BytesIO(rows.encode()), len(rows))
    job = submit_template(owner, project, "sklearn_digits", train_data_path="bos://jobs-out/train/")
    logs = finish(job)
    assert "160 training and 40 test samples" in logs


def test_a_framework_that_is_not_installed_is_refused_with_a_clear_message(owner, project):
    if frameworks.installed("tensorflow"):
        pytest.skip("TensorFlow is installed here")
    with pytest.raises(ValidationError) as error:
        services.create_job(
            owner,
            project,
            name="tf-job",
            kind="deep_learning",
            algorithm="custom_code",
            params={"framework": "tensorflow", "code": "import tensorflow"},
            package_id=package().pk,
            output_path="bos://jobs-out/results/",
        )
    message = error.value.message_dict["framework"][0]
    assert "TensorFlow is not installed" in message and "pip install tensorflow" in message


@pytest.mark.parametrize(
    "key, model_type, subpath, fields",
    [
        ("pytorch_digits", "pytorch", "output/model.pt", {"input_shape": [64]}),
        ("paddle_digits", "paddle", "output/inference/", {}),
    ],
)
def test_a_templates_model_goes_to_the_warehouse_and_predicts(
    owner, project, key, model_type, subpath, fields
):
    """The templates save a servable model with the input scaling inside: released to the
    warehouse (the release's load check runs it), it reads raw digits rows."""
    import tempfile
    from pathlib import Path

    import numpy as np
    from sklearn.datasets import load_digits

    from apps.storage.client import get_client
    from apps.warehouse import releases as warehouse
    from workers.runners.model_loaders import load

    job = submit_template(owner, project, key)
    finish(job)
    if fields:
        version = warehouse.release_from_job(
            owner, job, model_type=model_type, name=f"{key}-model", subpath=subpath, fields=fields
        )
    else:  # type and path left out: what the algorithm says its jobs produce
        version = warehouse.release_from_job(owner, job, name=f"{key}-model")
    assert version.model_type == model_type
    assert version.lineage["job_id"] == job.job_id and version.lineage["algorithm"] == "custom_code"
    assert version.lineage["metrics"]["accuracy"] > 0.5  # the template's output/metrics.json
    assert version.lineage["params"]["code"].endswith("lines (on the job's page)")
    assert version.lineage["output"].endswith(f"{job.job_id}/{subpath}")
    prefix = f"results/{job.job_id}/{subpath}"
    with tempfile.TemporaryDirectory() as tmp:
        for item in get_client().list_objects("jobs-out", prefix, recursive=True):
            target = Path(tmp) / Path(item.object_name).name
            target.write_bytes(stored(item.object_name))
        model = Path(tmp) / "model.pt" if model_type == "pytorch" else Path(tmp)
        x, y = load_digits(return_X_y=True)
        answers = load(model_type, model, fields).predict(x[:200].astype("float32").tolist())
    labels = [int(np.argmax(scores)) for scores in answers]  # each model's raw class scores
    accuracy = float(np.mean(np.array(labels) == y[:200]))
    assert accuracy > 0.85, accuracy
