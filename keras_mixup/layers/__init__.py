"""Keras mixing layers: for ``tf.data`` pipelines and model definitions."""

from keras_mixup.layers.base import BaseMixingLayer
from keras_mixup.layers.cut_mix import CutMix
from keras_mixup.layers.fmix import FMix
from keras_mixup.layers.mask_mix import MaskMix
from keras_mixup.layers.mix_up import MixUp
from keras_mixup.layers.patch_up import PatchUp
from keras_mixup.layers.random_mix import RandomMix
from keras_mixup.layers.resize_mix import ResizeMix

__all__ = ["BaseMixingLayer", "CutMix", "FMix", "MaskMix", "MixUp", "PatchUp", "RandomMix", "ResizeMix"]
