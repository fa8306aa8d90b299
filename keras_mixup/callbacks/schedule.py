"""MixupSchedule: switch mixing off, or change α, between epochs."""

import numbers

import keras

from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.ops.random import check_concentration


def _check_epoch(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an int >= 0 or None; got {value!r}.")
    return int(value)


class MixupSchedule(keras.callbacks.Callback):
    """Changes the mixing layers between epochs, without retracing.

    Every mixing layer reads two weights inside the compiled step or the
    ``tf.data`` map: ``enabled`` (mixing on or off) and, for `MixUp` and
    `CutMix`, ``concentration`` (α, β). This callback sets them at the start
    of each epoch, so nothing is traced or compiled again.

    - ``off_last_epochs=N`` switches mixing off for the last ``N`` epochs of
      ``fit`` — training ends on clean data, which several recipes do (timm's
      ``mixup_off_epoch``); ``off_epoch=E`` switches it off from epoch ``E``
      (0-based) on.
    - ``alpha`` is a function ``epoch -> α`` (or ``-> (α, β)``) for a
      per-epoch concentration, e.g. a warm-up from weak to strong mixing.

    At the end of training the layers get their configured state back.

    Args:
        off_last_epochs: number of final epochs without mixing.
        off_epoch: first epoch (0-based) without mixing; give this or
            ``off_last_epochs``, not both.
        alpha: None or a callable ``epoch -> alpha`` or ``epoch -> (alpha,
            beta)``, applied to every `MixUp` and `CutMix` (also those inside
            a `RandomMix`).
        layers: the mixing layers to drive, e.g. those of a ``tf.data``
            pipeline (there a few batches prefetched before the epoch starts
            may still use the previous setting). Default: the sites of the
            model being trained (a `MixupModel`'s ``sites``).

    Example:

    >>> mix = keras_mixup.layers.MixUp(alpha=1.0, num_classes=3, seed=0)
    >>> x, y = np.random.rand(64, 4).astype("float32"), np.arange(64) % 3
    >>> ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).map(mix)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile("sgd", keras.losses.CategoricalCrossentropy(from_logits=True))
    >>> schedule = keras_mixup.callbacks.MixupSchedule(off_last_epochs=1, layers=[mix])
    >>> _ = model.fit(ds, epochs=3, callbacks=[schedule], verbose=0)
    >>> schedule.history  # (epoch, mixing on)
    [(0, True), (1, True), (2, False)]
    """

    def __init__(self, off_last_epochs=None, off_epoch=None, alpha=None, layers=None):
        super().__init__()
        self.off_last_epochs = _check_epoch(off_last_epochs, "off_last_epochs")
        self.off_epoch = _check_epoch(off_epoch, "off_epoch")
        if self.off_last_epochs is not None and self.off_epoch is not None:
            raise ValueError(
                "Give `off_last_epochs` (count from the end) or `off_epoch` "
                "(count from the start), not both."
            )
        if alpha is not None and not callable(alpha):
            raise TypeError(
                "`alpha` must be a function of the epoch, e.g. "
                f"`lambda epoch: min(1.0, 0.1 * (epoch + 1))`; got {alpha!r}."
            )
        if self.off_last_epochs is None and self.off_epoch is None and alpha is None:
            raise ValueError(
                "MixupSchedule needs something to schedule: pass "
                "`off_last_epochs=`, `off_epoch=` or `alpha=`."
            )
        self.alpha = alpha
        if layers is not None:
            layers = list(layers)
            bad = [x for x in layers if not isinstance(x, BaseMixingLayer)]
            if not layers or bad:
                raise TypeError(
                    "`layers` must be a list of keras_mixup mixing layers; "
                    f"got {bad or layers!r}."
                )
        self.layers = layers
        self.history = []
        self._saved = None

    # ------------------------------------------------------------ helpers

    def _targets(self):
        if self.layers is not None:
            return self.layers
        sites = getattr(self.model, "sites", None)
        if sites is None:
            from keras_mixup.model import find_sites

            sites = find_sites(self.model)
        if not sites:
            raise ValueError(
                "MixupSchedule found no mixing layer in the model. For layers "
                "in a tf.data pipeline pass them: `MixupSchedule(..., "
                "layers=[mix])`."
            )
        return sites

    def _concentration_layers(self):
        found, stack = [], list(self._targets())
        while stack:
            layer = stack.pop()
            stack.extend(getattr(layer, "mixers", []))
            if hasattr(layer, "concentration"):
                found.append(layer)
        return found

    def _mixing(self, epoch):
        if self.off_epoch is not None:
            return epoch < self.off_epoch
        if self.off_last_epochs is not None:
            epochs = (self.params or {}).get("epochs")
            if epochs is None:
                raise ValueError(
                    "`off_last_epochs` needs the number of epochs of fit(); "
                    "pass `off_epoch=` instead."
                )
            return epoch < epochs - self.off_last_epochs
        return True

    # ---------------------------------------------------------- callbacks

    def on_train_begin(self, logs=None):
        saved = [(x, "enabled", x.enabled) for x in self._targets()]
        saved += [(x, "concentration", x.concentration) for x in self._concentration_layers()]
        self._saved = [
            (layer, name, keras.ops.convert_to_numpy(v)) for layer, name, v in saved
        ]

    def on_epoch_begin(self, epoch, logs=None):
        on = self._mixing(epoch)
        for layer in self._targets():
            layer.set_mixing_state(enabled=on)
        if self.alpha is not None:
            value = self.alpha(epoch)
            alpha, beta = value if isinstance(value, (tuple, list)) else (value, value)
            check_concentration(alpha, "alpha")
            check_concentration(beta, "beta")
            for layer in self._concentration_layers():
                layer.set_mixing_state(concentration=[float(alpha), float(beta)])
        self.history.append((epoch, on))

    def on_train_end(self, logs=None):
        for layer, name, value in self._saved or []:
            if name == "enabled":
                layer.set_mixing_state(enabled=bool(value > 0.5))
            else:
                layer.set_mixing_state(concentration=value)
        self._saved = None
