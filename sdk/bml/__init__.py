"""The `bml` SDK: used from notebooks, jobs and users' own scripts.

    from bml import storage
    storage.download("bos://my-bucket/data/", "data/")
    storage.upload("model/", "bos://my-bucket/output/model/")
    storage.list("bos://my-bucket/data/")
    bml.report(step=10, loss=0.31, acc=0.9)   # curves on the job's page

Credentials come from the environment a run is given (BML_S3_ENDPOINT, BML_S3_ACCESS_KEY,
BML_S3_SECRET_KEY, BML_S3_SECURE) or from `storage.configure(...)`.
"""

from bml import api, storage
from bml.metrics import report

__all__ = ["api", "report", "storage"]
