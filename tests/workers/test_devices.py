import pytest

from apps.billing.models import ResourcePackage
from workers import devices
from workers.detect import parse_declared
from workers.models import Device


@pytest.fixture
def host(db):
    return devices.sync_inventory()  # BML_DEVICES=cuda:2,xpu:1 in the test settings


def package(module="train", kind="cpu", count=0):
    return ResourcePackage.objects.filter(
        module=module, device_kind=kind, device_count=count
    ).first()


def test_declared_devices_are_recorded(host):
    assert [(d.kind, d.index, d.declared) for d in host.devices.all()] == [
        ("cuda", 0, True),
        ("cuda", 1, True),
        ("xpu", 0, True),
    ]


@pytest.mark.parametrize("spec", ["gpu:2", "cuda", "cuda:x"])
def test_bad_device_declarations_say_what_is_wrong(spec):
    with pytest.raises(ValueError, match="BML_DEVICES"):
        parse_declared(spec)


def test_the_spec_price_table_is_seeded(db):
    names = set(ResourcePackage.objects.values_list("name", flat=True))
    assert "CPU Instance_8 Core_32GB Memory" in names
    assert "GPU Instance_V100_48 Core 200GB Memory x4 Card" in names
    v100 = ResourcePackage.objects.get(module="train", name__startswith="GPU Instance_V100_12")
    assert (v100.device_kind, v100.device_count, str(v100.price_per_minute)) == ("cuda", 1, "0.185")


def test_gpu_leases_hold_distinct_devices_until_released(host):
    one_gpu = package(kind="cuda", count=1)
    first = devices.acquire(one_gpu, "job", 1)
    second = devices.acquire(one_gpu, "job", 2)
    assert {d.index for d in first.devices.all()} | {d.index for d in second.devices.all()} == {
        0,
        1,
    }
    with pytest.raises(devices.NoCapacity, match="1 cuda device"):
        devices.acquire(one_gpu, "job", 3)
    assert devices.free_capacity(host)["cuda"] == 0
    devices.release(first)
    third = devices.acquire(one_gpu, "job", 3)
    assert [d.index for d in third.devices.all()] == [d.index for d in first.devices.all()]


def test_a_package_needing_more_devices_than_exist_says_so(host):
    with pytest.raises(devices.NoCapacity, match="needs 4 cuda device"):
        devices.acquire(package(kind="cuda", count=4), "job", 1)


def test_run_environment_shows_only_leased_devices(host):
    gpu_lease = devices.acquire(package(kind="cuda", count=1), "job", 1)
    env = devices.visible_devices_env(gpu_lease)
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    xpu_lease = devices.acquire(package(kind="xpu", count=1), "job", 2)
    env = devices.visible_devices_env(xpu_lease)
    assert env["XPU_VISIBLE_DEVICES"] == env["FLAGS_selected_xpus"] == "0"
    assert env["CUDA_VISIBLE_DEVICES"] == ""  # an XPU job sees no GPU
    devices.release(gpu_lease)
    devices.release(xpu_lease)
    cpu_lease = devices.acquire(package(kind="cpu"), "job", 3)
    assert devices.visible_devices_env(cpu_lease)["OMP_NUM_THREADS"] == str(cpu_lease.cpu_cores)


def test_cpu_leases_are_capped_at_the_host_and_count_against_it(host):
    big = package(kind="cpu")  # 2 or 8 cores asked; the host may have fewer
    lease = devices.acquire(big, "notebook", 1)
    assert lease.cpu_cores == min(big.cpu_cores, host.cpu_cores)
    assert devices.free_capacity(host)["cpu_cores"] == host.cpu_cores - lease.cpu_cores


def test_devices_that_disappear_are_marked_gone(host, settings):
    settings.DECLARED_DEVICES = "cuda:1"
    devices.sync_inventory()
    assert not Device.objects.get(kind="cuda", index=1).present
    assert not Device.objects.get(kind="xpu", index=0).present


def test_resources_page_shows_devices_and_holders(host, make_user):
    from django.test import Client

    devices.acquire(package(kind="cuda", count=1), "job", 7, label="job train-resnet")
    web = Client()
    web.force_login(make_user())
    page = web.get("/resources/").content.decode()
    assert "cuda:0" in page and "job train-resnet" in page and "xpu:0" in page
    assert "CPU Instance_8 Core_32GB Memory" in page
    assert f"of {host.memory_mb // 1024}" in page.replace("\xa0", " ")  # memory shown in GB


def test_devices_api_lists_holders(host, make_user, api_client_for):
    devices.acquire(package(kind="xpu", count=1), "notebook", 9)
    listed = api_client_for(make_user()).get("/api/v1/devices/").json()["results"]
    held = {(d["kind"], d["index"]): d["held_by"] for d in listed}
    assert held == {("cuda", 0): None, ("cuda", 1): None, ("xpu", 0): "notebook:9"}


def test_resource_packages_api_filters_by_module(db, make_user, api_client_for):
    client = api_client_for(make_user())
    listed = client.get("/api/v1/resource-packages/", {"module": "prediction"}).json()["results"]
    assert listed and {p["module"] for p in listed} == {"prediction"}
