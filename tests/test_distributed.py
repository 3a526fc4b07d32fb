"""`nproc`: one trial as two processes (gloo on the CPU) trains as one process that takes
the same global batches in the same two slices and averages their gradients, and resumes
from the checkpoints its first process writes."""

import pytest
import torch

from ablate.config import TrainConfig
from ablate.engine import Callback, Trainer
from ablate.engine.schedule import learning_rate
from ablate.engine.stopping import StopRequest

TWO = dict(model="resnet20", width=0.25, dataset="digits", batch_size=32, train_subset=128, val_size=32,
           epochs=2, lr=0.05, schedule="constant", rule="auglocal", aux_depth=2, device="cpu", nproc=2)


class StopAfterFirstEpoch(Callback):
    def __init__(self, stop: StopRequest):
        self.stop = stop

    def on_epoch_end(self, metrics):
        self.stop.request()


def one_process_on_the_same_slices(config: TrainConfig):
    """The reference: every global batch split in two as the ranks split it, both slices'
    gradients averaged before one optimiser step."""
    trainer = Trainer(config.model_copy(update={"nproc": 1}))
    net, optimizer = trainer.net, trainer.optimizer
    for epoch in range(1, config.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, epoch)
        trainer.data.train.set_epoch(epoch)
        net.train()
        loss_sum, seen = 0.0, 0
        for x, y in trainer.data.train:
            optimizer.zero_grad(set_to_none=True)
            for xs, ys in zip(torch.tensor_split(x, 2), torch.tensor_split(y, 2)):
                out = net.train_step(xs, ys)  # backward accumulates the two slices' gradients
                loss_sum += float(out.loss) * len(ys)
                seen += len(ys)
            for p in net.parameters():
                if p.grad is not None:
                    p.grad /= 2
            optimizer.step()
    return net, loss_sum / seen  # the last epoch's


def test_two_processes_train_as_one_on_the_same_global_batches_and_resume(tmp_path):
    config = TrainConfig(**TWO)
    stop = StopRequest()
    with pytest.raises(KeyboardInterrupt):  # after epoch 1 and its checkpoint, as Ctrl-C does
        Trainer(config, checkpoint_dir=tmp_path, stop=stop, callbacks=[StopAfterFirstEpoch(stop)]).fit()
    result = Trainer(config, checkpoint_dir=tmp_path).fit()  # resumes at epoch 2
    assert result["status"] == "finished", result["message"]
    assert [m["epoch"] for m in result["history"]] == [1, 2]
    reference, train_loss = one_process_on_the_same_slices(config)

    two = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["model"]  # written by rank 0
    params = dict(reference.named_parameters())
    assert params and set(params) <= set(two)
    for name, value in params.items():
        torch.testing.assert_close(two[name], value.detach(), rtol=1e-4, atol=1e-6, msg=name)
    assert abs(result["final"]["train_loss"] - train_loss) <= 1e-5 * train_loss


def test_more_processes_than_examples_in_a_batch_is_a_one_line_error():
    from click.testing import CliRunner

    from ablate.cli.main import cli

    done = CliRunner().invoke(cli, ["train", "--dataset", "digits", "--nproc", "4", "--batch-size", "2"])
    assert done.exit_code == 2 and "batch_size 2 gives some of the 4 processes no examples" in done.output
    assert "Traceback" not in done.output


def test_a_streaming_loader_decodes_only_its_ranks_equal_slice_of_each_batch():
    from ablate.data import StreamLoader

    class Numbered(torch.utils.data.Dataset):
        def __len__(self):
            return 23

        def __getitem__(self, i):
            return torch.full((1, 2, 2), float(i)), i

    def batches(rank=None):
        loader = StreamLoader(Numbered(), batch_size=8, shuffle=True, num_workers=0, seed=3)
        if rank is not None:
            loader.shard(rank, 2)
        return [y.tolist() for _, y in loader]

    whole, first, second = batches(), batches(0), batches(1)
    assert [len(b) for b in whole] == [8, 8, 7] and [len(b) for b in first] == [len(b) for b in second] == [4, 4, 3]
    assert [a + b for a, b in zip(first, second)] == [w[:len(w) - len(w) % 2] for w in whole]
