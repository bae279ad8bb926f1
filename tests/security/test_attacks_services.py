"""The probe's attacks from a notebook kernel and from a model's own code (a custom predictor
served by a replica, and the load check of its import), with a victim project's notebook
and prediction service running: none may read, write, signal or call what is not theirs."""

import io
import json
import os
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from apps.notebooks import workspace
from apps.serving import services
from apps.serving.models import Replica
from apps.storage import services as storage
from apps.warehouse import services as warehouse
from tests.notebooks.conftest import (  # noqa: F401  (fixtures)
    Jupyter,
    cpu_package,
    create,
    notebooks,
    session_for,
    stop_servers_at_end,
    wait_status,
)
from tests.security import probe
from tests.security.test_attacks import (
    SECRET,
    assert_nothing_leaked,
    store_targets,
    var_targets,
    victim,  # noqa: F401  (fixture)
)
from tests.serving.conftest import owner, project, stack, wait_running  # noqa: F401
from tests.serving.test_gateway import invoke
from tests.warehouse.conftest import iris_joblib


@pytest.fixture
def victim_services(victim, stack, cpu_package):  # noqa: F811
    """The victim's notebook (a secret in its files) and prediction service, running."""
    victim_user, victim_project = victim
    notebook = create(victim_user, victim_project, cpu_package)
    wait_status(notebook, "running", timeout=120)
    secret_file = workspace.work_dir(notebook) / "secret.txt"
    secret_file.write_text(SECRET)
    bucket = storage.create_bucket(victim_user, victim_project, "victim-models")
    data = iris_joblib()
    storage.upload_object(victim_user, bucket, "iris/model.joblib", io.BytesIO(data), len(data))
    model = warehouse.import_model(
        victim_user,
        victim_project,
        name="iris",
        model_type="sklearn",
        path="bos://victim-models/iris/",
    )
    service = services.create_service(
        victim_user, victim_project, name="victim-iris", version=services.VersionConfig(1, model)
    )
    wait_running(service)
    replica = Replica.objects.get(version__service=service)
    return notebook, secret_file, replica


def targets_around(victim_services, object_store) -> dict:
    notebook, secret_file, replica = victim_services
    targets = var_targets(secret_file.parent)
    targets["read"].append(str(Path(replica.run_dir) / "stdout.log"))
    targets["pids"] = [os.getpid(), notebook.pid, replica.pid]
    targets["http"] = store_targets(object_store) + [
        {
            "name": "another notebook's Jupyter server",
            "url": f"http://127.0.0.1:{notebook.port}{notebook.base_url}api/contents/secret.txt",
            "secret": SECRET,
        },
        {
            "name": "another service's replica",
            "url": f"http://127.0.0.1:{replica.port}/healthz",
        },
        {
            "name": "another service's replica, predict",
            "url": f"http://127.0.0.1:{replica.port}/predict",
            "method": "POST",
        },
    ]
    return targets


def test_attacks_from_a_notebook_kernel_fail(
    notebooks,  # noqa: F811
    owner,  # noqa: F811
    project,  # noqa: F811
    cpu_package,  # noqa: F811
    victim_services,
    object_store,
):
    notebook = wait_status(create(owner, project, cpu_package), "running", timeout=120)
    jupyter = Jupyter(notebooks, notebook, session_for(owner))
    code = probe.program(targets_around(victim_services, object_store), "report.json")
    answer = jupyter.execute(jupyter.start_kernel(), code + "\nprint(open('report.json').read())")
    assert answer["error"] is None, answer
    assert_nothing_leaked(json.loads(answer["stdout"]))
    # Its own work still goes on: the file is in the instance's own folder.
    assert (workspace.work_dir(notebook) / "report.json").exists()
    assert victim_services[1].read_text() == SECRET


PREDICTOR = """
import json
{probe}

class Predictor:
    def load(self, model_dir):
        self.report = attack(json.loads({targets!r}))

    def predict(self, instances):
        return [self.report for _ in instances]
"""


def test_attacks_from_a_models_own_code_fail(
    stack,  # noqa: F811
    owner,  # noqa: F811
    project,  # noqa: F811
    victim_services,
    object_store,
):
    targets = targets_around(victim_services, object_store)
    source = PREDICTOR.format(probe=probe.source(), targets=json.dumps(targets))
    bucket = storage.create_bucket(owner, project, f"hostile-{uuid.uuid4().hex[:6]}")
    data = source.encode()
    storage.upload_object(owner, bucket, "m/predictor.py", io.BytesIO(data), len(data))
    # The import's load check runs the code once already (confined as well).
    model = warehouse.import_model(
        owner, project, name="hostile", model_type="custom", path=f"bos://{bucket.name}/m/"
    )
    service = services.create_service(
        owner, project, name="hostile", version=services.VersionConfig(1, model)
    )
    wait_running(service)
    status, body, _ = invoke(stack, service, {"instances": [1]})
    assert status == 200, body
    assert_nothing_leaked(body["result"][0])
    assert not (Path(settings.BASE_DIR) / "pwned-by-run").exists()
