"""Optuna's own samplers, set up for autoq's searches (constraints come from the trials)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import optuna
from optuna.exceptions import ExperimentalWarning

if TYPE_CHECKING:
    from autoq.search.samplers import PricedSpace, SamplerSettings


def tpe(space: PricedSpace, settings: SamplerSettings, *, seed: int | None
        ) -> optuna.samplers.BaseSampler:
    """Multivariate TPE: the bitwidths of a configuration are modelled jointly."""
    # ``multivariate`` and ``group`` are marked experimental in Optuna 5; a float group asks no
    # activation bits, so only grouped multivariate TPE models the conditional space jointly.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def nsga2(space: PricedSpace, settings: SamplerSettings, *, seed: int | None
          ) -> optuna.samplers.BaseSampler:
    """NSGA-II with a population that a small budget still sees evolve."""
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(20, settings.trials))


def gp(space: PricedSpace, settings: SamplerSettings, *, seed: int | None
       ) -> optuna.samplers.BaseSampler:
    """Gaussian-process sampler (log expected hypervolume improvement)."""
    return optuna.samplers.GPSampler(seed=seed)


def random(space: PricedSpace, settings: SamplerSettings, *, seed: int | None
           ) -> optuna.samplers.BaseSampler:
    """Uniform random configurations."""
    return optuna.samplers.RandomSampler(seed=seed)
