"""The data package: sources read in their real on-disk formats, the validation split,
the device-resident loader and its batched augmentation, and one-line errors."""

from __future__ import annotations

import ast
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torchvision.datasets.cifar
import torchvision.datasets.stl10
import torchvision.datasets.svhn
from PIL import Image

import ablate.data
from ablate.data import DATASETS, DataError, DeviceLoader, load_data
from ablate.data import fashion_mnist
from ablate.data.augment import CropFlip, crop_windows, flip_where, pad_images, random_crop, random_flip
from ablate.data.digits import MEAN as DIGITS_MEAN, STD as DIGITS_STD, load_digits
from ablate.data.idx import read_idx
from ablate.data.split import holdout_split, validation_count

# --------------------------------------------------------------------------- writers
# Each writes a tiny dataset in the layout the real files have on disk.


def write_idx(path: Path, array: np.ndarray, gzipped: bool) -> Path:
    """IDX: 0x00 0x00, type 0x08 (unsigned byte), ndim, big-endian uint32 dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path = path.with_name(path.name + ".gz") if gzipped else path
    path.write_bytes(gzip.compress(payload) if gzipped else payload)
    return path


def write_fashion_mnist(folder: Path, gzipped: bool, num_train: int = 5, num_test: int = 3,
                        seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, num_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, num_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write_idx(folder / stem, array, gzipped)
    return arrays


def numbered_images(n: int, channels: int, size: int, seed: int = 0) -> np.ndarray:
    """Random uint8 images (N, C, H, W) whose pixel [0, 0, 0] is the image's number, so a
    loaded set can be put back in written order."""
    images = np.random.default_rng(seed).integers(0, 256, (n, channels, size, size), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    return images


def write_cifar10(root: Path, per_batch: int = 2, num_test: int = 3) -> tuple[np.ndarray, ...]:
    """cifar-10-batches-py/: data_batch_1..5 and test_batch, pickled dicts with 'data'
    (N, 3072) uint8 rows of 1024 red, 1024 green, 1024 blue values, and 'labels'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = numbered_images(5 * per_batch, 3, 32, seed=1)
    train_labels = np.arange(5 * per_batch) % 10
    test = numbered_images(num_test, 3, 32, seed=2)
    test_labels = np.arange(num_test) % 10
    batches = [(f"data_batch_{i + 1}", slice(i * per_batch, (i + 1) * per_batch)) for i in range(5)]
    parts = [(name, train[rows], train_labels[rows]) for name, rows in batches] + [("test_batch", test, test_labels)]
    for name, images, labels in parts:
        entry = {"batch_label": name, "data": images.reshape(len(images), 3072),
                 "labels": [int(v) for v in labels], "filenames": [f"{name}_{i}.png" for i in range(len(images))]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck"], "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return train, train_labels, test, test_labels


def write_svhn(root: Path, num_train: int = 6, num_test: int = 4) -> tuple[np.ndarray, ...]:
    """train_32x32.mat / test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) in 1..10, 10 meaning 0."""
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for split, n, seed in (("train", num_train, 3), ("test", num_test, 4)):
        images = numbered_images(n, 3, 32, seed=seed)
        digits = np.arange(n) % 10
        scipy.io.savemat(root / f"{split}_32x32.mat",
                         {"X": images.transpose(2, 3, 1, 0), "y": np.where(digits == 0, 10, digits).reshape(n, 1)})
        written += [images, digits]
    return tuple(written)


def write_stl10(root: Path, num_train: int = 4, num_test: int = 3) -> tuple[np.ndarray, ...]:
    """stl10_binary/: *_X.bin uint8 images, each channel stored column-major; *_y.bin
    uint8 labels 1..10."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    written = []
    for split, n, seed in (("train", num_train, 5), ("test", num_test, 6)):
        images = numbered_images(n, 3, 96, seed=seed)
        labels = np.arange(n) % 10
        (folder / f"{split}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
        written += [images, labels]
    (folder / "unlabeled_X.bin").write_bytes(numbered_images(1, 3, 96).transpose(0, 1, 3, 2).tobytes())
    return tuple(written)


def write_image_folder(root: Path, classes=("cat", "dog", "eel"), per_class: int = 4, val_per_class: int = 2):
    rng = np.random.default_rng(7)
    for part, count in (("train", per_class), ("val", val_per_class)):
        for name in classes:
            (root / part / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / part / name / f"{i}.png")


def in_written_order(images: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A loader's images and labels sorted by the number numbered_images wrote in them."""
    images, labels = images.cpu().numpy(), labels.cpu().numpy()
    order = np.argsort(images[:, 0, 0, 0], kind="stable")
    return images[order], labels[order]


@pytest.fixture
def without_checksums(monkeypatch):
    """torchvision compares every file with the MD5 of the official release; let it accept
    the tiny files written here. Its dataset classes still do all the reading."""
    def exists(fpath, md5=None):
        return os.path.isfile(fpath)
    for module in (torchvision.datasets.cifar, torchvision.datasets.svhn, torchvision.datasets.stl10):
        monkeypatch.setattr(module, "check_integrity", exists)


@pytest.fixture
def no_system_fashion_mnist(monkeypatch, tmp_path):
    """Hide a Debian-installed Fashion-MNIST, so a test sees only the files it wrote."""
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", tmp_path / "no-system-dir")


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- digits and the split


def test_digits_loads_with_the_info_a_backbone_needs():
    bundle = load_data("digits", batch_size=64)
    info = bundle.info
    assert (info.name, info.num_classes, info.channels, info.image_size) == ("digits", 10, 1, 8)
    assert info.train_size + info.val_size + info.test_size == 1797
    assert info.test_size == 359 and info.val_size == round(0.1 * (1797 - 359))
    x, y = next(iter(bundle.train))
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(bundle.train) == -(-info.train_size // 64)


def test_digits_normalisation_constants_are_the_statistics_of_its_non_test_images():
    arrays = load_digits()
    assert arrays.train_images.mean().item() == pytest.approx(DIGITS_MEAN[0], abs=1e-3)
    assert arrays.train_images.std().item() == pytest.approx(DIGITS_STD[0], abs=1e-3)


def test_digits_test_set_does_not_move_with_the_split_seed():
    a = load_data("digits", split_seed=0).test
    b = load_data("digits", split_seed=5).test
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_split_parts_add_up_and_are_disjoint():
    train, val = holdout_split(1000, 0.2, seed=3)
    assert len(train) == 800 and len(val) == 200
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(1000))


def test_same_split_seed_same_split_and_another_seed_another():
    first, again, other = (holdout_split(500, 50, seed=s) for s in (1, 1, 2))
    assert np.array_equal(first[1], again[1]) and np.array_equal(first[0], again[0])
    assert not np.array_equal(np.sort(first[1]), np.sort(other[1]))
    val_a, val_b = load_data("digits", split_seed=1).val, load_data("digits", split_seed=1).val
    assert torch.equal(val_a.images, val_b.images)
    assert not torch.equal(val_a.images, load_data("digits", split_seed=2).val.images)


@pytest.mark.parametrize("val_size, count", [(0.25, 25), (0.001, 1), (7, 7), (7.0, 7), (0, 0), (0.0, 0)])
def test_val_size_is_a_fraction_a_count_or_zero(val_size, count):
    assert validation_count(100, val_size) == count


@pytest.mark.parametrize("val_size", [1.5, -3, 100, True, "0.1"])
def test_val_size_out_of_range_is_a_data_error(val_size):
    with pytest.raises(DataError):
        validation_count(100, val_size)


def test_no_validation_split_gives_no_val_loader():
    bundle = load_data("digits", val_size=0)
    assert bundle.val is None and bundle.info.val_size == 0 and bundle.info.train_size == 1797 - 359


def test_train_subset_keeps_the_first_k_of_the_permuted_training_part():
    train, val = holdout_split(300, 30, seed=4)
    small_train, small_val = holdout_split(300, 30, seed=4, train_subset=40)
    assert np.array_equal(small_train, train[:40]) and np.array_equal(small_val, val)
    assert load_data("digits", train_subset=100).info.train_size == 100
    with pytest.raises(DataError, match="train_subset"):
        holdout_split(300, 30, seed=4, train_subset=271)


# --------------------------------------------------------------------------- DeviceLoader


def labelled_by_index(n: int = 23) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.arange(n * 3 * 4 * 4, dtype=torch.float32).reshape(n, 3, 4, 4) / (n * 48)
    return images, torch.arange(n)


def one_epoch(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_device_loader_yields_every_example_once_per_epoch():
    images, labels = labelled_by_index()
    loader = DeviceLoader(images, labels, batch_size=5, shuffle=True, mean=(0,) * 3, std=(1,) * 3, seed=0)
    assert len(loader) == 5 and loader.num_examples == 23
    orders = []
    for _ in range(3):
        _, y = one_epoch(loader)
        assert sorted(y.tolist()) == list(range(23))
        orders.append(y.tolist())
    assert orders[0] != orders[1] != orders[2]


def test_device_loader_drop_last_drops_the_short_batch():
    images, labels = labelled_by_index()
    loader = DeviceLoader(images, labels, batch_size=5, drop_last=True, mean=(0,) * 3, std=(1,) * 3)
    assert len(loader) == 4 and [len(y) for _, y in loader] == [5, 5, 5, 5]


def test_same_seed_and_epoch_give_the_same_batches_and_augmentation():
    images, labels = labelled_by_index()
    def make(seed):
        return DeviceLoader(images, labels, batch_size=4, shuffle=True, mean=(0.5,) * 3, std=(0.2,) * 3,
                            augmentation=CropFlip(padding=1), seed=seed)

    run, resumed, other = make(7), make(7), make(8)
    epochs = [one_epoch(run) for _ in range(3)]
    resumed.set_epoch(2)
    x, y = one_epoch(resumed)
    assert torch.equal(x, epochs[2][0]) and torch.equal(y, epochs[2][1])
    assert resumed.epoch == 3
    assert not torch.equal(one_epoch(other)[1], epochs[0][1])


def test_training_batches_never_end_in_a_batch_of_one():
    # batch normalisation cannot train on one example: 1438 = 3 * 479 + 1
    assert len(load_data("digits", val_size=0, batch_size=479).train) == 3
    assert len(load_data("digits", val_size=0, batch_size=480).train) == 3
    assert len(load_data("digits", val_size=0, batch_size=500).train) == 3


def test_eval_loader_keeps_order_and_only_normalises():
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    loader = DeviceLoader(images, torch.arange(10), batch_size=4, mean=mean, std=std)
    for _ in range(2):
        x, y = one_epoch(loader)
        assert y.tolist() == list(range(10))
        expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        torch.testing.assert_close(x, expected)


def test_train_loader_of_a_bundle_augments_and_eval_loaders_do_not():
    bundle = load_data("digits", val_size=0.1)
    assert bundle.train.augmentation == CropFlip(padding=1, pad_mode="zero", flip=False)
    assert bundle.val.augmentation is None and not bundle.val.shuffle
    assert bundle.test.augmentation is None and not bundle.test.shuffle
    assert load_data("digits", augment=False).train.augmentation is None


# --------------------------------------------------------------------------- batched augmentation


def test_crop_with_padding_zero_is_the_identity():
    images = torch.rand(6, 3, 8, 8)
    generator = torch.Generator().manual_seed(0)
    for mode in ("zero", "reflect"):
        assert torch.equal(random_crop(images, 0, generator=generator, mode=mode), images)


def test_crop_windows_match_a_per_image_reference():
    images = torch.rand(5, 2, 7, 9)
    padded = pad_images(images, 3, "reflect")
    offsets = torch.tensor([[0, 0], [6, 6], [2, 5], [6, 0], [1, 3]])
    windows = crop_windows(padded, offsets, (7, 9))
    for b, (top, left) in enumerate(offsets.tolist()):
        assert torch.equal(windows[b], padded[b, :, top:top + 7, left:left + 9])


@pytest.mark.parametrize("mode", ["zero", "reflect"])
def test_every_random_crop_is_a_shifted_window_of_the_padded_image(mode):
    images = torch.rand(8, 3, 6, 6)
    padding = 2
    out = random_crop(images, padding, generator=torch.Generator().manual_seed(1), mode=mode)
    assert out.shape == images.shape
    padded = pad_images(images, padding, mode)
    shifts = set()
    for b in range(len(images)):
        matches = [(top, left) for top in range(2 * padding + 1) for left in range(2 * padding + 1)
                   if torch.equal(out[b], padded[b, :, top:top + 6, left:left + 6])]
        assert matches, f"image {b} is no window of its padded input"
        shifts.add(matches[0])
    assert len(shifts) > 1  # one offset per image, not one per batch


def test_zero_and_reflect_padding_fill_the_border_differently():
    images = torch.rand(1, 1, 4, 4) + 0.5
    assert pad_images(images, 1, "zero")[0, 0, 0].eq(0).all()
    assert torch.equal(pad_images(images, 1, "reflect")[0, 0, 0, 1:5], images[0, 0, 1])


def test_flip_mirrors_exactly_the_masked_images():
    images = torch.rand(6, 3, 5, 5)
    mask = torch.tensor([True, False, False, True, True, False])
    out = flip_where(images, mask)
    for b in range(6):
        expected = images[b].flip(-1) if mask[b] else images[b]
        assert torch.equal(out[b], expected)


def test_random_flip_leaves_each_image_whole_or_mirrored():
    images = torch.rand(64, 1, 3, 3)
    out = random_flip(images, generator=torch.Generator().manual_seed(2))
    flipped = [torch.equal(out[b], images[b].flip(-1)) for b in range(64)]
    kept = [torch.equal(out[b], images[b]) for b in range(64)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


def test_crop_flip_rejects_unknown_pad_modes():
    with pytest.raises(ValueError, match="pad mode"):
        CropFlip(padding=2, pad_mode="edge")


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.parametrize("gzipped", [True, False])
def test_idx_reader_reads_gzipped_and_plain_files(tmp_path, gzipped):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "images", images, gzipped), 3), images)
    assert np.array_equal(read_idx(write_idx(tmp_path / "labels", labels, gzipped), 1), labels)


def test_idx_reader_checks_the_magic_number(tmp_path):
    labels = write_idx(tmp_path / "labels", np.arange(5, dtype=np.uint8), gzipped=True)
    with pytest.raises(DataError, match="0x00000803"):
        read_idx(labels, 3)  # a label file where images are expected
    truncated = tmp_path / "short"
    truncated.write_bytes(bytes([0, 0, 8, 1]) + (9).to_bytes(4, "big") + bytes(5))
    with pytest.raises(DataError, match="promises"):
        read_idx(truncated, 1)


@pytest.mark.parametrize("gzipped, subfolder", [(True, "."), (False, "fashion-mnist"), (True, "FashionMNIST/raw")])
def test_fashion_mnist_reads_idx_files_under_the_data_root(tmp_path, no_system_fashion_mnist, gzipped, subfolder):
    written = write_fashion_mnist(tmp_path / "root" / subfolder, gzipped)
    bundle = load_data("fashion-mnist", root=tmp_path / "root", val_size=0)
    info = bundle.info
    assert (info.num_classes, info.channels, info.image_size) == (10, 1, 28)
    assert (info.train_size, info.val_size, info.test_size) == (5, 0, 3)
    assert torch.equal(bundle.test.images[:, 0], torch.from_numpy(written["t10k-images-idx3-ubyte"]))
    assert bundle.test.labels.tolist() == written["t10k-labels-idx1-ubyte"].tolist()
    assert sorted(bundle.train.labels.tolist()) == sorted(written["train-labels-idx1-ubyte"].tolist())


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, no_system_fashion_mnist):
    with pytest.raises(DataError) as excinfo:
        load_data("fashion-mnist", root=tmp_path)
    message = one_line_error(excinfo)
    assert "apt-get install dataset-fashion-mnist" in message and str(tmp_path) in message
    assert "--data-root" in message


def test_fashion_mnist_with_images_and_labels_disagreeing_is_a_data_error(tmp_path, no_system_fashion_mnist):
    write_fashion_mnist(tmp_path, gzipped=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8), gzipped=True)
    with pytest.raises(DataError, match="5 train images but 4 labels"):
        load_data("fashion-mnist", root=tmp_path)


def test_labels_outside_the_classes_are_a_data_error(tmp_path, no_system_fashion_mnist):
    write_fashion_mnist(tmp_path, gzipped=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 12, 3], dtype=np.uint8), gzipped=False)
    with pytest.raises(DataError, match="test labels outside 0..9"):
        load_data("fashion-mnist", root=tmp_path)


@pytest.mark.skipif(fashion_mnist.find_files(fashion_mnist.SYSTEM_DIR) is None,
                    reason=f"Debian's Fashion-MNIST is not installed in {fashion_mnist.SYSTEM_DIR} "
                           "(apt-get install dataset-fashion-mnist)")
def test_debian_fashion_mnist_is_found_and_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_DATA_ROOT", str(tmp_path / "empty"))  # the default root, without the files
    bundle = load_data("fashion-mnist", val_size=5000, batch_size=256)
    info = bundle.info
    assert (info.train_size, info.val_size, info.test_size) == (55000, 5000, 10000)
    assert torch.bincount(bundle.test.labels).tolist() == [1000] * 10
    # the normalisation constants are the statistics of the 60000 training images
    counts = torch.bincount(torch.cat([bundle.train.images, bundle.val.images]).flatten(), minlength=256)
    levels = torch.arange(256, dtype=torch.float64) / 255
    mean = (counts * levels).sum() / counts.sum()
    std = ((counts * (levels - mean) ** 2).sum() / counts.sum()).sqrt()
    assert mean.item() == pytest.approx(info.mean[0], abs=1e-3)
    assert std.item() == pytest.approx(info.std[0], abs=1e-3)


def test_an_explicit_data_root_without_the_files_is_an_error_not_debians_copy(tmp_path):
    with pytest.raises(DataError, match=rf"no IDX files .* in {tmp_path / 'empty'};"):
        load_data("fashion-mnist", root=tmp_path / "empty")


# --------------------------------------------------------------------------- torchvision sets


def test_cifar10_is_read_by_torchvision_from_its_pickled_batches(tmp_path, without_checksums):
    train, train_labels, test, test_labels = write_cifar10(tmp_path)
    bundle = load_data("cifar10", root=tmp_path, val_size=3, batch_size=4)
    info = bundle.info
    assert (info.num_classes, info.channels, info.image_size) == (10, 3, 32)
    assert (info.train_size, info.val_size, info.test_size) == (7, 3, 3)
    images, labels = in_written_order(torch.cat([bundle.train.images, bundle.val.images]),
                                      torch.cat([bundle.train.labels, bundle.val.labels]))
    assert np.array_equal(images, train) and np.array_equal(labels, train_labels)
    assert np.array_equal(bundle.test.images.numpy(), test)
    assert bundle.test.labels.tolist() == test_labels.tolist()
    assert bundle.train.augmentation == CropFlip(padding=4, pad_mode="reflect", flip=True)
    x, y = next(iter(bundle.train))
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.int64


def test_missing_cifar10_without_download_says_pass_download(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_data("cifar10", root=tmp_path)
    message = one_line_error(excinfo)
    assert message.startswith("cifar10: no data under") and "--download" in message


def test_cifar10_files_failing_the_checksum_are_reported_as_such(tmp_path):
    write_cifar10(tmp_path)  # real torchvision check: these are not the official files
    with pytest.raises(DataError, match="checksum") as excinfo:
        load_data("cifar10", root=tmp_path)
    one_line_error(excinfo)


def test_svhn_is_read_by_torchvision_from_its_mat_files(tmp_path, without_checksums):
    train, train_digits, test, test_digits = write_svhn(tmp_path)
    bundle = load_data("svhn", root=tmp_path, val_size=0)
    assert (bundle.info.channels, bundle.info.image_size, bundle.info.test_size) == (3, 32, 4)
    images, labels = in_written_order(bundle.train.images, bundle.train.labels)
    assert np.array_equal(images, train) and np.array_equal(labels, train_digits)
    assert np.array_equal(bundle.test.images.numpy(), test)
    assert bundle.test.labels.tolist() == test_digits.tolist()  # label 10 read as digit 0
    assert not bundle.train.augmentation.flip


def test_stl10_is_read_by_torchvision_from_its_binary_files(tmp_path, without_checksums):
    train, train_labels, test, test_labels = write_stl10(tmp_path)
    bundle = load_data("stl10", root=tmp_path, val_size=1, batch_size=2)
    info = bundle.info
    assert (info.channels, info.image_size, info.train_size, info.val_size, info.test_size) == (3, 96, 3, 1, 3)
    images, labels = in_written_order(torch.cat([bundle.train.images, bundle.val.images]),
                                      torch.cat([bundle.train.labels, bundle.val.labels]))
    assert np.array_equal(images, train) and np.array_equal(labels, train_labels)
    assert np.array_equal(bundle.test.images.numpy(), test)
    assert bundle.test.labels.tolist() == test_labels.tolist()
    x, _ = next(iter(bundle.train))
    assert x.shape == (2, 3, 96, 96)


@pytest.mark.parametrize("name", ["svhn", "stl10"])
def test_missing_torchvision_sets_say_pass_download(tmp_path, name):
    with pytest.raises(DataError, match=f"^{name}: no data under .*--download") as excinfo:
        load_data(name, root=tmp_path)
    one_line_error(excinfo)


# --------------------------------------------------------------------------- ImageFolder


def test_imagefolder_streams_train_val_and_test_at_the_asked_size(tmp_path):
    write_image_folder(tmp_path)
    bundle = load_data("imagefolder", root=tmp_path, image_size=16, val_size=3, batch_size=5,
                       num_workers=0, split_seed=1)
    info = bundle.info
    assert (info.num_classes, info.channels, info.image_size) == (3, 3, 16)
    assert (info.train_size, info.val_size, info.test_size) == (9, 3, 6)
    assert len(bundle.train) == 2 and bundle.train.num_examples == 9
    for loader in (bundle.train, bundle.val, bundle.test):
        x, y = one_epoch(loader)
        assert x.shape == (loader.num_examples, 3, 16, 16) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and set(y.tolist()) <= {0, 1, 2}
    _, test_labels = one_epoch(bundle.test)
    assert test_labels.tolist() == [0, 0, 1, 1, 2, 2]  # the 'val' folder, in order


def test_imagefolder_eval_transform_is_deterministic_and_train_order_is_seeded(tmp_path):
    write_image_folder(tmp_path)
    def make():
        return load_data("imagefolder", root=tmp_path, image_size=16, val_size=3, batch_size=4,
                         num_workers=0, seed=3)

    first, second = make(), make()
    assert torch.equal(one_epoch(first.val)[0], one_epoch(second.val)[0])
    assert torch.equal(one_epoch(first.train)[1], one_epoch(second.train)[1])


def test_imagefolder_without_its_folders_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="--data-root"):
        load_data("imagefolder")
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no folder .*val") as excinfo:
        load_data("imagefolder", root=tmp_path)
    one_line_error(excinfo)


def test_imagefolder_with_different_classes_in_train_and_val_is_a_data_error(tmp_path):
    write_image_folder(tmp_path)
    (tmp_path / "val" / "fox").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "val" / "fox" / "0.png")
    with pytest.raises(DataError, match="different classes.*fox"):
        load_data("imagefolder", root=tmp_path, num_workers=0)


# --------------------------------------------------------------------------- the package


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError) as excinfo:
        load_data("mnist")
    message = one_line_error(excinfo)
    assert all(name in message for name in DATASETS)


def test_image_size_applies_to_imagefolder_only():
    with pytest.raises(DataError, match="imagefolder only"):
        load_data("digits", image_size=32)
    assert load_data("digits", image_size=8).info.image_size == 8


def test_the_data_package_imports_neither_optuna_nor_mlflow():
    package = Path(ablate.data.__file__).parent
    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert "torch" in imported and not imported & {"optuna", "mlflow"}
