"""Offline datasets for ``keras-mixup demo`` and ``reproduce``.

scikit-learn's digits (always there), Fashion-MNIST from the Debian package
``dataset-fashion-mnist``, and any image-classification dataset that
tensorflow-datasets has prepared on the machine (``tfds:NAME[:SPLIT]``;
CIFAR-10 through it too), as `Data`: images ``(N, H, W, C)`` in [0, 1] and
int labels. Loaders raise `DataUnavailable` (a one-line message) when a
dataset is not there and `UnsuitableData` when a ``tfds:`` dataset cannot
serve the demo; CIFAR-10 and unprepared ``tfds:`` datasets fall back to
digits with a note.
"""

import difflib
import gzip
import os
import sys

import numpy as np

from keras_mixup_cli import parse_tfds, quiet_startup

NUM_CLASSES = 10
DATASETS = ("digits", "fashion_mnist", "cifar10")
# Where the Debian package `dataset-fashion-mnist` puts the original files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "boot")
CIFAR10_CLASSES = ("plane", "car", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
# Subsets that keep an epoch on two CPU cores around a second.
LARGE_TRAIN, LARGE_TEST = 10_000, 2_000
# tensorflow-datasets: images larger than this, or of varying size, are
# resized to TFDS_IMAGE_SIZE × TFDS_IMAGE_SIZE for the MLP.
TFDS_IMAGE_SIZE = 32
# Splits of up to this many examples are read whole and subsampled at random
# (by the seed), like CIFAR-10's 50k training images; of larger ones only the
# first examples the demo needs are read: tensorflow-datasets stores them in
# a shuffled order.
TFDS_READ_WHOLE = 60_000
# The part of the training split held out for testing when a dataset has no
# test (or validation) split.
HOLDOUT = 0.3


class DataUnavailable(Exception):
    """A dataset is not on this machine; the message says how to get it."""


class UnsuitableData(ValueError):
    """A dataset the demo cannot train on (unknown to tensorflow-datasets, no
    image + class-label pair, no such split); the message says why."""


class Data:
    """Train and test arrays (images ``(N, H, W, C)`` in [0, 1], int labels
    in ``[0, num_classes)``)."""

    def __init__(self, name, x_train, y_train, x_test, y_test, class_names=None,
                 num_classes=NUM_CLASSES):
        self.name = name
        self.x_train, self.y_train = x_train, y_train
        self.x_test, self.y_test = x_test, y_test
        self.num_classes = num_classes
        self.class_names = tuple(class_names or (str(i) for i in range(num_classes)))


# ------------------------------------------------------------------ data


def _digits(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y
    )
    return Data("digits", x_train, y_train.astype("int32"), x_test, y_test.astype("int32"))


def _read_idx(path, header):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def _fashion_mnist(seed):
    folder = FASHION_MNIST_DIR
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    paths = [os.path.join(folder, n) for n in names]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DataUnavailable(
            f"Fashion-MNIST is not installed ({missing[0]} is missing): run "
            "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or "
            "use --data digits."
        )
    x_train = _read_idx(paths[0], 16).reshape(-1, 28, 28, 1)
    y_train = _read_idx(paths[1], 8)
    x_test = _read_idx(paths[2], 16).reshape(-1, 28, 28, 1)
    y_test = _read_idx(paths[3], 8)
    return _subset("fashion_mnist", x_train, y_train, x_test, y_test, seed, FASHION_CLASSES)


def _cifar10(seed, warn):
    """CIFAR-10 from tensorflow-datasets if it is on disk; else None."""
    return _tfds("cifar10", None, seed, warn, name="cifar10", title="CIFAR-10",
                 class_names=CIFAR10_CLASSES)


def _import_tfds(title, warn):
    try:
        with quiet_startup():  # it imports TensorFlow, under any Keras backend
            import tensorflow_datasets as tfds
    except ImportError:
        warn(f"note: {title} needs tensorflow-datasets (`pip install "
             "tensorflow-datasets`), which is not installed: using digits instead.")
        return None
    return tfds


def _features_text(features):
    items = features.items() if hasattr(features, "items") else [("", features)]
    return ", ".join(f"{key} ({type(feature).__name__})" for key, feature in items) or "none"


def _image_and_label(tfds, builder, title):
    """The keys of an Image feature and a ClassLabel feature of ``builder``:
    its supervised keys when they are such a pair, else the first of each
    (``image`` and ``label`` first). UnsuitableData if it has no pair."""
    features = builder.info.features
    image_type, label_type = tfds.features.Image, tfds.features.ClassLabel
    items = dict(features.items()) if hasattr(features, "items") else {}
    keys = builder.info.supervised_keys
    if (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys)
            and isinstance(items.get(keys[0]), image_type)
            and isinstance(items.get(keys[1]), label_type)):
        image_key, label_key = keys
    else:
        images = sorted((k for k, f in items.items() if isinstance(f, image_type)),
                        key=lambda k: k != "image")
        labels = sorted((k for k, f in items.items() if isinstance(f, label_type)),
                        key=lambda k: k != "label")
        if not images or not labels:
            raise UnsuitableData(
                f"{title} has no image + class-label pair to train on: its features are "
                f"{_features_text(features)}; the demo needs an Image feature and a "
                "ClassLabel feature")
        image_key, label_key = images[0], labels[0]
    num_classes = items[label_key].num_classes
    if not num_classes or num_classes < 2:
        raise UnsuitableData(f"{title}: its labels ({label_key!r}) have {num_classes} "
                             "classes; the demo needs at least 2")
    return image_key, label_key


def _split_names(spec):
    """The split names in a tensorflow-datasets split spec:
    'train[:50%]+validation' -> {'train', 'validation'}."""
    return {part.split("[")[0].strip() for part in spec.split("+")}


def _read_tfds(tfds, builder, dataset, image_key, label_key, limit):
    """Images (resized when needed, scaled to [0, 1]) and int32 labels of a
    tf.data dataset of feature dicts, at most ``limit`` of them."""
    import tensorflow as tf

    feature = builder.info.features[image_key]
    height, width = feature.shape[:2]
    resize = height is None or width is None or max(height, width) > TFDS_IMAGE_SIZE
    dtype = np.dtype(feature.np_dtype)
    scale = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0

    def convert(example):
        image = tf.cast(example[image_key], tf.float32) / scale
        if resize:
            image = tf.image.resize(image, (TFDS_IMAGE_SIZE, TFDS_IMAGE_SIZE), antialias=True)
        return tf.clip_by_value(image, 0.0, 1.0), tf.cast(example[label_key], tf.int32)

    if limit is not None:
        dataset = dataset.take(limit)
    dataset = dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    batches = list(tfds.as_numpy(dataset))
    if not batches:
        return None, None
    x = np.concatenate([b[0] for b in batches]).astype("float32")
    y = np.concatenate([b[1] for b in batches]).astype("int32")
    # Some splits mark unlabelled images with -1: they cannot be trained on.
    labelled = (y >= 0) & (y < builder.info.features[label_key].num_classes)
    return (x, y) if labelled.all() else (x[labelled], y[labelled])


def _read_limit(builder, spec, needed):
    """How many examples to read of split ``spec``: None (all of them) when
    it is known to have at most TFDS_READ_WHOLE, else ``needed``."""
    try:
        count = builder.info.splits[spec].num_examples
    except Exception:  # an unknown count (e.g. mocked data): read what is needed
        count = None
    return None if count and count <= TFDS_READ_WHOLE else needed


def _tfds(dataset, split, seed, warn, name=None, title=None, class_names=None):
    """An image-classification dataset that tensorflow-datasets has prepared
    on this machine (nothing is downloaded); None, after a note through
    ``warn``, when tensorflow-datasets or the prepared data is missing.

    Trains on ``split`` (default ``train``) and tests on the dataset's test
    (or validation) split, or on HOLDOUT of ``split`` when it has none or
    ``split`` uses it. Raises UnsuitableData for an unknown dataset, one
    without an image + class-label pair, or an unknown split.
    """
    spec = f"tfds:{dataset}" + (f":{split}" if split else "")
    name, title = name or spec, title or spec
    tfds = _import_tfds(title, warn)
    if tfds is None:
        return None
    # tensorflow-datasets reads TFDS_DATA_DIR once, when imported; this
    # honours it when it is set later, too.
    data_dir = os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(dataset, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        close = difflib.get_close_matches(dataset.split("/")[0], tfds.list_builders(), n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise UnsuitableData(f"tensorflow-datasets has no dataset {dataset!r}{hint}; "
                             "`tfds.list_builders()` lists them") from None
    except Exception as error:  # a version or config that does not exist, ...
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UnsuitableData(f"tensorflow-datasets cannot open {dataset!r}: "
                             f"{reason[:200]}") from None
    image_key, label_key = _image_and_label(tfds, builder, title)

    listed = set(builder.info.splits)  # empty until the data is prepared
    train_spec = split or "train"
    if listed and not split and "train" not in listed:
        raise UnsuitableData(f"{title} has no train split: name one, tfds:{dataset}:SPLIT "
                             f"with SPLIT from {', '.join(sorted(listed))}")
    test_split = next((s for s in ("test", "validation")
                       if s in listed and s not in _split_names(train_spec)), None)
    try:
        train_ds = builder.as_dataset(split=train_spec)
        test_ds = None if test_split is None else builder.as_dataset(split=test_split)
    except AssertionError:  # "could not find data": not prepared on this machine
        where = data_dir or "~/tensorflow_datasets"
        warn(f"note: tensorflow-datasets has not prepared {dataset} in {where} (the demo "
             f"downloads nothing): run `tfds build {dataset}` once with internet access "
             f"(or `python -c \"import tensorflow_datasets as tfds; "
             f"tfds.builder('{dataset}').download_and_prepare()\"`). Using digits instead.")
        return None
    except (ValueError, KeyError) as error:  # e.g. an unknown split
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UnsuitableData(f"{title}: {reason[:200]}") from None

    need = LARGE_TRAIN + (LARGE_TEST if test_ds is None else 0)
    x, y = _read_tfds(tfds, builder, train_ds, image_key, label_key,
                      _read_limit(builder, train_spec, need))
    if x is None or len(x) < 2:
        raise UnsuitableData(f"{title}: split {train_spec!r} has fewer than 2 labelled "
                             "examples")
    rng = np.random.default_rng(seed)
    if test_ds is None:
        order = rng.permutation(len(x))
        n_test = min(LARGE_TEST, max(1, round(HOLDOUT * len(x))))
        x_test, y_test = x[order[:n_test]], y[order[:n_test]]
        x, y = x[order[n_test:]][:LARGE_TRAIN], y[order[n_test:]][:LARGE_TRAIN]
    else:
        x_test, y_test = _read_tfds(tfds, builder, test_ds, image_key, label_key,
                                    _read_limit(builder, test_split, LARGE_TEST))
        if x_test is None or not len(x_test):
            raise UnsuitableData(f"{title}: its {test_split!r} split has no labelled examples")
        keep = rng.permutation(len(x))[:LARGE_TRAIN]
        x, y = x[keep], y[keep]
        keep = rng.permutation(len(x_test))[:LARGE_TEST]
        x_test, y_test = x_test[keep], y_test[keep]
    label = builder.info.features[label_key]
    return Data(name, x, y, x_test, y_test, class_names or label.names,
                num_classes=label.num_classes)


def _subset(name, x_train, y_train, x_test, y_test, seed, class_names):
    rng = np.random.default_rng(seed)
    train = rng.permutation(len(x_train))[:LARGE_TRAIN]
    test = rng.permutation(len(x_test))[:LARGE_TEST]
    scale = lambda x: (x / 255.0).astype("float32")  # noqa: E731
    return Data(name, scale(x_train[train]), y_train[train].astype("int32"),
                scale(x_test[test]), y_test[test].astype("int32"), class_names)


def corrupt_labels(y, fraction, seed, num_classes=NUM_CLASSES):
    """Replaces ``fraction`` of the labels by uniformly random classes.

    As in Zhang et al., a replaced label may hit the true class by chance.
    """
    rng = np.random.default_rng(seed + 1)
    noisy = rng.random(len(y)) < fraction
    return np.where(noisy, rng.integers(0, num_classes, len(y)), y).astype("int32")


def load_data(name="digits", label_noise=0.0, seed=0, warn=None):
    """Loads a dataset that works offline, with ``label_noise`` of the
    training labels corrupted.

    ``name`` is one of DATASETS or ``"tfds:NAME[:SPLIT]"``, an image
    classification dataset that tensorflow-datasets has prepared on this
    machine. CIFAR-10 and ``tfds:`` datasets fall back to digits (with a
    note through ``warn``) when they are not available; an unusable
    ``tfds:`` dataset raises UnsuitableData.
    """
    warn = warn or (lambda message: print(message, file=sys.stderr))
    try:
        tfds_spec = parse_tfds(name)
    except ValueError as error:
        raise UnsuitableData(str(error)) from None
    if name == "digits":
        data = _digits(seed)
    elif name == "fashion_mnist":
        data = _fashion_mnist(seed)
    elif name == "cifar10":
        data = _cifar10(seed, warn) or _digits(seed)
    elif tfds_spec is not None:
        data = _tfds(*tfds_spec, seed, warn) or _digits(seed)
    else:
        raise DataUnavailable(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)} "
                              "or tfds:NAME[:SPLIT]")
    if label_noise:
        data.y_train = corrupt_labels(data.y_train, label_noise, seed, data.num_classes)
    return data
