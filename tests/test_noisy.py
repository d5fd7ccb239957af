"""The trained hybrid's circuit on PennyLane's noisy and finite-shot simulators."""

from __future__ import annotations

import numpy as np
import pytest

from hqcnn.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from hqcnn.errors import ConfigError
from hqcnn.noisy import noisy_predict_proba
from hqcnn.train import predict_proba, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained_hybrid():
    config = RunConfig(
        data=DataConfig(dataset="pneumoniamnist", train_per_class=20),
        model=ModelConfig(n_qubits=3, depth=2, n_features=6),
        train=TrainConfig(epochs=2, batch_size=16, threads=1),
    )
    return run(config)


def test_noiseless_mixed_simulation_reproduces_the_trained_model(trained_hybrid):
    model = trained_hybrid.result.model
    x = trained_hybrid.data.x_test[:80]
    exact = noisy_predict_proba(model, x, noise=0.0, shots=None)
    reference = predict_proba(model, x)
    np.testing.assert_allclose(exact, reference, atol=1e-5)
    assert (exact.argmax(1) == reference.argmax(1)).all()
    noisy = noisy_predict_proba(model, x, noise=0.05)
    assert not np.allclose(noisy, reference, atol=1e-4)  # the noise does something


def test_finite_shots_are_reproducible_from_the_seed(trained_hybrid):
    model = trained_hybrid.result.model
    x = trained_hybrid.data.x_test[:20]
    first = noisy_predict_proba(model, x, noise=0.01, shots=50, seed=5)
    again = noisy_predict_proba(model, x, noise=0.01, shots=50, seed=5)
    other = noisy_predict_proba(model, x, noise=0.01, shots=50, seed=6)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_classical_twin_has_no_circuit_to_run(trained_hybrid):
    twin = run(
        RunConfig(data=trained_hybrid.config.data, model=ModelConfig(kind="classical"), train=TrainConfig(epochs=1))
    )
    with pytest.raises(ConfigError, match="Only the hybrid"):
        noisy_predict_proba(twin.result.model, twin.data.x_test[:4])
