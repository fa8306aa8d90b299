"""Mixup in federated learning: NaiveMix and FedMix (Yoon et al., ICLR 2021).

In federated learning each client trains on its own data and only model
weights travel (FedAvg: the server averages the clients' weights after each
round). With non-IID clients (say two classes each) global mixup would need
other clients' examples, which they cannot share. Mean-augmented federated
learning shares *averages* instead: each client sends the means of groups
of ``M`` of its examples, ``x̄ = mean(x_1..x_M)``, with their mean labels
``ȳ``, once; every client then trains with the pooled averages of all.

- **NaiveMix** mixes a local example with a pooled average,
  ``x̃ = (1 − λ)·x_i + λ·x̄_j``, ``ỹ = (1 − λ)·y_i + λ·ȳ_j``.
- **FedMix** approximates *global* mixup with a partner ``x_j`` from another
  client, which no client has. With cross-entropy (linear in the label) and
  a first-order expansion in ``λ·x_j``::

      ℓ(f((1−λ)x_i + λx_j), (1−λ)y_i + λy_j)
        ≈ (1−λ)·ℓ(f(x_s), y_i) + λ·ℓ(f(x_s), y_j)
          + λ(1−λ)·⟨∂ℓ(f(x_s), y_i)/∂x_s, x_j⟩,    x_s = (1−λ)·x_i,

  which is linear in ``x_j`` and ``y_j``: averaging it over the ``M``
  examples of an average gives the same expression with ``x̄_j, ȳ_j`` —
  computable from the shared averages alone. (To first order ``λ(1−λ)``
  and ``λ`` agree; we keep the product the expansion gives.)

`FedMixModel` wraps a client's network with either loss; `mean_batches`
makes a client's averages, `split_by_class` a non-IID split, `fedavg`
the server's average, and `run_federated` simulates it all in one process
with plain Keras.
"""

import numpy as np

import keras

from keras_mixup import backend
from keras_mixup.ops.labels import to_soft_labels
from keras_mixup.ops.pairing import sample_partners
from keras_mixup.ops.random import check_seed, fold_seed

METHODS = ("fedmix", "naivemix", "fedavg")


def _as_array(x, name):
    try:
        return np.asarray(x)
    except Exception as error:  # noqa: BLE001 - re-raised with the argument named
        raise TypeError(f"`{name}` must be an array; got {type(x).__name__}.") from error


def mean_batches(x, y, mash_size, num_classes, seed=0):
    """A client's shared data: means of groups of ``mash_size`` examples.

    The examples are shuffled (seeded) and cut into groups of
    ``mash_size`` (a smaller last group is dropped unless it is the only
    one); returns ``(x_bar, y_bar)``, the group means of the inputs and of
    the one-hot labels (soft labels, ``(groups, num_classes)``).

    Example:

    >>> x_bar, y_bar = keras_mixup.federated.mean_batches(
    ...     np.ones((8, 3)), np.arange(8) % 2, mash_size=4, num_classes=2)
    >>> x_bar.shape, y_bar.tolist()
    ((2, 3), [[0.75, 0.25], [0.25, 0.75]])
    """
    x, y = _as_array(x, "x"), _as_array(y, "y")
    if len(x) == 0:
        raise ValueError("A client with no data has no averages to share; drop it "
                         "or give it examples.")
    if len(x) != len(y):
        raise ValueError(f"`x` has {len(x)} examples but `y` has {len(y)}; pass one "
                         "label per example.")
    if isinstance(mash_size, bool) or not isinstance(mash_size, (int, np.integer)) \
            or mash_size < 1:
        raise ValueError(f"`mash_size` must be an int >= 1 (examples per average); "
                         f"got {mash_size!r}.")
    y = _one_hot(y, num_classes)
    order = np.random.default_rng(seed).permutation(len(x))
    groups = max(len(x) // mash_size, 1)
    size = min(mash_size, len(x))
    take = order[: groups * size].reshape(groups, size)
    return x[take].astype("float32").mean(1), y[take].mean(1)


def _one_hot(y, num_classes):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == num_classes:
        return y.astype("float32")
    y = y.reshape(-1)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"Labels must be class ids in [0, {num_classes}) or one-hot rows "
                         f"of width {num_classes}.")
    return np.eye(num_classes, dtype="float32")[y]


def split_by_class(y, clients, classes_per_client=2, seed=0):
    """A non-IID split (FedAvg's "shards"): examples sorted by class, cut
    into ``clients · classes_per_client`` shards, each client given
    ``classes_per_client`` random shards. Returns a list of index arrays."""
    y = np.asarray(y).reshape(-1)
    shards = clients * classes_per_client
    if clients < 1 or classes_per_client < 1 or shards > len(y):
        raise ValueError(f"Cannot cut {len(y)} examples into {clients} clients × "
                         f"{classes_per_client} shards; use fewer clients or shards.")
    rng = np.random.default_rng(seed)
    order = np.argsort(y + rng.random(len(y)) * 0.5, kind="stable")  # by class, shuffled within
    pieces = np.array_split(order, shards)
    assignment = rng.permutation(shards).reshape(clients, classes_per_client)
    return [np.concatenate([pieces[s] for s in row]) for row in assignment]


def fedavg(weight_lists, sizes):
    """The server's step: the average of the clients' weight lists,
    weighted by their example counts."""
    if not weight_lists:
        raise ValueError("No client weights to average.")
    sizes = np.asarray(sizes, dtype="float64")
    if len(sizes) != len(weight_lists) or (sizes <= 0).any():
        raise ValueError("Give one positive example count per client.")
    share = sizes / sizes.sum()
    return [sum(s * w[i] for s, w in zip(share, weight_lists)).astype(weight_lists[0][i].dtype)
            for i in range(len(weight_lists[0]))]


@keras.saving.register_keras_serializable(package="keras_mixup")
class FedMixModel(keras.Model):
    """A client's network trained with NaiveMix or FedMix on pooled averages.

    ``fit(x, y)`` takes the client's own examples (class ids or one-hot
    labels); every example is paired with an average drawn uniformly from
    the pool ``averages=(x_bar, y_bar)`` (e.g. the concatenated
    `mean_batches` of all clients). The loss is cross-entropy, which
    FedMix's derivation needs (linear in the label); compile it with an
    optimizer (and metrics) only. In training, compiled metrics see the
    network's output on what it trains on (the NaiveMix mix, or FedMix's
    ``(1 − λ)·x``); ``predict``/``evaluate`` use the network unchanged, and
    ``model.model`` is the plain network (for weight averaging and export).

    Args:
        model: a Keras model returning class scores ``(batch, classes)``.
        averages: ``(x_bar, y_bar)``: inputs shaped like the model's, and
            soft labels ``(pool, classes)``.
        lam: the fixed weight λ of the average, in (0, 1) (FedMix's
            expansion wants it small).
        method: ``"fedmix"`` (default) or ``"naivemix"``.
        from_logits: whether the model returns logits (default) or
            probabilities.
        seed: int seed of the pairing stream, or None.

    Example:

    >>> net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x, y = np.random.rand(12, 4).astype("float32"), np.arange(12) % 3
    >>> pool = keras_mixup.federated.mean_batches(x, y, mash_size=4, num_classes=3)
    >>> model = keras_mixup.FedMixModel(net, averages=pool, lam=0.1, seed=0)
    >>> model.compile("sgd")
    >>> history = model.fit(x, y, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['loss']
    """

    def __init__(self, model, averages, lam=0.1, method="fedmix", from_logits=True,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` must be a Keras model returning class scores; got "
                            f"{type(model).__name__}.")
        if method not in ("fedmix", "naivemix"):
            raise ValueError(f"`method` must be 'fedmix' or 'naivemix'; got {method!r} (for "
                             "plain FedAvg train the network itself).")
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 < lam < 1.0:
            raise ValueError(f"`lam` must be a number in (0, 1), the weight of the average; "
                             f"got {lam!r}.")
        self.model, self.method, self.lam = model, method, float(lam)
        self.from_logits = bool(from_logits)
        self.seed, self._base_seed = check_seed(seed)
        x_shape, y_shape = self._pool_shapes(averages)
        self.x_bar = self.add_weight(shape=x_shape, initializer="zeros", trainable=False,
                                     name="x_bar")
        self.y_bar = self.add_weight(shape=y_shape, initializer="zeros", trainable=False,
                                     name="y_bar")
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                    trainable=False, name="fedmix_step")
        if not isinstance(averages, dict):
            self.set_averages(*averages)

    def _pool_shapes(self, averages):
        if isinstance(averages, dict):  # from get_config: shapes only
            return tuple(averages["x_shape"]), tuple(averages["y_shape"])
        if not isinstance(averages, (tuple, list)) or len(averages) != 2:
            raise ValueError("`averages` must be (x_bar, y_bar): the pooled averages of the "
                             "clients' inputs and of their one-hot labels (see "
                             "keras_mixup.federated.mean_batches).")
        x_bar, y_bar = (_as_array(a, "averages") for a in averages)
        self._check_pool(x_bar, y_bar)
        return x_bar.shape, y_bar.shape

    def _check_pool(self, x_bar, y_bar):
        if x_bar.ndim < 2 or y_bar.ndim != 2 or len(x_bar) != len(y_bar) or len(x_bar) == 0:
            raise ValueError(
                f"`averages`: x_bar {x_bar.shape} and y_bar {y_bar.shape} must hold the same "
                "number (>= 1) of averages, with soft labels of shape (pool, classes).")
        inputs = getattr(self.model, "inputs", None)
        if inputs and len(inputs) == 1:
            expected = tuple(inputs[0].shape[1:])
            if None not in expected and tuple(x_bar.shape[1:]) != expected:
                raise ValueError(f"`averages`: x_bar's examples have shape "
                                 f"{tuple(x_bar.shape[1:])} but the model takes {expected}; "
                                 "average the same inputs the model trains on.")
        outputs = getattr(self.model, "outputs", None)
        if outputs and len(outputs) == 1 and outputs[0].shape[-1] not in (None, y_bar.shape[1]):
            raise ValueError(f"`averages`: y_bar has {y_bar.shape[1]} classes but the model "
                             f"returns {outputs[0].shape[-1]} scores per example.")

    def set_averages(self, x_bar, y_bar):
        """Replaces the pool (same shapes as at construction)."""
        x_bar, y_bar = np.asarray(x_bar, "float32"), np.asarray(y_bar, "float32")
        self._check_pool(x_bar, y_bar)
        if x_bar.shape != tuple(self.x_bar.shape) or y_bar.shape != tuple(self.y_bar.shape):
            raise ValueError(f"set_averages: shapes {x_bar.shape}, {y_bar.shape} differ from "
                             f"the pool's {tuple(self.x_bar.shape)}, {tuple(self.y_bar.shape)}.")
        self.x_bar.assign(x_bar)
        self.y_bar.assign(y_bar)

    def _plan(self, x):
        """The step's partners in the pool (the same in `call` and the loss)."""
        K = backend.ops()
        seed = fold_seed(K.seed_from_int(self._base_seed), K.convert_to_tensor(self.step.value))
        batch = K.batch_size(x)
        index, _ = sample_partners("permutation", batch, seed, pool_size=self.x_bar.shape[0])
        return index

    def _partner(self, index):
        ops = keras.ops
        return ops.take(self.x_bar.value, index, axis=0), ops.take(self.y_bar.value, index, axis=0)

    def _input(self, x):
        """What the network sees in training: the NaiveMix mix, or FedMix's
        shrunk input ``(1 − λ)·x``."""
        x = keras.ops.cast(x, "float32")
        if self.method == "fedmix":
            return (1.0 - self.lam) * x
        x_bar, _ = self._partner(self._plan(x))
        return (1.0 - self.lam) * x + self.lam * x_bar

    def call(self, inputs, training=False):
        if not training:
            return self.model(inputs, training=False)
        return self.model(self._input(inputs), training=True)

    def _cross_entropy(self, y, scores):
        return keras.losses.categorical_crossentropy(y, scores, from_logits=self.from_logits)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            raise ValueError("FedMixModel needs the client's labels: fit(x, y).")
        ops = keras.ops
        y = to_soft_labels(y, self.y_bar.shape[1])
        if not training:
            loss = self._cross_entropy(y, y_pred)
        else:
            lam = self.lam
            x_bar, y_bar = self._partner(self._plan(x))
            if self.method == "naivemix":
                loss = self._cross_entropy((1.0 - lam) * y + lam * y_bar, y_pred)
            else:
                shrunk = self._input(x)

                def own_loss(inputs):
                    return ops.sum(self._cross_entropy(y, self.model(inputs, training=True)))

                grad = backend.ops().gradient_of(own_loss, shrunk)
                axes = list(range(1, len(shrunk.shape)))
                directional = ops.sum(grad * ops.reshape(x_bar, ops.shape(shrunk)), axis=axes)
                loss = ((1.0 - lam) * self._cross_entropy(y, y_pred)
                        + lam * self._cross_entropy(y_bar, y_pred)
                        + lam * (1.0 - lam) * directional)
            self.step.assign(self.step.value + 1)
        if sample_weight is None:
            total = ops.mean(loss)
        else:
            weight = ops.cast(ops.reshape(sample_weight, [-1]), "float32")
            total = ops.sum(loss * weight) / ops.maximum(ops.sum(weight), 1e-12)
        for extra in self.losses:  # the network's regularization losses
            total = total + ops.cast(extra, "float32")
        return total

    def get_config(self):
        config = super().get_config()
        config.update({
            "model": keras.saving.serialize_keras_object(self.model),
            "averages": {"x_shape": list(self.x_bar.shape), "y_shape": list(self.y_bar.shape)},
            "lam": self.lam, "method": self.method, "from_logits": self.from_logits,
            "seed": self.seed,
        })
        return config


def run_federated(data, method="fedmix", clients=10, classes_per_client=2, rounds=20,
                  local_epochs=1, batch_size=32, lam=0.1, mash_size=10, learning_rate=0.05,
                  build=None, seed=0, log=None):
    """Simulates federated training in one process; returns the test
    accuracy (%) after each round.

    ``data = (x_train, y_train, x_test, y_test)`` with class ids; the
    training set is split non-IID (`split_by_class`). Every round each
    client starts from the global weights, trains ``local_epochs`` with
    SGD (no momentum: no optimizer state to carry), and the server takes
    `fedavg`. ``method``: ``"fedavg"`` (plain), ``"naivemix"`` or
    ``"fedmix"``; the mixing methods pool every client's `mean_batches`
    once, before the first round. ``build(seed)`` makes the network
    (default: an MLP of two hidden layers of 128 units).
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(METHODS)}; got {method!r}.")
    x_train, y_train, x_test, y_test = data
    classes = int(max(y_train.max(), y_test.max())) + 1
    parts = split_by_class(y_train, clients, classes_per_client, seed)
    build = build or (lambda s: _mlp(x_train.shape[1:], classes, s))
    net = build(seed)
    trainer = net
    if method != "fedavg":
        pools = [mean_batches(x_train[p], y_train[p], mash_size, classes, seed + k)
                 for k, p in enumerate(parts)]
        averages = tuple(np.concatenate(a) for a in zip(*pools))
        trainer = FedMixModel(net, averages, lam=lam, method=method, seed=seed)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate),
                    loss=loss if method == "fedavg" else None)
    global_weights = net.get_weights()
    accuracy = []
    for r in range(rounds):
        results = []
        for p in parts:
            net.set_weights(global_weights)
            trainer.fit(x_train[p], y_train[p], batch_size=batch_size, epochs=local_epochs,
                        verbose=0, shuffle=True)
            results.append(net.get_weights())
        global_weights = fedavg(results, [len(p) for p in parts])
        net.set_weights(global_weights)
        logits = keras.ops.convert_to_numpy(net(x_test, training=False))
        accuracy.append(100.0 * float(np.mean(np.argmax(logits, -1) == y_test)))
        if log:
            log(f"{method}, round {r + 1}: test accuracy {accuracy[-1]:.2f}%")
    return accuracy


def _mlp(shape, classes, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(shape), keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"), keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(classes),
    ])
