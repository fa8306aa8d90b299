"""Paper claims as commands: ``keras-mixup reproduce EXPERIMENT``.

Each experiment is a module with a ``run_*`` function (plain Python
results, a ``log`` callback for progress) and a ``*_table`` function (a
Markdown table with the paper's numbers beside ours):

- `mixupe`: ERM / mixup / MixupE on digits and iris (Zou et al., 2023).
- `manifold`: manifold mixup per site, and with the gradient blocked
  (Verma et al., 2019).
- `ablation`: the mixup paper's ablation table (Zhang et al., 2018, §3.8).
- `adversarial`: FGSM / I-FGSM, white-box and black-box (Zhang et al.,
  2018, §3.5).
- `gan`: plain vs mixup GAN on 2-D mixtures of Gaussians (Zhang et al.,
  2018, §3.5).

``label-noise`` lives with the demo (`keras_mixup.demo`).
"""

from keras_mixup.reproduce.common import load_table
from keras_mixup.reproduce.manifold import MANIFOLD_ROWS, manifold_table, run_manifold
from keras_mixup.reproduce.mixupe import (
    MIXUPE_METHODS,
    MIXUPE_PAPER,
    mixupe_table,
    run_mixupe,
)

__all__ = [
    "MANIFOLD_ROWS",
    "MIXUPE_METHODS",
    "MIXUPE_PAPER",
    "load_table",
    "manifold_table",
    "mixupe_table",
    "run_manifold",
    "run_mixupe",
]
