"""Visual modeling's components and the runner of one node (no Django import).

A component is one class in one file under `components/`, registered with
`@base.register`; `registry.load_all()` imports every file there, so adding a component is
adding a file. The same class serves both sides:

- the control plane (apps.visual) reads its ports and parameters for the palette and the
  settings tabs, and calls `check(params, input_schemas)` to validate a graph before it is
  saved or run: a wrong column type or a missing field is refused naming the node;
- the runner (`python -m workers.runners.visual.run --params node.json`) calls
  `run(params, inputs, context)` on the staged inputs and writes the outputs.
"""
