"""kt_lr: the learning rate from two cheap probes, plugged into Keras Tuner.

Probes: :func:`range_test` (Smith / fast.ai sweep), :func:`loss_differential`
(subsampled one-step loss differentials with confidence intervals) and
:func:`find_lr` (both, fused into one answer). In a search: :class:`LROracle` upgrades
any oracle, :class:`LRTunerMixin` any tuner, or use one of the four drop-in tuners;
the options are an :class:`LRConfig`. Distributed search: :mod:`kt_lr.distribute`.
"""

from kt_lr import schedules
from kt_lr.config import LRConfig
from kt_lr.differential import loss_differential
from kt_lr.finder import find_lr
from kt_lr.ledger import LRProbeWarning
from kt_lr.oracle import LROracle
from kt_lr.range_test import range_test
from kt_lr.report import LRReport, load_lr_report
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
from kt_lr.tuners import BayesianOptimization, GridSearch, Hyperband, LRTunerMixin, RandomSearch

__version__ = "0.1.0"

__all__ = [
    # the probes and their results
    "find_lr",
    "range_test",
    "loss_differential",
    "LRFinding",
    "RangeTestResult",
    "LossDifferentialResult",
    # in a Keras Tuner search
    "LROracle",
    "LRConfig",
    "LRTunerMixin",
    "RandomSearch",
    "BayesianOptimization",
    "Hyperband",
    "GridSearch",
    "LRReport",
    "load_lr_report",
    "LRProbeWarning",
    # schedules from a finding
    "schedules",
    "Cyclical",
    "OneCycle",
    "OneCycleMomentum",
    "ScheduledLR",
    "hp_schedule",
    "plot_schedule",
    "schedule_from",
]
