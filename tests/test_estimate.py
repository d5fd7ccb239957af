"""The run-time estimate: steps timed on this computer, counted the way the training loop runs them."""

from __future__ import annotations

import threading

from hqcnn.config import ModelConfig
from hqcnn.estimate import StepTimes, describe_seconds, measure, run_seconds
from hqcnn.train import Callback, run
from tests.conftest import quick_config


def test_the_estimate_counts_the_steps_and_evaluations_of_the_training_loop(small_pneumonia):
    config = quick_config(epochs=3, average_last=0.5)

    class Count(Callback):
        steps = 0

        def on_batch_end(self, step, loss, accuracy):
            Count.steps = step

    run(config, data=small_pneumonia, callback=Count(), stop=threading.Event())
    n_train, n_val, n_test = len(small_pneumonia.y_train), len(small_pneumonia.y_val), len(small_pneumonia.y_test)
    # One second per step and nothing for evaluation gives the loop's step count; the reverse gives
    # the images evaluated: a validation per epoch, the test, and the averaging's extra passes.
    assert run_seconds(config.train, n_train, n_val, n_test, StepTimes(1.0, 0.0)) == Count.steps
    evaluated = run_seconds(config.train, n_train, n_val, n_test, StepTimes(0.0, 1.0))
    assert evaluated == 3 * n_val + n_test + n_train + n_val


def test_measured_steps_take_longer_for_a_bigger_circuit_and_batch():
    small = measure(ModelConfig(n_qubits=2, depth=1, n_features=2), 1, 2, 28, 16)
    big = measure(ModelConfig(n_qubits=8, depth=4, n_features=8), 1, 2, 28, 256)
    assert 0 < small.train_step_s < big.train_step_s and small.eval_image_s > 0


def test_describe_seconds_rounds_for_people():
    assert describe_seconds(0.2) == "about 1 s"
    assert describe_seconds(43) == "about 45 s"
    assert describe_seconds(200) == "about 3 min"

