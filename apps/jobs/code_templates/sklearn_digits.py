"""scikit-learn: a random forest learns to read handwritten digits.

Data: CSV files in train_data/ (feature columns, the class label last) when the job has a
training data path, otherwise the 8x8 digits bundled with scikit-learn (no download).
The accuracy as the forest grows goes to the job page with bml.report; the model is saved
to output/ with joblib, which the platform uploads when the job succeeds.
"""

import glob
import json
import os

import bml
import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

files = sorted(glob.glob("train_data/**/*.csv", recursive=True))
if files:
    table = np.concatenate([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    x, y = table[:, :-1], table[:, -1].astype(int)
else:
    x, y = load_digits(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
print(f"{len(x_train)} training and {len(x_test)} test samples", flush=True)

threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
model = RandomForestClassifier(n_estimators=0, warm_start=True, random_state=0, n_jobs=threads)
for trees in range(10, 101, 10):  # grow the forest and watch the accuracy
    model.n_estimators = trees
    model.fit(x_train, y_train)
    accuracy = model.score(x_test, y_test)
    bml.report(step=trees, acc=accuracy)
    print(f"{trees} trees: accuracy {accuracy:.3f}", flush=True)

os.makedirs("output", exist_ok=True)
joblib.dump(model, "output/model.joblib")
with open("output/metrics.json", "w") as fh:
    json.dump({"accuracy": accuracy, "trees": trees}, fh)
print("saved output/model.joblib", flush=True)
