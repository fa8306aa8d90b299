"""``keras-mixup demo --data tfds:NAME[:SPLIT]``: offline, on mocked data
(``tfds.testing.mock_data``) and on a tiny dataset prepared in a temporary
folder; nothing is downloaded."""

import numpy as np
import pytest

from keras_mixup import cli, demo, demo_data

tfds = pytest.importorskip("tensorflow_datasets")


def one_error_line(capsys, code):
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err + captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    return lines[0]


def test_demo_trains_on_rgb_images_of_varying_size(tmp_path, capsys):
    # tf_flowers: RGB images of any size, 5 classes; mocked with 24 random
    # images of 5–50 pixels a side, which the demo resizes to 32×32. The mock
    # lists no splits, so 30% of train is held out for testing.
    out = tmp_path / "demo"
    with tfds.testing.mock_data(num_examples=24):
        code = cli.main(["demo", "--data", "tfds:tf_flowers", "--epochs", "1",
                         "--methods", "erm,mixup", "--label-noise", "0.2", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    assert ("tfds:tf_flowers: 17 train / 7 test images (32, 32, 3), 5 classes, 20% of "
            "training labels corrupted; MLP, SGD, 1 epoch,") in stdout
    table = [line.split("|")[1].strip() for line in stdout.splitlines() if line.startswith("| ")]
    assert table[1:] == ["ERM", "input mixup"]
    for name in ("learning_curves.png", "reliability.png", "mixed_samples.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name, shape, classes", [
    ("tfds:mnist", (28, 28, 1), [str(i) for i in range(10)]),  # grayscale, kept as is
    ("cifar10", (32, 32, 3), list(demo_data.CIFAR10_CLASSES)),       # --data cifar10: same path
])
def test_fixed_size_images_keep_their_shape(name, shape, classes):
    notes = []
    with tfds.testing.mock_data(num_examples=20):
        data = demo.load_data(name, 0.0, seed=0, warn=notes.append)
    assert not notes
    assert data.name == name and data.num_classes == 10 and list(data.class_names) == classes
    assert data.x_train.shape == (14, *shape) and data.x_test.shape == (6, *shape)
    assert data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.y_train.dtype == np.int32 and 0 <= data.y_train.min() < 10


def test_a_dataset_without_an_image_label_pair_is_refused(tmp_path, capsys):
    # imdb_reviews holds text and a label; its features come from the code,
    # so the refusal needs no data.
    code = cli.main(["demo", "--data", "tfds:imdb_reviews", "--out", str(tmp_path)])
    line = one_error_line(capsys, code)
    assert "tfds:imdb_reviews has no image + class-label pair" in line
    assert "label (ClassLabel)" in line and "text (Text)" in line


def test_an_unknown_dataset_suggests_close_names(tmp_path, capsys):
    code = cli.main(["demo", "--data", "tfds:mnits", "--out", str(tmp_path)])
    line = one_error_line(capsys, code)
    assert "no dataset 'mnits'" in line and "mnist" in line


def test_an_unprepared_dataset_falls_back_to_digits_with_one_note(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # an empty data folder
    notes = []
    data = demo.load_data("tfds:mnist", 0.0, seed=0, warn=notes.append)
    assert data.name == "digits"
    assert len(notes) == 1 and len(notes[0].splitlines()) == 1
    assert "tfds build mnist" in notes[0] and str(tmp_path) in notes[0]
    assert "digits" in notes[0]


# A real dataset, prepared offline into a temporary folder: 40 train and
# 12 test images (12×12 RGB) of 3 classes, where each class has its own colour.


class KerasMixupTinyColours(tfds.core.GeneratorBasedBuilder):
    """Tiny coloured squares (test data)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(12, 12, 3)),
                "label": tfds.features.ClassLabel(names=["red", "green", "blue"]),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(40, 0), "test": self._generate_examples(12, 1)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            image = rng.integers(0, 60, (12, 12, 3), dtype=np.uint8)
            image[..., i % 3] += 180
            yield i, {"image": image, "label": i % 3}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    KerasMixupTinyColours(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


@pytest.mark.parametrize("spec, train, test", [
    ("tfds:keras_mixup_tiny_colours", 40, 12),                 # train, tested on test
    ("tfds:keras_mixup_tiny_colours:train[:50%]", 20, 12),     # a slice of train
    ("tfds:keras_mixup_tiny_colours:test", 8, 4),              # test itself: 30% held out
])
def test_a_prepared_dataset_uses_its_splits(prepared, monkeypatch, spec, train, test):
    monkeypatch.setenv("TFDS_DATA_DIR", prepared)
    notes = []
    data = demo.load_data(spec, 0.0, seed=0, warn=notes.append)
    assert not notes
    assert data.name == spec and data.class_names == ("red", "green", "blue")
    assert data.x_train.shape == (train, 12, 12, 3) and data.x_test.shape == (test, 12, 12, 3)
    # Each image is brightest in the channel of its class.
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert (x.mean(axis=(1, 2)).argmax(-1) == y).all()


def test_an_unknown_split_is_refused(prepared, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", prepared)
    with pytest.raises(demo.UnsuitableData, match="trian"):
        demo.load_data("tfds:keras_mixup_tiny_colours:trian", 0.0, seed=0)
