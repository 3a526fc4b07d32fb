"""What a study needs from the machine that runs it, checked before anything is created:
its devices exist here and its data is where the trials will read it. Loading a study
does not check these (a report is read anywhere); `validate` and `run` do."""

from __future__ import annotations

from pathlib import Path

from ..data import DATASETS
from ..devices import device_problem
from .study_spec import StudySpec
from .yaml_lines import SpecError


def check_runnable(spec: StudySpec) -> None:
    """SpecError, one line naming the key and the fix, when a trial of `spec` could not
    start on this machine."""
    configs = _configs(spec)
    for device in sorted({config["device"] for config in configs}):
        problem = device_problem(device)
        if problem is not None:
            raise SpecError(f"{problem} (--set device=cpu)", file=str(spec.path), key="device")
    wanted = {(c["dataset"], c["data_root"], c["download"]) for c in configs}
    for dataset, root, download in sorted(wanted, key=str):
        entry = DATASETS[dataset]
        if entry.missing is None or (download and entry.downloadable):
            continue
        problem = entry.missing(Path(root) if root is not None else None)
        if problem is not None:
            fixes = ["--set data_root=PATH to the folder that has them"]
            if entry.downloadable:
                fixes.append("--set download=true to fetch them")
            raise SpecError(f"{problem}; {' or '.join(fixes)}", file=str(spec.path),
                            key="data_root" if root is not None else "dataset")


def _configs(spec: StudySpec) -> list[dict]:
    """The flat settings of every trial; a search's fixed settings, with each dataset it samples."""
    if spec.search is None:
        return [trial.config.flat() for trial in spec.trials]
    base = spec.trial({}, spec.seeds[0]).config.flat()
    datasets = spec.search.params.get("dataset", {}).get("choices", [base["dataset"]])
    return [{**base, "dataset": dataset} for dataset in datasets]

