"""Input mixup (Zhang et al., 2018) as a Keras layer."""

import keras

from keras_mixup import backend
from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.ops.mixing import drop_unfound
from keras_mixup.ops.random import fold_seed, sample_beta, sample_dirichlet


def check_per_sample(per_sample):
    if not isinstance(per_sample, bool):
        raise TypeError(f"`per_sample` must be True or False; got {per_sample!r}.")
    return per_sample


@keras.saving.register_keras_serializable(package="keras_mixup")
class MixUp(BaseMixingLayer):
    """Mixup: trains on convex combinations of pairs of examples and labels.

    Each example ``i`` is mixed with a partner ``π(i)``:
    ``x̃ = λ·x + (1 − λ)·x[π]`` and ``ỹ = λ·y + (1 − λ)·y[π]``, with
    ``λ ~ Beta(alpha, beta)`` the weight of the example's own data (Zhang et
    al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018). With
    ``ways=k`` each example is mixed with ``k − 1`` distinct partners,
    ``x̃ = w₀·x + Σⱼ wⱼ·x[πⱼ]`` with ``w ~ Dirichlet(alpha, …, alpha)``
    (labels alike).

    Partners are chosen by ``pairing``: by default a uniformly random
    *other* example (a random cyclic order of the batch, so no example is
    its own partner and each is used as a partner once); the papers'
    ``randperm`` (``"permutation"``, about one example per batch left
    unmixed), timm's ``"flip"``, torchvision's ``"roll"``, label-aware
    ``"same_class"``/``"other_class"`` and ``"nearest"`` (``neighbors=k``)
    are the alternatives — see `keras_mixup.ops.pairing`. A pool of
    partners that are not in the batch (``partners=(x_pool, y_pool)``)
    replaces the batch as the source of partners.

    Works on any batched float input of rank >= 2 — tabular ``(B, D)``,
    sequences ``(B, T, D)``, images, video — and on nests (dicts, tuples) of
    them for multi-input models, all mixed with the same λ and pairing.
    ``uint8`` images are accepted and come out in the layer's compute dtype.
    Integer inputs such as token ids cannot be interpolated: mix their
    embeddings instead.

    Call forms (eager, ``tf.function`` and ``ds.map(layer)`` on a *batched*
    dataset):

    - ``layer(x, y)`` -> ``(x̃, ỹ)``
    - ``layer(x, y, sample_weight)`` -> ``(x̃, ỹ, w̃)``, with
      ``w̃ = λ·w + (1 − λ)·w[π]``
    - ``layer(x, y, partners=(x_pool, y_pool))`` -> ``(x̃, ỹ)``, partners
      drawn from the pool (a pool's entries count with weight 1 when the
      batch is weighted, unless given as ``(x_pool, y_pool, w_pool)``)
    - ``layer({"images": x, "labels": y, ...})`` -> a dict with the same
      keys; ``"sample_weight"`` and float (one-hot) ``"segmentation_masks"``
      are mixed with the same plan. tensorflow-datasets' keys work as they
      are (``{"image": x, "label": y}`` from ``tfds.load``), and keys that
      describe an example (``"id"``, ``"file_name"``) pass through
      unchanged; boxes (``"bounding_boxes"``, ``"objects"``) and a second
      label key are refused, since they would not follow the mixing.

    Labels come out float32 (also under a mixed-precision policy): integer
    class ids ``(B,)``/``(B, 1)`` are one-hot encoded with ``num_classes``;
    one-hot, soft and multi-hot ``(B, C)`` labels, float regression
    targets and bool targets are interpolated as they are. A dict of labels
    (a multi-output model) is mixed leaf by leaf with the same plan (give
    ``num_classes`` as a dict with its keys). Float class ids are refused
    when ``num_classes`` is set: cast them to int.

    With ``training=False`` nothing is mixed, but outputs have the dtypes
    and shapes of training (inputs in the compute dtype, labels one-hot
    float32, without label smoothing), so a model or a validation pipeline
    sees one signature in both modes.

    Args:
        alpha: Beta concentration (> 0). Small values (0.1-0.4) keep most
            examples close to one of the pair; 1.0 draws λ uniformly.
        beta: second concentration, defaults to ``alpha``. With
            ``beta != alpha`` the mean weight of the own example is
            ``alpha / (alpha + beta)``.
        per_sample: draw one λ per example (default) or one per batch (the
            papers' reference code). The default is per example: the
            expected training objective is the same, but a batch no longer
            shares a single extreme λ, so the gradient has lower variance;
            Keras' and timm's element-wise modes do the same. Use
            ``per_sample=False`` to reproduce the papers exactly.
        num_classes: number of classes; needed when labels are integer ids.
        label_smoothing: in [0, 1), applied to class labels before mixing.
        seed: int for a reproducible stream of plans, or None.
        ways: examples per mixed example (default 2). ``ways > 2`` draws
            Dirichlet(alpha, …) weights (``beta`` must be unset); Zhang et
            al. report no gain from three or more.
        pairing: ``"derangement"`` (default), ``"permutation"``, ``"flip"``,
            ``"roll"``, ``"same_class"``, ``"other_class"`` or ``"nearest"``.
            A label-aware pairing leaves an example unmixed when the batch
            holds no eligible partner; ``layer.unpaired_fraction()`` says
            how often that happened.
        neighbors: with ``pairing="nearest"``, the partner is drawn among
            this many nearest examples (default 1: the nearest).
        mix: ``"both"`` (default), ``"inputs"`` (labels and weights stay
            the example's own) or ``"labels"`` (inputs stay, labels mix).
        pairing_scope: ``"replica"`` (default) or ``"global"`` (partners
            from the whole global batch under a distribution).
        jit_compile: apply the plan (gather, blend, cast) as one XLA
            program (default True): one pass over the batch, 2–7× faster on
            large images, for ~60 ms of compiling per input shape.
        bounding_box_format: the format of boxes passed as
            ``"bounding_boxes": {"boxes", "labels"}`` (one of Keras' formats,
            e.g. ``"xyxy"``); the mixed example keeps every source's boxes,
            ``"weights"`` giving each image's blend weight.
        min_visibility: boxes of mask layers (CutMix, FMix, …) keeping a
            smaller visible fraction of their pixels are dropped.
        stop_gradient: at a `MixupModel` site, block the gradient through
            the layer on the steps it mixes (Verma et al.'s ablation of
            manifold mixup); default False.
        **kwargs: ``keras.layers.Layer`` arguments such as ``name`` and
            ``dtype`` (the dtype of the mixed inputs).

    Example:

    >>> x = np.random.rand(8, 4).astype("float32")
    >>> y = np.arange(8) % 3
    >>> mixup = keras_mixup.layers.MixUp(alpha=0.4, num_classes=3, seed=0)
    >>> x_mixed, y_mixed = mixup(x, y)
    >>> x_mixed.shape, y_mixed.shape
    (TensorShape([8, 4]), TensorShape([8, 3]))

    In a ``tf.data`` pipeline (mixing needs a batch, so batch first):

    >>> ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).map(mixup)
    >>> [tuple(t.shape) for t in next(iter(ds))]
    [(4, 4), (4, 3)]
    """

    def __init__(
        self,
        alpha=0.2,
        beta=None,
        per_sample=True,
        num_classes=None,
        label_smoothing=0.0,
        seed=None,
        ways=2,
        pairing="derangement",
        neighbors=1,
        mix="both",
        pairing_scope="replica",
        **kwargs,
    ):
        super().__init__(
            num_classes=num_classes,
            label_smoothing=label_smoothing,
            seed=seed,
            ways=ways,
            pairing=pairing,
            neighbors=neighbors,
            mix=mix,
            pairing_scope=pairing_scope,
            **kwargs,
        )
        self._set_concentration(alpha, beta)
        if self.ways > 2 and self.beta is not None:
            raise ValueError(
                f"ways={self.ways} draws symmetric Dirichlet(alpha, …, alpha) "
                "weights; `beta` is for two-way mixing. Leave beta unset."
            )
        self.per_sample = check_per_sample(per_sample)
        if not keras.backend.is_float_dtype(self.compute_dtype):
            raise ValueError(
                f"MixUp produces fractional values, so its dtype must be a "
                f"float type; got dtype={self.compute_dtype!r}. Leave `dtype` "
                "unset (float32) or pass 'mixed_float16'/'mixed_bfloat16'."
            )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"alpha": self.alpha, "beta": self.beta, "per_sample": self.per_sample}
        )
        return config

    def _check_inputs(self, inputs):
        super()._check_inputs(inputs)
        for x in keras.tree.flatten(inputs):
            dtype = backend.dtype_name(x)
            if keras.backend.is_float_dtype(dtype) or dtype == "uint8":
                continue
            raise TypeError(
                f"MixUp cannot interpolate inputs of dtype {dtype}: "
                "averaging integer ids (e.g. tokens) gives meaningless ids. "
                "Mix their embeddings instead — place the mixing after the "
                "`Embedding` layer — or cast the inputs to float if they "
                "really are numbers (uint8 images are accepted as they are)."
            )

    def sample_plan(self, inputs, seed, context=None):
        K = backend.ops()
        batch = K.batch_size(keras.tree.flatten(inputs)[0])
        n = batch if self.per_sample else 1
        index, found = self._partners(inputs, seed, context)
        alpha, beta = K.unstack(self._state("concentration"))
        if self.ways == 2:
            lam = sample_beta([n], alpha, beta, seed=fold_seed(seed, 1))
            plan = {
                "index": index,
                "lam": lam if self.per_sample else K.broadcast_to(lam, [batch]),
            }
        else:
            w = sample_dirichlet([n], self.ways, alpha, seed=fold_seed(seed, 1))
            if not self.per_sample:
                w = K.broadcast_to(w, [batch, self.ways])
            plan = {"index": index, "lam": w[:, 0], "weights": w[:, 1:]}
        return drop_unfound(plan, found)
