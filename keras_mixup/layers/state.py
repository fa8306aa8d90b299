"""A mixing layer's state: its seed stream, switches and compiled methods.

The state lives in Keras variables (the call counter, ``enabled``,
``concentration``, and for label-aware pairings the ``unpaired`` counts);
inside a ``tf.data`` graph under JAX or PyTorch, where those cannot be
read, a TensorFlow mirror of each is made on first use and kept in step by
`set_mixing_state`.
"""

import keras
import numpy as np

from keras_mixup import backend
from keras_mixup.ops.random import fold_seed


def _traced_without_scope(x):
    """Whether ``x`` is a JAX tracer while no `keras.StatelessScope`
    collects variable updates: a variable assigned now would keep the
    tracer (a bare ``jax.jit`` around a layer call)."""
    import sys

    jax = sys.modules.get("jax")
    tracer = getattr(getattr(jax, "core", None), "Tracer", None)
    if tracer is None or not isinstance(x, tracer):
        return False
    try:  # no public API (keras.StatelessScope has no "current" accessor)
        from keras.src.backend.common.stateless_scope import in_stateless_scope
    except ImportError:  # pragma: no cover - a Keras that moved it
        return False
    return not in_stateless_scope()


_COUNTERS = ("seed_state", "unpaired")


class MixingState:
    """Mixin of `BaseMixingLayer`: seeds, state variables, compiled methods."""

    def _init_state(self):
        self._tf_mirrors = {}
        self._compiled = {}
        # A counter advanced by every call; in TensorFlow atomically
        # (RngReadAndSkip is a fetch-and-add), so parallel tf.data map calls
        # never share a plan. (JAX without x64 has no int64: int32 there.)
        self.seed_state = self.add_weight(
            shape=(3,),
            dtype="int64" if backend.keras_backend() == "tensorflow" else "int32",
            initializer="zeros",
            trainable=False,
            name="seed_state",
        )
        # 1.0 mixes, 0.0 makes every plan the identity; read in the graph,
        # so `keras_mixup.callbacks.MixupSchedule` can switch mixing off
        # between epochs without retracing.
        self.enabled = self.add_weight(
            shape=(),
            dtype="float32",
            initializer="ones",
            trainable=False,
            name="enabled",
        )

    def _init_unpaired(self):
        """``unpaired``: ``[partners drawn, partners not found]`` since the
        layer was made, for the label-aware pairings."""
        self.unpaired = self.add_weight(
            shape=(2,),
            dtype="int64" if backend.keras_backend() == "tensorflow" else "int32",
            initializer="zeros",
            trainable=False,
            name="unpaired",
        )

    def _unpaired_delta(self, found):
        """int32 ``[partners drawn, partners not found]`` of a plan's
        ``found`` (zeros for None)."""
        K = backend.ops()
        if found is None:
            return K.convert_to_tensor(np.zeros(2, "int32"))
        missing = 1 - K.cast(found, "int32")
        return K.stack([K.reduce_sum(K.ones_like(missing)), K.reduce_sum(missing)])

    def _add_unpaired(self, delta):
        state = self._state("unpaired")
        state.assign_add(backend.ops().cast(delta, backend.dtype_name(state)))

    def unpaired_fraction(self):
        """The fraction of partners a label-aware pairing could not find
        (no other example of the class in the batch for ``"same_class"``,
        a batch of one class for ``"other_class"``) since the layer was
        made; those examples kept their own data and label. A Python float
        (0.0 before any call)."""
        if not hasattr(self, "unpaired"):
            raise ValueError(
                f"Only label-aware pairings ('same_class', 'other_class') can "
                f"miss a partner; this layer pairs by {self.pairing!r}."
            )
        # (In a tf.data map under JAX the TensorFlow mirror counts.)
        mirror = self._tf_mirrors.get("unpaired")
        counts = mirror.numpy() if mirror is not None else keras.ops.convert_to_numpy(self.unpaired)
        return int(counts[1]) / int(counts[0]) if int(counts[0]) else 0.0

    def set_mixing_state(self, enabled=None, concentration=None):
        """Sets ``enabled`` (bool) and/or ``concentration`` ``[α, β]``, the
        values the compiled step and ``tf.data`` maps read in the graph
        (used by `keras_mixup.callbacks.MixupSchedule`)."""
        values = {}
        if enabled is not None:
            values["enabled"] = np.float32(1.0 if enabled else 0.0)
        if concentration is not None:
            values["concentration"] = np.asarray(concentration, "float32")
        for name, value in values.items():
            getattr(self, name).assign(value)
            if name in self._tf_mirrors:
                self._tf_mirrors[name].assign(value)

    def _state(self, name):
        """The layer variable ``name`` as the running op namespace reads it:
        the Keras variable, or inside a ``tf.data`` graph under another
        backend its TensorFlow mirror."""
        variable = getattr(self, name)
        if not backend.uses_tensorflow():
            # JAX: the value (traced inside a step); counters' variables.
            return variable if name in _COUNTERS else variable.value
        if backend.keras_backend() == "tensorflow":
            return variable
        mirror = self._tf_mirrors.get(name)
        if mirror is None:
            tf = backend.require_tensorflow("Mixing in a tf.data pipeline")
            value = keras.ops.convert_to_numpy(variable)
            if name in _COUNTERS:
                value = value.astype("int64")
            with tf.init_scope():
                mirror = tf.Variable(value, trainable=False, name=f"{self.name}_{name}")
            self._tf_mirrors[name] = mirror
        return mirror

    def next_seed(self):
        """A fresh stateless seed: the layer seed and a call counter."""
        K = backend.ops()
        state = self._state("seed_state")
        if K.NAME == "tensorflow":
            import tensorflow as tf

            old = tf.raw_ops.RngReadAndSkip(
                resource=state.handle if isinstance(state, tf.Variable) else state.value.handle,
                alg=1,
                delta=tf.constant(1, tf.uint64),
            )
            return tf.stack([tf.constant(self._base_seed, tf.int64), old[0]])
        # JAX / PyTorch: a plain read-and-increment (calls are sequential);
        # inside a jitted function Keras threads the variable's new value.
        value = keras.ops.convert_to_tensor(state)
        count = value[0]
        if _traced_without_scope(count):
            raise RuntimeError(self._bare_jit_message())
        state.assign(value + keras.ops.array([1, 0, 0], "int32"))
        return fold_seed(K.seed_from_int(self._base_seed), count)

    def _bare_jit_message(self):
        name = type(self).__name__
        return (
            f"{name} was called inside `jax.jit` (or another JAX "
            "transformation) on its own variables: its call counter, which "
            "gives every call a fresh plan, cannot change inside the "
            "compiled function, so every call would reuse one plan. Compile "
            "`layer.stateless_call(trainable_variables, "
            "non_trainable_variables, x, y)` instead and carry the "
            "non-trainable variables it returns into the next call (what a "
            "JAX training loop does), call the layer outside `jax.jit`, map "
            f"it over a tf.data pipeline (`ds.map({name}(...))`), or train "
            "with `keras_mixup.MixupModel`."
        )

    # --------------------------------------------------------------- config

    def _jit(self, name):
        """The method ``name``, XLA-compiled when ``jit_compile`` (cached).

        TensorFlow only: under JAX the step (or the user's ``jax.jit`` of
        ``stateless_call``) compiles the whole computation at once.
        """
        if not backend.uses_tensorflow() or not self.jit_compile:
            return getattr(self, name)
        key = (name, backend.keras_backend())
        fn = self._compiled.get(key)
        if fn is None:
            import tensorflow as tf

            fn = tf.function(getattr(self, name), jit_compile=True, autograph=False)
            self._compiled[key] = fn
        return fn

    def _graph(self, name):
        """The method ``name`` as a ``tf.function`` without XLA (cached;
        shapes generalized after a second signature)."""
        key = (name, backend.keras_backend(), "graph")
        fn = self._compiled.get(key)
        if fn is None:
            import tensorflow as tf

            fn = tf.function(getattr(self, name), autograph=False, reduce_retracing=True)
            self._compiled[key] = fn
        return fn
