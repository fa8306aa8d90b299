"""Runs the examples in the public docstrings (doctest)."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup

# Written against TensorFlow tensors and graphs; the backend-neutral
# contract runs on every backend in test_backends.py.
pytestmark = pytest.mark.tensorflow_only

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(keras_mixup.__path__, "keras_mixup.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    globs = {"keras": keras, "keras_mixup": keras_mixup, "np": np, "tf": tf}
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name, globs=globs) if t.examples]
    for test in tests:
        test.globs = dict(globs)
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_public_api_is_documented_with_examples():
    public = [keras_mixup.MixupModel, keras_mixup.MixupE, keras_mixup.RescaledModel,
              keras_mixup.ICTModel, keras_mixup.tune, keras_mixup.AdaMixupModel,
              keras_mixup.FedMixModel, keras_mixup.federated.mean_batches,
              keras_mixup.DomainAdaptationModel, keras_mixup.MixupGAN,
              keras_mixup.discriminator_mixup,
              keras_mixup.layers.MixUp, keras_mixup.layers.CutMix,
              keras_mixup.layers.RandomMix, keras_mixup.layers.FMix, keras_mixup.layers.ResizeMix,
              keras_mixup.layers.PatchUp, keras_mixup.layers.MaskMix,
              keras_mixup.metrics.ExpectedCalibrationError,
              keras_mixup.metrics.reliability_diagram,
              keras_mixup.callbacks.RescaledPrediction, keras_mixup.callbacks.MixupSchedule]
    public += [getattr(keras_mixup.ops, n) for n in keras_mixup.ops.__all__]
    missing = [f.__name__ for f in public if ">>>" not in (f.__doc__ or "")]
    assert not missing, f"public API without a runnable example: {missing}"
