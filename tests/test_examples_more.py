"""The examples for real setups run end to end (tiny settings) and refuse bad input.

Each example's ``main(argv)`` returns its result rows and prints a Markdown
table; the Colab notebook's code cells run on the CPU with the tiny settings
it picks when ``KERAS_MIXUP_NOTEBOOK_SMOKE=1``. Learning is only sanity
checked (better than chance), never compared between methods.
"""

import functools
import importlib.util
import json
import pathlib
import runpy

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@functools.cache
def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_rows(out):
    """The body rows of the last Markdown table printed."""
    lines = [line for line in out.splitlines() if line.startswith("|")]
    header = max(i for i, line in enumerate(lines) if line.startswith("|---"))
    return lines[header + 1:]


# ------------------------------------------------------------ end to end


@pytest.mark.slow
def test_manifold_mixup_resnet_runs(capsys):
    demo = load("manifold_mixup_resnet")
    rows = demo.main(["--epochs", "2", "--methods", "erm,manifold", "--width", "4"])
    assert [r[0] for r in rows] == ["erm", "manifold"]
    assert rows[1][1] == "input, stage1, stage2"
    for _, _, error, std, seconds in rows:
        assert 0.0 <= error < 90.0 and std == 0.0 and seconds > 0
    out = capsys.readouterr().out
    assert "| method | mixing sites |" in out and len(table_rows(out)) == 2


def test_manifold_mixup_resnet_model_has_sites_only_where_asked():
    demo = load("manifold_mixup_resnet")
    import keras_mixup

    erm = demo.build_model((8, 8, 1), sites=(), width=4)
    assert not any(isinstance(layer, keras_mixup.layers.MixUp) for layer in erm.layers)
    model = keras_mixup.MixupModel(demo.build_model((8, 8, 1), ("input", "stage2"), width=4))
    assert [site.name for site in model.sites] == ["mix_input", "mix_stage2"]


def test_tabular_mixup_runs(capsys):
    demo = load("tabular_mixup")
    rows = demo.main(["--datasets", "wine", "--seeds", "1", "--epochs", "3"])
    assert [(r[0], r[1]) for r in rows] == [("wine", m) for m in demo.METHODS]
    for _, _, error, std, loss, _ in rows:
        assert 0.0 <= error < 60.0 and std == 0.0 and loss > 0.0  # chance: 60%
    out = capsys.readouterr().out
    assert "| data set | method | test error |" in out and len(table_rows(out)) == 3


def test_text_classification_mixup_runs_and_shows_token_error(capsys):
    demo = load("text_classification_mixup")
    rows = demo.main(["--epochs", "3", "--train-size", "256", "--test-size", "256",
                      "--methods", "erm,wordmixup"])
    assert [r[0] for r in rows] == ["erm", "wordmixup"]
    for _, error, _, loss in rows:
        assert 0.0 <= error < 75.0 and loss > 0.0  # chance: 75%
    out = capsys.readouterr().out
    # Mixing integer token ids directly is refused, with the fix named.
    assert "raises TypeError" in out and "cannot interpolate inputs of dtype int32" in out
    assert "Embedding" in out
    assert "| wordmixup | word embeddings |" in out and len(table_rows(out)) == 2


def test_text_corpus_is_padded_token_ids():
    demo = load("text_classification_mixup")
    import numpy as np

    tokens, labels = demo.make_corpus(50, np.random.default_rng(0))
    assert tokens.shape == (50, demo.MAX_LEN) and tokens.dtype == np.int32
    assert tokens.min() == 0 and tokens.max() < demo.VOCAB
    assert set(labels) <= set(range(demo.NUM_CLASSES))


def test_sequence_cutmix_runs(capsys):
    demo = load("audio_or_sequence_cutmix")
    rows = demo.main(["--epochs", "2", "--train-size", "128", "--test-size", "256",
                      "--methods", "cutmix,cutmix-tfdata"])
    assert [r[0] for r in rows] == ["cutmix", "cutmix-tfdata"]
    for _, error, _ in rows:
        assert 0.0 <= error <= 100.0
    assert min(r[1] for r in rows) < 83.0  # chance: 83%
    out = capsys.readouterr().out
    assert "| cutmix-tfdata | `ds.map(CutMix)` |" in out and len(table_rows(out)) == 2


def test_sequence_data_shape():
    demo = load("audio_or_sequence_cutmix")
    import numpy as np

    x, y = demo.make_sequences(12, np.random.default_rng(0))
    assert x.shape == (12, demo.FRAMES, demo.BINS) and x.dtype == np.float32
    assert y.dtype == np.int32 and set(y) <= set(range(demo.NUM_CLASSES))


def test_semi_supervised_ict_runs(capsys):
    demo = load("semi_supervised_ict")
    rows = demo.main(["--steps", "60", "--methods", "supervised,ict"])
    assert [(r[0], r[1]) for r in rows] == [("supervised", 100), ("ict", 100)]
    assert rows[0][4] is None and rows[1][4] is not None  # EMA teacher for ICT only
    for _, _, error, _, _ in rows:
        assert 0.0 <= error < 60.0  # chance: 90%
    out = capsys.readouterr().out
    assert "| ict | 100 |" in out and len(table_rows(out)) == 2


def test_ict_train_step_compiles_with_xla():
    demo = load("semi_supervised_ict")
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x_l, y_l = rng.random((8, 64), "float32"), np.arange(8, dtype="int32") % 10
    x_u = rng.random((16, 64), "float32")
    ds = tf.data.Dataset.from_tensors(((x_l, x_u), y_l)).repeat(3)
    model = demo.ICTModel(demo.build_mlp(0, hidden=16), rampup_steps=2, seed=1)
    model.compile(optimizer="adam", jit_compile=True)
    logs = model.fit(ds, epochs=1, verbose=0, shuffle=False).history
    assert np.isfinite(logs["loss"][-1]) and logs["weight"][-1] > 0
    # The teacher moved towards the student (EMA), but is not the student.
    student, teacher = model.student.get_weights(), model.teacher.get_weights()
    assert not np.allclose(student[0], teacher[0])


def test_colab_notebook_is_valid_nbformat():
    import nbformat  # a test dependency (setup.cfg [test])
    notebook = nbformat.read(EXAMPLES / "cifar10_tpu_colab.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    for needle in ("TPUClusterResolver", "initialize_tpu_system", "TPUStrategy",
                   "MirroredStrategy", "tensorflow_datasets", "MixupModel",
                   "jit_compile=True", "FULL = False", "KERAS_MIXUP_NOTEBOOK_SMOKE"):
        assert needle in code


@pytest.mark.slow
def test_colab_notebook_runs_on_cpu(tmp_path, monkeypatch, capsys):
    notebook = json.loads((EXAMPLES / "cifar10_tpu_colab.ipynb").read_text())
    assert notebook["nbformat"] == 4
    code = []
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("code", "markdown")
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            code += [line for line in source.splitlines()
                     if not line.lstrip().startswith(("!", "%"))]
    script = tmp_path / "notebook.py"  # a real file, so autograph finds the source
    script.write_text("\n".join(code) + "\n")
    monkeypatch.setenv("KERAS_MIXUP_NOTEBOOK_SMOKE", "1")
    namespace = runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "Falling back to offline data" in out
    assert "test accuracy" in out
    assert 0.0 <= namespace["test_accuracy"] <= 1.0 and namespace["hardware"] == "CPU"


# --------------------------------------------------------- bad arguments


@pytest.mark.parametrize("name,argv,word", [
    ("manifold_mixup_resnet", ["--methods", "erm,bogus"], "--methods"),
    ("manifold_mixup_resnet", ["--epochs", "0"], "--epochs"),
    ("manifold_mixup_resnet", ["--alpha", "-1"], "--alpha"),
    ("manifold_mixup_resnet", ["--data", "cifar"], "--data"),
    ("manifold_mixup_resnet", ["--data", "fashion_mnist", "--data-dir", "/nonexistent"],
     "--data fashion_mnist"),
    ("tabular_mixup", ["--datasets", "titanic"], "--datasets"),
    ("tabular_mixup", ["--seeds", "0"], "--seeds"),
    ("tabular_mixup", ["--alpha", "0"], "--alpha"),
    ("text_classification_mixup", ["--methods", "charmixup"], "--methods"),
    ("text_classification_mixup", ["--train-size", "-5"], "--train-size"),
    ("audio_or_sequence_cutmix", ["--methods", "specaugment"], "--methods"),
    ("audio_or_sequence_cutmix", ["--batch-size", "0"], "--batch-size"),
    ("semi_supervised_ict", ["--labeled", "15"], "--labeled"),
    ("semi_supervised_ict", ["--labeled", "5000"], "--labeled"),
    ("semi_supervised_ict", ["--consistency", "0"], "--consistency"),
    ("semi_supervised_ict", ["--steps", "5"], "--steps"),
])
def test_examples_reject_bad_arguments(name, argv, word, capsys):
    demo = load(name)
    with pytest.raises(SystemExit) as exc:
        demo.main(argv)
    assert exc.value.code == 2
    assert word in capsys.readouterr().err


@pytest.mark.parametrize("name", [
    "manifold_mixup_resnet", "tabular_mixup", "text_classification_mixup",
    "audio_or_sequence_cutmix", "semi_supervised_ict",
])
def test_examples_document_how_to_run(name, capsys):
    demo = load(name)
    assert f"python examples/{name}.py" in demo.__doc__
    with pytest.raises(SystemExit) as exc:
        demo.main(["--help"])
    assert exc.value.code == 0
    assert "--full" in capsys.readouterr().out
