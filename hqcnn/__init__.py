"""HQCNN Explorer's library: data, the hybrid model, training, reading its answers, experiments.

Importing it first pins torch's CPU kernels for reproducible numbers (hqcnn/determinism.py),
before torch runs its first kernel; `HQCNN_KERNELS=native` opts out.
"""

from hqcnn.determinism import pin_environment

pin_environment()
