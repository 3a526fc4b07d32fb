"""Analyses inside a study and on demand, on a tiny study trained here: deferred until the
reference finishes, logged to MLflow, `ablate analyze`, report figures, and the notebooks
executed end to end."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ablate import tracking
from ablate.report import render, study_report
from ablate.cli import main
from ablate.spec import load_study
from ablate.study import run_study
from ablate.study.analyses import analyse_ready
from ablate.study.session import Session
from ablate.study.storage import resolve_storage

NOTEBOOKS = Path(__file__).resolve().parent.parent / "analysis"

STUDY = """\
name: tiny
settings: {dataset: digits, model: resnet20, width: 0.25, aux_depth: 1, decay: constant,
           epochs: 2, batch_size: 64, device: cpu}
grid:
  rule: [auglocal, bp]       # the reference trains second: auglocal's CKA must wait for it
seeds: [0]
analysis:
  probes: {train_examples: 300}
  cka: {reference: {rule: bp}, samples: 200, batch_size: 100}
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study after its first trial (auglocal) only, then after `ablate run` ends."""
    path = tmp_path_factory.mktemp("analysis") / "tiny.yaml"
    path.write_text(STUDY)
    spec = load_study(path)
    uri = tracking.resolve_tracking_uri(spec)
    session = Session(spec, resolve_storage(spec), uri)
    session.enqueue_missing()
    session._next_grid_trial(lambda outcome: None)
    analyse_ready(spec, uri, lambda text: None)
    early = {run.factors["rule"]: run for run in tracking.finished_trial_runs(uri, spec.experiment)}
    run_study(spec, progress=False, echo=lambda text: None)
    runs = {run.factors["rule"]: run for run in tracking.finished_trial_runs(uri, spec.experiment)}
    return spec, uri, early, runs


def test_an_analysis_waits_for_its_reference_and_runs_when_it_finishes(study):
    spec, uri, early, runs = study
    bp_key = spec.references[runs["auglocal"].trial_key].key
    assert list(early) == ["auglocal"]
    assert early["auglocal"].tags["ablate.analysis"] == f"waiting for reference {bp_key}"
    assert runs["auglocal"].tags["ablate.analysis"] == "done"
    assert runs["auglocal"].tags["ablate.analysis.reference_run"] == runs["bp"].run_id


def test_probe_and_cka_curves_are_logged_per_layer_with_how_they_were_made(study):
    spec, uri, _, runs = study
    probes = tracking.metric_history(uri, runs["auglocal"].run_id, "probe_acc")
    cka = tracking.metric_history(uri, runs["auglocal"].run_id, "cka_to_ref")
    assert [step for step, _ in probes] == [step for step, _ in cka] == list(range(11))  # 10 layers + output
    assert all(0 <= value <= 1 for _, value in probes)
    assert all(-0.1 <= value <= 1.0 + 1e-9 for _, value in cka) and cka[0][1] > cka[-2][1]
    tags = runs["auglocal"].tags
    assert (tags["ablate.analysis.cka.estimator"], tags["ablate.analysis.cka.examples"],
            tags["ablate.analysis.cka.reduction"]) == ("minibatch", "200", "flatten")
    assert tags["ablate.analysis.probe.reduction"] == "gap"
    # the reference is not compared with itself, but is probed
    assert "cka_to_ref" not in runs["bp"].metrics and "probe_acc" in runs["bp"].metrics


def test_analysis_files_are_run_artifacts(study, tmp_path):
    _, uri, _, runs = study
    folder = tracking.download_artifacts(uri, runs["auglocal"].run_id, "analysis", tmp_path)
    names = {p.name for p in folder.iterdir()}
    assert {"probe_acc.npy", "probe_acc.csv", "probe_acc.png", "probe.json", "cka_to_ref.npy", "cka_to_ref.csv",
            "cka_to_ref.json", "cka_to_ref_heatmap.png", "cka_to_ref_same_layer.png"} <= names
    header = (folder / "cka_to_ref.csv").read_text().splitlines()[0]
    assert header.endswith("layer 9,output") and header.count(",") == 11


def test_running_a_finished_study_again_does_not_repeat_its_analyses(study):
    spec, uri, _, runs = study
    assert analyse_ready(spec, uri, lambda text: None) == 0


def test_analyze_cka_by_study_cell_and_probe_by_run_id(study, tmp_path, capsys):
    spec, uri, _, runs = study
    code = main(["analyze", "cka", "rule=auglocal", "rule=bp", "--study", str(spec.path), "--samples", "100",
                 "--estimator", "debiased", "--out", str(tmp_path / "cka")])
    out = capsys.readouterr().out
    assert code == 0 and "linear CKA (debiased, n=100, flatten)" in out and "same layer: 0:" in out
    assert (tmp_path / "cka" / f"cka_vs_{runs['bp'].run_id}" / "cka_heatmap.png").exists()
    code = main(["analyze", "probe", runs["bp"].run_id, "--tracking-uri", uri, "--train-examples", "200",
                 "--reduction", "pool2"])
    out = capsys.readouterr().out
    assert code == 0 and "linear probes of run" in out and "(pool2;" in out and "output" in out


@pytest.mark.parametrize("args, message", [
    (["analyze", "probe", "rule=sgd", "--study"], "matches no cell"),
    (["analyze", "probe", "0" * 32, "--tracking-uri"], "no MLflow run"),
    (["analyze", "probe", "0" * 32], "needs --tracking-uri"),
    (["analyze", "cka", "rule=bp", "rule=auglocal", "--reduction", "pool0", "--study"], "--reduction"),
])
def test_analyze_mistakes_are_one_line_exit_2(study, capsys, args, message):
    spec, uri, _, _ = study
    if args[-1] == "--study":
        args = args + [str(spec.path)]
    elif args[-1] == "--tracking-uri":
        args = args + [uri]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_report_draws_per_layer_curves_for_each_cell(study, tmp_path):
    spec, uri, _, _ = study
    report = study_report(spec, out_dir=tmp_path)
    names = {p.name for p in report.files}
    assert {"probe_accuracy_per_layer.png", "cka_to_reference_per_layer.png", "layer_curves.csv"} <= names
    assert "![tiny: linear probe test accuracy](probe_accuracy_per_layer.png)" in render(report, "markdown")
    rows = (tmp_path / "layer_curves.csv").read_text().splitlines()
    assert len([r for r in rows if ",probe_acc," in r]) == 22 and len([r for r in rows if ",cka_to_ref," in r]) == 11


@pytest.mark.parametrize("name", ["cka_analysis.ipynb", "linear_probes.ipynb"])
def test_the_notebooks_run_end_to_end_on_a_study(study, name, monkeypatch):
    spec, uri, _, _ = study
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")  # stored clean
    # relative to where Jupyter was started ($PWD), not to the notebook's folder
    monkeypatch.setenv("PWD", str(spec.path.parent.parent))
    monkeypatch.setenv("ABLATE_STUDY", f"{spec.path.parent.name}/{spec.path.name}")
    monkeypatch.setenv("ABLATE_TRACKING_URI", uri)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    printed = "".join(output.get("text", "") for output in outputs)
    assert "study tiny: 2 finished trials" in printed
    assert [o for o in outputs if o.get("name") == "stderr"] == []  # no warning boxes


def test_status_counts_the_analyses(study, capsys):
    spec, _, _, _ = study
    assert main(["status", str(spec.path)]) == 0
    assert "analyses of finished trials: 2 done" in capsys.readouterr().out
