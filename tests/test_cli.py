"""The `ablate` command: describe, train, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from ablate.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_describe_json_is_exactly_one_object_with_the_promised_keys(capsys):
    code, out, err = run(capsys, "describe", "--model", "resnet32", "--rule", "auglocal", "--aux-depth", "3",
                         "--selection", "uniform", "--decay", "linear", "--decay-coeff", "0.5", "--json")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["model"] == "resnet32" and d["num_layers"] == 16
    assert d["head_layers"] == [12, 13, 14, 15]
    assert [e["aux_depth"] for e in d["local_layers"]] == [3] * 6 + [2] * 6
    first = d["local_layers"][0]
    assert first["layer"] == 0 and first["aux_layers"] == [5, 10, 15]
    assert all(isinstance(e["aux_params"], int) and e["aux_params"] > 0 for e in d["local_layers"])
    assert all(isinstance(e["aux_flops"], int) and e["aux_flops"] > 0 for e in d["local_layers"])


def test_describe_flops_shrink_with_the_linear_decay(capsys):
    def total(decay):
        _, out, _ = run(capsys, "describe", "--model", "resnet110", "--aux-depth", "3", "--decay", decay,
                        "--decay-coeff", "1.0", "--json")
        return json.loads(out)["aux_flops"]

    assert total("linear") < total("constant")


def test_describe_text_shows_every_local_layer_and_totals(capsys):
    code, out, _ = run(capsys, "describe", "--model", "resnet20", "--head-layers", "1", "--in-channels", "1",
                       "--num-classes", "7", "--image-size", "8")
    assert code == 0
    assert "local layers: 9" in out and "aux total:" in out and "backbone:" in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--model", "resnet33"], "resnet32"),
        (["--rule", "hebbian"], "auglocal"),
        (["--selection", "greedy"], "uniform"),
        (["--decay", "cosine"], "linear"),
        (["--aux-depth", "0"], "--aux-depth"),
        (["--decay-coeff", "1.5"], "--decay-coeff"),
        (["--head-layers", "40"], "--head-layers"),
        (["--image-size", "0"], "--image-size"),
    ],
)
def test_describe_impossible_requests_are_one_line_exit_2(capsys, argv, expected):
    code, out, err = run(capsys, "describe", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err


def test_train_prints_a_summary_and_writes_every_metric(capsys, tmp_path):
    out_file = tmp_path / "result.json"
    code, out, err = run(capsys, "train", "--model", "resnet20", "--width", "0.25", "--rule", "auglocal",
                         "--aux-depth", "2", "--dataset", "digits", "--epochs", "2", "--batch-size", "128",
                         "--device", "cpu", "--quiet", "--json-out", str(out_file))
    assert code == 0, err
    assert "test acc" in out and "best val (epoch" in out and "auxiliary accuracy" in out
    result = json.loads(out_file.read_text())
    assert len(result["history"]) == 2 and result["config"]["rule"] == "auglocal"
    assert {"val_acc", "test_acc", "aux_acc", "peak_memory_bytes"} <= set(result["history"][0])


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--epochs", "0"], "--epochs"),
        (["--rule", "hebbian"], "--rule"),
        (["--dataset", "mnist"], "fashion-mnist"),
        (["--dataset", "cifar10", "--data-root", "/nonexistent"], "--download"),
        (["--milestones", "a,b"], "--milestones"),
        (["--device", "cuda"], "CUDA"),
    ],
)
def test_train_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, argv, expected):
    out_file = tmp_path / "result.json"
    code, _, err = run(capsys, "train", "--quiet", "--json-out", str(out_file), *argv)
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert not out_file.exists()


TINY_STUDY = """\
name: tiny
settings: {dataset: digits, model: resnet20, width: 0.25, epochs: 1, schedule: constant,
           batch_size: 128, device: cpu, train_subset: 300}
grid:
  rule: [bp, auglocal]
seeds: [0, 1]
report:
  reference: {rule: bp}
"""


def test_a_study_from_validate_to_report(capsys, tmp_path):
    study = tmp_path / "tiny.yaml"
    study.write_text(TINY_STUDY)
    code, out, _ = run(capsys, "validate", str(study))
    assert code == 0 and "2 cells" in out
    code, out, _ = run(capsys, "run", str(study), "--dry-run")
    assert code == 0 and "4 pending" in out and not (tmp_path / "runs").exists()

    code, out, err = run(capsys, "run", str(study), "--quiet")
    assert code == 0, err
    assert "4/4 done" in out
    code, out, _ = run(capsys, "run", str(study), "--quiet")
    assert "nothing to train" in out
    code, out, _ = run(capsys, "status", str(study))
    assert code == 0 and "4 done" in out

    code, out, _ = run(capsys, "report", str(study), "--format", "csv", "--out", str(tmp_path / "report"))
    assert code == 0 and out.splitlines()[0].startswith("cell")
    assert "rule=auglocal" in out
    assert (tmp_path / "report" / "accuracy_vs_peak_memory.png").stat().st_size > 0


def test_a_study_mistake_is_one_line_naming_file_line_and_key(capsys, tmp_path):
    study = tmp_path / "bad.yaml"
    study.write_text(TINY_STUDY.replace("grid:\n  rule:", "grid:\n  rulez:"))
    for command in ("validate", "run"):
        code, _, err = run(capsys, command, str(study))
        assert code == 2 and err.count("\n") == 1
        assert f"{study}:5" in err and "rulez" in err and "did you mean 'rule'" in err
    assert not (tmp_path / "runs").exists()


def test_an_nsga2_search_trains_its_budget_against_two_objectives(capsys, tmp_path):
    study = tmp_path / "search.yaml"
    study.write_text("""\
name: tiny-search
settings: {dataset: digits, model: resnet20, width: 0.25, epochs: 1, schedule: constant,
           batch_size: 128, device: cpu, train_subset: 200, rule: auglocal}
search:
  sampler: nsga2
  objectives: [best_val_acc, peak_memory_bytes_max]
  space:
    aux_depth: {low: 1, high: 3}
    lr: {low: 0.01, high: 0.2, log: true}
  n_trials: 2
seeds: [0]
""")
    code, out, err = run(capsys, "run", str(study), "--quiet")
    assert code == 0, err
    assert "2/2 done" in out
    code, out, _ = run(capsys, "status", str(study))
    assert "2 done" in out


def test_help_lists_every_command_with_the_first_sentence_of_its_own_help():
    from ablate.cli.main import COMMANDS, cli

    for name, (_, _, summary) in COMMANDS.items():
        command = cli.get_command(None, name)
        first = " ".join(command.help.split()).split(":")[0].split(". ")[0].rstrip(".")
        assert summary == first, name


def test_help_answers_without_loading_torch_optuna_or_mlflow():
    code = ("import sys; from ablate.cli import main; main(['--help']); "
            "sys.exit(sorted(m for m in ('torch', 'optuna', 'mlflow') if m in sys.modules) != [])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "describe  Show the auxiliary plan of a network" in done.stdout
