import pytest

from apps.jobs.loganalysis import analyze
from apps.jobs.models import JobStatus
from tests.jobs.helpers import run_until, status_of, submit


@pytest.mark.parametrize(
    "log,expected",
    [
        ("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", "Out of memory"),
        ("ModuleNotFoundError: No module named 'transformers'", "module is missing"),
        (
            "FileNotFoundError: [Errno 2] No such file or directory: 'train_data/x.csv'",
            "data path is missing",
        ),
        ("all fine", ""),
    ],
)
def test_hints_for_the_common_causes(log, expected):
    hint = analyze(log)["hint"]
    assert (expected in hint) if expected else hint == ""


def test_the_last_traceback_is_extracted():
    log = (
        'step 1\nTraceback (most recent call last):\n  File "a.py", line 1, in <module>\n'
        "    x()\nNameError: name 'x' is not defined\nafter\n"
    )
    assert analyze(log)["traceback"].endswith("NameError: name 'x' is not defined")


def test_a_failed_job_shows_the_hint_in_its_logs(owner, project, api_client_for):
    job = submit(owner, project, "import not_installed_anywhere_xyz")
    run_until(lambda: status_of(job) == JobStatus.FAILED, "job end")
    [log] = api_client_for(owner).get(f"/api/v1/jobs/{job.job_id}/logs/").json()
    assert "module is missing" in log["analysis"]["hint"]
    assert "ModuleNotFoundError" in log["analysis"]["traceback"]
