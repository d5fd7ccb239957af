"""Several sessions training at once on one server: all finish, each with its own model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.state import SETTINGS

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.mark.slow
def test_four_sessions_train_at_once_without_cross_talk():
    sessions = []
    for n_qubits in (2, 3, 4, 5):  # a different circuit per session makes cross-talk visible
        at = AppTest.from_file(APP, default_timeout=120)
        values = {name: spec.default for name, spec in SETTINGS.items()}
        values.update(n_qubits=n_qubits, n_features=2 * n_qubits, train_per_class=20, epochs=2, batch_size=32)
        at.session_state["settings"] = values
        at.run()
        at.switch_page("pages/3_Train.py").run()
        sessions.append((n_qubits, at))
    for _, at in sessions:  # all four press Train before any finishes
        at.button(key="train_button").click().run()
    assert all(at.session_state["job"] is not None for _, at in sessions)

    deadline = time.monotonic() + 300
    while any(at.session_state["job"] is not None for _, at in sessions):
        assert time.monotonic() < deadline, "the sessions did not all finish"
        time.sleep(0.5)
        for _, at in sessions:
            at.run()

    models = set()
    for n_qubits, at in sessions:
        assert not at.exception and not at.error, (n_qubits, [e.value for e in at.error])
        trained = at.session_state["models"]["hybrid"]
        assert trained.config.model.n_qubits == n_qubits
        assert trained.metrics["params"]["quantum"] == 2 * 2 * n_qubits  # depth 2 × n qubits × (RY, RZ)
        assert [m.label for m in at.metric][:1] == ["Accuracy"]
        models.add(id(trained.model))
    assert len(models) == 4
