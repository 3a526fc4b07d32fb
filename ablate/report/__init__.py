"""`ablate report`: what a study's finished runs say. Per cell, mean ± std over seeds with
intervals, each cell against its reference, per-layer curves, the paper's claims checked
on the numbers, tables in three formats, figures, and the results page.

Modules, one idea each:
    statistics    summaries over seeds and tests against a reference
    summary       what a report is made of (Column, CellSummary, Report)
    build         a report from a study's runs, written with its figures
    tables        markdown, CSV and LaTeX
    figures       accuracy against auxiliary depth and against peak memory
    layer_curves  per-layer probe accuracy and CKA to the reference, per cell
    claims        the paper's claims, checked
    results_page  one section per study in a page such as RESULTS.md
    notebook      a study's analyses as data frames, for the notebooks
"""

from .build import build_report, reproduce_commands, study_report, write_report_files
from .results_page import write_results_section
from .statistics import Comparison, Stat, compare, summarize
from .summary import COLUMNS, CellSummary, Column, Report, ReportError, cell_label
from .tables import FILE_NAMES, FORMATS, render, to_csv, to_latex, to_markdown

__all__ = [
    "COLUMNS", "FILE_NAMES", "FORMATS", "CellSummary", "Column", "Comparison", "Report", "ReportError", "Stat",
    "build_report", "cell_label", "compare", "render", "reproduce_commands", "study_report", "summarize", "to_csv",
    "to_latex", "to_markdown", "write_report_files", "write_results_section",
]
