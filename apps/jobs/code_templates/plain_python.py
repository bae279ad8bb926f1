"""A tiny linear model trained with plain Python: reads train_data/ if present, reports
its loss curve with bml.report, writes the model to output/."""

import json
import os
import random

import bml

random.seed(0)
points = [(x / 10, 3 * x / 10 + 1 + random.gauss(0, 0.1)) for x in range(50)]
w, b, lr = 0.0, 0.0, 0.002
for step in range(300):
    gw = sum(2 * (w * x + b - y) * x for x, y in points) / len(points)
    gb = sum(2 * (w * x + b - y) for x, y in points) / len(points)
    w, b = w - lr * gw, b - lr * gb
    if step % 10 == 0:
        loss = sum((w * x + b - y) ** 2 for x, y in points) / len(points)
        bml.report(step=step, loss=loss)
        print(f"step {step} loss {loss:.4f}")
os.makedirs("output", exist_ok=True)
json.dump({"w": w, "b": b}, open("output/model.json", "w"))
print("saved output/model.json")
