"""Reading and checking the training photos of an AutoDL job (the spec's "AutoDL Job":
Image Sorting - Transfer Learning and Image Sorting - ENAS). No Django import.

Run inside the job's workspace, before any training:

    python -m workers.runners.autodl_data --method transfer|enas --input PATH --dest DIR \\
        --report report.json

The input is one .zip package, or a folder whose .zip packages are all used (no
subfolders; only the first 10 by name, as the spec says). Inside a package there is one
folder per class, holding that class's photos; classes of the same name in several
packages are merged. Packages are extracted safely (workers/runners/autodl_archive.py) into
DIR, each photo is decoded, and the spec's rules are applied:

    per photo (the photo is refused, the rest go on):
        jpg, jpeg or png; decodes as JPEG or PNG within a pixel limit; for ENAS also
        100 KB <= file size <= 3 MB, length-width ratio within 3:1, longest side < 4096 px,
        shortest side > 30 px
    per class and per data set (hard errors: the job fails before training):
        class names of letters, digits and "_" only; 2 <= classes <= 200; at least 20
        (transfer learning) or 50 (ENAS) photos in each class; at most 100,000 photos

The report (`check_training_data(...).report`, written by `write_report`) lists the kept
photos per class, every refused file with the rule it broke, the hard errors, warnings
(class balance, the same photo in two classes, packages past the tenth) and duplicates.
The same file twice in one class is kept once: a copy teaches the model nothing new and
only tilts the class's weight.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from workers.runners.autodl_archive import (
    ArchiveError,
    ArchiveLimits,
    ExpansionBudget,
    ExtractedFile,
    Refusal,
    ScreenedMember,
    extract_member,
    open_archive,
    screen_members,
)
from workers.runners.autodl_rules import (
    METHODS,
    DataRules,
    balance_warning,
    class_rule_errors,
    photo_refusal,
    rules_for,
)

# Lists in the report stop here (their full counts are kept): a 100,000-photo data set with
# one systematic mistake must not produce a report bigger than the data.
REPORT_LIST_CAP = 1000


@dataclass(frozen=True)
class Sample:
    path: Path
    class_name: str
    archive: str
    member: str
    sha256: str


@dataclass
class DataCheck:
    report: dict
    samples: list[Sample]

    @property
    def ok(self) -> bool:
        return not self.report["errors"]

    def labelled_paths(self) -> list[tuple[Path, str]]:
        """(photo path, class name) pairs, what a trainer reads."""
        return [(sample.path, sample.class_name) for sample in self.samples]


@dataclass
class _Findings:
    refused: list[Refusal] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    classes: set[str] = field(default_factory=set)
    samples: list[Sample] = field(default_factory=list)
    archives: list[dict] = field(default_factory=list)
    archives_ignored: list[str] = field(default_factory=list)

    def error(self, rule: str, message: str) -> None:
        self.errors.append({"rule": rule, "message": message})

    def warn(self, rule: str, message: str) -> None:
        self.warnings.append({"rule": rule, "message": message})


def check_training_data(
    input_path: Path | str,
    dest: Path | str,
    method: str = "transfer",
    *,
    rules: DataRules | None = None,
    limits: ArchiveLimits | None = None,
) -> DataCheck:
    """Extract and check a job's training photos into dest (created; must be empty). Never
    raises for bad data: everything wrong with it is in the report (`DataCheck.ok` is False
    when a hard rule is broken). Raises ValueError for a non-empty dest or an unknown
    method."""
    rules = rules or rules_for(method)
    limits = limits or ArchiveLimits()
    dest = _empty_folder(Path(dest))
    findings = _Findings()
    try:
        archives = _training_archives(Path(input_path), rules.max_archives, findings)
    except ArchiveError as exc:
        findings.error(exc.rule, exc.message)
        archives = []
    budget = ExpansionBudget(limits.max_total_bytes)
    for number, archive_path in enumerate(archives):
        try:
            _read_archive(archive_path, number, dest, rules, limits, budget, findings)
        except ArchiveError as exc:
            findings.error(exc.rule, exc.message)
            if exc.rule == "expansion_total":
                break
    duplicates = _drop_duplicates(findings)
    cross_class = _cross_class_duplicates(findings)
    _check_class_rules(rules, findings)
    return DataCheck(_report(rules, limits, findings, duplicates, cross_class), findings.samples)


def _empty_folder(dest: Path) -> Path:
    """dest holds what we extract and nothing else: the trainer reads it as it is, and
    extraction never overwrites a file. We do not empty it ourselves: a mistyped --dest must
    not cost anyone their files."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"the extraction folder {dest} is not empty")
    return dest


def _training_archives(input_path: Path, max_archives: int, findings: _Findings) -> list[Path]:
    """The spec: a zip means that zip; a folder means its zips, no subfolders, the first 10.
    Symlinks are skipped: staged data never holds them, and one could point anywhere."""
    if input_path.is_file() and not input_path.is_symlink():
        if input_path.suffix.lower() != ".zip":
            raise ArchiveError("input", f"{input_path.name}: only zip packages are supported")
        return [input_path]
    if not input_path.is_dir():
        raise ArchiveError(
            "input", f"the training data path {input_path} is neither a zip package nor a folder"
        )
    zips = sorted(
        (
            path
            for path in input_path.iterdir()
            if path.suffix.lower() == ".zip" and path.is_file() and not path.is_symlink()
        ),
        key=lambda path: path.name,
    )
    if not zips:
        raise ArchiveError("input", f"the folder {input_path.name} holds no .zip package")
    findings.archives_ignored = [path.name for path in zips[max_archives:]]
    if findings.archives_ignored:
        findings.warn(
            "max_archives",
            f"only the first {max_archives} zip packages are used; ignored: "
            + ", ".join(findings.archives_ignored),
        )
    return zips[:max_archives]


def _read_archive(
    archive_path: Path,
    number: int,
    dest: Path,
    rules: DataRules,
    limits: ArchiveLimits,
    budget: ExpansionBudget,
    findings: _Findings,
) -> None:
    name = archive_path.name
    kept_before = len(findings.samples)
    with open_archive(archive_path, limits) as archive:
        screened, refused = screen_members(archive, name, limits)
        findings.refused.extend(refused)
        placed, misplaced = _assign_classes(screened, name)
        findings.refused.extend(misplaced)
        for index, (member, class_name) in enumerate(placed):
            findings.classes.add(class_name)
            suffix = PurePosixPath(member.parts[-1]).suffix.lower()
            # Never the entry's own name on disk: names are the user's, paths are ours.
            target = f"{number:02d}/{index:06d}{suffix}"
            extracted = extract_member(archive, name, member, dest, target, budget)
            if isinstance(extracted, Refusal):
                findings.refused.append(extracted)
                continue
            _keep_if_good_photo(extracted, class_name, rules, findings)
    findings.archives.append({"name": name, "photos": len(findings.samples) - kept_before})


def _assign_classes(
    members: list[ScreenedMember], archive_name: str
) -> tuple[list[tuple[ScreenedMember, str]], list[Refusal]]:
    """One folder per class. The spec wants the class folders zipped; zipping their parent
    folder instead (what "Compress" on a folder does) is tolerated: when every photo sits
    under one common top folder and some sit two folders deep, that top folder is a wrapper."""
    skip = 1 if _has_wrapper_folder(members) else 0
    placed, refused = [], []
    for member in members:
        parts = member.parts[skip:]
        if len(parts) == 1:
            refused.append(
                Refusal(
                    archive_name,
                    member.name,
                    "not_in_class_folder",
                    "photos must sit in a folder named after their class",
                )
            )
        elif len(parts) > 2:
            refused.append(
                Refusal(
                    archive_name,
                    member.name,
                    "nested_folder",
                    "class folders may not hold subfolders; photos go directly inside",
                )
            )
        else:
            placed.append((member, parts[0]))
    return placed, refused


def _has_wrapper_folder(members: list[ScreenedMember]) -> bool:
    if not members:
        return False
    tops = {member.parts[0] for member in members}
    return len(tops) == 1 and any(len(member.parts) >= 3 for member in members)


def _keep_if_good_photo(
    extracted: ExtractedFile, class_name: str, rules: DataRules, findings: _Findings
) -> None:
    broken = photo_refusal(extracted.path, extracted.size, rules)
    if broken:
        # Only kept photos stay in dest, so it can be handed to a trainer as it is.
        extracted.path.unlink(missing_ok=True)
        findings.refused.append(Refusal(extracted.archive, extracted.member, *broken))
        return
    findings.samples.append(
        Sample(extracted.path, class_name, extracted.archive, extracted.member, extracted.sha256)
    )


def _drop_duplicates(findings: _Findings) -> list[dict]:
    """The same file twice in one class: the first copy stays, the others go."""
    first_of: dict[tuple[str, str], Sample] = {}
    copies: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    kept = []
    for sample in findings.samples:
        key = (sample.class_name, sample.sha256)
        if key in first_of:
            copies[key].append(sample)
            sample.path.unlink(missing_ok=True)
        else:
            first_of[key] = sample
            kept.append(sample)
    findings.samples = kept
    return [
        {
            "class": class_name,
            "sha256": digest,
            "kept": _where(first_of[(class_name, digest)]),
            "dropped": [_where(sample) for sample in dropped],
        }
        for (class_name, digest), dropped in copies.items()
    ]


def _cross_class_duplicates(findings: _Findings) -> list[dict]:
    """The same photo in two classes: a label is wrong, but we cannot tell which, so both
    stay and the user is warned."""
    by_digest: dict[str, list[Sample]] = defaultdict(list)
    for sample in findings.samples:
        by_digest[sample.sha256].append(sample)
    shared = [
        {
            "sha256": digest,
            "files": [{"class": s.class_name, **_where(s)} for s in samples],
        }
        for digest, samples in by_digest.items()
        if len({sample.class_name for sample in samples}) > 1
    ]
    if shared:
        findings.warn(
            "same_image_in_two_classes",
            f"{len(shared)} photo(s) appear in more than one class; check their labels",
        )
    return shared


def _where(sample: Sample) -> dict:
    return {"archive": sample.archive, "member": sample.member}


def _check_class_rules(rules: DataRules, findings: _Findings) -> None:
    counts = _class_counts(findings)
    findings.errors.extend(class_rule_errors(counts, rules))
    warning = balance_warning(counts, rules)
    if warning:
        findings.warnings.append(warning)


def _class_counts(findings: _Findings) -> Counter:
    counts = Counter({name: 0 for name in findings.classes})
    counts.update(sample.class_name for sample in findings.samples)
    return counts


def _report(
    rules: DataRules,
    limits: ArchiveLimits,
    findings: _Findings,
    duplicates: list[dict],
    cross_class: list[dict],
) -> dict:
    counts = _class_counts(findings)
    return {
        "method": rules.method,
        "ok": not findings.errors,
        "classes": dict(sorted(counts.items())),
        "total_photos": sum(counts.values()),
        "archives": findings.archives,
        "archives_ignored": findings.archives_ignored,
        "errors": findings.errors[:REPORT_LIST_CAP],
        "warnings": findings.warnings,
        "refused_count": len(findings.refused),
        "refused_by_rule": dict(Counter(refusal.rule for refusal in findings.refused)),
        "refused": [refusal.as_dict() for refusal in findings.refused[:REPORT_LIST_CAP]],
        "duplicates": duplicates[:REPORT_LIST_CAP],
        "cross_class_duplicates": cross_class[:REPORT_LIST_CAP],
        "rules": asdict(rules),
        "archive_limits": asdict(limits),
    }


def write_report(report: dict, path: Path | str) -> None:
    Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--input", required=True, type=Path, help="a .zip or a folder of them")
    parser.add_argument("--dest", required=True, type=Path, help="folder to extract into")
    parser.add_argument("--report", required=True, type=Path, help="where to write the report")
    args = parser.parse_args(argv)
    try:
        check = check_training_data(args.input, args.dest, args.method)
    except ValueError as exc:
        parser.error(str(exc))
    write_report(check.report, args.report)
    for warning in check.report["warnings"]:
        print(f"warning ({warning['rule']}): {warning['message']}", file=sys.stderr)
    for error in check.report["errors"]:
        print(f"error ({error['rule']}): {error['message']}", file=sys.stderr)
    report = check.report
    print(
        f"{report['total_photos']} photos in {len(report['classes'])} classes kept, "
        f"{report['refused_count']} files refused"
    )
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
