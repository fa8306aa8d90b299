"""The README's main job runs end to end (tiny settings) and refuses bad input."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_demo_runs_and_prints_table(capsys):
    demo = load("digits_mixup")
    rows = demo.main(["--epochs", "2", "--methods", "erm,mixup,cutmix,mixup+cutmix"])
    assert [r[0] for r in rows] == ["erm", "mixup", "cutmix", "mixup+cutmix"]
    for _, best, last, _ in rows:
        assert 0.0 <= best <= last <= 100.0
        assert best < 60.0  # two epochs already learn something on digits
    out = capsys.readouterr().out
    assert "| method | best test error |" in out and "| mixup |" in out


@pytest.mark.parametrize("argv,word", [
    (["--methods", "erm,bogus"], "bogus"),
    (["--label-noise", "1.0"], "label-noise"),
])
def test_digits_demo_rejects_bad_arguments(argv, word, capsys):
    demo = load("digits_mixup")
    with pytest.raises(SystemExit) as exc:
        demo.main(argv)
    assert exc.value.code == 2
    assert word in capsys.readouterr().err
