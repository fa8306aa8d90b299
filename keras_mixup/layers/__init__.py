"""Keras mixing layers: for ``tf.data`` pipelines and model definitions."""

from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.layers.cut_mix import CutMix
from keras_mixup.layers.mix_up import MixUp
from keras_mixup.layers.random_mix import RandomMix

__all__ = ["BaseMixingLayer", "CutMix", "MixUp", "RandomMix"]
