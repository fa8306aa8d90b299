"""keras_mixup: the mixup family of regularizers for Keras 3 on TensorFlow."""

from keras_mixup import layers, ops
from keras_mixup.model import MixupModel

__version__ = "0.1.0"

__all__ = ["MixupModel", "layers", "ops", "__version__"]
