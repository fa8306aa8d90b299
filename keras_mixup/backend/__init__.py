"""The one place that knows which backend runs the mixing code.

Every sampler and applier in keras_mixup is written once against a small
op namespace, ``ops()``, with TensorFlow-flavoured names (``gather``,
``reduce_sum``, ``bits``, ``fold_seed``...). Two implementations exist:

- `keras_mixup.backend.tensorflow`: TensorFlow ops. Used when Keras runs on
  TensorFlow, and under *any* backend inside a TensorFlow graph — a
  ``tf.data`` map traces the layer with symbolic ``tf.Tensor`` inputs,
  which JAX or PyTorch ops cannot take (Keras' own preprocessing layers
  switch to TensorFlow there for the same reason).
- `keras_mixup.backend.generic`: ``keras.ops`` (so the running backend's
  ops), plus the backend's counter-based random bits. Used on JAX (and on
  PyTorch, where ``MixupModel`` is not offered).

TensorFlow is imported only by the TensorFlow namespace, so
``import keras_mixup`` works on a JAX machine without TensorFlow.
"""

import contextlib
import sys
import threading

import keras

_LOCAL = threading.local()
_MODULES = {}


def keras_backend():
    """The backend Keras runs on: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def in_tf_graph():
    """Whether TensorFlow is tracing a graph right now (``tf.data`` map,
    ``tf.function``). False when TensorFlow was never imported."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not hasattr(tf, "executing_eagerly"):
        return False
    return not tf.executing_eagerly()


def _module(name):
    module = _MODULES.get(name)
    if module is None:
        # Import statements, not importlib calls: tf.data's autograph
        # converts the calls it sees while tracing a map.
        if name == "tensorflow":
            from keras_mixup.backend import tensorflow as module
        else:
            from keras_mixup.backend import generic as module
        _MODULES[name] = module
    return module


def name():
    """The op namespace in use here: ``"tensorflow"`` or ``"generic"``."""
    forced = getattr(_LOCAL, "forced", None)
    if forced is not None:
        return forced
    if keras_backend() == "tensorflow" or in_tf_graph():
        return "tensorflow"
    return "generic"


def ops():
    """The op namespace for the code running now (see the module doc)."""
    return _module(name())


def uses_tensorflow():
    """Whether the mixing code running now computes with TensorFlow ops."""
    return name() == "tensorflow"


@contextlib.contextmanager
def use(namespace):
    """Forces ``"tensorflow"`` or ``"generic"`` ops inside the block."""
    if namespace not in ("tensorflow", "generic"):
        raise ValueError(f"Unknown op namespace {namespace!r}.")
    old = getattr(_LOCAL, "forced", None)
    _LOCAL.forced = namespace
    try:
        yield
    finally:
        _LOCAL.forced = old


def require_tensorflow(what):
    """Imports TensorFlow for ``what``, or says how to get it."""
    try:
        import tensorflow as tf
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise ImportError(
            f"{what} needs TensorFlow, which is not installed. Install it "
            "(`pip install tensorflow`, or keras-mixup's `[tensorflow]` "
            "extra); training with MixupModel on the JAX backend from NumPy "
            "arrays does not need it."
        ) from err
    return tf


def rank(x):
    """Static rank of a tensor, array or KerasTensor (None if unknown)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    try:
        return len(shape)
    except (TypeError, ValueError):  # a tf.TensorShape of unknown rank
        return None


def dim(x, axis):
    """The size of ``axis`` of ``x``: a Python int when static, else the op
    namespace's run-time size (a static size keeps the graph smaller)."""
    size = x.shape[axis]
    return size if size is not None else ops().shape(x)[axis]


def dtype_name(x):
    """The standardized dtype name of a tensor or array (``"float32"``...)."""
    return keras.backend.standardize_dtype(x.dtype)


def is_float(x):
    return keras.backend.is_float_dtype(dtype_name(x))


def is_int(x):
    return keras.backend.is_int_dtype(dtype_name(x))
