"""A report as tables: for the terminal (aligned columns, the figures' paths), markdown
(with its figures linked), HTML (figures embedded: what MLflow's artifact preview shows),
CSV (every figure, every interval) and a booktabs LaTeX tabular."""

from __future__ import annotations

import base64
import csv
import html
import io
import json

from .claims import render_claims
from .effects_render import effects_markdown
from .statistics import Comparison, Stat
from .summary import COLUMNS, COMPARED, Column, Report, ReportError

FORMATS = ("text", "markdown", "csv", "latex")  # what `ablate report --format` prints
FILE_NAMES = {"markdown": "report.md", "html": "report.html", "csv": "report.csv", "latex": "report.tex"}


def render(report: Report, fmt: str) -> str:
    renderers = {"text": to_text, "markdown": to_markdown, "html": to_html, "csv": to_csv, "latex": to_latex}
    if fmt not in renderers:
        raise ReportError(f"report format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return renderers[fmt](report)


def _stat_text(stat: Stat | None, col: Column, interval: bool) -> str:
    if stat is None:
        return "—"
    d = col.digits
    if stat.std is None or not col.spread:
        return f"{stat.mean:.{d}f}"
    text = f"{stat.mean:.{d}f} ± {stat.std:.{d}f}"
    if not (interval and col.interval):
        return text
    return text + (f" [{stat.ci_low:.{d}f}, {stat.ci_high:.{d}f}]" if stat.has_interval else " (no CI: n < 3)")


_SHORT_TEST = {"paired t-test": "paired t", "Welch's t-test": "Welch t"}


def _comparison_text(c: Comparison | None) -> str:
    if c is None:
        return "—"
    if c.test in ("reference", "reference has no finished runs", "same network as the reference"):
        return c.test
    diff = "" if c.diff is None else f"{c.diff:+.{COMPARED.digits}f} "
    if c.test == "too few seeds":
        return f"{diff}(too few seeds)"
    p = "p n/a: no variance" if c.p_value is None else f"p={c.p_value:.3g}"
    if c.p_holm is not None:
        p += f", Holm {c.p_holm:.3g}"
    n = f"n={c.n_pairs} pairs" if c.n_pairs is not None else f"n={c.n[0]} vs {c.n[1]}"
    interval = (f"[{c.ci_low:+.{COMPARED.digits}f}, {c.ci_high:+.{COMPARED.digits}f}] " if c.ci_low is not None
                else "")
    mdd = f", detectable ≥ {c.mdd:.{COMPARED.digits}f}" if c.mdd is not None else ", no interval: n < 3"
    flag = " ⚠ seed spread > Δ" if c.noisy else ""
    return f"{diff}{interval}({p}, {_SHORT_TEST[c.test]}, {n}{mdd}){flag}"


def _table(report: Report, interval: bool) -> tuple[list[str], list[list[str]]]:
    header = ["cell", "n"] + [c.title for c in COLUMNS]
    if report.reference:
        header.append(f"Δ {COMPARED.title.replace(' (%)', '')} vs reference (pp)")
    rows = []
    for cell in report.cells:
        row = [cell.label, cell.n_text]
        if cell.seeds:
            row += [_stat_text(cell.stats[c.name], c, interval) for c in COLUMNS]
        else:
            row += ["—"] * len(COLUMNS)
        if report.reference:
            row.append(_comparison_text(cell.comparison))
        rows.append(row)
    return header, rows


def to_markdown(report: Report, link_base: str = "") -> str:
    header, rows = _table(report, interval=True)
    escape = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [
        f"**{report.heading}**",
        "",
        "Values: mean ± std over seeds, accuracies with [95% CI]: a t-interval of the logits, mapped back, so it "
        "stays in [0, 100]; no interval below 3 seeds."
        + (f" Δ: {COMPARED.title} minus the reference cell's, paired by seed where possible, [95% CI], p also "
           "Holm-corrected over the comparisons; detectable: the smallest difference this n and seed spread "
           "would find with 80% power (α = 0.05); ⚠: a cell's seeds spread wider than Δ." if report.reference
           else "")
        + (f" Budget: {report.budget}." if report.budget else ""),
        "",
        "| " + " | ".join(map(escape, header)) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in rows]
    lines += [""] + [f"- {note}" for note in report.notes]
    lines += effects_markdown(report)
    lines += render_claims(report.claims)
    if report.settle:
        lines += ["", "What would settle the inconclusive claims:", "", *report.settle]
    if report.figures:
        lines += ["", "Figures (mean ± std over seeds):", ""]
        lines += [f"![{title}]({link_base}{path.name})" if path.suffix == ".png"
                  else f"- {title}: [{path.name}]({link_base}{path.name})" for title, path in report.figures]
    if report.commands:
        lines += ["", "Reproduce:", "", "```bash", *report.commands, "```"]
    return "\n".join(lines).rstrip() + "\n"


def to_text(report: Report) -> str:
    """For a terminal: the table with aligned columns, the notes and claims, and where
    the figures are (paths, not markdown links)."""
    header, rows = _table(report, interval=True)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    lines = [report.heading, "mean ± std over seeds, accuracies with [95% CI]", "",
             line(header), line(["-" * w for w in widths]), *map(line, rows)]
    lines += [""] + [f"- {note}" for note in report.notes] if report.notes else []
    if report.claims:
        lines += ["", "the paper's claims, checked on this study's numbers:"]
        lines += [f"  {c.verdict}: {c.claim} ({c.evidence})" for c in report.claims]
    if report.settle:
        lines += ["", "what would settle the inconclusive claims:"] + [f"  {line[2:]}" for line in report.settle]
    if report.figures:
        lines += ["", "figures:"] + [f"  {path}" for _, path in report.figures]
    if report.commands:
        lines += ["", "reproduce:"] + [f"  {command}" for command in report.commands]
    return "\n".join(lines).rstrip() + "\n"


def to_html(report: Report) -> str:
    """One self-contained page: the table, notes, and every PNG figure embedded (MLflow's
    artifact preview renders HTML but not a markdown file's image links)."""
    header, rows = _table(report, interval=True)
    cell = lambda tag, text: f"<{tag}>{html.escape(text)}</{tag}>"  # noqa: E731
    table = ["<table>", "<tr>" + "".join(cell("th", h) for h in header) + "</tr>"]
    table += ["<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows]
    parts = [f"<h3>{html.escape(report.heading)}</h3>", "<p>mean ± std over seeds, accuracies with [95% CI]</p>",
             *table, "</table>"]
    parts += ["<ul>" + "".join(cell("li", n) for n in report.notes) + "</ul>"] if report.notes else []
    for title, path in report.figures:
        if path.suffix == ".png" and path.exists():
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(title)}" '
                         f'style="max-width:100%"><figcaption>{html.escape(title)}</figcaption></figure>')
    style = ("body{font-family:sans-serif;margin:1em} table{border-collapse:collapse} "
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right} td:first-child,th:first-child"
             "{text-align:left} figure{margin:1em 0}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def to_csv(report: Report) -> str:
    factor_keys = list(dict.fromkeys(k for cell in report.cells for k in cell.factors))
    header = ["cell_id", "label", *factor_keys, "n", "expected_n", "missing_seeds"]
    for col in COLUMNS:
        header += [f"{col.name}_{s}" for s in ("n", "mean", "std", "ci95_low", "ci95_high")]
    header += ["reference_cell_id", "test", "n_pairs", f"diff_{COMPARED.name}", "p_value"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for cell in report.cells:
        row = [cell.cell_id, cell.label, *[_csv_value(cell.factors.get(k)) for k in factor_keys], len(cell.seeds),
               "" if cell.expected_seeds is None else len(cell.expected_seeds),
               " ".join(map(str, cell.missing_seeds))]
        for col in COLUMNS:
            s = cell.stats[col.name]
            row += [_csv_value(v) for v in ((s.n, s.mean, s.std, s.ci_low, s.ci_high) if s else (None,) * 5)]
        c = cell.comparison
        row += ["", "", "", "", ""] if c is None else [
            c.reference, c.test, _csv_value(c.n_pairs), _csv_value(c.diff), _csv_value(c.p_value)]
        writer.writerow(row)
    return out.getvalue()


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    text = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("—", "--")


def to_latex(report: Report) -> str:
    """A booktabs tabular (\\usepackage{booktabs}); mean ± std, intervals in the CSV."""
    header, rows = _table(report, interval=False)
    lines = [
        f"% {report.heading}",
        "% mean ± std over seeds; needs \\usepackage{booktabs}",
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(map(_latex_escape, header)) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(map(_latex_escape, row)) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
