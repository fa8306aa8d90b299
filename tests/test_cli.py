"""The ``keras-mixup`` command: demo, reproduce label-noise, bench, errors."""

import pathlib
import sys

import pytest

from keras_mixup import cli, demo

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
    capsys.readouterr()
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
    code = cli.main(["reproduce", "label-noise", "--noise", "0.5", "--epochs", "2"])
    stdout = capsys.readouterr().out
    assert code == 0
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
    corrupted labels (last error far above best); mixup does not."""
    (row,) = demo.reproduce_label_noise([0.5], epochs=50, seed=0, verbose=False)
    erm_best, erm_last = row["erm"]
    mix_best, mix_last = row["mixup"]
    print(f"ERM {erm_best:.1f} / {erm_last:.1f}, mixup {mix_best:.1f} / {mix_last:.1f}")
    assert erm_last - erm_best >= 15, "ERM's last error climbs far above its best"
    assert mix_last <= erm_last - 15, "mixup's last error stays far below ERM's"


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
        (["demo", "--data", "mnist"], ["--data", "'mnist'", "fashion_mnist"]),
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
    monkeypatch.setattr(demo, "FASHION_MNIST_DIR", str(tmp_path / "no-such-folder"))
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
