"""Whether a gain depends on a language's resources: a linear mixed model with language as a random effect.

``gain ~ 0 + setting + setting:x + (1 | language)``: one intercept and one slope on the covariate ``x`` per setting,
and a random intercept per language, so that a language's runs (several seeds, several settings, one test set) are
not counted as independent evidence about the slope. A slope is the interaction of the setting (against the
baseline, whose gain is 0 by definition) with the covariate: a negative slope on a resource measure means
lower-resource languages gain more. Fitted by REML with statsmodels' ``MixedLM``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xstilts.analysis.stats import Interval
from xstilts.config.schema import MIN_LANGUAGES
from xstilts.errors import UserError


@dataclass(frozen=True)
class Slope(Interval):
    """A setting's slope of gain on the covariate, with its Wald 95% interval and p-value."""

    setting: str = ""
    p: float = math.nan


@dataclass(frozen=True)
class SlopeFit:
    """The slopes of one model, how many languages and observations it used, and how the fit went."""

    slopes: list[Slope]
    languages: int
    observations: int
    converged: bool


def design(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(endog, exog, settings) of ``frame`` (columns setting, language, x, gain): per setting an indicator and the
    indicator times the centred covariate."""
    settings = list(dict.fromkeys(frame.setting))
    x = frame.x.to_numpy(float) - frame.drop_duplicates("language").x.mean()
    indicators = np.column_stack([(frame.setting == s).to_numpy(float) for s in settings])
    return frame.gain.to_numpy(float), np.column_stack([indicators, indicators * x[:, None]]), settings


def resource_slopes(frame: pd.DataFrame, what: str = "the covariate") -> SlopeFit:
    """Fit the model on ``frame`` (one row per setting, run and language: setting, language, x, gain); rows with
    no covariate are left out."""
    frame = frame.dropna(subset=["x", "gain"]).reset_index(drop=True)
    languages = frame.language.nunique()
    if languages < MIN_LANGUAGES or frame.x.drop_duplicates().size < 2:
        raise UserError(
            f"an interaction with {what} needs at least {MIN_LANGUAGES} languages with distinct values, "
            f"got {languages} language(s)"
        )
    from statsmodels.regression.mixed_linear_model import MixedLM  # slow to import: only when a model is fit

    endog, exog, settings = design(frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = MixedLM(endog, exog, groups=frame.language.to_numpy()).fit(reml=True)
    converged = bool(result.converged) and not any("converge" in str(w.message).lower() for w in caught)
    bounds = np.asarray(result.conf_int(alpha=0.05))
    k = len(settings)
    slopes = [
        Slope(
            float(result.fe_params[k + i]),
            float(bounds[k + i, 0]),
            float(bounds[k + i, 1]),
            setting=s,
            p=float(result.pvalues[k + i]),
        )
        for i, s in enumerate(settings)
    ]
    return SlopeFit(slopes, languages, len(frame), converged)
