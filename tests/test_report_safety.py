"""Reports never destroy: a report that finds no finished runs is one line, exit code 2,
and leaves the report already there as it was; a report of a study never run creates
nothing; a report whose writing fails half-way leaves the previous one whole."""

import errno
import os

import pytest

import ablate.files
import ablate.report.build
from ablate.cli import main
from ablate.spec import load_study
from ablate.study import run_study

from test_study import tracking_uri, write_study  # noqa: F401 (fixture)


def report(capsys, *argv):
    code = main(["report", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def reported(tmp_path_factory, tracking_uri):
    """A trained study with its report written: (study file, report folder)."""
    folder = tmp_path_factory.mktemp("reported")
    study = write_study(folder, "reported", grid={"lr": [0.05]})
    run_study(load_study(study), tracking_uri=tracking_uri, progress=False, echo=lambda line: None)
    assert main(["report", str(study), "--tracking-uri", tracking_uri]) == 0
    return study, load_study(study).directory / "report"


def contents(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_report_of_a_study_never_run_is_one_line_exit_2_and_creates_nothing(capsys, tmp_path):
    study = write_study(tmp_path, "never-run", grid={"lr": [0.05]})

    code, out, err = report(capsys, study)

    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: study 'never-run' has no finished runs in the MLflow store sqlite:///")
    assert "fix --tracking-uri" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["never-run.yaml"]


def test_a_mistyped_tracking_uri_leaves_a_good_report_untouched(capsys, tmp_path, reported):
    study, folder = reported
    before = contents(folder)
    assert "report.md" in before and "accuracy_vs_peak_memory.png" in before
    mistyped = tmp_path / "mlfow.db"

    code, _, err = report(capsys, study, "--tracking-uri", f"sqlite:///{mistyped}")

    assert code == 2 and err.count("\n") == 1 and "no finished runs" in err
    assert contents(folder) == before and not mistyped.exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_report_that_cannot_be_written_half_way_leaves_the_previous_one_whole(capsys, monkeypatch, reported,
                                                                               tracking_uri, code):
    study, folder = reported
    (folder / "report.md").write_text("the previous report\n")  # what a new report.md would replace
    before = contents(folder)
    write = ablate.report.build.write_text_atomic

    def full_after_the_markdown(path, text):
        if path.name == "report.html":  # report.md and the figures are written by now
            raise OSError(code, "injected")
        write(path, text)

    monkeypatch.setattr(ablate.report.build, "write_text_atomic", full_after_the_markdown)

    status, out, err = report(capsys, study, "--tracking-uri", tracking_uri)

    assert status == 2 and err.count("\n") == 1, err
    assert err == f"error: cannot write the report to {folder}: {os.strerror(code)}; choose another " \
                  "--out or free space there\n"
    assert contents(folder) == before  # no new file mixed into the old report
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".report")] == []  # nor a staging folder


def test_a_report_into_an_unwritable_folder_is_one_line(capsys, monkeypatch, reported, tracking_uri, tmp_path):
    study, _ = reported
    # as root chmod cannot make a folder unwritable: the error the kernel would give is injected
    def refused(**where):
        raise PermissionError(errno.EACCES, "Permission denied", where["dir"])

    monkeypatch.setattr(ablate.files.tempfile, "mkdtemp", refused)

    code, _, err = report(capsys, study, "--tracking-uri", tracking_uri, "--out", tmp_path / "locked" / "report")

    assert code == 2 and err == (f"error: cannot write the report to {tmp_path / 'locked' / 'report'}: Permission "
                                 "denied; choose another --out or free space there\n")
