"""The ``keras-mixup`` command: demo, reproduce label-noise, bench, errors."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

import keras_mixup
import keras_mixup_cli
from keras_mixup import cli, demo

ROOT = pathlib.Path(__file__).resolve().parents[1]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > 5_000, f"{path} is suspiciously small ({len(data)} bytes)"


def assert_one_line_error(capsys, code, *words):
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err + captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ demo


def test_cli_and_demo_agree_on_choices():
    # cli.py keeps its own copies so that parsing never imports the demo.
    assert cli.METHODS == demo.METHODS and cli.DATASETS == demo.DATASETS


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = cli.main(["demo", "--epochs", "2", "--out", str(out), "--label-noise", "0.5"])
    stdout = capsys.readouterr().out
    assert code == 0
    table = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| method | best test error | last test error | ECE |")
    rows = {line.split("|")[1].strip(): line for line in table[1:]}
    assert list(rows) == ["ERM", "input mixup", "CutMix", "manifold mixup", "MixupE"]
    # θ̄ does not apply to ERM and CutMix: their rescaled columns are dashes.
    for name in ("ERM", "CutMix"):
        assert rows[name].count("—") == 2, rows[name]
    for name in ("input mixup", "manifold mixup", "MixupE"):
        cells = [c.strip() for c in rows[name].split("|")[2:-1]]
        assert len(cells) == 5 and all(c.endswith("%") for c in cells), rows[name]
    for name in ("learning_curves.png", "reliability.png", "mixed_samples.png"):
        assert_png(out / name)


def test_demo_method_subset_without_rescalable_method(tmp_path, capsys):
    out = tmp_path / "demo"
    rows, pngs = demo.run_demo(methods=["erm"], epochs=1, out=str(out))
    assert "MLP, SGD, 1 epoch, batch 64" in capsys.readouterr().out
    assert [r["method"] for r in rows] == ["erm"]
    assert rows[0]["ece_rescaled"] is None and 0 <= rows[0]["last"] <= 100
    assert "reliability" not in pngs  # no mixup-family model to rescale
    assert_png(pngs["curves"])
    assert_png(pngs["samples"])


def test_label_noise_corrupts_the_requested_fraction():
    data = demo.load_data("digits", 0.0, seed=0)
    noisy = demo.load_data("digits", 0.5, seed=0)
    changed = (data.y_train != noisy.y_train).mean()
    assert 0.38 < changed < 0.52  # 50% replaced, 1/10 of them by the same class
    assert (data.y_test == noisy.y_test).all()  # test labels stay clean


def test_fashion_mnist_loads_when_installed():
    if not pathlib.Path(demo.FASHION_MNIST_DIR).is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    data = demo.load_data("fashion_mnist", 0.0, seed=0)
    assert data.x_train.shape == (demo.LARGE_TRAIN, 28, 28, 1)
    assert data.x_test.shape == (demo.LARGE_TEST, 28, 28, 1)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert set(data.y_train.tolist()) == set(range(10))


def test_cifar10_falls_back_to_digits_with_a_note(monkeypatch):
    # Simulate a machine without tensorflow_datasets (None in sys.modules
    # makes the import fail), as on this offline machine.
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    notes = []
    data = demo.load_data("cifar10", 0.0, seed=0, warn=notes.append)
    assert data.name == "digits"
    assert len(notes) == 1 and "CIFAR-10" in notes[0] and "digits" in notes[0]


# ------------------------------------------------------------- reproduce


def test_reproduce_label_noise_prints_the_paper_numbers(capsys):
    code = cli.main(["reproduce", "label-noise", "--noise", "0.5", "--epochs", "1"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "on digits: 1 epoch per run, noise 50%" in stdout
    rows = [line for line in stdout.splitlines() if line.startswith("| 50% ")]
    assert len(rows) == 1
    assert "18.8 / 44.6" in rows[0] and "11.3 / 12.7" in rows[0] and "α=32" in rows[0]


def test_reproduce_label_noise_returns_rows(capsys):
    rows = demo.reproduce_label_noise([0.2], epochs=1, verbose=False)
    assert len(rows) == 1 and rows[0]["noise"] == 0.2 and rows[0]["alpha"] == 8.0
    for method in ("erm", "mixup"):
        best, last = rows[0][method]
        assert 0 <= best <= last <= 100
    assert "12.7 / 16.6" in demo.label_noise_table(rows)


@pytest.mark.slow
def test_mixup_resists_label_noise_like_the_paper(capsys):
    """Zhang et al.'s finding on digits at 50% noise: ERM memorizes the
    corrupted labels (last error far above best); input mixup and manifold
    mixup (Verma et al.) do not."""
    (row,) = demo.reproduce_label_noise([0.5], epochs=50, seed=0, verbose=False,
                                        methods=("erm", "mixup", "manifold"))
    (erm_best, erm_last), (mix_best, mix_last) = row["erm"], row["mixup"]
    man_best, man_last = row["manifold"]
    print(f"ERM {erm_best:.1f} / {erm_last:.1f}, mixup {mix_best:.1f} / {mix_last:.1f}, "
          f"manifold {man_best:.1f} / {man_last:.1f}")
    assert erm_last - erm_best >= 15, "ERM's last error climbs far above its best"
    assert mix_last <= erm_last - 15, "mixup's last error stays far below ERM's"
    assert man_last <= erm_last - 15, "manifold mixup's last error stays far below ERM's"


# ------------------------------------------------------------------ bench


def test_bench_runs_both_scripts_and_passes_quick(tmp_path, monkeypatch, capfd):
    for name in cli.BENCHMARKS:
        (tmp_path / name).write_text(
            "import sys\nprint('ran', __file__.rsplit('/', 1)[-1], sys.argv[1:])\n")
    monkeypatch.setattr(cli, "benchmarks_dir", lambda: tmp_path)
    assert cli.main(["bench", "--quick"]) == 0
    out = capfd.readouterr().out
    assert "ran bench_layers.py ['--quick']" in out
    assert "ran bench_train_step.py ['--quick']" in out


def test_bench_reports_a_failing_script(tmp_path, monkeypatch, capfd):
    for name in cli.BENCHMARKS:
        (tmp_path / name).write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(cli, "benchmarks_dir", lambda: tmp_path)
    assert cli.main(["bench"]) == 3
    assert "bench_layers.py exited with code 3" in capfd.readouterr().err


def test_bench_without_a_source_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "benchmarks_dir", lambda: tmp_path / "nowhere")
    line = assert_one_line_error(capsys, cli.main(["bench"]), "benchmarks")
    assert "source repository" in line


# ----------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "argv, words",
    [
        (["demo", "--methods", "erm,mixpu"], ["unknown method", "'mixpu'", "erm,mixup,cutmix"]),
        (["demo", "--methods", ","], ["--methods"]),
        (["demo", "--label-noise", "1.0"], ["--label-noise", "[0, 1)", "1.0"]),
        (["demo", "--label-noise", "-0.1"], ["--label-noise", "[0, 1)"]),
        (["demo", "--label-noise", "half"], ["--label-noise", "'half'"]),
        (["demo", "--epochs", "0"], ["--epochs", ">= 1"]),
        (["demo", "--data", "mnist"], ["--data", "'mnist'", "fashion_mnist", "tfds:NAME"]),
        (["demo", "--data", "tfds:"], ["--data", "tfds:mnist"]),
        (["demo", "--data", "tfds:mnist:"], ["--data", "split"]),
        (["demo", "--seed", "-1"], ["--seed", "0 to 4294967295", "'-1'"]),
        (["demo", "--seed", "4294967296"], ["--seed", "0 to 4294967295"]),
        (["demo", "--seed", "1.5"], ["--seed", "'1.5'"]),
        (["reproduce", "label-noise", "--seed", "-3"], ["--seed", "0 to 4294967295"]),
        (["demo", "--out", ""], ["--out", "folder"]),
        (["reproduce", "label-noise", "--noise", "0.5,1.2"], ["--noise", "[0, 1)"]),
        (["reproduce", "label-noise", "--epochs", "-3"], ["--epochs"]),
        (["reproduce", "memorization"], ["'memorization'", "label-noise"]),
        (["reproduce"], ["label-noise"]),
        (["train"], ["'train'", "demo"]),
        ([], ["demo", "reproduce", "bench"]),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv, words, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err + captured.out
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1, captured.err
    for word in words:
        assert word in errors[0], errors[0]


def test_missing_fashion_mnist_names_the_package(tmp_path, monkeypatch, capsys):
    from keras_mixup import demo_data  # where the loader reads the folder

    monkeypatch.setattr(demo_data, "FASHION_MNIST_DIR", str(tmp_path / "no-such-folder"))
    code = cli.main(["demo", "--data", "fashion_mnist", "--epochs", "1",
                     "--out", str(tmp_path / "out")])
    line = assert_one_line_error(capsys, code, "apt-get install dataset-fashion-mnist")
    assert "Fashion-MNIST" in line


@pytest.mark.parametrize("argv", [[], ["demo"], ["reproduce"], ["reproduce", "label-noise"],
                                  ["bench"]])
def test_help_of_every_command(argv, capsys):
    assert cli.main([*argv, "--help"]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("usage: keras-mixup")
    if argv == ["demo"]:
        for option in ("--data", "--label-noise", "--methods", "--epochs", "--seed", "--out"):
            assert option in stdout


def test_tfds_data_names_parse():
    parse = keras_mixup_cli.parse_tfds
    assert parse("cifar10") is None
    assert parse("tfds:mnist") == ("mnist", None)
    assert parse("tfds:cifar100:train[:20%]") == ("cifar100", "train[:20%]")
    assert parse("tfds:mnist_corrupted/shot_noise:train+test") == (
        "mnist_corrupted/shot_noise", "train+test")


# ---------------------------------------------------------- --out, checked first


def _never_trains(monkeypatch):
    def run_demo(**kwargs):
        raise AssertionError("the demo ran despite a bad --out")
    monkeypatch.setattr(demo, "run_demo", run_demo)


def test_out_that_is_a_file_fails_before_training(tmp_path, monkeypatch, capsys):
    _never_trains(monkeypatch)
    target = tmp_path / "taken"
    target.write_text("not a folder")
    line = assert_one_line_error(capsys, cli.main(["demo", "--out", str(target)]), "--out")
    assert "is a file, not a folder" in line
    line = assert_one_line_error(capsys, cli.main(["demo", "--out", str(target / "sub")]),
                                 "--out")
    assert f"cannot create that folder: {target} is a file" in line


def test_unwritable_out_fails_before_training(tmp_path, monkeypatch, capsys):
    _never_trains(monkeypatch)
    # os.access stands in for permissions (root may write anywhere).
    monkeypatch.setattr(keras_mixup_cli.os, "access", lambda path, mode: False)
    line = assert_one_line_error(capsys, cli.main(["demo", "--out", str(tmp_path)]), "--out")
    assert "permission denied" in line
    line = assert_one_line_error(
        capsys, cli.main(["demo", "--out", str(tmp_path / "new" / "deeper")]), "--out")
    assert f"{tmp_path} is not writable" in line


def test_out_to_be_created_passes_the_check_and_creates_nothing(tmp_path):
    keras_mixup_cli.check_out_folder(str(tmp_path / "new" / "deeper"))
    keras_mixup_cli.check_out_folder(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------- start-up: fast, quiet


def test_one_epoch_is_singular():
    assert keras_mixup_cli.plural(1, "epoch") == "1 epoch"
    assert keras_mixup_cli.plural(15, "epoch") == "15 epochs"


def test_version_without_importing_the_package():
    assert keras_mixup_cli._version() == keras_mixup.__version__


def test_only_tensorflow_start_up_lines_are_dropped():
    text = (b"WARNING: All log messages before absl::InitializeLog() is called are written "
            b"to STDERR\n"
            b"I0000 00:00:1796008488.286147   17697 port.cc:153] oneDNN custom operations\n"
            b"W0315 14:02:07.123456   17697 some_file.cc:12] a warning\n"
            b"E0000 00:00:1796008497.163009   17767 cuda_platform.cc:52] failed call to "
            b"cuInit: UNKNOWN ERROR (303)\n"
            b"F0000 00:00:1796008497.163009   17767 cpu_feature_guard.cc:1] fatal\n"
            b"/x.py:3: UserWarning: a Python warning\n")
    drop = keras_mixup_cli._drop_startup_lines
    assert drop(text, 0) == text
    assert drop(text, 3).splitlines() == [
        b"F0000 00:00:1796008497.163009   17767 cpu_feature_guard.cc:1] fatal",
        b"/x.py:3: UserWarning: a Python warning"]
    assert len(drop(text, 1).splitlines()) == 4  # warning, error, fatal, Python


STARTUP = """
import sys, time
import keras_mixup_cli

start = time.perf_counter()
codes = [keras_mixup_cli.main(argv) for argv in (
    ["--help"], ["demo", "--help"], ["demo", "--bogus"], ["demo", "--seed", "-1"],
    ["demo", "--out", sys.argv[1]], ["reproduce"])]
seconds = time.perf_counter() - start
loaded = [m for m in ("keras", "keras_mixup", "tensorflow", "jax", "numpy") if m in sys.modules]
print("RESULT", codes, loaded, round(seconds, 3), flush=True)

with keras_mixup_cli.quiet_startup():
    import tensorflow as tf
    print("Python's stderr comes through", file=sys.stderr)
tf.zeros(1).numpy()  # devices start: on a machine without a GPU, the cuInit error
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_help_and_usage_errors_are_fast_and_tensorflow_starts_quietly(tmp_path):
    """One subprocess: --help and usage errors import neither Keras nor
    TensorFlow (nor NumPy); then TensorFlow, imported in quiet_startup and
    run, writes nothing to stderr."""
    afile = tmp_path / "a_file"
    afile.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", STARTUP, str(afile)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    result = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
    assert result.startswith("RESULT [0, 0, 2, 2, 2, 2] [] "), result
    assert float(result.split()[-1]) < 1.0, result
    assert done.stdout.startswith("usage: keras-mixup")
    errors = done.stderr.splitlines()
    assert errors == [
        "keras-mixup: error: unrecognized arguments: --bogus (see `keras-mixup --help`)",
        "keras-mixup demo: error: argument --seed: must be a whole number from 0 to "
        "4294967295, got '-1' (see `keras-mixup demo --help`)",
        f"keras-mixup demo: error: --out {afile}: that is a file, not a folder",
        "keras-mixup reproduce: error: choose an experiment: label-noise, mixupe, "
        "manifold, ablation, adversarial or gan (see `keras-mixup reproduce --help`)",
        "Python's stderr comes through",
    ], done.stderr


def test_the_console_script_starts_at_the_light_module():
    from importlib import metadata

    scripts = [e for e in metadata.entry_points(group="console_scripts")
               if e.name == "keras-mixup"]
    if not scripts:
        pytest.skip("keras-mixup is not installed")
    assert scripts[0].value == "keras_mixup_cli:main"
