"""Keras callbacks: rescaled prediction and mixing schedules."""

from keras_mixup.callbacks.rescaled import RescaledPrediction
from keras_mixup.callbacks.schedule import MixupSchedule

__all__ = ["MixupSchedule", "RescaledPrediction"]
