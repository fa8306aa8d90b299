"""keras_mixup: the mixup family of regularizers for Keras 3 (TensorFlow and JAX)."""

from keras_mixup import callbacks, federated, layers, metrics, ops, tune
from keras_mixup.adamixup import AdaMixupModel
from keras_mixup.domain import DomainAdaptationModel
from keras_mixup.federated import FedMixModel
from keras_mixup.gan import MixupGAN, discriminator_mixup
from keras_mixup.model import MixupModel
from keras_mixup.regularizers import MixupE
from keras_mixup.rescaled import RescaledModel
from keras_mixup.semi_supervised import ICTModel

__version__ = "0.1.0"

__all__ = [
    "AdaMixupModel",
    "DomainAdaptationModel",
    "FedMixModel",
    "ICTModel",
    "MixupE",
    "MixupGAN",
    "MixupModel",
    "RescaledModel",
    "__version__",
    "callbacks",
    "discriminator_mixup",
    "federated",
    "layers",
    "metrics",
    "ops",
    "tune",
]
