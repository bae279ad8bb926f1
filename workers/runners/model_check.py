"""Validate a model import by loading it: the warehouse runs this as a subprocess with a time
limit and a minimal environment. No Django import.

    python -m workers.runners.model_check --type T --path P [--fields JSON]
        [--sample JSON | --sample-file FILE]

Loads the model with model_loaders.load(T, P, fields) and, with --sample (a JSON list of
instances) or --sample-file (the same in a file: one command line argument holds at most
128 KiB, less than one base64 photo), predicts on it. Prints ONE JSON line to stdout and
nothing else:

    {"ok": true, "info": {...}, "sample_output": [...] | null}                      exit 0
    {"ok": false, "stage": "arguments" | "load" | "predict", "bad_input": bool,
     "error": "<one paragraph>"}                                                       exit 1

info is the predictor's info plus max_rss_mb (the process's peak resident memory, VmHWM: not
ru_maxrss, which Linux carries over from the process that started this one) and, with a
sample, predict_seconds. On failure the traceback goes to stderr. Whatever the frameworks
print while loading goes to stderr too, so stdout holds only the result line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback

from workers.runners.model_loaders import BadInput, ModelLoadError, error_text, load


def peak_rss_mb() -> float:
    """This process's peak resident memory. Not ru_maxrss: execve() keeps the peak of the
    memory it replaces, so a check started by a big process (the web process, a test run)
    would report that process's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.runners.model_check")
    parser.add_argument("--type", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--fields", default="{}")
    samples = parser.add_mutually_exclusive_group()
    samples.add_argument("--sample", default=None)
    samples.add_argument("--sample-file", default=None)
    args = parser.parse_args(argv)

    # Frameworks print to fd 1 (C++ included): send it to stderr until the result is written.
    stdout_fd = os.dup(1)
    sys.stdout.flush()
    os.dup2(2, 1)
    stage, result = "arguments", None
    try:
        fields = json.loads(args.fields)
        if not isinstance(fields, dict):
            raise ModelLoadError("--fields must be a JSON object")
        sample = None if args.sample is None else json.loads(args.sample)
        if args.sample_file is not None:
            with open(args.sample_file, encoding="utf-8") as file:
                sample = json.load(file)
        stage = "load"
        predictor = load(args.type, args.path, fields)
        info, output = dict(predictor.info), None
        if sample is not None:
            stage = "predict"
            started = time.monotonic()
            output = predictor.predict(sample)
            info["predict_seconds"] = round(time.monotonic() - started, 3)
            json.dumps(output, allow_nan=False)  # the service must be able to send it
        info["max_rss_mb"] = peak_rss_mb()
        result = {"ok": True, "info": info, "sample_output": output}
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        result = {
            "ok": False,
            "stage": stage,
            "bad_input": isinstance(exc, BadInput),
            "error": error_text(exc),
        }
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(stdout_fd, 1)
    os.close(stdout_fd)
    print(json.dumps(result, default=str), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # skip the interpreter's teardown: some frameworks crash in it
