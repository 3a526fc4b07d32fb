"""The GPU fast path, checked on CPU: its settings are options recorded with every run and
kept out of cell ids; a training epoch reads nothing back from the device per batch; bf16
and channels-last train like the plain path; compiled steps give the plain step's numbers."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import ablate.engine.compiling
from ablate.engine import Callback, Trainer, build_network
from ablate.cli import main
from ablate.config import EXECUTION_ONLY, TrainConfig
from ablate.spec.cells import cell_id
from ablate.engine.checkpoints import CheckpointMismatch

DIGITS = dict(model="resnet20", width=0.5, dataset="digits", batch_size=64, warmup_epochs=0, device="cpu",
              rule="auglocal", aux_depth=2)
FAST_PATH = dict(bf16=True, channels_last=True)
BF16_UNIT_ROUNDOFF = 2**-8  # bf16 keeps 8 significant bits


# ---------------------------------------------------------------------------- settings


def test_fast_path_settings_are_train_options(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--bf16", "--channels-last", "--cudnn-benchmark", "--compile"):
        assert f"{flag} / --no-{flag[2:]}" in out, flag


def test_fast_path_settings_are_recorded_with_every_run():
    config = TrainConfig(**DIGITS, epochs=1, train_subset=64, cudnn_benchmark=True, **FAST_PATH)
    recorded = Trainer(config).fit()["config"]
    assert {k: recorded[k] for k in ("bf16", "channels_last", "cudnn_benchmark", "compile")} == {
        "bf16": True, "channels_last": True, "cudnn_benchmark": True, "compile": False}


def test_how_to_run_does_not_change_a_cell_id():
    plain = TrainConfig()
    assert {"compile", "cudnn_benchmark", "device"} <= EXECUTION_ONLY
    for key, value in {"compile": True, "cudnn_benchmark": True, "device": "cuda", "num_workers": 8}.items():
        assert cell_id(plain.model_copy(update={key: value})) == cell_id(plain), key
    assert cell_id(plain.model_copy(update={"bf16": True})) != cell_id(plain)  # bf16 changes the arithmetic


def test_finished_studies_keep_their_cell_ids():
    # computed before the fast-path settings existed: a new setting must not move them
    assert cell_id(TrainConfig()) == "99f86abbd58c"
    assert cell_id(TrainConfig(model="resnet32", dataset="cifar10", rule="bp", batch_size=1024)) == "43dfa0ab07eb"


class StopAfterTheFirstEpoch(Callback):
    def on_epoch_end(self, metrics):
        raise KeyboardInterrupt  # as if the process were interrupted here


def test_a_run_resumes_with_other_execution_settings_but_not_other_training(tmp_path):
    config = TrainConfig(**DIGITS, epochs=2, train_subset=64)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, checkpoint_dir=tmp_path, callbacks=[StopAfterTheFirstEpoch()]).fit()
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    for key in ("compile", "cudnn_benchmark"):  # as written before these settings existed
        del state["config"][key]
    torch.save(state, path)

    assert Trainer(config.model_copy(update={"cudnn_benchmark": True}), checkpoint_dir=tmp_path).start_epoch == 2
    with pytest.raises(CheckpointMismatch):
        Trainer(config.model_copy(update={"bf16": True}), checkpoint_dir=tmp_path)


@pytest.fixture
def restore_cudnn_flags():
    flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = flags


@pytest.mark.usefixtures("restore_cudnn_flags")
def test_cudnn_benchmark_trades_bit_reproducibility_for_the_fastest_algorithms():
    Trainer(TrainConfig(**DIGITS, epochs=1, train_subset=64, cudnn_benchmark=True))
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    Trainer(TrainConfig(**DIGITS, epochs=1, train_subset=64))
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


# ---------------------------------------------------------------------------- no host sync

# Reading a tensor's value into Python: on a GPU each of these waits for the device to finish.
HOST_READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__", "__format__",
              "nonzero"}


class HostReadCounter(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += getattr(func, "__name__", "") in HOST_READS
        return func(*args, **(kwargs or {}))


def host_reads_of_one_epoch(batches: int) -> int:
    config = TrainConfig(**DIGITS, epochs=1, train_subset=batches * DIGITS["batch_size"], **FAST_PATH)
    trainer = Trainer(config)
    with HostReadCounter() as counter:
        result = trainer.fit()
    assert result["status"] == "finished"
    return counter.count


def test_a_training_epoch_reads_its_metrics_back_once_not_per_batch():
    reads = host_reads_of_one_epoch(2)
    assert reads > 0  # the epoch's metrics are read, once
    assert host_reads_of_one_epoch(6) == reads


# ---------------------------------------------------------------------------- bf16 numerics


def paired_networks(rule: str):
    """The same network twice: as built (float32, channels-first) and in channels-last."""
    torch.manual_seed(0)
    net = build_network(model="resnet20", rule=rule, aux_depth=2, selection="uniform", decay="linear",
                        decay_coeff=0.5, head_layers=None, seed=0, width=0.5, in_channels=1, num_classes=10,
                        image_size=8)
    return net, copy.deepcopy(net).to(memory_format=torch.channels_last)


def one_batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(64, 1, 8, 8, generator=generator), torch.randint(0, 10, (64,), generator=generator)


def test_the_first_step_losses_agree_within_bf16_rounding():
    plain, fast = paired_networks("auglocal")
    x, y = one_batch()
    expected = plain.train_step(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fast.train_step(x.contiguous(memory_format=torch.channels_last), y)
    # Worst case: each layer on a loss's path rounds its input to bf16 once and the
    # relative errors add up: the output loss passes every layer, local loss i passes
    # layers 0..i and its auxiliary net.
    layers = len(plain.backbone.layers)
    assert abs(got.loss - expected.loss) <= layers * BF16_UNIT_ROUNDOFF * expected.loss
    for i, layer in enumerate(plain.plan.local):
        bound = (i + 1 + layer.aux_depth) * BF16_UNIT_ROUNDOFF * expected.aux_loss[i]
        assert abs(got.aux_loss[i] - expected.aux_loss[i]) <= bound, i


@pytest.mark.parametrize("rule", ["auglocal", "dgl", "infopro", "predsim", "bp"])
def test_under_bf16_losses_are_float32_cross_entropies_and_counts_are_whole(rule):
    _, fast = paired_networks(rule)
    x, y = one_batch()
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        step = fast.train_step(x, y)
        logits = fast(x)  # train mode: the same batch statistics as in the step
    assert step.loss.dtype == step.aux_loss.dtype == torch.float32
    torch.testing.assert_close(step.loss, F.cross_entropy(logits.float(), y))
    counts = torch.cat([step.correct.view(1).float(), step.aux_correct])
    assert torch.equal(counts, counts.round()) and ((0 <= counts) & (counts <= len(y))).all()


def test_the_fast_path_trains_like_the_plain_path_within_noise():
    config = TrainConfig(**DIGITS, epochs=4, lr=0.2)
    plain = Trainer(config).fit()
    fast = Trainer(config.model_copy(update=FAST_PATH)).fit()

    assert fast["plan"] == plain["plan"]
    assert fast["final"].keys() == plain["final"].keys()
    assert len(fast["final"]["aux_acc"]) == len(plain["final"]["aux_acc"]) == len(plain["plan"]["local_layers"])
    assert all(isinstance(a, float) and 0 <= a <= 1 for a in fast["final"]["aux_acc"])
    # Same seed, data order and initial weights; only rounding differs. Two runs that
    # train equally well differ on n test images by the sampling noise of an accuracy,
    # sqrt(p (1 - p) / n): allow three of those standard errors.
    p, n = plain["final"]["test_acc"], plain["data"]["test_size"]
    assert p > 0.8
    assert abs(fast["final"]["test_acc"] - p) <= 3 * math.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------------------- compile


@pytest.fixture
def fresh_dynamo():
    """A clean torch.compile cache that fails loudly instead of quietly running eagerly."""
    torch._dynamo.reset()
    with torch._dynamo.config.patch(recompile_limit=8, fail_on_recompile_limit_hit=True):
        yield
    torch._dynamo.reset()


@pytest.mark.usefixtures("fresh_dynamo")
def test_a_compiled_step_gives_the_plain_steps_numbers(monkeypatch):
    # aot_eager: the forward and backward graphs inductor would generate code for, run
    # by torch's own kernels (inductor's C++ compilation takes minutes on this CPU)
    monkeypatch.setattr(ablate.engine.compiling, "BACKEND", "aot_eager")
    # two local units and the head group: three graphs to compile
    config = TrainConfig(**{**DIGITS, "width": 0.25}, head_layers=8, epochs=1, train_subset=128)
    plain = Trainer(config).fit()["final"]
    compiled = Trainer(config.model_copy(update={"compile": True})).fit()["final"]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    for key in ("train_loss", "train_acc", "aux_loss", "aux_acc", "test_acc"):
        assert compiled[key] == pytest.approx(plain[key], rel=1e-5), key


@pytest.mark.usefixtures("fresh_dynamo")
def test_every_unit_of_a_deep_network_runs_compiled():
    # resnet32's local units come in more shapes (times two batch sizes) than dynamo's
    # default of 8 compiled variants per function; past it, units would run uncompiled
    net = build_network(model="resnet32", rule="auglocal", aux_depth=2, selection="uniform", decay="linear",
                        decay_coeff=0.5, head_layers=None, seed=0, width=0.125, in_channels=1, num_classes=10,
                        image_size=8)
    net.compile_step(backend="eager", dynamic=False)
    x, y = one_batch()
    for size in (16, 9):  # a full and a last, smaller batch
        net.train_step(x[:size], y[:size])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 8


def test_compile_without_a_compiler_is_one_line_naming_the_fix(monkeypatch, capsys):
    import torch._inductor.cpp_builder

    def no_compiler():
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch._inductor.cpp_builder, "get_cpp_compiler", no_compiler)
    code = main(["train", "--dataset", "digits", "--device", "cpu", "--compile", "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "C++ compiler" in err and "--no-compile" in err
