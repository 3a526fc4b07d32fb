"""One colour per cell, the same in every figure of the report and in the notebooks, and
how a figure of many cells is split into small multiples.

Up to ten cells each get a colour of their own (matplotlib's C0…C9, in the study's cell
order). With more, no palette keeps them apart: the colour says the auxiliary depth (a
sequential map, light to dark) or, in a study that does not vary it, the cell's place;
the other factors become panels and line styles (`Layout`).
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib import colormaps

DISTINCT = 10  # cells that each get a colour of their own
STYLES = ("-", "--", ":", "-.")


def varied(factor_sets: list[dict]) -> list[str]:
    """The factors that take more than one value among these cells, in their order."""
    keys = list(dict.fromkeys(k for factors in factor_sets for k in factors))
    return [k for k in keys if len({repr(f.get(k)) for f in factor_sets}) > 1]


def palette(cells: list[tuple[str, dict]]) -> dict[str, str | tuple]:
    """{cell id: colour} for the study's cells (cell id, factors), in the study's order."""
    if len(cells) <= DISTINCT:
        return {cell_id: f"C{i}" for i, (cell_id, _) in enumerate(cells)}
    depths = sorted({f["aux_depth"] for _, f in cells if "aux_depth" in f})
    ramp = colormaps["viridis"]
    if len(depths) > 1:
        position = {d: 0.85 * i / (len(depths) - 1) for i, d in enumerate(depths)}  # 0.85: no pale yellow
        return {cell_id: ramp(position[f["aux_depth"]]) if "aux_depth" in f else "0.35" for cell_id, f in cells}
    return {cell_id: ramp(0.85 * i / (len(cells) - 1)) for i, (cell_id, _) in enumerate(cells)}


@dataclass(frozen=True)
class Layout:
    """How cells are laid out over a figure: `panel` splits them into panels (None: one),
    `style` sets the line style within a panel; colour is the palette's."""

    panel: str | None
    style: str | None

    @classmethod
    def of(cls, factor_sets: list[dict], many: bool, axis: str | None = None) -> Layout:
        """A layout for these cells; `axis` is a factor already on the x axis. Panels only
        for `many` cells (one panel reads best otherwise)."""
        keys = [k for k in varied(factor_sets) if k not in (axis, "aux_depth")]
        if not many or not keys:
            return cls(None, None)
        return cls(keys[0], keys[1] if len(keys) > 1 else None)

    def panels(self, factor_sets: list[dict]) -> list:
        """The panel values in order; a cell without the panel factor (e.g. bp, which has no
        decay) is drawn in every panel, as a reference."""
        if self.panel is None:
            return [None]
        return list(dict.fromkeys(f[self.panel] for f in factor_sets if self.panel in f)) or [None]

    def in_panel(self, factors: dict, value) -> bool:
        return self.panel is None or self.panel not in factors or factors[self.panel] == value

    def linestyle(self, factors: dict, factor_sets: list[dict]) -> str:
        if self.style is None or self.style not in factors:
            return "-"
        values = list(dict.fromkeys(f[self.style] for f in factor_sets if self.style in f))
        return STYLES[values.index(factors[self.style]) % len(STYLES)]


def key(cells: list[tuple[str, dict]]) -> list[tuple[str, str | tuple]]:
    """(label, colour) of what the colours mean where a cell's colour is not its own
    (more than DISTINCT cells): one entry per auxiliary depth; [] otherwise."""
    colours = palette(cells)
    if len(cells) <= DISTINCT:
        return []
    seen = {}
    for cell_id, factors in cells:
        label = f"d={factors['aux_depth']}" if "aux_depth" in factors else "no auxiliary depth"
        seen.setdefault(label, colours[cell_id])
    return list(seen.items()) if len(seen) > 1 else []
