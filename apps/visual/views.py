"""Visual modeling. For now only the spike of the graph editor (issue 20): a palette of sample
components dragged onto a Drawflow canvas, connected port to port, the graph exported as
JSON. The canvas with real components and runs is its own issue."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_safe

# name, label, input ports, output ports: the spec's simplest pipeline.
SPIKE_COMPONENTS = [
    {"name": "dataset", "label": "Data set", "inputs": 0, "outputs": 1},
    {"name": "split", "label": "Split", "inputs": 1, "outputs": 2},
    {"name": "logistic_regression", "label": "Logistic regression", "inputs": 1, "outputs": 1},
]


@login_required
@require_safe
def spike(request):
    return render(request, "visual/spike.html", {"components": SPIKE_COMPONENTS})
