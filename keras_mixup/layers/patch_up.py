"""PatchUp (Faramarzi et al., 2022): block masks on hidden feature maps."""

import numbers

import keras

from keras_mixup import backend
from keras_mixup.layers.masked import MaskedMixing
from keras_mixup.ops.mixing import per_example
from keras_mixup.ops.random import hash_uniform

MODES = ("hard", "soft")


@keras.saving.register_keras_serializable(package="keras_mixup")
class PatchUp(MaskedMixing):
    """PatchUp: swaps (or mixes) random blocks of feature maps between
    examples.

    Blocks are chosen the way DropBlock drops them (Ghiasi et al., 2018):
    block centres drawn with a rate set by ``gamma`` and ``block_size``,
    each grown to a ``block_size`` square (a segment for sequences), shared
    by all channels. In ``mode="hard"`` the blocks are copied from the
    partner; in ``mode="soft"`` they are mixed, ``λ·x + (1 − λ)·x[π]``. The
    label weight is what was actually taken: ``1 − p`` (hard) or
    ``1 − p + p·λ`` (soft) for the patched fraction ``p`` of the map
    (Faramarzi et al., "PatchUp: A Feature-Space Block-Level Regularization
    Technique for Convolutional Neural Networks", AAAI 2022).

    Made for hidden feature maps (a site inside `keras_mixup.MixupModel`,
    called without labels); like every mixing layer it also mixes a batch
    called with labels. `CutMix` at a hidden site is the one-box variant.

    Args:
        block_size: side of a block, an int >= 1, at most the feature map's
            size (7 in the paper).
        gamma: DropBlock's rate in (0, 1]: about this fraction of the
            positions where a block fits start one (0.9 in the paper, which
            patches about half of a 7×7-block map).
        mode: ``"hard"`` (default) or ``"soft"``.
        alpha, beta: Beta concentrations of λ (the soft blend; 2.0 in the
            paper).
        per_sample, data_format, num_classes, label_smoothing, seed,
            pairing, neighbors, mix, pairing_scope, jit_compile: as for
            `CutMix`.

    Example:

    >>> inputs = keras.Input((8, 8, 3))
    >>> h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    >>> h = keras_mixup.layers.PatchUp(block_size=3, mode="soft")(h)  # a site
    >>> outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
    >>> model = keras_mixup.MixupModel(keras.Model(inputs, outputs), seed=0)
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x, y = np.random.rand(8, 8, 8, 3).astype("float32"), np.arange(8) % 2
    >>> history = model.fit(x, y, epochs=1, verbose=0)
    >>> len(model.sites)
    1
    """

    _ranks = (3, 4)

    def __init__(self, block_size=7, gamma=0.9, mode="hard", alpha=2.0, **kwargs):
        super().__init__(alpha=alpha, **kwargs)
        if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) or block_size < 1:
            raise ValueError(f"`block_size` must be an int >= 1; got {block_size!r}.")
        if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not 0 < gamma <= 1:
            raise ValueError(f"`gamma` must be a number in (0, 1]; got {gamma!r}.")
        if mode not in MODES:
            raise ValueError(f"`mode` must be 'hard' or 'soft'; got {mode!r}.")
        if mode == "soft" and self.compute_dtype == "uint8":
            raise ValueError(
                "PatchUp(mode='soft') blends values, which uint8 cannot hold; "
                "use mode='hard' to keep uint8, or a float dtype."
            )
        self.block_size = int(block_size)
        self.gamma = float(gamma)
        self.mode = mode

    def get_config(self):
        config = super().get_config()
        config.update({"block_size": self.block_size, "gamma": self.gamma, "mode": self.mode})
        return config

    def _check_inputs(self, inputs):
        super()._check_inputs(inputs)
        sizes = [inputs.shape[a] for a in self._spatial_axes(backend.rank(inputs))]
        if any(s is not None and s < self.block_size for s in sizes):
            raise ValueError(
                f"`block_size={self.block_size}` is larger than the feature map "
                f"{tuple(sizes)} (inputs of shape {tuple(inputs.shape)}); pass "
                f"block_size <= {min(s for s in sizes if s is not None)}."
            )

    def _mask(self, inputs, lam, seed):
        K = backend.ops()
        rank = backend.rank(inputs)
        sizes = [backend.dim(inputs, a) for a in self._spatial_axes(rank)]
        bs = self.block_size
        # DropBlock's rate: centres where a block fits, scaled so that about
        # `gamma` of the map's positions lie in a block before overlaps.
        area, valid_area = 1, 1
        for s in sizes:
            area *= s
            valid_area *= s - bs + 1
        rate = self.gamma / bs ** len(sizes) * area / valid_area
        shape = [backend.dim(inputs, 0), *sizes, 1]
        centres = hash_uniform(shape, seed) < rate
        # Only where a whole block fits.
        for axis, s in enumerate(sizes, start=1):
            pos = K.range(s, dtype="int32")
            fits = (pos >= bs // 2) & (pos < s - (bs - 1) // 2)
            view = [1] * len(shape)
            view[axis] = s
            centres = centres & K.reshape(fits, view)
        # 1 = in a block: a max over the block around each position, one
        # axis at a time (the same max, bs instead of bs² reads).
        patched = K.cast(centres, "float32")
        for axis in range(len(sizes)):
            window = [1] * len(sizes)
            window[axis] = bs
            patched = K.max_pool(patched, window)
        if self.mode == "hard":
            keep = 1.0 - patched
        else:
            keep = 1.0 - patched + patched * per_example(lam, len(shape))
        if self.data_format == "channels_first":  # (B, *S, 1) -> (B, 1, *S)
            keep = K.reshape(keep, [shape[0], 1, *sizes])
        return keep
