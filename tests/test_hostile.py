"""Hostile input, table-driven: study files, `--set`, every command's options, data files and
checkpoints. Every case runs the `ablate` command in-process and must exit with its code
(2: a user error), print at most three lines, show no traceback and create nothing: not
under the case's folder, not in $HOME, not in matplotlib's cache."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from ablate.cli import main
from ablate.spec.grid import MAX_TRIALS
from ablate.spec.yaml_lines import MAX_NESTING, MAX_STUDY_BYTES

GOOD = """\
settings:
  dataset: digits
  model: resnet20
  width: 0.25
  epochs: 6
  device: cpu
grid:
  rule: [bp, auglocal]
  aux_depth: [1, 2]
seeds: [0, 1]
"""


def settings(line: str) -> str:
    """GOOD with one more line under settings:."""
    return GOOD.replace("  device: cpu\n", f"  device: cpu\n  {line}\n")


def top(text: str) -> str:
    """GOOD with more top-level keys."""
    return GOOD + text + "\n"


def search(space: str, extra: str = "") -> str:
    return ("settings: {dataset: digits, model: resnet20, width: 0.25, device: cpu}\n"
            f"search:\n  n_trials: 4\n  space:\n    {space}\n{extra}")


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple  # "{study}", "{dir}" and "{data}" are replaced by the case's paths
    says: str  # a piece of the message
    study: str | bytes | None = None  # the study file's contents
    files: dict = field(default_factory=dict)  # more files under the case's folder
    code: int = 2


def study_case(id: str, text: str | bytes, says: str, *more: str, files=None) -> Case:
    return Case(id, ("validate", "{study}", *more), says, study=text, files=files or {})


# ------------------------------------------------------------------------ study files: parsing
PARSING = [
    study_case("recursive-alias-list", "settings: {}\ngrid: &g {rule: [bp], x: *g}\n", "recursive alias"),
    study_case("recursive-alias-seeds", GOOD.replace("seeds: [0, 1]", "seeds: &s [0, *s]"), "recursive alias"),
    study_case("recursive-merge", "grid: &g\n  <<: *g\n", "recursive alias"),
    study_case("billion-laughs", LAUGHS, "aliases expand it"),
    study_case("billion-laughs-in-seeds", LAUGHS + GOOD.replace("seeds: [0, 1]", "seeds: *i"), "aliases expand it"),
    study_case("nul-byte", GOOD.replace("width: 0.25", "width: 0.25\x00"), "control character U+0000"),
    study_case("nul-only", b"\x00\x00\x00", "control character U+0000"),
    study_case("bell-character", GOOD.replace("resnet20", "resnet20\x07"), "control character U+0007"),
    study_case("escape-character", "\x1b[31m" + GOOD, "control character U+001B"),
    study_case("non-utf8-latin1", GOOD.encode().replace(b"resnet20", b"r\xe9snet20"), "not UTF-8"),
    study_case("non-utf8-ff", b"\xff\xfe" + GOOD.encode(), "not UTF-8"),
    study_case("utf16", GOOD.encode("utf-16"), "not UTF-8"),
    study_case("truncated-utf8", GOOD.encode() + b"# \xe2\x82", "not UTF-8"),
    study_case("over-size-limit", GOOD + "#" * MAX_STUDY_BYTES, "larger than 1 MiB"),
    study_case("11-mb-of-unknown-keys", "".join(f"key{i}: {i}\n" for i in range(1_100_000)), "larger than 1 MiB"),
    study_case("200000-seeds", GOOD.replace("[0, 1]", "[" + ",".join(map(str, range(200_000))) + "]"),
               "larger than 1 MiB"),
    study_case("20000-seeds", GOOD.replace("[0, 1]", "[" + ",".join(map(str, range(20_000))) + "]"),
               f"more than {MAX_TRIALS:,} trials"),
    study_case("grid-product-too-large", "settings: {dataset: digits, width: 0.25}\ngrid:\n"
               f"  lr: [{', '.join(str(0.001 * (i + 1)) for i in range(100))}]\n"
               f"  weight_decay: [{', '.join(str(0.0001 * i) for i in range(100))}]\nseeds: [0, 1]\n",
               f"more than {MAX_TRIALS:,} trials"),
    study_case("nested-too-deep", "settings: " + "[" * (MAX_NESTING + 5) + "]" * (MAX_NESTING + 5) + "\n",
               "nested more than"),
    study_case("nested-beyond-libyaml", "a: " + "[" * 5000 + "]" * 5000 + "\n", "invalid YAML"),
    study_case("block-nested-too-deep", "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "x\n",
               "nested more than"),
    study_case("empty-file", "", "the file is empty"),
    study_case("only-comments", "# nothing\n# here\n", "the file is empty"),
    study_case("only-blank", "\n\n   \n", "the file is empty"),
    study_case("a-list", "- rule: bp\n", "a study is a mapping"),
    study_case("a-scalar", "42\n", "a study is a mapping"),
    study_case("two-documents", GOOD + "---\n" + GOOD, "invalid YAML"),
    study_case("unclosed-flow", GOOD.replace("[0, 1]", "[0, 1"), "invalid YAML"),
    study_case("unclosed-quote", settings('model: "resnet20'), "invalid YAML"),
    study_case("tab-indent", GOOD.replace("  model", "\tmodel"), "invalid YAML"),
    study_case("bad-indent", GOOD.replace("  model", "    model"), "invalid YAML"),
    study_case("undefined-alias", settings("model: *nowhere"), "invalid YAML"),
    study_case("duplicate-anchor", "a: &x 1\nb: &x 2\n" + GOOD, "duplicate anchor"),
    study_case("python-object-tag", settings("selection: !!python/object/apply:os.system [ls]"), "invalid YAML"),
    study_case("python-name-tag", settings("selection: !!python/name:os.system"), "invalid YAML"),
    study_case("unknown-tag", settings("selection: !shell ls"), "invalid YAML"),
    study_case("binary-tag", settings("selection: !!binary aGVsbG8="), "unknown selection"),
    study_case("set-tag", settings("milestones: !!set {1, 2}"), "milestones"),
    study_case("duplicate-key", settings("width: 0.5"), "given twice"),
    study_case("duplicate-top-key", GOOD + "seeds: [3]\n", "given twice"),
    study_case("unhashable-key", "? [a, b]\n: 1\n" + GOOD, "invalid YAML"),
    study_case("integer-key", "1: 2\n" + GOOD, "unknown study key"),
    study_case("null-key", "~: 2\n" + GOOD, "unknown study key"),
    study_case("bool-setting-name", GOOD.replace("  device: cpu\n", "  device: cpu\n  true: 1\n"), "not a setting"),
    study_case("merge-non-mapping", settings("<<: [1, 2]"), "invalid YAML"),
]

# ------------------------------------------------------------------------ study files: meaning
MEANING = [
    study_case("unknown-top-key", top("sedes: [0]"), "unknown study key"),
    study_case("setting-at-top", top("lr: 0.1"), "put it under 'settings:'"),
    study_case("unknown-setting", settings("aux_dpth: 2"), "did you mean 'aux_depth'"),
    study_case("seed-in-settings", settings("seed: 3"), "top-level 'seeds"),
    study_case("bad-name", top("name: ../etc"), "must be letters"),
    study_case("name-not-text", top("name: [a]"), "expected a name"),
    study_case("width-inf", settings("width: .inf").replace("  width: 0.25\n", ""), "finite"),
    study_case("width-nan", settings("width: .nan").replace("  width: 0.25\n", ""), "finite"),
    study_case("width-1e400", settings("width: 1e400").replace("  width: 0.25\n", ""), "finite"),
    study_case("width-1e6", settings("width: 1e6").replace("  width: 0.25\n", ""), "<= 16"),
    study_case("width-zero", settings("width: 0").replace("  width: 0.25\n", ""), "width"),
    study_case("width-negative", settings("width: -1.0").replace("  width: 0.25\n", ""), "> 0"),
    study_case("width-text", settings("width: wide").replace("  width: 0.25\n", ""), "expected a number"),
    study_case("lr-inf", settings("lr: .inf"), "finite"),
    study_case("lr-nan", settings("lr: .NaN"), "finite"),
    study_case("lr-negative", settings("lr: -0.1"), "> 0"),
    study_case("lr-zero", settings("lr: 0.0"), "> 0"),
    study_case("weight-decay-inf", settings("weight_decay: .inf"), "finite"),
    study_case("weight-decay-one", settings("weight_decay: 1.0"), "< 1"),
    study_case("weight-decay-negative", settings("weight_decay: -0.1"), ">= 0"),
    study_case("momentum-one", settings("momentum: 1.0"), "< 1"),
    study_case("gamma-two", settings("gamma: 2.0"), "<= 1"),
    study_case("gamma-nan", settings("gamma: .nan"), "finite"),
    study_case("val-size-inf", settings("val_size: .inf"), "finite"),
    study_case("decay-coeff-high", settings("decay_coeff: 1.5"), "<= 1"),
    study_case("decay-coeff-nan", settings("decay_coeff: .nan"), "finite"),
    study_case("epochs-zero", settings("epochs: 0").replace("  epochs: 6\n", ""), ">= 1"),
    study_case("epochs-float", settings("epochs: 2.5").replace("  epochs: 6\n", ""), "integer"),
    study_case("batch-size-huge-int", settings("batch_size: 0"), ">= 1"),
    study_case("seed-2-63", GOOD.replace("[0, 1]", "[9223372036854775808]"), "2**63-1"),
    study_case("seed-2-64", GOOD.replace("[0, 1]", "[18446744073709551616]"), "2**63-1"),
    study_case("seed-negative", GOOD.replace("[0, 1]", "[-1]"), "2**63-1"),
    study_case("seed-float", GOOD.replace("[0, 1]", "[1.5]"), "a seed is an integer"),
    study_case("seed-bool", GOOD.replace("[0, 1]", "[true]"), "a seed is an integer"),
    study_case("seed-text", GOOD.replace("[0, 1]", "[a]"), "a seed is an integer"),
    study_case("seeds-empty", GOOD.replace("[0, 1]", "[]"), "non-empty list"),
    study_case("seeds-scalar", GOOD.replace("[0, 1]", "3"), "non-empty list"),
    study_case("seeds-twice", GOOD.replace("[0, 1]", "[1, 1]"), "listed twice"),
    study_case("milestones-decreasing", settings("milestones: [5, 2]"), "must increase"),
    study_case("milestones-at-epochs", settings("milestones: [6]"), "below epochs 6"),
    study_case("milestones-zero", settings("milestones: [0]"), "must increase"),
    study_case("milestones-text", settings("milestones: [a]"), "milestones"),
    study_case("warmup-beyond-epochs", settings("warmup_epochs: 50"), "below epochs 6"),
    study_case("warmup-equals-epochs", settings("warmup_epochs: 6"), "below epochs 6"),
    study_case("device-gpu0", settings("device: gpu0").replace("  device: cpu\n", "", 1), "unknown device"),
    study_case("device-empty", settings("device: ''").replace("  device: cpu\n", "", 1), "unknown device"),
    study_case("device-tpu", settings("device: tpu").replace("  device: cpu\n", "", 1), "unknown device"),
    study_case("device-cpu-1", settings("device: cpu:1").replace("  device: cpu\n", "", 1), "unknown device"),
    study_case("device-cuda-99", settings("device: cuda:99").replace("  device: cpu\n", "", 1), "cuda:99"),
    study_case("device-negative-index", settings("device: cuda:-1").replace("  device: cpu\n", "", 1), "device"),
    study_case("device-as-factor", GOOD.replace("aux_depth: [1, 2]", "device: [cpu, auto]"), "says how to run"),
    study_case("storage-not-a-url", top('storage: "not a url"'), "not an Optuna storage URL"),
    study_case("storage-colons", top("storage: '::::'"), "not an Optuna storage URL"),
    study_case("storage-unknown-db", top("storage: foo://x/y"), "unknown database 'foo'"),
    study_case("storage-number", top("storage: 3"), "expected text"),
    study_case("storage-blank", top("storage: '  '"), "expected text"),
    study_case("tracking-uri-colons", top("tracking: {uri: '::::'}"), "not an MLflow tracking URI"),
    study_case("tracking-uri-no-host", top("tracking: {uri: 'http://'}"), "names no host"),
    study_case("tracking-uri-bad-port", top("tracking: {uri: 'http://h:port'}"), "not an MLflow tracking URI"),
    study_case("tracking-file-store", top("tracking: {uri: 'file:///tmp/mlruns'}"), "file store is deprecated"),
    study_case("tracking-unknown-key", top("tracking: {url: x}"), "unknown tracking key"),
    study_case("tracking-not-mapping", top("tracking: sqlite:///x.db"), "must be a mapping"),
    study_case("aux-depth-99", GOOD.replace("aux_depth: [1, 2]", "aux_depth: [1, 99]"), "choose 1..9"),
    study_case("aux-depth-zero", GOOD.replace("aux_depth: [1, 2]", "aux_depth: [0, 2]"), ">= 1"),
    study_case("head-layers-99", settings("head_layers: 99"), "head_layers"),
    study_case("grid-empty", GOOD.replace("  rule: [bp, auglocal]\n  aux_depth: [1, 2]\n", "  {}\n"), "grid"),
    study_case("grid-scalar", GOOD.replace("aux_depth: [1, 2]", "aux_depth: 2"), "a grid factor is a list"),
    study_case("grid-value-twice", GOOD.replace("aux_depth: [1, 2]", "aux_depth: [2, 2]"), "listed twice"),
    study_case("grid-and-settings", settings("aux_depth: 2"), "both a grid factor and fixed"),
    study_case("grid-unknown-rule", GOOD.replace("[bp, auglocal]", "[bp, hebbian]"), "unknown rule"),
    study_case("no-cells", "settings: {dataset: digits}\nseeds: [0]\n", "has no cells"),
    study_case("tie-not-grid", top("tie: {lr: {rule: [bp]}}"), "only a grid factor"),
    study_case("tie-unknown-value", top("tie: {aux_depth: {rule: [dgl]}}"), "not among the grid's values"),
    study_case("tie-itself", top("tie: {aux_depth: {aux_depth: [1]}}"), "tied to itself"),
    study_case("cell-contradicts-tie", "settings: {dataset: digits, width: 0.25, device: cpu}\n"
               "grid: {decay: [constant, linear], decay_coeff: [0.5, 1.0]}\n"
               "tie: {decay_coeff: {decay: [linear]}}\ncells:\n  - {decay: constant, decay_coeff: 1.0}\n",
               "is tied to decay"),
    study_case("cells-empty-cell", "settings: {dataset: digits}\ncells: [{}]\n", "the cell is empty"),
    study_case("cells-not-list", "settings: {dataset: digits}\ncells: {rule: bp}\n", "non-empty list"),
    study_case("reference-no-cell", top("report: {reference: {rule: dgl}}"), "reference"),
    study_case("reference-unknown-key", top("report: {reference: {lr: 0.1}}"), "the reference names cells"),
    study_case("train-subset-too-large", settings("train_subset: 100000"), "exceeds"),
    study_case("val-size-too-large", settings("val_size: 5000"), "val_size"),
    study_case("search-low-inf", search("lr: {low: .inf, high: 1.0}"), "finite"),
    study_case("search-high-inf", search("lr: {low: 0.01, high: .inf}"), "finite"),
    study_case("search-high-nan", search("lr: {low: 0.01, high: .nan}"), "finite"),
    study_case("search-step-inf", search("lr: {low: 0.01, high: 1.0, step: .inf}"), "positive number"),
    study_case("search-step-negative", search("epochs: {low: 1, high: 9, step: -1}"), "positive integer"),
    study_case("search-low-above-high", search("lr: {low: 1.0, high: 0.01}"), "high must be above low"),
    study_case("search-log-zero", search("weight_decay: {low: 0.0, high: 0.1, log: true}"), "log range needs low > 0"),
    study_case("search-n-trials-zero", search("lr: {low: 0.01, high: 1.0}").replace("n_trials: 4", "n_trials: 0"),
               "trial budget"),
    study_case("search-n-trials-inf", search("lr: {low: 0.01, high: 1.0}").replace("n_trials: 4", "n_trials: .inf"),
               "trial budget"),
    study_case("search-test-metric", search("lr: {low: 0.01, high: 1.0}", "  objectives: [test_acc]\n"),
               "leaks the test set"),
    study_case("search-and-grid", search("lr: {low: 0.01, high: 1.0}") + "grid: {rule: [bp]}\n", "either searches"),
    study_case("search-momentum-one", search("momentum: {low: 0.5, high: 1.0}"), "< 1"),
]

# ------------------------------------------------------------------------ data the study needs
DATA = [
    study_case("fashion-explicit-empty-root", settings("data_root: '{dir}/empty'").replace("digits", "fashion-mnist"),
               "--set download=true", files={"empty/.keep": ""}),
    study_case("fashion-root-missing", settings("data_root: /nonexistent/data").replace("digits", "fashion-mnist"),
               "--set download=true"),
    study_case("cifar10-no-data", GOOD.replace("digits", "cifar10"), "--set download=true"),
    study_case("svhn-no-data", GOOD.replace("digits", "svhn"), "--set download=true"),
    study_case("imagefolder-no-root", GOOD.replace("digits", "imagefolder"), "set data_root"),
    study_case("imagefolder-empty-root", settings("data_root: '{dir}/empty'").replace("digits", "imagefolder"),
               "--set data_root=PATH", files={"empty/.keep": ""}),
    Case("set-data-root-empty", ("validate", "{study}", "--set", "data_root={dir}/empty"), "--set download=true",
         study=GOOD.replace("digits", "fashion-mnist"), files={"empty/.keep": ""}),
    Case("run-fashion-empty-root", ("run", "{study}", "--quiet", "--set", "data_root={dir}/empty"),
         "--set download=true", study=GOOD.replace("digits", "fashion-mnist"), files={"empty/.keep": ""}),
    Case("dry-run-cifar10-no-data", ("run", "{study}", "--dry-run"), "--set download=true",
         study=GOOD.replace("digits", "cifar10")),
    study_case("search-fashion-no-data", search("lr: {low: 0.01, high: 1.0}").replace(
        "dataset: digits", "dataset: fashion-mnist, data_root: /nonexistent"), "--set download=true"),
    study_case("search-samples-a-dataset-without-data",
               search("dataset: {choices: [digits, cifar10]}").replace("dataset: digits, ", ""), "cifar10: no data"),
]

# ------------------------------------------------------------------------ --set
SETS = [
    Case(f"set-{index}", ("validate", "{study}", "--set", pair), says, study=GOOD)
    for index, (pair, says) in enumerate([
        ("width=.inf", "finite"), ("width=1e6", "<= 16"), ("lr=.nan", "finite"), ("lr=-1", "> 0"),
        ("epochs", "expected KEY=VALUE"), ("=3", "expected KEY=VALUE"), ("epochs=[2", "invalid YAML"),
        ("epochs=\x07", "control character"), ("epochs=\x00", "control character"),
        ("seeds=&a [*a]", "recursive alias"), ("seeds=[18446744073709551616]", "2**63-1"),
        ("seeds=[-1]", "2**63-1"), ("seeds=[]", "non-empty list"), ("seeds=0", "non-empty list"),
        ("device=gpu0", "unknown device"), ("device=cuda:99", "cuda:99"), ("milestones=[5, 2]", "must increase"),
        ("warmup_epochs=50", "below epochs"), ("rule=bp", "varies between"), ("aux_dpth=2", "did you mean"),
        ("seed=1", "seeds are given"), ("download=maybe", "true or false"), ("epochs=!!python/none x", "invalid YAML"),
        ("model=*x", "invalid YAML"), ("width=[1, 2]", "expected a number"), ("decay_coeff=2", "<= 1"),
        ("epochs=-3", ">= 1"), ("batch_size=0", ">= 1"), ("val_size=.inf", "finite"),
        ("head_layers=99", "head_layers"),
    ])
]

# ------------------------------------------------------------------------ every command's options
TINY = ("--dataset", "digits", "--width", "0.25", "--epochs", "1", "--device", "cpu", "--quiet")
OPTIONS = [
    Case("unknown-command", ("trian",), "No such command"),
    Case("unknown-option", ("validate", "{study}", "--sett", "x=1"), "No such option", study=GOOD),
    Case("validate-no-file", ("validate", "{dir}/missing.yaml"), "no such study file"),
    Case("validate-folder", ("validate", "{dir}"), "is a directory"),
    Case("validate-dev-null", ("validate", "/dev/null"), "not a regular file"),
    Case("validate-no-argument", ("validate",), "Missing argument"),
    Case("run-jobs-zero", ("run", "{study}", "--jobs", "0"), "--jobs", study=GOOD),
    Case("run-jobs-text", ("run", "{study}", "--jobs", "many"), "--jobs", study=GOOD),
    Case("run-storage-not-a-url", ("run", "{study}", "--storage", "not a url"), "--storage", study=GOOD),
    Case("run-storage-colons", ("run", "{study}", "--dry-run", "--storage", "::::"), "--storage", study=GOOD),
    Case("run-tracking-colons", ("run", "{study}", "--tracking-uri", "::::"), "--tracking-uri", study=GOOD),
    Case("run-tracking-unknown", ("run", "{study}", "--tracking-uri", "ftp://h/x"), "unknown database", study=GOOD),
    Case("run-bad-study", ("run", "{study}"), "finite", study=settings("lr: .inf")),
    Case("run-device-cuda-99", ("run", "{study}", "--set", "device=cuda:99"), "cuda:99", study=GOOD),
    Case("status-storage-colons", ("status", "{study}", "--storage", "::::"), "--storage", study=GOOD),
    Case("status-tracking-colons", ("status", "{study}", "--tracking-uri", "::::"), "--tracking-uri", study=GOOD),
    Case("status-bad-study", ("status", "{study}"), "recursive alias", study="grid: &g {x: *g}\n"),
    Case("report-format-pdf", ("report", "{study}", "--format", "pdf"), "--format", study=GOOD),
    Case("report-tracking-colons", ("report", "{study}", "--tracking-uri", "::::"), "--tracking-uri", study=GOOD),
    Case("report-bad-set", ("report", "{study}", "--set", "width=.inf"), "finite", study=GOOD),
    Case("report-nul-study", ("report", "{study}"), "control character", study=GOOD + "\x00"),
    Case("analyze-no-store", ("analyze", "probe", "abc"), "needs --tracking-uri"),
    Case("analyze-tracking-colons", ("analyze", "probe", "abc", "--tracking-uri", "::::"), "--tracking-uri"),
    Case("analyze-cka-samples-zero", ("analyze", "cka", "a", "b", "--samples", "0"), "--samples"),
    Case("analyze-probe-reduction", ("analyze", "probe", "a", "--reduction", "median"), "reduction"),
    Case("analyze-bad-study", ("analyze", "probe", "a", "--study", "{study}"), "larger than",
         study="#" * (MAX_STUDY_BYTES + 1)),
    Case("describe-aux-depth-99", ("describe", "--model", "resnet32", "--aux-depth", "99"), "choose 1..15"),
    Case("describe-width-inf", ("describe", "--width", "inf"), "finite"),
    Case("describe-width-nan", ("describe", "--width", "nan"), "finite"),
    Case("describe-width-1e6", ("describe", "--width", "1e6"), "<= 16"),
    Case("describe-seed-2-64", ("describe", "--seed", "18446744073709551616"), "--seed"),
    Case("describe-decay-coeff-nan", ("describe", "--decay-coeff", "nan"), "finite"),
    Case("describe-in-channels-zero", ("describe", "--in-channels", "0"), "--in-channels"),
    Case("describe-image-size-text", ("describe", "--image-size", "big"), "--image-size"),
    Case("describe-head-layers-zero", ("describe", "--head-layers", "0"), "--head-layers"),
    Case("train-device-gpu0", ("train", *TINY, "--device", "gpu0"), "unknown device"),
    Case("train-device-cuda-99", ("train", *TINY, "--device", "cuda:99"), "cuda:99"),
    Case("train-seed-2-64", ("train", *TINY, "--seed", "18446744073709551616"), "--seed"),
    Case("train-seed-negative", ("train", *TINY, "--seed", "-1"), "--seed"),
    Case("train-width-inf", ("train", *TINY, "--width", "inf"), "finite"),
    Case("train-lr-nan", ("train", *TINY, "--lr", "nan"), "finite"),
    Case("train-lr-zero", ("train", *TINY, "--lr", "0"), "> 0"),
    Case("train-weight-decay-inf", ("train", *TINY, "--weight-decay", "inf"), "finite"),
    Case("train-milestones-decreasing", ("train", *TINY, "--milestones", "5,2"), "must increase"),
    Case("train-milestones-text", ("train", *TINY, "--milestones", "a,b"), "--milestones"),
    Case("train-warmup", ("train", *TINY, "--warmup-epochs", "50"), "below epochs"),
    Case("train-aux-depth-99", ("train", *TINY, "--aux-depth", "99"), "choose 1..9"),
    Case("train-epochs-zero", ("train", *TINY, "--epochs", "0"), "--epochs"),
    Case("train-dataset-unknown", ("train", *TINY, "--dataset", "mnist"), "dataset"),
    Case("train-model-unknown", ("train", *TINY, "--model", "resnet33"), "resnet32"),
    Case("train-rule-unknown", ("train", *TINY, "--rule", "hebbian"), "auglocal"),
]


# ------------------------------------------------------------------------ data files and checkpoints
def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def fashion_files(**replace) -> dict:
    """A tiny, valid set of Fashion-MNIST's four files under data/, gzipped, with `replace`d ones."""
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 255, (40, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(40) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 255, (20, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(20) % 10}
    files = {f"data/{name}.gz": gzip.compress(idx_bytes(a), mtime=0) for name, a in arrays.items()}
    for name, content in replace.items():
        files.pop(f"data/{name}.gz", None)
        files[f"data/{name}" + ("" if name.endswith(".raw") else ".gz")] = content
    return {k.removesuffix(".raw"): v for k, v in files.items()}


def _bad_crc() -> bytes:
    good = bytearray(gzip.compress(idx_bytes(np.arange(40) % 10), mtime=0))
    good[-8] ^= 0xFF  # the CRC-32 in the trailer
    return bytes(good)


LABELS = "train-labels-idx1-ubyte"
FASHION = ("train", *TINY, "--dataset", "fashion-mnist", "--data-root", "{dir}/data")
DATA_FILES = [
    Case("gzip-bad-crc", FASHION, f"{LABELS}.gz: cannot be read", files=fashion_files(**{LABELS: _bad_crc()})),
    Case("gzip-truncated", FASHION, f"{LABELS}.gz: cannot be read",
         files=fashion_files(**{LABELS: gzip.compress(idx_bytes(np.arange(40) % 10))[:30]})),
    Case("gzip-garbled", FASHION, f"{LABELS}.gz: cannot be read",
         files=fashion_files(**{LABELS: b"\x1f\x8b\x08\x00" + b"\xff" * 64})),
    Case("idx-wrong-magic", FASHION, "not an IDX file",
         files=fashion_files(**{LABELS: gzip.compress(b"\x00\x00\x09\x01" + bytes(44))})),
    Case("idx-header-short", FASHION, "not an IDX file", files=fashion_files(**{LABELS: gzip.compress(b"\x00\x00")})),
    Case("idx-cut-short", FASHION, "IDX header promises",
         files=fashion_files(**{LABELS: gzip.compress(idx_bytes(np.arange(40) % 10)[:-5])})),
    Case("idx-count-mismatch", FASHION, "images but",
         files=fashion_files(**{LABELS: gzip.compress(idx_bytes(np.arange(30) % 10))})),
    Case("idx-labels-out-of-range", FASHION, "labels outside",
         files=fashion_files(**{LABELS: gzip.compress(idx_bytes(np.arange(40) % 12))})),
    Case("idx-plain-garbage", FASHION, "not an IDX file",
         files={**fashion_files(), f"data/{LABELS}.gz": b"", f"data/{LABELS}": b"garbage"}),
    Case("idx-empty-file", FASHION, "not an IDX file", files=fashion_files(**{LABELS: b""})),
    Case("data-root-empty", (*FASHION[:-1], "{dir}/empty"), "pass --download", files={"empty/.keep": ""}),
    Case("data-root-missing", (*FASHION[:-1], "{dir}/nowhere"), "pass --download"),
]


def checkpoint(state) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


TRAIN_CHECKPOINT = ("train", *TINY, "--checkpoint-dir", "{dir}/ckpt")
CHECKPOINTS = [
    Case(f"checkpoint-{name}", TRAIN_CHECKPOINT, says, files={"ckpt/checkpoint.pt": content})
    for name, content, says in [
        ("garbage", b"not a checkpoint at all", "checkpoint.pt: not a readable checkpoint"),
        ("empty", b"", "checkpoint.pt: not a readable checkpoint"),
        ("truncated", checkpoint({"config": {"a": 1}, "weights": torch.zeros(1000)})[:300],
         "checkpoint.pt: not a readable checkpoint"),
        ("a-list", checkpoint([1, 2, 3]), "checkpoint.pt: not a checkpoint written by ablate"),
        ("no-config", checkpoint({"model": {}}), "checkpoint.pt: not a checkpoint written by ablate"),
        ("other-settings", checkpoint({"config": {"model": "resnet110"}}), "holds a run with other settings"),
        ("zip-garbled", checkpoint({"config": {}})[:40] + b"\x00" * 200, "checkpoint.pt: not a readable checkpoint"),
    ]
]

CASES = PARSING + MEANING + DATA + SETS + OPTIONS + DATA_FILES + CHECKPOINTS


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else None) for p in root.rglob("*")}


@pytest.fixture(scope="session")
def matplotlib_cache(tmp_path_factory) -> Path:
    """Matplotlib's font cache, built once on first import wherever MPLCONFIGDIR says:
    outside the cases' folders, so that it does not count as something a case created."""
    return tmp_path_factory.mktemp("mpl")


@pytest.fixture
def sandbox(tmp_path, monkeypatch, matplotlib_cache):
    """A case's folder, also $HOME, the working directory and the caches a library might
    write to, so that "nothing created" sees whatever anything writes."""
    monkeypatch.setenv("MPLCONFIGDIR", str(matplotlib_cache))
    for name, sub in (("HOME", "home"), ("XDG_CACHE_HOME", "home/cache"), ("TORCH_HOME", "home/torch")):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(tmp_path / sub))
    for name in ("ABLATE_DATA_ROOT", "ABLATE_STORAGE", "ABLATE_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_in_one_line_and_creates_nothing(case, sandbox, capsys):
    for name, content in case.files.items():
        path = sandbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    study = sandbox / "study.yaml"
    if case.study is not None:
        text = case.study if isinstance(case.study, bytes) else case.study.replace("{dir}", str(sandbox)).encode()
        study.write_bytes(text)
    argv = [str(a).replace("{study}", str(study)).replace("{dir}", str(sandbox)) for a in case.argv]
    before = snapshot(sandbox)
    code = main(argv)
    out, err = capsys.readouterr()
    output = (out + err).strip()
    lines = output.splitlines()
    assert code == case.code, output
    assert "Traceback" not in output and len(lines) <= 3, output
    assert case.says in output, output
    assert snapshot(sandbox) == before, "created or changed files"


def test_the_table_has_at_least_150_cases_with_distinct_ids():
    assert len(CASES) >= 150 and len({c.id for c in CASES}) == len(CASES)


def test_a_cuda_device_is_checked_against_the_machine_before_anything_is_created(sandbox, capsys):
    """Without CUDA, `device: cuda` is refused in one line; with it, the study validates."""
    study = sandbox / "study.yaml"
    study.write_text(GOOD.replace("device: cpu", "device: cuda"))
    before = snapshot(sandbox)
    code = main(["validate", str(study)])
    if torch.cuda.is_available():
        assert code == 0, capsys.readouterr()
    else:
        assert code == 2 and "CUDA is not available" in capsys.readouterr().err
    assert snapshot(sandbox) == before


def test_a_legal_study_at_the_trial_limit_validates(sandbox, capsys):
    study = sandbox / "study.yaml"
    seeds = ", ".join(map(str, range(MAX_TRIALS // 4)))
    study.write_text(GOOD.replace("[0, 1]", f"[{seeds}]"))
    assert main(["validate", str(study)]) == 0, capsys.readouterr().err
    assert f"3 cells × {MAX_TRIALS // 4} seed(s)" in capsys.readouterr().out


def test_the_sandbox_is_home_and_the_working_directory(sandbox):
    assert os.environ["HOME"].startswith(str(sandbox)) and Path.cwd() == sandbox


def test_aliases_used_as_intended_still_validate(sandbox, capsys):
    study = sandbox / "study.yaml"
    study.write_text("settings: &base {dataset: digits, model: resnet20, width: 0.25, device: cpu}\n"
                     "cells:\n  - {rule: bp}\n  - &deep {rule: auglocal, aux_depth: 3}\n"
                     "  - {<<: *deep, aux_depth: 2}\nseeds: &seeds [0, 1]\n"
                     "report: {reference: {rule: bp}}\n")
    assert main(["validate", str(study)]) == 0, capsys.readouterr().err
    assert "3 cells × 2 seed(s)" in capsys.readouterr().out
