"""kt_lr: the learning rate from two cheap probes, plugged into Keras Tuner.

Probes: :func:`range_test` (Smith / fast.ai sweep), :func:`loss_differential`
(subsampled one-step loss differentials with confidence intervals) and
:func:`find_lr` (both, fused into one answer).
"""

from kt_lr.differential import loss_differential
from kt_lr.finder import find_lr
from kt_lr.range_test import range_test
from kt_lr.results import LossDifferentialResult, LRFinding, RangeTestResult

__version__ = "0.1.0"

__all__ = [
    "LRFinding",
    "LossDifferentialResult",
    "RangeTestResult",
    "find_lr",
    "loss_differential",
    "range_test",
]
