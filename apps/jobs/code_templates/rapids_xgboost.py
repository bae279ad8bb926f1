"""RAPIDS-cuML: XGBoost and KMeans on the GPU with cuML/cuDF, or on the CPU with
scikit-learn and XGBoost where cuML is not installed (the same code runs on both).

Data: CSV files in train_data/ (feature columns, the 0/1 label last) when the job has a
training data path, otherwise the breast cancer data bundled with scikit-learn. Curves go
to the job page with bml.report; the models are saved to output/ with pickle and joblib
(the spec's format: load them back with pickle.load / joblib.load).
"""

import glob
import json
import os
import pickle

import bml
import joblib
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

try:  # cuML on a GPU host that has RAPIDS installed
    from cuml.cluster import KMeans

    DEVICE = "cuda"
except ImportError:
    from sklearn.cluster import KMeans

    DEVICE = "cpu"
print(f"running on {DEVICE} ({'cuML' if DEVICE == 'cuda' else 'scikit-learn'})", flush=True)

files = sorted(glob.glob("train_data/**/*.csv", recursive=True))
if files:
    table = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    x, y = table[:, :-1], table[:, -1].astype(int)
else:
    x, y = load_breast_cancer(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)

threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
model = xgb.XGBClassifier(
    n_estimators=60, max_depth=4, learning_rate=0.2, device=DEVICE, n_jobs=threads
)
model.fit(x_train, y_train, eval_set=[(x_test, y_test)], verbose=False)
for step, loss in enumerate(model.evals_result()["validation_0"]["logloss"], start=1):
    bml.report(step=step, loss=loss)
accuracy = float((model.predict(x_test) == y_test).mean())
print(f"xgboost accuracy {accuracy:.3f}", flush=True)

clusters = KMeans(n_clusters=2, random_state=0, n_init=10).fit(x_train)
print(f"kmeans inertia {float(clusters.inertia_):.1f}", flush=True)

os.makedirs("output", exist_ok=True)
with open("output/xgboost.pkl", "wb") as fh:
    pickle.dump(model, fh)
joblib.dump(clusters, "output/kmeans.joblib")
with open("output/metrics.json", "w") as fh:
    json.dump({"accuracy": accuracy, "device": DEVICE}, fh)
print("saved output/xgboost.pkl and output/kmeans.joblib", flush=True)
