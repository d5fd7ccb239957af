"""The Experiments page's view of the results set shipped with the app.

What it says comes from `hqcnn.experiments` (the set, its label, Table 2 by dataset, the plain
summary); this module only lays it out. The set is read once per change of its files and shared
by every session (it is read-only): the page opens on it without re-reading tens of files.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from hqcnn import determinism
from hqcnn import experiments as ex
from hqcnn.experiments import results_set, set_table
from hqcnn.experiments.provenance import PROVENANCE_FILE
from hqcnn.markdown import md
from ui.common import user_errors
from ui.experiment_view import render_result

SHIPPED, SESSION = "Shipped results", "This session's runs"
VIEW_KEY = "exp_view"
FIGURE_KEY = "shipped_figure"
DATASET_KEY = "shipped_dataset"
MAKE_COMMAND = (
    "python -m hqcnn experiment all --preset full --datasets pneumoniamnist breastmnist retinamnist "
    "--executor ray --out results/shipped"
)


def choose_view() -> str:
    """The radio between the shipped set and this session's runs; SESSION, said in one line, when none is shipped."""
    if not results_set.exists():
        st.caption(f"No results set is shipped with this app yet (it is made with `{MAKE_COMMAND}`).")
        return SESSION
    return st.radio("Show", (SHIPPED, SESSION), horizontal=True, key=VIEW_KEY)


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """The set's files with their change times and sizes: a new set is read anew."""
    files = [folder / PROVENANCE_FILE, *sorted(folder.glob("*/results.json"))]
    return tuple((str(f.relative_to(folder)), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())


@st.cache_resource(show_spinner="Reading the shipped results…", max_entries=2)
def _read(folder: str, fingerprint: tuple) -> tuple[ex.ResultsSet, list[ex.ClaimRow], list[str]]:
    """The set, its Table 2 by dataset and its plain summary (an HQCNNError is raised, never cached)."""
    loaded = ex.load_set(folder)
    rows = ex.table2_by_dataset(loaded.results)
    return loaded, rows, ex.plain_summary(loaded.results, rows)


def render_shipped() -> bool:
    """Show the shipped set; False (with the error shown) when it cannot be read."""
    folder = ex.shipped_dir()
    shown = False
    with user_errors(stop=False):
        loaded, rows, summary = _read(str(folder), _fingerprint(folder))
        shown = True
    if not shown:
        st.caption("This session's runs are shown instead.")
        return False
    st.subheader("Shipped results")
    st.markdown(f"**{md(results_set.label(loaded), limit=400)}**")
    st.caption(md(determinism.summary(loaded.provenance.get("compute")), limit=600))
    st.markdown("\n".join(f"- {md(sentence, limit=1000)}" for sentence in summary))
    if loaded.skipped:
        skipped = "; ".join(f"{s.get('study')} on {s.get('dataset')}: {s.get('reason')}" for s in loaded.skipped)
        st.caption("Not in this set: " + md(skipped, limit=1000))
    _table(loaded, rows)
    _figure_behind_a_verdict(loaded, rows)
    _datasets(loaded)
    return True


def _table(loaded: ex.ResultsSet, rows: list[ex.ClaimRow]) -> None:
    st.markdown("**The paper's expectations, measured on each dataset**")
    st.table(set_table.display_rows(rows), hide_index=True)
    st.caption(
        "Each cell: the verdict, the deciding paired difference (hybrid − classical twin unless the comparison names "
        "other sides) with its 95% confidence interval, its p value after a Holm–Bonferroni correction, and the "
        "figure that shows it (choose it below). The correction is per dataset: over the comparisons that decide "
        "that dataset's column, at α = 0.05. Where several comparisons decide a claim, the one with the smallest "
        "corrected p is shown. 'No significant difference' means 'not shown', not 'no difference'."
    )
    c1, c2 = st.columns(2)
    c1.download_button(
        "This table (CSV)",
        ex.records_to_csv(set_table.records(rows)),
        "table2-by-dataset.csv",
        "text/csv",
        key="shipped_dl_table",
    )
    c2.download_button(
        "How it was made (provenance.json)",
        (loaded.folder / PROVENANCE_FILE).read_bytes(),
        PROVENANCE_FILE,
        "application/json",
        key="shipped_dl_provenance",
    )


def _figure_behind_a_verdict(loaded: ex.ResultsSet, rows: list[ex.ClaimRow]) -> None:
    """A selectbox of the table's cells: the chosen cell's figure is drawn at once, under it.

    A Markdown link to an anchor could not reach the figures of a dataset not selected below,
    nor those in a tab not open, so a choice is made here instead.
    """
    cells = {f"{row.key}|{dataset}": (row, dataset) for row in rows for dataset, c in row.cells.items() if c.figure}

    def label(option: str) -> str:
        row, dataset = cells[option]
        return f"{row.claim} · {set_table.dataset_title(dataset)} → {row.cells[dataset].figure_title}"

    choice = st.selectbox(
        "Show the figure behind a verdict",
        list(cells),
        index=None,
        format_func=label,
        placeholder="Choose a claim and a dataset",
        key=FIGURE_KEY,
    )
    if choice is None:
        return
    row, dataset = cells[choice]
    cell = row.cells[dataset]
    result = loaded.results[dataset][cell.study]
    figure = result.memo("figures", lambda: ex.figures(result)).get(cell.figure)
    st.subheader(md(f"{row.claim} on {set_table.dataset_title(dataset)}: {cell.figure_title}", limit=400))
    if figure is None:
        st.info("This figure has nothing to show for this result.")
        return
    st.plotly_chart(figure, key="shipped_verdict_figure")
    st.caption(md(f"{cell.status}. Deciding comparison: {cell.comparison.label}, {cell.effect}.", limit=1000))


def _datasets(loaded: ex.ResultsSet) -> None:
    st.subheader("Each study on one dataset")
    dataset = st.radio(
        "Dataset", loaded.datasets, format_func=set_table.dataset_title, horizontal=True, key=DATASET_KEY
    )
    results = list(loaded.results[dataset].values())
    tabs = st.tabs([r.title for r in results])
    for tab, result in zip(tabs, results, strict=True):
        with tab, user_errors(stop=False):
            render_result(result, key=f"shipped_{dataset}_")
