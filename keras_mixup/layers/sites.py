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

import keras

from keras_mixup import backend
from keras_mixup.ops.mixing import partner_columns, per_example
from keras_mixup.ops.plans import identity_plan, label_plan, stack_choice
from keras_mixup.ops.random import fold_seed

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
        class_ids: int ``(B,)`` class of each example, for label-aware
            pairings at the sites.
    """

    def __init__(
        self, site_ids, seed=None, choice=None, shards=1, class_ids=None, replicas=None
    ):
        self.site_ids = site_ids
        self.seed = seed
        self.choice = choice
        self.shards = shards
        self.class_ids = class_ids
        # Under tf.distribute with a global-scope site: the replica context,
        # the step's seed shared by all replicas, and this replica's first
        # row in the global batch. Every site then reports global ids.
        self.replicas = replicas
        self.global_seed = None
        self.offset = None
        self.clean = choice is None
        self.plans = {}
        # Input-gradient saliency (B, H, W) of the clean batch, for sites
        # with placement="saliency" (set by MixupModel).
        self.saliency = None

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

    def gather_all(self, t):
        """``t`` from every replica, concatenated on the batch axis."""
        import tensorflow as tf

        @tf.custom_gradient
        def dense(value):
            # Partners are read with a gather, whose gradient is sparse;
            # the all-gather's gradient takes dense tensors only.
            return tf.identity(value), lambda g: tf.convert_to_tensor(g)

        gathered = self.replicas.all_gather(t, axis=0)
        return dense(gathered) if t.dtype.is_floating else gathered

    def record(self, site, plan):
        """A site's label plan (`keras_mixup.ops.plans.label_plan`)."""
        self.plans[site] = plan

    def realized_plan(self, num_sites):
        """The label plan of the chosen site: ``index``, ``lam`` ``(B,)``
        (and k-way ``weights``; sites with fewer partners padded)."""
        missing = [s for s in range(num_sites) if s not in self.plans]
        if missing:
            raise ValueError(
                f"Mixing site(s) {missing} were not called in the forward "
                "pass, so the step cannot know how the labels were mixed. "
                "Every site layer must run on every training step."
            )
        if num_sites == 1:
            return self.plans[0]
        return stack_choice([self.plans[s] for s in range(num_sites)], self.choice)


class SiteMixing:
    """Mixin of `BaseMixingLayer`: mixing a hidden state (or the input) as a
    site of a `MixupModel` step."""

    # Whether the TensorFlow fused site call's hand-written gradient (the
    # blend's transpose, partners read at the same positions) fits this
    # layer; otherwise its gradient is TensorFlow's of the same blend.
    _fused = True

    def _site_call(self, inputs, scope):
        """Only the site chosen for this step samples and applies a plan (in
        a ``tf.cond``, so the others cost nothing); every site reports its
        label plan — the identity when not chosen — for the labels.
        """
        K = backend.ops()
        site = scope.site_id(self)
        self._check_inputs(inputs)
        x = keras.tree.map_structure(lambda t: K.cast(t, self.compute_dtype), inputs)
        if scope.clean:
            return x
        batch = K.batch_size(keras.tree.flatten(x)[0])
        seed = fold_seed(scope.seed, site)
        partners = self._partner_count()
        context = None
        if self._label_aware():
            if scope.class_ids is None:
                raise ValueError(
                    f"pairing={self.pairing!r} needs the labels of the batch; "
                    "at a MixupModel site they come from the training data."
                )
            context = {"ids": scope.class_ids}
        if scope.saliency is not None and getattr(self, "placement", None) == "saliency":
            context = dict(context or {}, saliency=scope.saliency)
        shards = 1 if self.pairing_scope == "global" else scope.shards
        across = scope.replicas is not None and self.pairing_scope == "global"
        if across:
            # All-gathered here, outside the tf.cond: a cross-replica op
            # cannot run inside control flow. (So a global site gathers
            # on every step, chosen or not.)
            everything = keras.tree.map_structure(scope.gather_all, x)
            if context is not None:
                context = {k: scope.gather_all(v) for k, v in context.items()}

        def mix():
            if across:
                out, plan = self._mix_across_replicas(x, everything, scope, site, context)
            elif self.mix != "labels" and K.NAME == "tensorflow" and shards == 1:
                out, plan = self._mix_site(x, seed, context)
            else:
                plan = self.plan(x, seed, shards, context)
                out = x if self.mix == "labels" else self.mix_inputs(plan, x)
            if self.stop_gradient:
                # The ablation of Verma et al.: no gradient flows back
                # through a site on the steps it mixes.
                out = keras.tree.map_structure(K.stop_gradient, out)
            if self.mix == "inputs":
                labels = identity_plan(batch, partners)
            else:
                labels = label_plan(plan)
            if scope.replicas is not None and (not across or self.mix == "inputs"):
                # (to global ids)
                labels = dict(labels, index=labels["index"] + scope.offset)
            return out, labels, self._unpaired_delta(plan.get("found"))

        def keep():
            labels = identity_plan(batch, partners)
            if scope.replicas is not None:
                labels = dict(labels, index=labels["index"] + scope.offset)
            return x, labels, self._unpaired_delta(None)

        if len(scope.site_ids) == 1:
            out, labels, delta = mix()
        else:
            out, labels, delta = K.cond(scope.choice == site, mix, keep)
        scope.record(site, labels)
        if hasattr(self, "unpaired"):
            self._add_unpaired(delta)
        return out

    def _mix_across_replicas(self, x, everything, scope, site, context):
        """``pairing_scope="global"`` under tf.distribute: partners from the
        whole global batch. Every replica all-gathers the representation
        (and the class ids), samples the same global plan from the step's
        shared seed, and mixes its own rows; the all-gather's gradient
        returns each partner's share to the replica that holds it."""
        K = backend.ops()
        plan = self.plan(everything, fold_seed(scope.global_seed, site), 1, context)
        batch = K.batch_size(keras.tree.flatten(x)[0])
        rows = K.range(batch, dtype="int32") + scope.offset
        local = {
            k: K.gather(v, rows)
            for k, v in plan.items()
            if k in ("index", "lam", "weights", "found", "mask", "offset") and backend.rank(v) > 0
            and not (k == "mask" and backend.dim(v, 0) == 1)
        }
        if "mask" in plan and "mask" not in local:  # one mask for the batch
            local["mask"] = plan["mask"]
        if self.mix == "labels":
            return x, local
        return self.mix_inputs(local, x, source=everything), local

    def _mix_site(self, x, seed, context=None):
        """Samples a plan and mixes ``x`` with it in one compiled call
        (TensorFlow's fast path; JAX compiles the whole step anyway).

        One XLA program (with ``jit_compile``) samples the plan and blends
        in a single pass over the data, instead of a gather and three
        element-wise ops in the step: in a train step without XLA that is
        what keeps input mixup near the plain step time (a saliency-placed
        CutMix's gathers and selects, run op by op, had cost a quarter of
        the step). Its gradient is the blend's transpose, ``λ·g + Σⱼ Σ_{i:
        index_ij = n} wᵢⱼ·gᵢ``, where partners are read at the same
        positions (``_fused``); otherwise (a box pasted at an offset, a
        resized partner) TensorFlow's gradient of the blend with the same
        plan, run in the step's graph (differentiating the compiled call
        itself fails inside an XLA step: its gathers' gradients need
        shapes known at compile time). The plan carries no gradient (λ
        reads the ``concentration`` weight).
        """
        import tensorflow as tf

        leaves = tf.nest.flatten(x)
        plans = []

        @tf.custom_gradient
        def mixed(*leaves):
            out, plan = self._jit("_sample_and_mix")(list(leaves), seed, context)
            plans.append(plan)

            def grad(*upstream):
                # An op of this graph takes the plan first (a tf.cond's
                # gradient branch can only capture it that way).
                saved = tf.nest.map_structure(tf.identity, plan)
                if self._fused:
                    return self._jit("_mix_transpose")(saved, list(upstream))
                inputs = [tf.identity(t) for t in leaves]
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    again = self._blend_leaves(saved, inputs)
                return tape.gradient(again, inputs, output_gradients=list(upstream))

            return out, grad

        out = mixed(*leaves)
        plan = tf.nest.map_structure(tf.stop_gradient, plans[0])
        return tf.nest.pack_sequence_as(x, tf.nest.flatten(out)), plan

    def _sample_and_mix(self, leaves, seed, context=None):
        plan = self.plan(leaves[0] if len(leaves) == 1 else leaves, seed, 1, context)
        return self._blend_leaves(plan, leaves), plan

    def _mix_transpose(self, plan, upstream):
        K = backend.ops()
        out = []
        if "weights" in plan:  # k-way
            index, weights = partner_columns(plan)
            for g in upstream:
                rank = backend.rank(g)
                grad = K.cast(per_example(plan["lam"], rank), g.dtype) * g
                for j in range(backend.dim(index, 1)):
                    w = K.cast(per_example(weights[:, j], rank), g.dtype)
                    grad = grad + K.segment_sum(w * g, index[:, j], K.batch_size(g))
                out.append(grad)
            return out
        index = plan["index"]
        for g, w in zip(upstream, self._leaf_weights(plan, upstream)):
            w = K.cast(w, g.dtype)
            partner = K.segment_sum((1 - w) * g, index, K.batch_size(g))
            out.append(w * g + partner)
        return out
