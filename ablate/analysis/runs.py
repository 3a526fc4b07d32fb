"""Analyses of finished MLflow runs: reload a trial's network from its checkpoint
artifact, probe it or compare it with another, and log what comes out back to the run.

What lands on the analysed run (steps are representation indices, the last = output):
  probes → metric probe_acc; artifacts analysis/probe_acc.{npy,csv,png}, probe.json
  CKA    → metric cka_to_ref (same-layer CKA, reference of the same depth only);
           artifacts analysis/cka_to_ref.{npy,csv,json}, _heatmap.png, _same_layer.png
  tags   ablate.analysis = done, ablate.analysis.reference_run, ....
`ablate analyze cka A B` writes the same files under analysis/cka_vs_<B's run id>/
without metrics (a run can be compared with many others; its reference is one).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import tracking
from ..config import TrainConfig
from ..data import DataBundle
from ..engine import network_from_config, select_device
from ..errors import UserInputError
from ..spec.analysis import AnalysisSettings, CKASettings, ProbeSettings
from ..tracking import RunRecord, names
from .artifacts import write_probes, write_similarity
from .features import analysis_data, take
from .probe import ProbeResult, probe_layers
from .similarity import Similarity, layer_similarity

ANALYSIS_DIR = names.ANALYSIS_DIR


class AnalysisError(UserInputError):
    """Runs that cannot be analysed as asked."""


@dataclass
class LoadedRun:
    record: RunRecord
    config: TrainConfig
    net: torch.nn.Module

    @property
    def label(self) -> str:
        return self.record.label


@dataclass
class RunAnalysis:
    """What one analysis of one run found, and the files it wrote."""

    run_id: str
    probes: ProbeResult | None = None
    similarity: Similarity | None = None
    files: list[Path] = field(default_factory=list)


def load_run(tracking_uri: str, run_id: str, data: DataBundle | None = None) -> tuple[LoadedRun, DataBundle]:
    """A run's trained network in eval mode on the CPU, and its data (un-augmented)."""
    record = tracking.run_record(tracking_uri, run_id)
    checkpoint = tracking.load_checkpoint(tracking_uri, run_id)
    config = TrainConfig(**checkpoint["config"])
    data = data or analysis_data(config)
    net = network_from_config(config, data.info)
    net.load_state_dict(checkpoint["model"])
    return LoadedRun(record, config, net.eval()), data


def analyse_run(tracking_uri: str, run_id: str, settings: AnalysisSettings, *, reference_run_id: str | None = None,
                device: str = "auto", out_dir: Path | None = None) -> RunAnalysis:
    """The study analysis of one finished trial run: probes (if asked) and CKA to its
    reference run (if asked and given), logged to the run; files also kept in `out_dir`."""
    run, data = load_run(tracking_uri, run_id)
    target = select_device(device)
    result = RunAnalysis(run_id)
    series, tags = {}, {}
    with _folder(out_dir) as folder:
        if settings.probes is not None:
            result.probes = _probes(run, data, settings.probes, target)
            result.files += write_probes(result.probes, folder, label=run.label)
            series["probe_acc"] = result.probes.test_acc
            tags.update(_prefixed("probe", result.probes.record()))
        if settings.cka is not None and reference_run_id is not None:
            reference, _ = load_run(tracking_uri, reference_run_id, data)
            result.similarity = _similarity(run, reference, data, settings.cka, target)
            result.files += write_similarity(result.similarity, folder, label_a=run.label,
                                             label_b=f"reference ({reference.label})", stem="cka_to_ref")
            if len(result.similarity.names_a) == len(result.similarity.names_b):
                series["cka_to_ref"] = result.similarity.diagonal()
            tags.update(_prefixed("cka", result.similarity.record()))
            tags[names.ANALYSIS_REFERENCE] = reference_run_id
        tracking.log_analysis(tracking_uri, run_id, series=series, files=result.files, artifact_path=ANALYSIS_DIR,
                              tags={**tags, names.ANALYSIS: "done"})
    return result


def compare_runs(tracking_uri: str, run_a: str, run_b: str, settings: CKASettings, *, device: str = "auto",
                 out_dir: Path | None = None) -> RunAnalysis:
    """`ablate analyze cka A B`: layer × layer CKA of two finished runs, logged to A."""
    first, data = load_run(tracking_uri, run_a)
    second, _ = load_run(tracking_uri, run_b, _same_data(first, tracking_uri, run_b, data))
    result = RunAnalysis(run_a, similarity=_similarity(first, second, data, settings, select_device(device)))
    with _folder(out_dir) as folder:
        result.files = write_similarity(result.similarity, folder / f"cka_vs_{run_b}", label_a=first.label,
                                        label_b=second.label, stem="cka")
        tracking.log_analysis(tracking_uri, run_a, series={}, files=result.files,
                              artifact_path=f"{ANALYSIS_DIR}/cka_vs_{run_b}", tags={})
    return result


def probe_run(tracking_uri: str, run_id: str, settings: ProbeSettings, *, device: str = "auto",
              out_dir: Path | None = None) -> RunAnalysis:
    """`ablate analyze probe RUN`: the probes of a study analysis, for one run."""
    return analyse_run(tracking_uri, run_id, AnalysisSettings(probes=settings), device=device, out_dir=out_dir)


def _probes(run: LoadedRun, data: DataBundle, settings: ProbeSettings, device) -> ProbeResult:
    train = take(data.train, settings.train_examples, "train")
    return probe_layers(run.net.to(device), train, take(data.val, None, "val"),
                        take(data.test, settings.test_examples, "test"),
                        reduction=settings.reduction, batch_size=settings.batch_size, device=device)


def _similarity(run: LoadedRun, other: LoadedRun, data: DataBundle, settings: CKASettings, device) -> Similarity:
    samples = take(data.test, settings.samples, "test")
    return layer_similarity(run.net.to(device), other.net.to(device), samples, reduction=settings.reduction,
                            estimator=settings.estimator, batch_size=settings.batch_size, device=device)


def _same_data(first: LoadedRun, tracking_uri: str, run_b: str, data: DataBundle) -> DataBundle:
    params = tracking.run_record(tracking_uri, run_b).params
    if params.get("dataset") != first.config.dataset:
        raise AnalysisError(f"run {first.record.run_id} trained on {first.config.dataset} and run {run_b} on "
                            f"{params.get('dataset')}; CKA compares two networks on the same examples")
    return data


def _prefixed(kind: str, record: dict) -> dict:
    return {names.analysis_setting(kind, key): value for key, value in record.items()}


@contextmanager
def _folder(out_dir: Path | None) -> Iterator[Path]:
    """`out_dir` when given (kept), else a temporary folder (removed after logging)."""
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        yield Path(out_dir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)
