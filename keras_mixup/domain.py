"""Unsupervised domain adaptation with mixup, as one Keras model.

Labeled source data, unlabeled target data, accuracy wanted on the target.
`DomainAdaptationModel` trains a feature extractor ``f`` and a classifier
``c`` (and, for the adversarial methods, a domain discriminator ``d`` on
the features) with one of four objectives, each adding terms to the
previous ones:

- ``"source_only"``: cross-entropy on the labeled source batch.
- ``"dann"`` (Ganin & Lempitsky, ICML 2015): plus a domain term, the
  discriminator's binary cross-entropy (source = 1, target = 0) on
  features passed through a gradient reversal: the discriminator learns
  to tell the domains apart, the feature extractor to make that hard.
- ``"virtual_mixup"`` (Mao et al., 2019, "Virtual Mixup Training"): the
  source term becomes mixup with the labels; on target inputs, the
  prediction on ``λ·x_i + (1 − λ)·x_j`` is pulled (KL divergence) to the
  same mix of the model's own stop-gradient predictions; plus the
  entropy of the target predictions; plus the DANN term when a
  discriminator is given.
- ``"dual_mixup"`` (Wu, Inkpen & El-Roby, ECCV 2020, "Dual Mixup
  Regularized Learning"): DANN with category mixup (source mixup with
  labels, the target consistency above) and domain mixup (the
  discriminator also sees ``λ·x_source + (1 − λ)·x_target`` with the soft
  target λ).

Written once for every backend: the model overrides ``call`` and
``compute_loss`` only, so Keras' own train step (TensorFlow's and JAX's)
computes the gradients of one scalar; the gradient reversal is
`keras_mixup.domain_losses.reverse_gradient` (``keras.ops`` only), and the
step counter behind the ramp-ups and the per-step seeds is a
non-trainable variable assigned inside the loss.
"""

import keras

from keras_mixup import backend
from keras_mixup.domain_losses import (
    adversarial_rampup, binary_cross_entropy, check_weight, cross_entropy, entropy,
    kl_divergence, blend_domains, probs, reverse_gradient, sigmoid_rampup, weighted_mean)
from keras_mixup.ops.labels import to_soft_labels
from keras_mixup.ops.mixing import interpolate
from keras_mixup.ops.pairing import permutation
from keras_mixup.ops.random import check_concentration, check_seed, fold_seed, sample_beta

METHODS = ("source_only", "dann", "virtual_mixup", "dual_mixup")
# The weight of each term for each method: None = the term is not part of
# the method (passing a weight > 0 for it is an error).
DEFAULT_WEIGHTS = {
    "source_only": {"domain_weight": None, "consistency_weight": None,
                    "entropy_weight": None, "domain_mixup_weight": None},
    "dann": {"domain_weight": 1.0, "consistency_weight": None,
             "entropy_weight": None, "domain_mixup_weight": None},
    "virtual_mixup": {"domain_weight": 1.0, "consistency_weight": 1.0,
                      "entropy_weight": 0.1, "domain_mixup_weight": None},
    "dual_mixup": {"domain_weight": 1.0, "consistency_weight": 1.0,
                   "entropy_weight": None, "domain_mixup_weight": 1.0},
}
_TERMS = {"domain_weight": "domain", "consistency_weight": "consistency",
          "entropy_weight": "entropy", "domain_mixup_weight": "domain_mixup"}
_FIT_HINT = "fit((x_source, x_target), y_source)"


def _model(value, name, what):
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if not isinstance(value, keras.Model):
        raise TypeError(f"`{name}` must be a Keras model {what}; got {type(value).__name__}.")
    return value


def _input_shape(model):
    """The static per-example shape of a model's single input, or None."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    flat = keras.tree.flatten(inputs)
    if len(flat) != 1:
        raise ValueError(
            "The feature extractor must take one input tensor (the images or "
            f"features of a domain); it takes {len(flat)}."
        )
    return tuple(flat[0].shape[1:])


@keras.saving.register_keras_serializable(package="keras_mixup")
class DomainAdaptationModel(keras.Model):
    """Source-only, DANN, virtual mixup or dual mixup domain adaptation.

    ``fit`` takes batches ``((x_source, x_target), y_source)``: labeled
    source inputs, unlabeled target inputs of the same per-example shape
    (the two batches may differ in size), and the source labels (int class
    ids, or one-hot / soft rows). ``predict`` and ``evaluate`` take plain
    inputs and use ``classifier(feature_extractor(x))``; ``evaluate`` on the
    target's test set is what to watch. The loss is built in: ``compile``
    takes an optimizer and metrics, not a ``loss``.

    With ``w_d``, ``w_m``, ``w_c``, ``w_e`` the weights below, ``r(t)`` the
    sigmoid ramp-up and ``s(t)`` the reversal's strength (both 0 → 1 over
    ``rampup_steps``), the loss is

        source + w_d·domain + w_m·domain_mixup + r(t)·(w_c·consistency + w_e·entropy)

    - ``source``: cross-entropy on the source batch (``virtual_mixup``,
      ``dual_mixup``: on its mixup, ``λ ~ Beta(α, α)`` per example, random
      pairs, labels mixed alike);
    - ``domain`` (``dann``, ``dual_mixup``, ``virtual_mixup`` with a
      discriminator): ``½·(BCE(d(R(f(x_s))), 1) + BCE(d(R(f(x_t))), 0))``,
      ``R`` the gradient reversal of strength ``s(t)`` (Ganin's
      ``2/(1 + exp(−10t)) − 1``);
    - ``domain_mixup`` (``dual_mixup``): ``BCE(d(R(f(x̃))), λ)`` on
      `keras_mixup.domain_losses.mix_domains` of the two batches;
    - ``consistency`` (``virtual_mixup``, ``dual_mixup``):
      ``KL(λ·p_i + (1 − λ)·p_j ‖ p(λ·x_i + (1 − λ)·x_j))`` on target pairs,
      ``p`` the classifier's probabilities, held constant (stop-gradient)
      in the target mix;
    - ``entropy`` (``virtual_mixup``): the mean entropy of ``p`` on the
      target batch.

    Adversarial training can be unstable: on the digits example
    (``examples/domain_adaptation_mixup.py``, 3 seeds), DANN reached 26%
    target accuracy with ``w_d = 1``, below source-only training (44%), and
    82% with ``w_d = 0.1``; tune ``w_d`` (and decay the learning rate).

    The loss value logged is the sum above; through the reversal, the
    feature extractor's gradient of the domain terms is ``−s(t)`` times
    theirs. All inputs go through ``f`` as one concatenated batch per step
    (BatchNorm in ``f`` sees both domains). Logged: ``loss``, each term,
    ``rampup`` (``r(t)``) and ``reversal`` (``s(t)``) when used.

    Args:
        feature_extractor: a Keras model from inputs to features.
        classifier: a Keras model from features to class scores ``(B, K)``.
        discriminator: a Keras model from features to one domain logit per
            example (``(B, 1)`` or ``(B,)``, no activation). Needed by
            ``dann`` and ``dual_mixup``, optional for ``virtual_mixup``,
            refused by ``source_only``.
        method: ``"source_only"``, ``"dann"``, ``"virtual_mixup"`` or
            ``"dual_mixup"``.
        alpha: Beta(α, α) of every λ.
        domain_weight, consistency_weight, entropy_weight,
            domain_mixup_weight: the weights ``w_d, w_c, w_e, w_m``; None
            takes the method's default (``dann``: ``w_d = 1``;
            ``virtual_mixup``: ``w_c = 1, w_e = 0.1``, ``w_d = 1`` with a
            discriminator; ``dual_mixup``: ``w_d = w_m = w_c = 1``); a
            weight > 0 for a term the method lacks is an error.
        rampup_steps: steps over which ``r(t)`` and ``s(t)`` ramp up (0: no
            ramp-up).
        from_logits: whether the classifier returns logits (default) or
            probabilities.
        seed: int seed of the mixing stream, or None.

    Example:

    >>> f = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu")])
    >>> c = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> d = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    >>> model = keras_mixup.domain.DomainAdaptationModel(f, c, d, method="dual_mixup", seed=0)
    >>> model.compile("adam", metrics=["accuracy"])
    >>> x_s, y_s = np.random.rand(16, 4).astype("float32"), np.arange(16) % 3
    >>> x_t = np.random.rand(16, 4).astype("float32") + 1.0
    >>> history = model.fit((x_s, x_t), y_s, batch_size=8, epochs=1, verbose=0)
    >>> sorted(history.history)  # doctest: +NORMALIZE_WHITESPACE
    ['accuracy', 'consistency', 'domain', 'domain_mixup', 'loss', 'rampup',
     'reversal', 'source']
    >>> model.predict(x_t, verbose=0).shape
    (16, 3)
    """

    def __init__(self, feature_extractor, classifier, discriminator=None, method="dann",
                 alpha=1.0, domain_weight=None, consistency_weight=None, entropy_weight=None,
                 domain_mixup_weight=None, rampup_steps=1000, from_logits=True, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"Unknown `method` {method!r}; choose one of {list(METHODS)}.")
        self.method = method
        self.feature_extractor = _model(feature_extractor, "feature_extractor",
                                        "mapping inputs to features")
        self.classifier = _model(classifier, "classifier", "mapping features to class scores")
        if discriminator is not None:
            discriminator = _model(discriminator, "discriminator",
                                   "mapping features to one domain logit per example")
        if method == "source_only" and discriminator is not None:
            raise ValueError("method='source_only' uses no discriminator; pass "
                             "discriminator=None, or choose method='dann'.")
        if method in ("dann", "dual_mixup") and discriminator is None:
            raise ValueError(
                f"method={method!r} needs a `discriminator`: a Keras model from the "
                "features to one domain logit per example, e.g. keras.Sequential("
                "[keras.Input(feature_shape), keras.layers.Dense(64, activation='relu'), "
                "keras.layers.Dense(1)]).")
        self.discriminator = discriminator
        self.alpha = float(check_concentration(alpha, "alpha"))
        given = {"domain_weight": domain_weight, "consistency_weight": consistency_weight,
                 "entropy_weight": entropy_weight, "domain_mixup_weight": domain_mixup_weight}
        self.weights_by_term = {}
        for name, value in given.items():
            default = DEFAULT_WEIGHTS[method][name]
            if name == "domain_weight" and discriminator is None:
                default = None  # virtual_mixup without a discriminator
            if value is not None:
                value = check_weight(value, name)
                if default is None and value > 0:
                    needs = (" and a `discriminator`" if name == "domain_weight"
                             and method == "virtual_mixup" else "")
                    raise ValueError(
                        f"`{name}`: method={method!r} has no {_TERMS[name]!r} term{needs}; "
                        f"leave it None (methods with it: "
                        f"{[m for m in METHODS if DEFAULT_WEIGHTS[m][name] is not None]}).")
            self.weights_by_term[_TERMS[name]] = (
                value if value is not None else (default or 0.0))
        self._included = {t for n, t in _TERMS.items()
                          if DEFAULT_WEIGHTS[method][n] is not None
                          and not (n == "domain_weight" and discriminator is None)}
        if (not isinstance(rampup_steps, int) or isinstance(rampup_steps, bool)
                or rampup_steps < 0):
            raise ValueError(f"`rampup_steps` must be an integer >= 0; got {rampup_steps!r}.")
        self.rampup_steps, self.from_logits = rampup_steps, bool(from_logits)
        self.seed, self._base_seed = check_seed(seed)
        self._check_composition()
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                    trainable=False, name="domain_step")
        names = ["source", *[t for t in ("domain", "domain_mixup", "consistency", "entropy")
                             if t in self._included]]
        if self._included & {"consistency", "entropy"}:
            names.append("rampup")
        if self._included & {"domain", "domain_mixup"}:
            names.append("reversal")
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}

    # ------------------------------------------------------------ checks

    @property
    def needs_target(self):
        """Whether the method learns from target inputs (all but source_only)."""
        return self.method != "source_only"

    @property
    def source_mixup(self):
        return self.method in ("virtual_mixup", "dual_mixup")

    def _check_composition(self):
        """With a known input shape, runs the networks symbolically: the
        classifier (and discriminator) must take the features."""
        shape = _input_shape(self.feature_extractor)
        if shape is None:
            return
        spec = keras.KerasTensor((None, *shape))
        features = self.feature_extractor.compute_output_spec(spec)
        if isinstance(features, (list, tuple, dict)):
            raise ValueError("The feature extractor must return one tensor of features; "
                             f"it returns a {type(features).__name__}.")
        for name, net in (("classifier", self.classifier), ("discriminator", self.discriminator)):
            if net is None:
                continue
            try:
                out = net.compute_output_spec(features)
            except Exception as err:  # any shape error of the network
                raise ValueError(
                    f"The feature extractor and the {name} do not compose: the {name} "
                    f"cannot take features of shape {tuple(features.shape)} ({err}). "
                    f"Build the {name} on the feature extractor's output shape, e.g. "
                    f"keras.Input({tuple(features.shape[1:])})."
                ) from None
            if name == "classifier":
                self._check_scores(tuple(out.shape))
            else:
                self._check_logits(tuple(out.shape))

    @staticmethod
    def _check_scores(shape):
        if len(shape) != 2:
            raise ValueError(f"The classifier must return class scores of shape (batch, "
                             f"classes); it returns {shape}.")

    @staticmethod
    def _check_logits(shape):
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] in (1, None))):
            raise ValueError(
                f"The discriminator must return one logit per example, shape (batch, 1) "
                f"or (batch,); it returns {shape}. End it with keras.layers.Dense(1) and "
                "no activation.")

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        if loss is not None:
            raise ValueError(
                "DomainAdaptationModel builds its loss from the method's terms; compile "
                "it without `loss` (e.g. model.compile('adam', metrics=['accuracy'])).")
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # What Keras does for models with the default compile (which warns
        # and skips compiling for a custom one): the saved compile config
        # has no loss, so this compile takes it.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _split_batch(self, x, y, training):
        """``(x_source, x_target)`` of a batch, with clear errors."""
        if isinstance(y, (tuple, list, dict)):
            raise ValueError(
                "Got several label tensors; unsupervised domain adaptation uses the "
                f"source labels only: {_FIT_HINT}. Target labels are not used for "
                "training; measure target accuracy with evaluate(x_target_test, "
                "y_target_test).")
        if y is None:
            raise ValueError(
                f"DomainAdaptationModel needs the source labels: {_FIT_HINT} for "
                "training, evaluate(x, y) for a test set; predict(x) takes inputs alone.")
        if isinstance(x, dict):
            raise ValueError(f"Inputs must be (x_source, x_target) or one tensor; got a "
                             f"dict. Use {_FIT_HINT}.")
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise ValueError(
                    f"Inputs must be the pair (x_source, x_target); got {len(x)} tensors. "
                    f"Use {_FIT_HINT} (target labels are not used).")
            return x[0], x[1]
        if training and self.needs_target:
            raise ValueError(
                f"method={self.method!r} learns from unlabeled target data, but the batch "
                f"holds one input tensor: {_FIT_HINT}, e.g. a zip of a labeled source "
                "tf.data.Dataset and a target one mapped to ((x_s, x_t), y_s).")
        return x, None

    def _logits(self, out):
        self._check_logits(tuple(out.shape))
        return keras.ops.reshape(keras.ops.cast(out, "float32"), [-1])

    def _targets(self, y, classes):
        """Labels as float rows: int ids become one-hot."""
        return to_soft_labels(y, classes)

    # ------------------------------------------------------------ model

    def fit(self, x=None, y=None, *args, **kwargs):
        # Checks the batch structure before Keras' loop starts (an error in
        # the traced step would leave a JAX model's variables purged).
        spec = getattr(x, "element_spec", None)
        if spec is not None:  # a tf.data.Dataset of (inputs, labels[, weights])
            if isinstance(spec, tuple) and len(spec) in (2, 3):
                self._split_batch(spec[0], spec[1], training=True)
            else:
                self._split_batch(spec, None, training=True)
        elif isinstance(x, (tuple, list)) or hasattr(x, "shape"):
            self._split_batch(x, y, training=True)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, *args, **kwargs):
        # The loss terms are training diagnostics: evaluate (and fit's
        # validation) reports the loss (source cross-entropy) and metrics.
        self._evaluating = True
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self._evaluating = False

    def get_metrics_result(self):
        result = super().get_metrics_result()
        if getattr(self, "_evaluating", False):
            for name in self._trackers:
                result.pop(name, None)
        return result

    def call(self, inputs, training=False):
        if isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            inputs = inputs[0]  # (x_source, x_target): predictions on the source
        features = self.feature_extractor(inputs, training=training)
        return self.classifier(features, training=training)

    def term_weights(self, step):
        """The effective weight of each term at ``step`` (ramp-ups included),
        and ``rampup`` / ``reversal``: ``r(t)`` and ``s(t)``."""
        r = sigmoid_rampup(step, self.rampup_steps)
        weights = {"source": keras.ops.convert_to_tensor(1.0, "float32")}
        for term in ("domain", "domain_mixup"):
            if term in self._included:
                weights[term] = keras.ops.convert_to_tensor(self.weights_by_term[term])
        for term in ("consistency", "entropy"):
            if term in self._included:
                weights[term] = self.weights_by_term[term] * r
        return weights, r, adversarial_rampup(step, self.rampup_steps)

    def mixing_plan(self, x_source, x_target=None, step=0):
        """The mixes of one step, drawn from the seed and ``step``: a dict with
        ``"source"`` / ``"target"`` (``x``, ``lam``, ``index``: the mixed
        inputs, per-example λ and partners) and ``"domain"`` (``x``,
        ``targets``: `mix_domains` and its λ), each present when the method
        uses it."""
        K = backend.ops()
        seed = fold_seed(K.seed_from_int(self._base_seed),
                         K.cast(K.convert_to_tensor(step), "int32"))
        plan, sizes = {}, []
        if self.source_mixup:
            sizes += [("source", backend.dim(x_source, 0)), ("target", backend.dim(x_target, 0))]
        if "domain_mixup" in self._included:
            ns, nt = backend.dim(x_source, 0), backend.dim(x_target, 0)
            sizes.append(("domain", min(ns, nt) if isinstance(ns, int) and isinstance(nt, int)
                          else keras.ops.minimum(ns, nt)))
        if not sizes:
            return plan
        # Every λ of the step from one draw (one Beta sampler to compile).
        lams = sample_beta([sum(n for _, n in sizes)], self.alpha, seed=fold_seed(seed, 1))
        start = 0
        for purpose, (name, n) in enumerate(sizes, start=2):
            lam, start = lams[start:start + n], start + n
            if name == "domain":
                plan[name] = {"x": blend_domains(x_source, x_target, lam), "targets": lam}
            else:
                x = keras.ops.convert_to_tensor(x_source if name == "source" else x_target)
                index = permutation(n, fold_seed(seed, purpose))
                plan[name] = {"x": interpolate(x, lam, index), "lam": lam, "index": index}
        return plan

    def loss_terms(self, x_source, x_target=None, y_source=None, sample_weight=None,
                   step=0, training=False):
        """The method's unweighted loss terms (scalar tensors) on one batch,
        with the mixes of ``step``: ``{"source": ..., "domain": ...}``."""
        ops = keras.ops
        x_source = ops.convert_to_tensor(x_source)
        if x_target is not None:
            x_target = ops.cast(ops.convert_to_tensor(x_target), x_source.dtype)
            if tuple(x_target.shape[1:]) != tuple(x_source.shape[1:]):
                raise ValueError(
                    f"Source and target examples must have the same shape; got "
                    f"{tuple(x_source.shape[1:])} and {tuple(x_target.shape[1:])}.")
        elif self.needs_target:
            raise ValueError(f"method={self.method!r} needs target inputs: {_FIT_HINT}.")
        plan = self.mixing_plan(x_source, x_target, step)
        _, _, strength = self.term_weights(step)
        # One pass of the feature extractor over every input of the step.
        parts = {"source": plan["source"]["x"] if self.source_mixup else x_source}
        if "domain" in self._included and self.source_mixup:
            parts["clean_source"] = x_source
        if self.needs_target:
            parts["target"] = x_target
        if "target" in plan:
            parts["target_mix"] = plan["target"]["x"]
        if "domain" in plan:
            parts["domain_mix"] = plan["domain"]["x"]
        sizes = [backend.dim(v, 0) for v in parts.values()]
        features = self.feature_extractor(ops.concatenate(list(parts.values()), axis=0),
                                          training=training)
        feats, start = {}, 0
        for name, size in zip(parts, sizes):
            feats[name] = features[start:start + size]
            start = start + size
        classify = [n for n in ("source", "target", "target_mix") if n in feats
                    and (n != "target" or self._included & {"consistency", "entropy"})]
        scores = self.classifier(ops.concatenate([feats[n] for n in classify], axis=0),
                                 training=training)
        self._check_scores(tuple(scores.shape))
        out, start = {}, 0
        for name in classify:
            size = backend.dim(feats[name], 0)
            out[name] = scores[start:start + size]
            start = start + size
        classes = scores.shape[-1]
        labels = self._targets(y_source, classes)
        weight = sample_weight
        if self.source_mixup:
            lam, index = plan["source"]["lam"], plan["source"]["index"]
            labels = interpolate(labels, lam, index)
            if weight is not None:
                weight = interpolate(ops.reshape(ops.cast(weight, "float32"), [-1]), lam, index)
        terms = {"source": weighted_mean(cross_entropy(labels, out["source"], self.from_logits),
                                         weight)}
        if self._included & {"domain", "domain_mixup"}:
            names = []
            if "domain" in self._included:
                names += ["clean_source" if self.source_mixup else "source", "target"]
            if "domain_mixup" in self._included:
                names.append("domain_mix")
            logits = self._logits(self.discriminator(
                reverse_gradient(ops.concatenate([feats[n] for n in names], axis=0), strength),
                training=training))
            d, start = {}, 0
            for name in names:
                size = backend.dim(feats[name], 0)
                d[name] = logits[start:start + size]
                start = start + size
            if "domain" in self._included:
                src = d["clean_source" if self.source_mixup else "source"]
                terms["domain"] = 0.5 * (ops.mean(binary_cross_entropy(1.0, src))
                                         + ops.mean(binary_cross_entropy(0.0, d["target"])))
            if "domain_mixup" in self._included:
                terms["domain_mixup"] = ops.mean(
                    binary_cross_entropy(plan["domain"]["targets"], d["domain_mix"]))
        if "consistency" in self._included:
            teacher = ops.stop_gradient(probs(out["target"], self.from_logits))
            mixed = interpolate(teacher, plan["target"]["lam"], plan["target"]["index"])
            terms["consistency"] = ops.mean(
                kl_divergence(mixed, out["target_mix"], self.from_logits))
        if "entropy" in self._included:
            terms["entropy"] = ops.mean(entropy(out["target"], self.from_logits))
        return terms

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        x_source, x_target = self._split_batch(x, y, training)
        ops = keras.ops
        if not training:
            labels = self._targets(y, y_pred.shape[-1])
            total = weighted_mean(cross_entropy(labels, y_pred, self.from_logits), sample_weight)
        else:
            step = self.step.value
            terms = self.loss_terms(x_source, x_target, y, sample_weight, step, training=True)
            weights, ramp, strength = self.term_weights(step)
            total = sum(weights[name] * value for name, value in terms.items())
            self.step.assign(step + 1)
            logged = dict(terms, rampup=ramp, reversal=strength)
            for name, tracker in self._trackers.items():
                tracker.update_state(logged[name])
        for extra in self.losses:  # weight regularizers of the networks
            total = total + ops.cast(extra, "float32")
        return total

    def get_config(self):
        config = super().get_config()
        ser = keras.saving.serialize_keras_object
        config.update({
            "feature_extractor": ser(self.feature_extractor),
            "classifier": ser(self.classifier),
            "discriminator": None if self.discriminator is None else ser(self.discriminator),
            "method": self.method, "alpha": self.alpha,
            "rampup_steps": self.rampup_steps, "from_logits": self.from_logits,
            "seed": self.seed,
        })
        for name, term in _TERMS.items():
            config[name] = self.weights_by_term[term]
        return config
