"""LRConfig: the options of kt_lr's probes in a search, given once.

The same options reach :class:`~kt_lr.LROracle` and the kt_lr tuners either as an
``LRConfig`` (``lr_config=LRConfig(...)``) or as keywords named like its fields; the
keyword names are read from the dataclass fields, never listed by hand. Pure Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kt_lr import space as sp
from kt_lr.batching import BATCH_SCALING_RULES
from kt_lr.validation import check_choice, check_int, check_seconds


@dataclass
class LRConfig:
    """Options of :class:`~kt_lr.LROracle` (also accepted by the kt_lr tuners).

    Args:
        lr_hp_name: name of the learning-rate hyperparameter (an ``hp.Float`` or a
            numeric ``hp.Choice``), declared once, outside any conditional scope.
        probe_key_hps: names of discrete hyperparameters that change the LR scale; one
            probe per combination of their values (those absent from the space are
            ignored). ``()`` probes once.
        num_seeds: trials seeded per probe key: the probe's pick, then pick / 10 and
            pick x 10**0.5, then geometric points inside the narrowed interval (all
            within it). ``0`` disables seeding.
        min_decades: minimum width of the narrowed interval, in decades.
        min_choices: for a numeric ``hp.Choice`` learning rate, the fewest values a
            narrowing keeps: the values inside the probe's interval, topped up with the
            nearest ones outside it (dropped values are named in an
            :class:`~kt_lr.LRProbeWarning` and in the report).
        widen: factor applied to each side of the probe's interval before intersecting.
        wait_for_probes: hand out IDLE trials while a probe runs elsewhere (distributed
            search) instead of ordinary trials drawn from the un-narrowed space.
        batch_size_hp_name: a batch-size hyperparameter. As an ``hp.Choice`` of at most
            4 values it is probed once per value (it joins the probe key). Otherwise a
            trial whose batch size differs from the probe's gets its LR interval (and
            seed) scaled by ``batch_scaling``, never above the top of the probed
            interval when scaled up; the space's LR range covers every interval.
        batch_scaling: ``"auto"`` (linear for SGD, sqrt for adaptive optimizers),
            ``"linear"``, ``"sqrt"`` or ``"none"`` (no scaling).
        probe_timeout: seconds after which a probe without an answer (its worker died
            or hangs) is handed to the next worker that asks; ``None`` waits forever.
            Set it well above the time one probe takes.
        probe_attempts: how many times a probe key is handed out before its timeouts
            count as a failure (the original range is kept, with a warning). A probe
            that *reports* an error is not retried: the error would repeat.
        trial_timeout: seconds after which an ordinary trial without a result (its
            worker died) is taken from its worker and queued for the next worker that
            asks; after a second timeout it ends as ``FAILED``. ``None`` (the default,
            as in Keras Tuner) waits forever. Set it well above the longest trial.
    """

    lr_hp_name: str = sp.DEFAULT_LR_HP_NAME
    probe_key_hps: tuple[str, ...] = sp.DEFAULT_PROBE_KEY_HPS
    num_seeds: int = 3
    min_decades: float = 0.5
    min_choices: int = 2
    widen: float = 1.0
    wait_for_probes: bool = True
    batch_size_hp_name: str | None = "batch_size"
    batch_scaling: str = "auto"
    probe_timeout: float | None = 300.0
    probe_attempts: int = 2
    trial_timeout: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.lr_hp_name, str) or not self.lr_hp_name:
            raise ValueError(
                f"`lr_hp_name` must be a non-empty string (e.g. 'learning_rate'), "
                f"got {self.lr_hp_name!r}."
            )
        if isinstance(self.probe_key_hps, str):
            self.probe_key_hps = (self.probe_key_hps,)
        self.probe_key_hps = tuple(self.probe_key_hps or ())
        if not all(isinstance(n, str) for n in self.probe_key_hps):
            raise ValueError(
                f"`probe_key_hps` must be hyperparameter names, got {self.probe_key_hps!r}."
            )
        self.num_seeds = check_int("num_seeds", self.num_seeds, 0)
        self.min_choices = check_int("min_choices", self.min_choices, 1)
        self.min_decades, self.widen = sp.check_width_options(self.min_decades, self.widen)
        check_choice("batch_scaling", self.batch_scaling, BATCH_SCALING_RULES)
        self.probe_timeout = check_seconds(
            "probe_timeout", self.probe_timeout, example=300, none_ok=True
        )
        self.trial_timeout = check_seconds(
            "trial_timeout", self.trial_timeout, example=3600, none_ok=True
        )
        self.probe_attempts = check_int("probe_attempts", self.probe_attempts, 1)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keyword names accepted wherever an ``LRConfig`` is (its field names)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def pop_options(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Remove the entries named like an ``LRConfig`` field from ``kwargs``; return them."""
        names = cls.option_names()
        return {k: kwargs.pop(k) for k in list(kwargs) if k in names}

    @classmethod
    def build(cls, lr_config: LRConfig | None = None, **options: Any) -> LRConfig:
        """An ``LRConfig`` from ``lr_config`` or from keyword ``options`` (not both).

        Args:
            lr_config: a ready ``LRConfig`` (validated again, it may have been edited).
            **options: the fields of ``LRConfig`` by name.

        Raises:
            TypeError: ``lr_config`` is not an ``LRConfig``, or an option name is unknown.
            ValueError: both ``lr_config`` and options were given, or an option is invalid.
        """
        unknown = sorted(set(options) - set(cls.option_names()))
        if unknown:
            raise TypeError(
                f"Unknown kt_lr option(s) {unknown}; the options are the fields of "
                f"kt_lr.LRConfig: {', '.join(cls.option_names())}."
            )
        if lr_config is None:
            return cls(**options)
        if not isinstance(lr_config, LRConfig):
            raise TypeError(
                f"`lr_config` must be a kt_lr.LRConfig, got {type(lr_config).__name__}."
            )
        if options:
            raise ValueError(
                f"Pass the kt_lr options either as lr_config=LRConfig(...) or as keywords, "
                f"not both (got lr_config and {sorted(options)})."
            )
        return dataclasses.replace(lr_config)

    def changed_by(self, lr_config: LRConfig | None = None, **options: Any) -> list[str]:
        """The names of the fields that ``lr_config`` (or ``options``) would change.

        Args:
            lr_config: a whole other ``LRConfig``.
            **options: some fields by name (the others are kept).

        Raises:
            TypeError, ValueError: as :meth:`build` for the same arguments.
        """
        if lr_config is None and not options:
            return []
        LRConfig.build(lr_config, **options)
        wanted = dataclasses.replace(lr_config or self, **options)
        return [
            f.name
            for f in dataclasses.fields(self)
            if getattr(wanted, f.name) != getattr(self, f.name)
        ]
