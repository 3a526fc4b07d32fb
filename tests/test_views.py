"""What a researcher sees of a study, checked through MLflow's and Optuna's Python APIs
(no browser): the experiment's kind and description, the study run's params, note and
files, one summary run per cell with the trial runs under it, params without the settings
a rule ignores, units in metric names, Optuna params with distributions and named metrics,
and the plain progress lines of a run without a terminal."""

import json
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution

from ablate.cli import main
from ablate.spec import load_study
from ablate.study import render_dry_run, resolve_storage, run_study
from ablate.study.estimate import estimate
from ablate.tracking import Tracker, default_tracking_uri, finished_trial_runs

SETTINGS = {"dataset": "digits", "model": "resnet20", "width": 0.25, "train_subset": 192, "batch_size": 96,
            "epochs": 2, "schedule": "constant", "decay": "constant", "device": "cpu"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """bp against auglocal at depths 1 and 2, two seeds: 3 cells, 6 one-minute-free trials."""
    folder = tmp_path_factory.mktemp("views")
    path = folder / "views.yaml"
    path.write_text("# What the views show: bp against AugLocal at two depths.\n" + yaml.safe_dump(
        {"name": "views", "settings": SETTINGS, "grid": {"rule": ["bp", "auglocal"], "aux_depth": [1, 2]},
         "seeds": [0, 1], "report": {"reference": {"rule": "bp"}}}, sort_keys=False))
    spec = load_study(path)
    uri = default_tracking_uri(folder / "mlflow")
    lines = []
    run_study(spec, tracking_uri=uri, progress=True, echo=lines.append)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(spec.experiment)
    runs = client.search_runs([experiment.experiment_id], "")
    by_role = {}
    for run in runs:
        by_role.setdefault(run.data.tags.get("ablate.role"), []).append(run)
    storage = resolve_storage(spec, None)
    optuna_study = optuna.load_study(study_name=spec.name, storage=storage)
    return {"spec": spec, "uri": uri, "lines": lines, "client": client, "experiment": experiment,
            "runs": by_role, "optuna": optuna_study}


def test_the_experiment_opens_on_training_runs_and_says_what_the_study_varies(study):
    tags = study["experiment"].tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    note = tags["mlflow.note.content"]
    assert "rule ∈ {bp, auglocal}" in note and "aux_depth ∈ {1, 2}" in note and "3 cells × 2 seeds" in note
    assert "bp against AugLocal at two depths" in note  # the study file's opening comment


def test_the_study_run_has_the_fixed_settings_a_note_and_the_study_files(study):
    (parent,) = study["runs"]["parent"]
    params = parent.data.params
    assert params["dataset"] == "digits" and params["epochs"] == "2" and params["seeds"] == "[0, 1]"
    assert "device" not in params  # how it ran is not what it trains
    assert "bp against AugLocal" in parent.data.tags["mlflow.note.content"]
    files = {f.path for folder in ("study",) for f in study["client"].list_artifacts(parent.info.run_id, folder)}
    assert files == {"study/views.yaml", "study/grid.yaml"}
    local = study["client"].download_artifacts(parent.info.run_id, "study/grid.yaml")
    grid = yaml.safe_load(Path(local).read_text())
    assert [c["name"] for c in grid["cells"]] == ["bp", "auglocal d=1", "auglocal d=2"]


def test_each_cell_has_one_summary_run_with_its_trials_under_it(study):
    parent = study["runs"]["parent"][0].info.run_id
    cells = {run.info.run_name: run for run in study["runs"]["cell"]}
    assert set(cells) == {"bp", "auglocal d=1", "auglocal d=2"}
    trials = study["runs"]["trial"]
    for run in cells.values():
        assert run.data.tags["mlflow.parentRunId"] == parent and run.info.status == "FINISHED"
        mine = [t for t in trials if t.data.tags["mlflow.parentRunId"] == run.info.run_id]
        assert sorted(t.info.run_name for t in mine) == [f"{run.info.run_name} · s0", f"{run.info.run_name} · s1"]
        metrics = run.data.metrics
        assert run.data.params == {k: str(v) for k, v in json.loads(run.data.tags["ablate.factors"]).items()}
        assert metrics["n"] == 2
        accuracies = [t.data.metrics["final_test_acc_pct"] for t in mine]
        assert metrics["final_test_acc_pct_mean"] == pytest.approx(sum(accuracies) / 2, abs=1e-3)
        assert metrics["final_test_acc_pct_std"] == pytest.approx(abs(accuracies[0] - accuracies[1]) / 2 ** 0.5,
                                                                  abs=1e-3)
        assert "final_test_acc_pct_ci95_low" not in metrics  # two seeds: no interval, as in the report
        for name in ("best_test_acc_pct_mean", "peak_memory_mib_max_mean", "time_per_epoch_s_mean", "aux_flops_mean"):
            assert name in metrics, name
        # the summary grew as each trial ended: n at step 1, then 2
        history = study["client"].get_metric_history(run.info.run_id, "n")
        assert sorted(m.step for m in history) == [1, 2]


def test_a_trial_logs_only_the_settings_that_shape_its_cell(study):
    trials = {run.info.run_name: run for run in study["runs"]["trial"]}
    bp, auglocal = trials["bp · s0"].data.params, trials["auglocal d=2 · s1"].data.params
    for ignored in ("aux_depth", "decay", "decay_coeff", "selection", "device"):
        assert ignored not in bp, ignored
    assert auglocal["aux_depth"] == "2" and auglocal["decay"] == "constant" and "device" not in auglocal
    assert trials["bp · s0"].data.tags["ablate.exec.device"] == "cpu"


def test_metrics_carry_their_unit_and_layers_are_not_called_steps(study):
    run = study["runs"]["trial"][0]
    metrics = run.data.metrics
    assert 0 <= metrics["final_test_acc_pct"] <= 100 and metrics["final_test_acc_pct"] > 1  # percent, not a fraction
    assert "peak_memory_mib_max" in metrics and not [k for k in metrics if k.endswith("_acc") or "_bytes" in k]
    # ablate reads its own units back, whatever the store holds
    records = finished_trial_runs(study["uri"], "views", "views")
    assert all(0 <= r.metrics["final_test_acc"] <= 1 for r in records)


def test_optuna_trials_carry_the_grid_as_params_and_the_study_names_its_metric(study):
    optuna_study = study["optuna"]
    assert optuna_study.metric_names and optuna_study.metric_names[0].startswith("best_val_acc")
    trials = optuna_study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 6
    mlflow_ids = {run.info.run_id for run in study["runs"]["trial"]}
    for trial in trials:
        assert trial.params["rule"] in ("bp", "auglocal")
        assert trial.distributions["rule"] == CategoricalDistribution(["bp", "auglocal"])
        if trial.params["rule"] == "auglocal":
            assert trial.distributions["aux_depth"] == CategoricalDistribution([1, 2])
            assert trial.user_attrs["factor.aux_depth"] == trial.params["aux_depth"]
        else:
            assert "aux_depth" not in trial.params  # bp ignores it: not a point on that axis
        assert trial.user_attrs["factor.rule"] == trial.params["rule"]
        assert trial.user_attrs["mlflow_run_id"] in mlflow_ids
        assert trial.user_attrs["label"].endswith(f"· s{trial.user_attrs['seed']}")
    importances = optuna.importance.get_param_importances(optuna_study, params=["rule"])
    assert set(importances) == {"rule"}  # what optuna-dashboard's Importance shows


def test_without_a_terminal_each_epoch_is_one_plain_line_with_its_cell_and_eta(study):
    lines = study["lines"]
    assert not [line for line in lines if "\r" in line]
    epochs = [line for line in lines if " epoch " in line]
    assert any(line.startswith("  auglocal d=2 · s") and " epoch 2/2 val " in line for line in epochs)
    assert all("ETA" in line for line in epochs)
    assert any("ETA ?" not in line for line in epochs)  # known from the first finished epoch on
    finished = [line for line in lines if " finished: " in line]
    assert len(finished) == 6 and all("best_val_acc " in line and "%" in line for line in finished)


def test_a_study_store_made_before_the_views_still_reports(tmp_path):
    """A store whose runs sit directly under the study run, with fractions and bytes, reads back."""
    uri = default_tracking_uri(tmp_path)
    tracker = Tracker(uri, "old", system_metrics=False)
    parent = tracker.parent_run_id("old")
    run_id = tracker.store.create_run(tracker.experiment_id, "rule=bp seed 0", {
        "mlflow.parentRunId": parent, "ablate.study": "old", "ablate.role": "trial", "ablate.cell_id": "c",
        "ablate.seed": 0, "ablate.factors": "{}"})
    tracker.store.client.log_metric(run_id, "final_test_acc", 0.5)
    tracker.store.client.log_metric(run_id, "peak_memory_bytes_max", 2 ** 21)
    tracker.store.set_status(run_id, "FINISHED")
    (record,) = finished_trial_runs(uri, "old", "old")
    assert record.metrics == {"final_test_acc": 0.5, "peak_memory_bytes_max": 2 ** 21}


def test_the_dry_run_states_the_study_cost_from_network_cost_and_timed_steps(study):
    spec = study["spec"]
    text = render_dry_run(spec, tracking_uri=study["uri"])
    assert "TFLOPs of training (6 trials); about " in text and "GFLOP/s measured" in text
    # the FLOPs are each trial's logged cost per example × the examples it trains on × its epochs
    per_example = {run.data.tags["ablate.cell_id"]: run.data.metrics["train_flops_per_example"]
                   for run in study["runs"]["trial"]}
    expected = sum(per_example[t.cell_id] * SETTINGS["train_subset"] * SETTINGS["epochs"] for t in spec.trials)
    assert estimate(spec, calibrate=False).flops == pytest.approx(expected)


def test_ablate_report_prints_a_terminal_table_and_logs_a_previewable_report(study, capsys):
    spec = study["spec"]
    assert main(["report", str(spec.path), "--tracking-uri", study["uri"]]) == 0
    out = capsys.readouterr().out
    assert "![" not in out and "|" not in out.splitlines()[3]  # not markdown
    header = next(line for line in out.splitlines() if line.startswith("cell"))
    assert "final test acc (%)" in header
    assert f"{spec.directory / 'report' / 'accuracy_vs_aux_depth.png'}" in out  # figures by path
    (parent,) = study["runs"]["parent"]
    client = study["client"]
    html = Path(client.download_artifacts(parent.info.run_id, "report/report.html")).read_text()
    assert html.count("data:image/png;base64,") >= 2  # figures inside the page MLflow previews
    note = client.get_run(parent.info.run_id).data.tags["mlflow.note.content"]
    assert "bp against AugLocal" in note and "final test acc (%)" in note and "![" not in note
