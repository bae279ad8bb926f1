import contextlib
import re

import pytest
from bml import api

pytestmark = pytest.mark.e2e


def test_sdk_api_client_with_a_console_token(appliance, tmp_path):
    with contextlib.closing(appliance.login()) as session:
        session.post(
            "/projects/api-token/", data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}
        )
        page = session.get("/projects/api-token/").text
    token = re.search(r'id="api-token">([0-9a-f]+)<', page).group(1)

    client = api.Client(appliance.url, token=token)
    project = client.create_project("sdk-project")
    client.create_bucket(project["id"], "sdk-api-bucket")
    (tmp_path / "w.bin").write_bytes(b"\x00\x01" * 1000)
    assert client.upload(tmp_path / "w.bin", "sdk-api-bucket", "m/w.bin")["size"] == 2000
    assert [e["key"] for e in client.list("sdk-api-bucket", "m/")] == ["m/w.bin"]
    got = client.download("sdk-api-bucket", "m/w.bin", tmp_path / "back.bin")
    assert got.read_bytes() == b"\x00\x01" * 1000
    with pytest.raises(api.ApiError) as refused:
        client.create_bucket(project["id"], "Bad_Name")
    assert refused.value.status_code == 400 and "lowercase" in str(refused.value.detail)
