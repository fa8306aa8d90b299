"""Mixing sites: how layers inside a model learn that a training step mixes.

`MixupModel.train_step` opens a `MixingScope` around the forward pass. The
scope holds the step's seed, which site was chosen for this step, and the
plans the sites report back. A mixing layer called without labels looks up
the active scope: it mixes its input only if it is the chosen site, and
reports its plan (partner index and per-example weight) so that the labels
can be mixed the same way.

The scope is thread-local, so under `tf.distribute.MirroredStrategy` (which
traces each replica in its own thread) every replica has its own scope, its
own choice and its own plans; nothing is shared through Python attributes.
"""

import threading

from keras_mixup import backend

_LOCAL = threading.local()


def current_scope():
    """The active `MixingScope` of this thread, or None."""
    return getattr(_LOCAL, "scope", None)


class MixingScope:
    """The state of one mixing training step (used by `MixupModel`).

    Args:
        site_ids: dict mapping ``id(layer)`` to the layer's site number.
        seed: ``(2,)`` stateless seed of the step.
        choice: int32 scalar tensor, the site number that mixes this step.
            A scope without ``seed`` and ``choice`` is *clean*: every site
            passes its input through (MixupE's forward pass on the unmixed
            batch).
        shards: how many equal parts of the batch are planned apart (the
            devices of a JAX data-parallel step, which sees the global
            batch); 1 elsewhere.
    """

    def __init__(self, site_ids, seed=None, choice=None, shards=1):
        self.site_ids = site_ids
        self.seed = seed
        self.choice = choice
        self.shards = shards
        self.clean = choice is None
        self.plans = {}

    def __enter__(self):
        if current_scope() is not None:
            raise RuntimeError("Mixing scopes cannot be nested.")
        _LOCAL.scope = self
        return self

    def __exit__(self, *exc):
        _LOCAL.scope = None
        return False

    def site_id(self, layer):
        site = self.site_ids.get(id(layer))
        if site is None:
            raise ValueError(
                f"The mixing layer '{layer.name}' was called during a "
                "MixupModel training step but is not one of its sites. "
                "Sites are collected when the MixupModel is created: build "
                "the model with the layer inside before wrapping it."
            )
        if site in self.plans:
            raise ValueError(
                f"The mixing layer '{layer.name}' was called twice in one "
                "training step. Use a separate layer instance for each "
                "place where hidden states may be mixed."
            )
        return site

    def record(self, site, index, lam):
        self.plans[site] = (index, lam)

    def realized_plan(self, num_sites):
        """The plan of the chosen site: ``(index, lam)`` of shape ``(B,)``."""
        missing = [s for s in range(num_sites) if s not in self.plans]
        if missing:
            raise ValueError(
                f"Mixing site(s) {missing} were not called in the forward "
                "pass, so the step cannot know how the labels were mixed. "
                "Every site layer must run on every training step."
            )
        if num_sites == 1:
            return self.plans[0]
        K = backend.ops()
        index = K.stack([self.plans[s][0] for s in range(num_sites)])
        lam = K.stack([self.plans[s][1] for s in range(num_sites)])
        # A gather, not `index[choice]`: XLA needs a slice start at compile
        # time, so a slice would recompile the step for every new choice.
        return K.gather(index, self.choice), K.gather(lam, self.choice)
