"""The files one analysis leaves beside its run: numbers as .npy and .csv, how they were
made as .json, and figures as PNG with labelled axes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..files import write_text_atomic
from .probe import ProbeResult
from .similarity import Similarity


def write_similarity(similarity: Similarity, directory: Path, *, label_a: str, label_b: str,
                     stem: str = "cka") -> list[Path]:
    """`stem`.npy / .csv / .json, a heatmap, and (same depth) the same-layer curve."""
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / f"{stem}.npy", similarity.matrix)
    table = [[f"{label_a} \\ {label_b}", *similarity.names_b]]
    table += [[name, *(_number(v) for v in row)] for name, row in zip(similarity.names_a, similarity.matrix)]
    write_text_atomic(directory / f"{stem}.csv", _csv(table))
    write_text_atomic(directory / f"{stem}.json", json.dumps(
        {**similarity.record(), "rows": label_a, "columns": label_b}, indent=2))
    files = [directory / f"{stem}.npy", directory / f"{stem}.csv", directory / f"{stem}.json",
             _heatmap(similarity, directory / f"{stem}_heatmap.png", label_a, label_b)]
    if len(similarity.names_a) == len(similarity.names_b):
        files.append(_layer_curve(similarity.diagonal(), similarity.names_a, directory / f"{stem}_same_layer.png",
                                  ylabel=f"linear CKA with {label_b}, same layer",
                                  title=f"{label_a} vs {label_b} ({similarity.estimator}, n={similarity.examples})",
                                  ylim=(0, 1.02)))
    return files


def write_probes(result: ProbeResult, directory: Path, *, label: str) -> list[Path]:
    """probe_acc.npy (test accuracy per representation), probe_acc.csv (with validation and
    training accuracy and the chosen C), probe.json, probe_acc.png."""
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "probe_acc.npy", result.test_acc)
    table = [["representation", "test_acc", "val_acc", "train_acc", "C"]]
    table += [[name, _number(t), _number(v), _number(tr), _number(c)]
              for name, t, v, tr, c in zip(result.names, result.test_acc, result.val_acc, result.train_acc,
                                           result.chosen_c)]
    write_text_atomic(directory / "probe_acc.csv", _csv(table))
    write_text_atomic(directory / "probe.json", json.dumps(result.record(), indent=2))
    plot = _layer_curve(result.test_acc, result.names, directory / "probe_acc.png",
                        ylabel="linear probe test accuracy",
                        title=f"{label}: linear probes ({result.reduction}, {result.train_examples} training examples)",
                        ylim=(0, 1.02))
    return [directory / "probe_acc.npy", directory / "probe_acc.csv", directory / "probe.json", plot]


def _heatmap(similarity: Similarity, path: Path, label_a: str, label_b: str) -> Path:
    rows, cols = similarity.matrix.shape
    fig = Figure(figsize=(max(5.6, 1.6 + 0.22 * cols), max(4.6, 1.2 + 0.22 * rows)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(similarity.matrix, vmin=0, vmax=1, cmap="magma", origin="lower", aspect="auto")
    fig.colorbar(image, ax=ax, label="linear CKA")
    ax.set_xlabel(f"layer of {label_b} (last = output)", fontsize="small")
    ax.set_ylabel(f"layer of {label_a}", fontsize="small")
    ax.set_title(f"CKA ({similarity.estimator}, n={similarity.examples}, {similarity.reduction})", fontsize="small")
    fig.savefig(path, dpi=120)
    return path


def _layer_curve(values: np.ndarray, names: list[str], path: Path, *, ylabel: str, title: str,
                 ylim: tuple[float, float]) -> Path:
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(range(len(values)), values, marker="o")
    ax.set_xticks(range(len(names)), [n.removeprefix("layer ") for n in names], fontsize="x-small")
    ax.set_xlabel("layer (last = output)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(*ylim)
    ax.set_title(title, fontsize="small")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)
    return path


def _number(value) -> str:
    return "nan" if value is None or np.isnan(value) else f"{float(value):.6g}"


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
