"""The spec's own prediction client ("Send Prediction Request" of the transfer learning
section), byte for byte but for its ENDPOINT_URL line, against a deployed image model: the
address copied from the service page gets {"result": ...}; the address without its secret
gets 401."""

import io
import json
import re
import subprocess
import sys

import pytest
import requests
from django.test import Client

from apps.serving import services
from apps.storage import services as storage
from apps.warehouse import services as warehouse
from tests.serving.conftest import wait_running

pytestmark = pytest.mark.django_db(transaction=True)

# As printed in the spec (000_08fd646962610c16.txt, "Send Prediction Request").
SPEC_CLIENT = '''#!/usr/bin/env python
# -*- coding: utf-8 -*-
import sys
import json
import base64
import requests

IMAGE_PATH = "aaa.jpg"
ENDPOINT_URL = "http://10.181.114.16:8023/v1/endpoints/yyyy/invocations"
PARAMS = "?interface=predict&action=predict"
TARGET_URL = ENDPOINT_URL + PARAMS

def get_request():
    """Construction Request"""
    arr_instances = []
    with open(IMAGE_PATH, "rb") as f:
        data = f.read()
    encoded_data = base64.b64encode(data)
    str_data = str(encoded_data)
    obj_instance = {
        "data": str_data,
    }
    arr_instances.append(obj_instance)
    request = {
        "instances": arr_instances,
    }
    return request

if __name__ == '__main__':
    request = get_request()
    json_request = json.dumps(request)

    headers = {'Content-type': 'application/json'}
    res = requests.post(TARGET_URL, data = json_request, headers = headers)
    result = res.text
    print(result)
'''
LABELS = ["cat", "dog", "bird"]


def image_model_files() -> dict[str, bytes]:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, len(LABELS)),
    ).eval()
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buffer)
    return {"model.pt": buffer.getvalue(), "labels.txt": ("\n".join(LABELS) + "\n").encode()}


def deploy_image_model(owner, project, name: str, fields: dict):
    """The small image model imported as image_classification and served as `name`."""
    bucket = storage.create_bucket(owner, project, name)
    for file, data in image_model_files().items():
        storage.upload_object(owner, bucket, f"model/{file}", io.BytesIO(data), len(data))
    version = warehouse.import_model(
        owner,
        project,
        name=name,
        model_type="image_classification",
        path=f"bos://{name}/model/",
        fields=fields,
    )
    service = services.create_service(
        owner, project, name=name, version=services.VersionConfig(1, version)
    )
    wait_running(service)
    return service


def run_client(tmp_path, endpoint_url: str) -> str:
    script = SPEC_CLIENT.replace(
        'ENDPOINT_URL = "http://10.181.114.16:8023/v1/endpoints/yyyy/invocations"',
        f'ENDPOINT_URL = "{endpoint_url}"',
    )
    assert script.count("\n") == SPEC_CLIENT.count("\n") and script != SPEC_CLIENT
    (tmp_path / "client.py").write_text(script)
    done = subprocess.run(
        [sys.executable, "client.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_spec_client_with_the_console_address(owner, project, stack, tmp_path):
    from PIL import Image

    service = deploy_image_model(owner, project, "pets", {"image_size": 32})
    Image.new("RGB", (40, 30), (200, 80, 20)).save(tmp_path / "aaa.jpg")  # the spec's IMAGE_PATH

    console = Client()
    console.force_login(owner)
    page = console.get(f"/services/{service.pk}/").content.decode()
    copied = re.search(r'id="client-url"[^>]*value="([^"]+)"', page).group(1)
    # the page is drawn for the host the browser used; the client reaches the test's stack
    endpoint_url = re.sub(r"^http://[^/]+", f"http://127.0.0.1:{stack.port}", copied)

    answer = json.loads(run_client(tmp_path, endpoint_url))
    assert list(answer) == ["result"]
    assert answer["result"][0][0]["label"] in LABELS

    without_secret = endpoint_url.split("?", 1)[0]
    assert "access key" in run_client(tmp_path, without_secret)
    refused = requests.post(
        without_secret + "?interface=predict&action=predict", json={"instances": []}, timeout=30
    )
    assert refused.status_code == 401
    wrong = endpoint_url.replace(service.access_key, "x" * len(service.access_key))
    assert requests.post(wrong, json={"instances": []}, timeout=30).status_code == 401


def test_an_autodl_model_answers_the_spec_client_with_its_logits_as_text(
    owner, project, stack, tmp_path
):
    """Output "logits" (what an AutoDL job's release fills in): the spec's printed answer,
    {"result": "[[1.28, -3.75, ...]]"}: one text holding each image's class scores."""
    from PIL import Image

    service = deploy_image_model(
        owner, project, "pets-logits", {"image_size": 32, "output": "logits"}
    )
    Image.new("RGB", (40, 30), (200, 80, 20)).save(tmp_path / "aaa.jpg")
    console = Client()
    console.force_login(owner)
    page = console.get(f"/services/{service.pk}/").content.decode()
    copied = re.search(r'id="client-url"[^>]*value="([^"]+)"', page).group(1)
    endpoint_url = re.sub(r"^http://[^/]+", f"http://127.0.0.1:{stack.port}", copied)
    answer = json.loads(run_client(tmp_path, endpoint_url))
    assert list(answer) == ["result"] and isinstance(answer["result"], str)
    scores = json.loads(answer["result"])
    assert len(scores) == 1 and len(scores[0]) == len(LABELS)
    assert all(isinstance(score, float) for score in scores[0])
