"""Every study on a user's own image folder, through the command line, as a researcher runs them."""

from __future__ import annotations

import pytest

from hqcnn import experiments as ex
from hqcnn.example_folder import export_example
from tests.test_experiments import EXPECTED_ROWS, TINY

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_every_study_runs_on_an_own_folder_from_the_command_line(folder_cache, tmp_path, monkeypatch, capsys):
    from hqcnn.__main__ import main

    folder = export_example("breastmnist", 24, tmp_path / "my_ultrasound")  # class folders of PNGs
    monkeypatch.setitem(ex.PRESETS, "quick", TINY)  # the CLI's quick preset, shrunk for the test
    out = tmp_path / "runs"
    args = ["experiment", "all", "--dataset", str(folder), "--qubits", "3", "--depth", "1", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    printed = capsys.readouterr().out
    for name, study in ex.STUDIES.items():
        run = out / f"{name}-quick-my_ultrasound"
        result = ex.ExperimentResult.load(run)
        assert result.dataset == str(folder) and set(result.table["dataset"]) == {str(folder)}, name
        assert len(result.table) == EXPECTED_ROWS[name], name
        assert result.table["accuracy"].between(0, 1).all() and result.comparisons, name
        assert f"{study.title} on {folder}" in printed
    # Table 2 is decided from these runs as from MedMNIST's.
    from hqcnn.experiments.claims import NOT_MEASURED

    results = {name: ex.ExperimentResult.load(out / f"{name}-quick-my_ultrasound") for name in ex.STUDIES}
    rows = ex.table2(results)
    assert all(row["status"] != NOT_MEASURED and str(folder) in row["source"] for row in rows), rows


def test_one_study_runs_on_an_own_folder_from_the_command_line(folder_cache, tmp_path, monkeypatch, capsys):
    # The quick tier's share of the test above: the smallest study, the same path through the command line.
    from hqcnn.__main__ import main

    folder = export_example("breastmnist", 24, tmp_path / "my_ultrasound")
    monkeypatch.setitem(ex.PRESETS, "quick", TINY)
    out = tmp_path / "runs"
    args = ["experiment", "paired", "--dataset", str(folder), "--qubits", "3", "--depth", "1", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    result = ex.ExperimentResult.load(out)  # one study: the folder is its run folder
    assert result.dataset == str(folder) and set(result.table["dataset"]) == {str(folder)}
    assert len(result.table) == EXPECTED_ROWS["paired"]
    assert result.table["accuracy"].between(0, 1).all() and result.comparisons
    assert f"{ex.STUDIES['paired'].title} on {folder}" in capsys.readouterr().out
