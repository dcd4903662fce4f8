"""kt_lr: the learning rate from two cheap probes, plugged into Keras Tuner.

Probes: :func:`range_test` (Smith / fast.ai sweep), :func:`loss_differential`
(subsampled one-step loss differentials with confidence intervals) and
:func:`find_lr` (both, fused into one answer).
"""

from kt_lr import schedules, space
from kt_lr.differential import loss_differential
from kt_lr.finder import find_lr
from kt_lr.oracle import LRConfig, LROracle, LRProbeWarning, LRReport, load_lr_report
from kt_lr.range_test import range_test
from kt_lr.results import LossDifferentialResult, LRFinding, RangeTestResult
from kt_lr.schedules import (
    Cyclical,
    OneCycle,
    OneCycleMomentum,
    ScheduledLR,
    hp_schedule,
    plot_schedule,
    schedule_from,
)
from kt_lr.tuners import (
    BayesianOptimization,
    GridSearch,
    Hyperband,
    LRTunerMixin,
    RandomSearch,
    distributed_role,
    serve_oracle,
)

__version__ = "0.1.0"

__all__ = [
    "BayesianOptimization",
    "GridSearch",
    "Hyperband",
    "LRConfig",
    "LROracle",
    "LRProbeWarning",
    "LRReport",
    "LRTunerMixin",
    "RandomSearch",
    "distributed_role",
    "load_lr_report",
    "serve_oracle",
    "space",
    "Cyclical",
    "OneCycle",
    "OneCycleMomentum",
    "ScheduledLR",
    "hp_schedule",
    "plot_schedule",
    "schedule_from",
    "schedules",
    "LRFinding",
    "LossDifferentialResult",
    "RangeTestResult",
    "find_lr",
    "loss_differential",
    "range_test",
]
