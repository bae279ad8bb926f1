"""Log analysis of a failed run: the last traceback, and a hint for the common causes."""

import re

HINTS = [
    (
        re.compile(
            r"(CUDA out of memory|OutOfMemoryError|MemoryError|Killed\b|"
            r"ResourceExhaustedError|out of memory)",
            re.I,
        ),
        "Out of memory: use a smaller batch size or model, or a resource package with more "
        "memory (GPU memory for CUDA errors).",
    ),
    (
        re.compile(r"(ModuleNotFoundError|ImportError): No module named '?([\w.]+)"),
        "A module is missing: install it at the top of your code "
        "(`subprocess.run([sys.executable, '-m', 'pip', 'install', 'NAME'])`; it goes to the "
        "job's own environment) or pick the framework that provides it.",
    ),
    (
        re.compile(r"(FileNotFoundError|No such file or directory|holds no files)"),
        "A file or data path is missing: check the training/test data paths (their files land in "
        "train_data/ and test_data/ of the working directory) and the paths your code opens.",
    ),
    (
        re.compile(r"maximum running time"),
        "The job ran past its maximum running time: raise the limit or train for fewer steps.",
    ),
]
TRACEBACK = re.compile(r"Traceback \(most recent call last\):\n(?:[ \t].*\n|\n)*?\S.*", re.M)


def analyze(log_text: str, reason: str = "") -> dict:
    tracebacks = TRACEBACK.findall(log_text)
    haystack = log_text + "\n" + reason
    hint = next((text for pattern, text in HINTS if pattern.search(haystack)), "")
    return {"traceback": tracebacks[-1] if tracebacks else "", "hint": hint}
