"""Figures that scale: a 26-cell depth × schedule study becomes one panel per schedule, every
line says its n, cells that have not run are named, and a cell has one colour in the
report's figures and in the notebooks (no training: the reports are made up)."""

import numpy as np
import pytest

from ablate.report.layer_curves import LayerCurve, layer_figure
from ablate.report.figures import accuracy_vs_aux_depth_figure
from ablate.report.palette import palette
from ablate.report.statistics import summarize
from ablate.report.summary import COLUMNS, CellSummary, Report


def cell(i, factors, seeds):
    rng = np.random.default_rng(i)
    values = {"final_test_acc_pct": list(60 + rng.normal(size=len(seeds))), "peak_memory_mib": [100.0] * len(seeds)}
    stats = {c.name: summarize(values[c.name]) if c.name in values and seeds else None for c in COLUMNS}
    return CellSummary(f"c{i:02d}", factors, list(seeds), (0,), {}, stats)


@pytest.fixture
def depth_study():
    """25 AugLocal cells (depth 1-5 × constant / linear τ / exponential τ) and bp, one seed;
    one cell has not run."""
    cells = []
    for depth in range(1, 6):
        for decay, taus in (("constant", [None]), ("linear", [0.5, 1.0]), ("exponential", [0.5, 1.0])):
            for tau in taus:
                factors = {"aux_depth": depth, "decay": decay, **({} if tau is None else {"decay_coeff": tau})}
                missing = (depth, decay, tau) == (5, "linear", 1.0)
                cells.append(cell(len(cells), factors, [] if missing else [0]))
    cells.append(cell(len(cells), {"rule": "bp"}, [0]))
    return Report("depth_decay", cells, None, (0,))


def texts(fig):
    found = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    found += [t.get_text() for t in fig.texts] + [fig._supxlabel.get_text() if fig._supxlabel else ""]
    return found


def test_a_26_cell_study_gets_one_panel_per_schedule_with_n_and_missing_cells_named(depth_study):
    fig = accuracy_vs_aux_depth_figure(depth_study)
    assert [ax.get_title() for ax in fig.axes] == ["decay=constant", "decay=linear", "decay=exponential"]
    written = texts(fig)
    assert "τ=0.5 (n=1)" in written and "τ=1 (n=1)" in written  # labels at the lines, n included
    assert sum("bp (n=1)" in t for t in written) == 3  # the reference in every panel
    assert any("not run yet" in t and "aux_depth=5, decay=linear, decay_coeff=1.0" in t for t in written)
    assert "one seed each" in fig.axes[0].get_ylabel()  # not "mean ± std" for n = 1
    assert all(ax.get_legend() is None for ax in fig.axes)  # no legend over the data


def test_per_layer_curves_of_many_cells_are_small_multiples_with_legends_outside(depth_study):
    colours = palette([(c.cell_id, c.factors) for c in depth_study.cells])
    curves = [LayerCurve(c.cell_id, c.label, "probe_acc", np.linspace(0.3, 0.9, 17), np.zeros(17), 1, i,
                         c.factors, colours[c.cell_id]) for i, c in enumerate(depth_study.cells) if c.seeds]
    fig = layer_figure(curves, "linear probe test accuracy", "depth_decay")
    assert len(fig.axes) == 3
    for ax in fig.axes:
        legend = ax.get_legend()
        anchor = legend.get_bbox_to_anchor().transformed(ax.transAxes.inverted())
        assert anchor.y0 < 0  # below the panel, not over its data
        assert all("(n=1)" in t.get_text() for t in legend.get_texts())
    assert "one seed each" in fig._suptitle.get_text()


def test_a_cell_has_one_colour_in_the_report_and_the_notebooks(tmp_path):
    from ablate.report.notebook import cell_colours
    from ablate.spec import load_study

    path = tmp_path / "colours.yaml"
    path.write_text("settings: {dataset: digits, model: resnet20, width: 0.25, epochs: 1, device: cpu}\n"
                    "grid: {rule: [bp, auglocal], aux_depth: [1, 2]}\n")
    spec = load_study(path)
    report_colours = palette(spec.cells())
    by_label = cell_colours(spec)
    assert len(set(by_label.values())) == 3
    for (cell_id, factors), (label, colour) in zip(spec.cells(), by_label.items()):
        assert report_colours[cell_id] == colour, label
