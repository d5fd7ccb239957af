"""One experiment's result on a page: its figures, verdicts, tables, command and downloads.

Shared by the Experiments page's two views (this session's runs, and the shipped results set).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from hqcnn import experiments as ex
from hqcnn.markdown import md


def _scaled(value: float | None, scale: float) -> str:
    return "n/a" if value is None else f"{value * scale:.2f}"


def _comparison_table(result: ex.ExperimentResult) -> list[dict[str, Any]]:
    out = []
    for c in result.comparisons:
        stats = c.stats
        out.append(
            {
                "comparison": c.label,
                "metric": c.metric,
                "seeds": c.n,
                f"mean difference ({c.unit})": _scaled(c.mean_diff, c.scale),
                "95% CI": "n/a"
                if stats.ci_low is None
                else f"{_scaled(stats.ci_low, c.scale)} to {_scaled(stats.ci_high, c.scale)}",
                "paired t p": "n/a" if c.p is None else f"{c.p:.3f}",
                "Wilcoxon p": "n/a" if stats.wilcoxon_p is None else f"{stats.wilcoxon_p:.3f}",
                "Cohen's d_z": "n/a" if stats.cohens_dz is None else f"{stats.cohens_dz:.2f}",
                "verdict": c.verdict,
            }
        )
    return out


def render_result(result: ex.ExperimentResult, key: str = "") -> None:
    """One study's result: its question, claims, figures, summary, comparisons, command and downloads.

    `key` prefixes the widget keys, for a page that shows the same study in two places.
    """
    preset_label = result.preset.get("name", "custom")
    st.caption(
        f"{md(result.dataset)} · {md(preset_label)} preset · seeds {', '.join(map(str, result.seeds))} · "
        f"{len(result.table)} rows · finished {md(result.finished_at or '?')} in {result.seconds:.0f} s · "
        f"model {result.config.get('model', {}).get('n_qubits', '?')} qubits, depth "
        f"{result.config.get('model', {}).get('depth', '?')}"
    )
    st.markdown(f"**Question:** {result.study.question}")
    if result.stopped:
        st.warning("This run was stopped early: only the runs that finished are shown.")
    if result.table.empty:
        st.info("No run finished before the experiment was stopped, so there is nothing to show.")
        return
    claims = [row for row in ex.table2({result.name: result}) if row["source"]]
    for row in claims:
        # The verdicts quote condition labels, which an uploaded results.json supplies.
        st.info(f"**{md(row['claim'])}: {md(row['status'])}.** {md(row['verdict'], limit=2000)}")
    figs = result.memo("figures", lambda: ex.figures(result))  # built once per result, not on every rerun
    for fig_name, fig in figs.items():
        st.plotly_chart(fig, key=f"{key}fig_{result.name}_{fig_name}")
    for note in result.notes:
        st.caption(md(note, limit=1000))
    st.markdown("**Mean and 95% confidence interval per model and condition**")
    st.dataframe(ex.summary_table(result), hide_index=True, key=f"{key}summary_{result.name}")
    with st.expander(f"All {len(result.comparisons)} paired comparisons, with their tests"):
        st.dataframe(_comparison_table(result), hide_index=True, key=f"{key}comparisons_{result.name}")
    st.markdown("**Reproduce from the command line**")
    st.code(result.command, language="bash")
    stem = f"{result.name}-{preset_label}-{result.dataset}"
    d1, d2, d3 = st.columns(3)
    d1.download_button(
        "results.csv", result.csv_text(), f"{stem}-results.csv", "text/csv", key=f"{key}dl_csv_{result.name}"
    )
    d2.download_button(
        "summary.csv",
        result.summary_csv_text(),
        f"{stem}-summary.csv",
        "text/csv",
        key=f"{key}dl_summary_{result.name}",
    )
    d3.download_button(
        "results.json",
        result.json_text(),
        f"{stem}-results.json",
        "application/json",
        key=f"{key}dl_json_{result.name}",
    )
    fig_cols = st.columns(min(len(figs), 4) or 1)
    for i, (fig_name, fig) in enumerate(figs.items()):
        fig_cols[i % len(fig_cols)].download_button(
            f"{fig_name}.html",
            lambda fig=fig: fig.to_html(include_plotlyjs=True, full_html=True),
            f"{stem}-{fig_name}.html",
            "text/html",
            key=f"{key}dl_fig_{result.name}_{fig_name}",
            help="An interactive, self-contained page (works offline). For a PNG use the camera icon on the chart.",
        )
