"""The Trainer on the embedded digits data: accuracy, metrics, divergence, resume."""

import subprocess
import sys

import pytest

from ablate.config import TrainConfig
from ablate.engine import Callback, Trainer
from ablate.engine.stopping import StopRequest
from ablate.engine.checkpoints import CheckpointMismatch

# small and fast: 8x8 digits, resnet20 at a quarter of its width
FAST = dict(model="resnet20", width=0.5, dataset="digits", batch_size=64, lr=0.1,
            warmup_epochs=0, device="cpu")


class Recorder(Callback):
    def __init__(self):
        self.epochs, self.result = [], None

    def on_epoch_end(self, metrics):
        self.epochs.append(metrics)

    def on_train_end(self, result):
        self.result = result


@pytest.mark.parametrize("rule", ["bp", "auglocal"])
def test_resnet20_reaches_90_percent_test_accuracy_on_digits_within_10_epochs(rule):
    config = TrainConfig(**FAST, rule=rule, aux_depth=2, decay="linear", epochs=10)
    result = Trainer(config).fit()
    assert result["status"] == "finished"
    assert result["final"]["test_acc"] >= 0.90, result["final"]


def test_every_epoch_reports_the_metrics_the_issue_names():
    recorder = Recorder()
    config = TrainConfig(**FAST, rule="auglocal", aux_depth=2, epochs=2)
    result = Trainer(config, callbacks=[recorder]).fit()
    assert [m["epoch"] for m in recorder.epochs] == [1, 2]
    metrics = recorder.epochs[-1]
    assert recorder.epochs[0]["lr"] == pytest.approx(0.05) and metrics["lr"] == pytest.approx(0.0)  # cosine, E = 2
    for key in ("train_loss", "val_acc", "test_acc", "epoch_time_s", "examples_per_s",
                "peak_memory_bytes", "peak_saved_bytes", "peak_rss_bytes"):
        assert metrics[key] is not None and metrics[key] > 0, key
    num_local = len(result["plan"]["local_layers"])
    assert num_local > 0 and len(metrics["aux_acc"]) == num_local == len(metrics["aux_loss"])
    assert all(0 <= a <= 1 for a in metrics["aux_acc"])
    assert result["best"]["epoch"] in (1, 2) and recorder.result is result


def test_a_non_finite_loss_stops_the_run_with_epoch_and_step():
    config = TrainConfig(**{**FAST, "lr": 1e12}, rule="bp", epochs=3, weight_decay=0)
    result = Trainer(config).fit()
    assert result["status"] == "diverged"
    assert result["message"].startswith("diverged at epoch 1, step ")
    assert result["epochs_completed"] == 0


class StopAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, metrics):
        if metrics["epoch"] == self.epoch:
            raise KeyboardInterrupt  # as if the process were interrupted here


def test_an_interrupted_run_resumes_and_ends_with_the_same_numbers(tmp_path):
    config = TrainConfig(**FAST, rule="auglocal", aux_depth=2, epochs=3)
    uninterrupted = Trainer(config, checkpoint_dir=tmp_path / "a").fit()

    with pytest.raises(KeyboardInterrupt):
        Trainer(config, checkpoint_dir=tmp_path / "b", callbacks=[StopAfter(2)]).fit()
    resumed_trainer = Trainer(config, checkpoint_dir=tmp_path / "b")
    assert resumed_trainer.start_epoch == 3
    resumed = resumed_trainer.fit()

    def numbers(result):
        return [(m["train_loss"], m["val_acc"], m["test_acc"], m["aux_acc"]) for m in result["history"]]

    assert numbers(resumed) == numbers(uninterrupted)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    Trainer(TrainConfig(**FAST, rule="bp", epochs=1), checkpoint_dir=tmp_path).fit()
    with pytest.raises(CheckpointMismatch, match="other settings"):
        Trainer(TrainConfig(**FAST, rule="auglocal", epochs=1), checkpoint_dir=tmp_path)


def test_the_engine_runs_without_optuna_or_mlflow():
    code = (
        "import sys; import ablate.engine, ablate.data, ablate.models, ablate.rules, ablate.plan, ablate.config, "
        "ablate.cli, ablate.cli.train, ablate.cli.describe; "
        "bad = [m for m in ('optuna', 'mlflow') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("option", [{"bf16": True}, {"channels_last": True}])
def test_bf16_autocast_and_channels_last_train_to_finite_numbers(option):
    config = TrainConfig(**FAST, rule="infopro", epochs=1, train_subset=256, **option)
    result = Trainer(config).fit()
    assert result["status"] == "finished"
    assert all(0 <= a <= 1 for a in result["final"]["aux_acc"]) and result["final"]["train_loss"] > 0


def test_a_stop_request_ends_training_after_the_epoch_and_its_checkpoint(tmp_path):
    stop = StopRequest()

    class RequestStopInEpoch2(Callback):
        def on_epoch_end(self, metrics):
            if metrics["epoch"] == 1:
                stop.request()  # as the first Ctrl-C does, during epoch 2

    config = TrainConfig(**FAST, rule="bp", epochs=4, train_subset=256)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, checkpoint_dir=tmp_path, callbacks=[RequestStopInEpoch2()], stop=stop).fit()
    assert Trainer(config, checkpoint_dir=tmp_path).start_epoch == 2  # epoch 1 requested it: stop after it


def test_an_immediate_stop_ends_training_at_the_next_step_keeping_the_last_epochs_checkpoint(tmp_path):
    stop = StopRequest()

    class SecondCtrlCInEpoch2(Callback):
        def on_epoch_end(self, metrics):
            stop.immediate = metrics["epoch"] == 1

    config = TrainConfig(**FAST, rule="bp", epochs=4, train_subset=256)
    trainer = Trainer(config, checkpoint_dir=tmp_path, callbacks=[SecondCtrlCInEpoch2()], stop=stop)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert len(trainer.history) == 1 and Trainer(config, checkpoint_dir=tmp_path).start_epoch == 2
