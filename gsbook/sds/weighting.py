"""SDS weightings ``w(t)``: how much each noise level counts (taught in §1).

The SDS gradient is ``w(t) (ε̂ − ε) ∂x/∂θ``; ``w(t)`` absorbs the Jacobian of the noisy
image and trades off noise levels. With ``ᾱ_t`` the scheduler's ``alphas_cumprod``:

==============  ===========================  ==================================================
name            ``w(t)``                     used by
==============  ===========================  ==================================================
``"sds"``       ``1 − ᾱ_t`` (= ``σ_t²``)     DreamFusion (Poole et al. 2022); the same in
                                             stable-dreamfusion and DreamGaussian's
                                             ``guidance/sd_utils.py`` (``w = 1 - alphas[t]``).
                                             Alias ``"dreamfusion"``.
``"uniform"``   ``1``                        the plain score difference (SJC-style, Wang et
                                             al. 2023; threestudio's ``"uniform"``).
``"fantasia"``  ``√ᾱ_t (1 − ᾱ_t)``           threestudio's ``"fantasia"`` strategy, after
                                             Fantasia3D (Chen et al. 2023): down-weights the
                                             noisiest steps, where ``√ᾱ_t`` → 0.
``"lucid"``     ``√((1 − ᾱ_t) / ᾱ_t)``       LucidDreamer's ISM code (Liang et al. 2023),
                                             = ``σ_t / α_t``. Alias ``"ism"``.
==============  ===========================  ==================================================
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

__all__ = ["WEIGHTINGS", "sds_weight"]

_Rule = Callable[[Tensor], Tensor]

WEIGHTINGS: dict[str, _Rule] = {
    "sds": lambda abar: 1.0 - abar,
    "uniform": lambda abar: abar.new_ones(abar.shape),
    "fantasia": lambda abar: abar.sqrt() * (1.0 - abar),
    "lucid": lambda abar: ((1.0 - abar) / abar).sqrt(),
}
_ALIASES = {"dreamfusion": "sds", "ism": "lucid"}


def sds_weight(name: str, alphas_cumprod: Tensor, t: Tensor, ndim: int = 4) -> Tensor:
    """``w(t)`` for timesteps ``t [B]`` as ``[B, 1, …, 1]`` (``ndim`` dims); see the table above.

    Raises:
        ValueError: for an unknown ``name`` (the message lists the known ones).
    """
    key = _ALIASES.get(name, name)
    if key not in WEIGHTINGS:
        known = sorted(WEIGHTINGS) + sorted(_ALIASES)
        raise ValueError(f"unknown SDS weighting {name!r}; choose one of {known}")
    abar = alphas_cumprod.to(t.device)[t].float()
    return WEIGHTINGS[key](abar).view((-1,) + (1,) * (ndim - 1))
