"""Exit codes, the same for every command: 0 every trial done, 1 some trials ended failed
(the summary says which and why), 2 a user mistake, 130 / 143 interrupted."""

import subprocess
import sys
from pathlib import Path

from ablate.cli import main
from ablate.spec import load_study

from test_study import press_ctrl_c_once, tracking_uri, write_study  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_with_a_failed_trial_exits_1_naming_it_and_why_in_every_later_run(capsys, tmp_path, tracking_uri):
    study = write_study(tmp_path, "fails", grid={"lr": [1.0e12, 0.05]})
    diverging = load_study(study).trials[0]

    code, out, _ = cli(capsys, "run", str(study), "--quiet", "--tracking-uri", tracking_uri)

    assert code == 1, out
    failed = [line for line in out.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 1 and f"({diverging.key}): diverged at epoch 1" in failed[0] and "lower the lr" in failed[0]

    code, out, _ = cli(capsys, "run", str(study), "--quiet", "--tracking-uri", tracking_uri)

    assert code == 1 and "nothing to train" in out  # still failed: not "all trials done"
    assert any(line.startswith("  failed earlier: ") and diverging.key in line and "diverged" in line
               for line in out.splitlines()), out


def test_an_interrupted_trial_exits_130_and_once_resumed_to_the_end_the_run_exits_0(capsys, tmp_path, tracking_uri):
    study = write_study(tmp_path, "resumed", grid={"lr": [0.05]}, epochs=12)
    trial = load_study(study).trials[0]
    checkpoint = load_study(study).directory / "checkpoints" / trial.key / "checkpoint.pt"
    presser = press_ctrl_c_once(checkpoint)  # after the first epoch
    code, out, err = cli(capsys, "run", str(study), "--quiet", "--tracking-uri", tracking_uri)
    presser.join()
    assert code == 130 and err.splitlines()[-1] == "interrupted by SIGINT", err

    code, out, _ = cli(capsys, "run", str(study), "--quiet", "--tracking-uri", tracking_uri)

    assert code == 0 and "1/1 done" in out and "failed" not in out, out


def test_a_training_that_diverges_exits_1_with_the_reason(capsys):
    code, out, err = cli(capsys, "train", "--model", "resnet20", "--width", "0.25", "--dataset", "digits",
                         "--epochs", "1", "--train-subset", "128", "--batch-size", "64", "--lr", "1e12", "--rule", "bp",
                         "--weight-decay", "0", "--schedule", "constant",
                         "--device", "cpu", "--quiet")
    assert code == 1 and "diverged at epoch 1" in out
    assert err.startswith("failed: diverged at epoch 1") and err.count("\n") == 1


def test_python_m_ablate_cli_is_the_ablate_command_with_its_exit_codes(tmp_path):
    def ablate(*argv):
        return subprocess.run([sys.executable, "-m", "ablate.cli", *argv], cwd=REPO, capture_output=True, text=True)

    done = ablate("--version")
    assert done.returncode == 0 and "version" in done.stdout
    missing = ablate("validate", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
