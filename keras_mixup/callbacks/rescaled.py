"""RescaledPrediction: builds and evaluates the rescaled model during ``fit``.

The means are streamed on the host in float64 NumPy on every backend; only a
``tf.distribute`` dataset is summed by TensorFlow, per replica, and reduced.
"""

import contextlib
import itertools
import numbers
import sys

import keras
import numpy as np

from keras_mixup.layers.mix_up import MixUp
from keras_mixup.layers.random_mix import RandomMix
from keras_mixup.model import MixupModel, find_sites
from keras_mixup.ops.theta import theta_bar
from keras_mixup.rescaled import RescaledModel, check_space


def _tf():
    """TensorFlow if something imported it, else None. A tf.data or
    tf.distribute object can only exist then: this tells them apart without
    importing TensorFlow (which a JAX or PyTorch setup may not have)."""
    return sys.modules.get("tensorflow")


def _is_tf_dataset(data):
    return _tf() is not None and isinstance(data, _tf().data.Dataset)


def _is_distributed(data):
    return _tf() is not None and isinstance(data, _tf().distribute.DistributedDataset)


def _unpack(element):
    """``(x, y)`` of a dataset element: ``(x, y[, w])`` or a dict."""
    if isinstance(element, dict) and "images" in element and "labels" in element:
        return element["images"], element["labels"]
    if isinstance(element, (tuple, list)) and len(element) in (2, 3):
        return element[0], element[1]
    raise TypeError(
        "The training data must give (x, y) or (x, y, sample_weight) batches "
        "(or {'images': x, 'labels': y} dicts) to compute the means; got "
        f"elements of type {type(element).__name__}."
    )


def _check_data(data):
    """Raises a TypeError unless ``data`` is training data to stream."""
    if isinstance(data, (tuple, list)):
        _unpack(tuple(data))
    elif not (
        _is_tf_dataset(data)
        or _is_distributed(data)
        or (
            hasattr(data, "__iter__")
            and not hasattr(data, "shape")  # an array, not batches
            and not isinstance(data, (str, bytes, dict))
        )
    ):
        raise TypeError(
            "`data` must be the un-mixed training data: a tuple of arrays "
            "(x, y) / (x, y, sample_weight), a finite batched tf.data.Dataset "
            "(or distributed dataset) of (x, y) batches, a "
            "keras.utils.PyDataset, or another iterable of (x, y) batches "
            f"(e.g. a generator); got {type(data).__name__}."
        )


def _check_single_input(x):
    if keras.tree.is_nested(x):
        raise TypeError(
            "Rescaled prediction shrinks a single input tensor; the data has "
            "nested inputs (a dict or tuple). Pass single-input data."
        )


def _to_numpy(value):
    try:
        return np.asarray(value)
    except (TypeError, RuntimeError, ValueError):  # e.g. a tensor on a GPU
        return keras.ops.convert_to_numpy(value)


def _is_class_ids(y):
    """Integer labels of shape ``(B,)`` or ``(B, 1)`` (NumPy or TF)."""
    shape = tuple(y.shape)
    return "int" in keras.backend.standardize_dtype(y.dtype) and (
        len(shape) == 1 or (len(shape) == 2 and shape[-1] == 1)
    )


def _num_classes_or_fail(num_classes):
    if num_classes is None:
        raise ValueError(
            "The labels are integer class ids: pass `num_classes` to one-hot "
            "them for the label mean."
        )
    return num_classes


def _batches(data):
    """The ``(x, y)`` elements of non-distributed data (see `_check_data`)."""
    if isinstance(data, (tuple, list)):
        return [_unpack(tuple(data))]
    if _is_tf_dataset(data):
        if data.cardinality() == _tf().data.INFINITE_CARDINALITY:
            raise ValueError(
                "The training dataset is infinite (it repeats), so a pass over "
                "it never ends: pass the dataset without `.repeat()`, or "
                "`.take(steps)` of it."
            )
        _unpack(data.element_spec)
        return map(_unpack, data.as_numpy_iterator())
    if isinstance(data, keras.utils.PyDataset):
        try:
            endless = data.num_batches is None
        except NotImplementedError:
            endless = True
        if endless:
            raise ValueError(
                "The training PyDataset has no `num_batches` (or `__len__`), "
                "so a pass over it never ends: give it a length."
            )
    return map(_unpack, data)


def _batch_sums(x, y, num_classes):
    """Sums over a batch, in float64: inputs, labels (one-hot for class
    ids), the count, and the number of labels counted (class ids out of
    range are not)."""
    _check_single_input(x)
    x, y = _to_numpy(x), _to_numpy(y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            "The training inputs and labels must hold the same examples: got "
            f"a batch of {x.shape[0] if x.ndim else 0} inputs and "
            f"{y.shape[0] if y.ndim else 0} labels."
        )
    count = float(x.shape[0])
    x_sum = np.sum(x, axis=0, dtype=np.float64)
    if _is_class_ids(y):
        classes = _num_classes_or_fail(num_classes)
        ids = y.reshape(-1).astype(np.int64)
        valid = (ids >= 0) & (ids < classes)
        y_sum = np.bincount(ids[valid], minlength=classes).astype(np.float64)
        counted = float(valid.sum())
    else:
        y_sum = np.sum(y, axis=0, dtype=np.float64)
        counted = count
    return [x_sum, y_sum, count, counted]


def _distributed_sums(data, strategy, num_classes):
    """The sums of `_batch_sums` over a ``tf.distribute`` dataset: each
    replica sums its share, and the sums are added across replicas."""
    tf = _tf()  # imported: the dataset is a TensorFlow object

    def local(element):
        x, y = _unpack(element)
        _check_single_input(x)
        count = tf.cast(tf.shape(x)[0], tf.float64)
        x_sum = tf.reduce_sum(tf.cast(x, tf.float64), axis=0)
        y = tf.convert_to_tensor(y)
        if _is_class_ids(y):
            classes = _num_classes_or_fail(num_classes)
            ids = tf.reshape(tf.cast(y, tf.int32), [-1])
            ids = tf.where((ids >= 0) & (ids < classes), ids, -1)  # -1: dropped
            y_sum = tf.math.unsorted_segment_sum(tf.ones_like(ids, tf.float64), ids, classes)
            return x_sum, y_sum, count, tf.reduce_sum(y_sum)
        return x_sum, tf.reduce_sum(tf.cast(y, tf.float64), axis=0), count, count

    @tf.function
    def step(element):
        per_replica = strategy.run(local, args=(element,))
        return [
            strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for v in per_replica
        ]

    for element in data:
        yield [np.asarray(v, dtype=np.float64) for v in step(element)]


def training_means(data, num_classes=None, strategy=None):
    """Mean input and mean (one-hot) label, in one streaming pass.

    Sums are taken on the host in float64 NumPy, on every backend; a
    ``tf.distribute`` dataset is summed per replica by TensorFlow and the
    sums are reduced across replicas.

    Args:
        data: un-mixed training data (sample weights are ignored: the means
            are over examples): arrays ``(x, y)`` / ``(x, y, w)`` (a list or
            tuple is read as arrays), a finite batched ``tf.data.Dataset``
            of such elements (or ``{"images", "labels"}`` dicts), a
            distributed dataset, a ``keras.utils.PyDataset``, or another
            iterable of batches (a generator is consumed).
        num_classes: number of classes, needed for integer class ids.
        strategy: the ``tf.distribute`` strategy of a distributed dataset
            (default: the one in scope). A ``tf.data`` dataset is
            distributed too when the strategy has several replicas.

    Returns:
        ``(x_mean, y_mean, count)``: float64 NumPy arrays (the mean input of
        the feature shape and the mean label, one-hot for class ids) and the
        number of examples.

    Example:

    >>> x = np.arange(12, dtype="float32").reshape(6, 2)
    >>> y = np.array([0, 1, 1, 2, 2, 2])
    >>> batches = ((x[i:i + 4], y[i:i + 4]) for i in range(0, 6, 4))
    >>> x_mean, y_mean, n = keras_mixup.callbacks.rescaled.training_means(
    ...     batches, num_classes=3)
    >>> x_mean.tolist(), y_mean.round(3).tolist(), n
    ([5.0, 6.0], [0.167, 0.333, 0.5], 6)
    >>> ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    >>> keras_mixup.callbacks.rescaled.training_means(ds, num_classes=3)[2]
    6
    """
    _check_data(data)
    if strategy is None and _tf() is not None and _tf().distribute.has_strategy():
        strategy = _tf().distribute.get_strategy()
    distributed = _is_distributed(data)
    if distributed and strategy is None:
        raise ValueError(
            "A distributed dataset needs its strategy: pass `strategy=` (the "
            "one whose experimental_distribute_dataset made it) or call this "
            "inside `strategy.scope()`."
        )
    if _is_tf_dataset(data) and strategy is not None and strategy.num_replicas_in_sync > 1:
        _batches(data)  # checks that the dataset is finite, of (x, y) elements
        data, distributed = strategy.experimental_distribute_dataset(data), True
    if distributed:
        parts = _distributed_sums(data, strategy, num_classes)
    else:
        parts = (_batch_sums(x, y, num_classes) for x, y in _batches(data))
    sums = None
    for batch in parts:
        sums = batch if sums is None else [s + b for s, b in zip(sums, batch)]
    if sums is None or sums[2] == 0:
        raise ValueError("The training data is empty: there is nothing to average.")
    x_sum, y_sum, count, counted = sums
    if counted != count:
        raise ValueError(
            f"Some class ids are outside [0, {num_classes}): only "
            f"{int(counted)} of {int(count)} labels were counted. Pass labels "
            "in range, or the right `num_classes`."
        )
    return x_sum / count, y_sum / count, int(count)


def site_theta_bar(site):
    """θ̄ of one mixing layer: `MixUp`, or a `RandomMix` of `MixUp` layers."""
    if isinstance(site, MixUp):
        if site.ways > 2 or site.mix != "both":
            what = f"ways={site.ways}" if site.ways > 2 else f"mix={site.mix!r}"
            raise ValueError(
                f"The model mixes with MixUp({what}) (layer {site.name!r}). "
                "Carratino et al.'s rescaled prediction and θ̄ are derived for "
                "two-way mixup of inputs and labels together; with "
                f"{what} there is no θ̄ to read. Pass `alpha=` to "
                "RescaledPrediction if you want the two-way rescaling anyway."
            )
        return theta_bar(site.alpha, site.beta)
    if isinstance(site, RandomMix):
        total = sum(site.mixer_weights)
        mixed = sum(
            w / total * site_theta_bar(m) for w, m in zip(site.mixer_weights, site.mixers)
        )
        # Not mixing (probability 1 − rate) is θ = 1.
        return site.rate * mixed + (1.0 - site.rate)
    raise ValueError(
        f"The model mixes with {type(site).__name__} (layer {site.name!r}). "
        "The shrinkage of Carratino et al. — inputs pulled toward their mean "
        "by θ̄ — holds for interpolating mixers (MixUp), not for CutMix's "
        "cut-and-paste, so there is no θ̄ to read from it. Pass `alpha=` (and "
        "`beta=`) to RescaledPrediction if you want the rescaling anyway."
    )


def model_theta_bar(model):
    """θ̄ read from the mixing sites of ``model`` (a `MixupModel` or a model)."""
    sites = model.sites if isinstance(model, MixupModel) else find_sites(model)
    if not sites:
        raise ValueError(
            "No mixing layer was found in the model, so α is unknown (mixing "
            "in a tf.data pipeline is invisible to the model). Pass the α "
            "used for training: RescaledPrediction(data, alpha=...)."
        )
    values = [site_theta_bar(s) for s in sites]
    if max(values) - min(values) > 1e-12:
        raise ValueError(
            "The model's mixing sites have different α (θ̄ of "
            f"{[(s.name, round(v, 4)) for s, v in zip(sites, values)]}), so "
            "there is no single shrinkage to undo. Pass `alpha=` (and "
            "`beta=`) to RescaledPrediction to choose one."
        )
    return values[0]


def _loss_from_logits(loss):
    """``from_logits`` of a compiled loss; None when it cannot be told."""
    if isinstance(loss, keras.losses.Loss):
        return loss.get_config().get("from_logits")
    if isinstance(loss, str) or callable(loss):
        return False  # a loss given by name or function uses probabilities
    return None


class RescaledPrediction(keras.callbacks.Callback):
    """Builds the rescaled model of a mixup run and reports its validation scores.

    A model trained with mixup has, in effect, learned on data shrunk toward
    the training mean (Carratino et al., "On Mixup Regularization"; see
    `keras_mixup.RescaledModel`). This callback

    1. at the start of training, computes the mean input ``x̄`` and mean
       one-hot label ``ȳ`` (class frequencies) in one streaming pass over
       ``data`` (un-mixed training data: the stats never change, and
       errors show before the first epoch), and θ̄ from ``alpha``/``beta``
       or, when not given, from the model's `MixUp` site(s);
    2. builds ``callback.rescaled_model``, a `RescaledModel` around the plain
       model (``mixup_model.model`` for a `MixupModel`) that shares its
       weights — so it always reflects the current training state and is
       ready to use or save when ``fit`` returns;
    3. with ``validation_data``, evaluates the rescaled model at the end of
       every epoch with the loss and metrics the model was compiled with
       and adds ``val_rescaled_<name>`` entries (e.g.
       ``val_rescaled_accuracy``) to the epoch logs. ``History`` and the
       callbacks listed after this one (``EarlyStopping``,
       ``ModelCheckpoint``) see them; Keras' progress bar, which runs
       first, does not print them.

    Where ``ȳ`` comes from: the labels, in both spaces (no forward pass is
    needed). ``space="logits"`` rescales around ``log ȳ``, the log class
    frequencies, so every class must occur in ``data``.

    It works on every Keras backend: the means are summed on the host in
    float64 NumPy, or per replica under ``tf.distribute`` (see
    `training_means`). Mixed batches would give the same means in
    expectation (a permutation pairing keeps the batch mean), but pass the
    un-mixed data to get them exactly.

    Args:
        data: the un-mixed training data: arrays ``(x, y)`` (NumPy, JAX or
            TF), a finite, batched ``tf.data`` dataset of ``(x, y)`` /
            ``(x, y, sample_weight)`` elements (on any backend), a
            distributed dataset, a ``keras.utils.PyDataset``, or another
            iterable of such batches (a generator is read once, at the
            start of the first ``fit``). Labels are class ids (the number
            of classes is the model's last output dimension) or one-hot /
            soft float labels.
        alpha: the Beta α used for training; default: read from the
            model's `MixUp` site(s) (a `RandomMix` of MixUp layers counts
            its ``rate``). CutMix has no θ̄: pass ``alpha`` to rescale
            anyway.
        beta: the second Beta concentration (default ``alpha``).
        space: ``"probs"`` (default) or ``"logits"``, see `RescaledModel`.
        validation_data: optional ``(x, y)`` / ``(x, y, sample_weight)``
            arrays, a ``tf.data`` dataset or a ``keras.utils.PyDataset`` to
            evaluate the rescaled model on after each epoch (Keras 3
            callbacks cannot see ``fit``'s own ``validation_data``).
        from_logits: whether the model returns logits; default: read from
            the compiled loss (``from_logits`` of a cross-entropy loss
            object; a loss given by name uses probabilities).
        batch_size: batch size for evaluating array ``validation_data``
            (default 32, as ``evaluate``).

    Attributes:
        rescaled_model: the `RescaledModel` (None before training starts).
        theta_bar, x_mean, y_mean: the statistics it uses.

    Example:

    >>> x = np.random.default_rng(0).random((64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int32")
    >>> inputs = keras.Input((4,))
    >>> outputs = keras.layers.Dense(2, activation="softmax")(inputs)
    >>> model = keras_mixup.MixupModel(keras.Model(inputs, outputs),
    ...     mixer=keras_mixup.layers.MixUp(alpha=1.0, num_classes=2), seed=0)
    >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> rescale = keras_mixup.callbacks.RescaledPrediction((x, y), validation_data=(x, y))
    >>> history = model.fit(x, y, epochs=1, verbose=0, callbacks=[rescale])
    >>> rescale.theta_bar, "val_rescaled_accuracy" in history.history
    (0.75, True)
    >>> rescale.rescaled_model.predict(x[:2], verbose=0).shape
    (2, 2)
    """

    def __init__(self, data, alpha=None, beta=None, space="probs",
                 validation_data=None, from_logits=None, batch_size=None):
        super().__init__()
        if alpha is None and beta is not None:
            raise ValueError(
                "`beta` was given without `alpha`; pass both (or neither, to "
                "read them from the model's MixUp layer)."
            )
        self.alpha, self.beta = alpha, beta
        self._given_theta = None if alpha is None else theta_bar(alpha, beta)
        self.space = check_space(space)
        if from_logits is not None and not isinstance(from_logits, bool):
            raise TypeError(
                f"`from_logits` must be True, False or None (read from the "
                f"compiled loss); got {from_logits!r}."
            )
        self.from_logits = from_logits
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
                batch_size, numbers.Integral) or batch_size < 1):
            raise ValueError(f"`batch_size` must be an int >= 1 or None; got {batch_size!r}.")
        self.batch_size = batch_size
        _check_data(data)
        self.data = data
        if not (
            validation_data is None
            or _is_tf_dataset(validation_data)
            or isinstance(validation_data, keras.utils.PyDataset)
            or (isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3))
        ):
            raise TypeError(
                "`validation_data` must be a tuple of arrays (x, y) or (x, y, "
                "sample_weight), a tf.data.Dataset or a keras.utils.PyDataset; "
                f"got {type(validation_data).__name__}."
            )
        self.validation_data = validation_data
        self.rescaled_model = None
        self.theta_bar = self.x_mean = self.y_mean = None

    # ------------------------------------------------------------ helpers

    def _plain_model(self):
        return self.model.model if isinstance(self.model, MixupModel) else self.model

    def _strategy(self):
        """The model's ``tf.distribute`` strategy (TensorFlow backend), else None."""
        return getattr(self.model, "distribute_strategy", None)

    def _first_inputs(self):
        """The inputs of one example of ``data``, to run a subclassed model."""
        data = self.data
        if isinstance(data, (tuple, list)):
            return _to_numpy(_unpack(tuple(data))[0])[:1]
        if _is_distributed(data):
            x, _ = _unpack(next(iter(data)))
            return self._strategy().experimental_local_results(x)[0][:1]
        iterator = data.as_numpy_iterator() if _is_tf_dataset(data) else iter(data)
        element = next(iterator, None)
        if element is None:
            raise ValueError("The training data is empty: there is nothing to average.")
        if iterator is data:  # a one-shot iterator: put the batch back
            self.data = itertools.chain([element], iterator)
        return _to_numpy(_unpack(element)[0])[:1]

    def _num_classes(self, plain):
        outputs = getattr(plain, "outputs", None) if getattr(plain, "built", False) else None
        try:
            shape = keras.tree.flatten(outputs)[0].shape if outputs else None
        except (AttributeError, ValueError):  # pragma: no cover - defensive
            shape = None
        if shape is not None and shape[-1] is not None:
            return int(shape[-1])
        # A subclassed model: run it on one example.
        return int(plain(self._first_inputs(), training=False).shape[-1])

    def _compile_config(self):
        config = self.model.get_compile_config()
        if not config:
            raise ValueError(
                "RescaledPrediction evaluates with the model's compiled loss "
                "and metrics, but the model is not compiled."
            )
        try:
            return keras.saving.deserialize_keras_object(config)
        except Exception as error:  # re-raised with advice
            raise ValueError(
                "RescaledPrediction could not rebuild the model's loss and "
                "metrics from its compile config to evaluate the rescaled "
                "model. Register custom losses and metrics with "
                "@keras.saving.register_keras_serializable()."
            ) from error

    def _from_logits(self, compile_config):
        if self.from_logits is not None:
            return self.from_logits
        value = _loss_from_logits(compile_config.get("loss"))
        if value is None:
            raise ValueError(
                "Cannot tell from the compiled loss whether the model returns "
                "logits or probabilities; pass `from_logits=True` or `False` "
                "to RescaledPrediction."
            )
        return value

    # ---------------------------------------------------------- callbacks

    def on_train_begin(self, logs=None):
        if self.rescaled_model is not None and self.rescaled_model.model is self._plain_model():
            return  # a second fit(): the stats have not changed
        plain = self._plain_model()
        theta = self._given_theta
        if theta is None:
            theta = model_theta_bar(self.model)
        num_classes = self._num_classes(plain)
        strategy = self._strategy()
        x_mean, y_mean, _ = training_means(self.data, num_classes, strategy)
        if y_mean.shape != (num_classes,):
            raise ValueError(
                f"The labels give a mean of shape {y_mean.shape}, but the model "
                f"predicts {num_classes} classes; pass class ids or one-hot "
                f"labels of shape (batch, {num_classes})."
            )
        compile_config = self._compile_config()
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            rescaled = RescaledModel(
                plain, x_mean=x_mean, y_mean=y_mean, theta_bar=theta, space=self.space,
                from_logits=self._from_logits(compile_config),
                name=f"{plain.name}_rescaled",
            )
            if self.validation_data is not None:
                rescaled.compile(
                    loss=compile_config.get("loss"),
                    loss_weights=compile_config.get("loss_weights"),
                    metrics=compile_config.get("metrics"),
                    weighted_metrics=compile_config.get("weighted_metrics"),
                )
        self.theta_bar, self.x_mean, self.y_mean = theta, x_mean, y_mean
        self.rescaled_model = rescaled

    def on_epoch_end(self, epoch, logs=None):
        if self.validation_data is None or self.rescaled_model is None:
            return
        if not isinstance(self.validation_data, (tuple, list)):
            results = self.rescaled_model.evaluate(
                self.validation_data, verbose=0, return_dict=True
            )
        else:
            x, y, *w = self.validation_data
            results = self.rescaled_model.evaluate(
                x, y, sample_weight=w[0] if w else None, batch_size=self.batch_size,
                verbose=0, return_dict=True,
            )
        if logs is not None:
            for name, value in results.items():
                logs[f"val_rescaled_{name}"] = float(value)
