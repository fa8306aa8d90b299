"""examples/pairing_ablation.py runs end to end (tiny settings) and refuses bad input."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load():
    path = ROOT / "examples" / "pairing_ablation.py"
    spec = importlib.util.spec_from_file_location("pairing_ablation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ablation_runs_and_prints_table(capsys):
    ablation = load()
    # The label-aware, feature-aware and k-way paths (each compiles its own step).
    methods = ["sc", "knn", "3-way"]
    rows = ablation.main(["--seeds", "1", "--epochs", "2", "--methods", ",".join(methods)])
    assert [r[0] for r in rows] == methods
    for _, best, best_sd, last, last_sd in rows:
        assert 0.0 <= best <= last <= 100.0
        assert best_sd == last_sd == 0.0  # one seed
        assert best < 60.0  # two epochs already learn something on digits
    out = capsys.readouterr().out
    assert "| method | best test error | final test error |" in out
    assert "| SC + RP (pairing=same_class) |" in out
    assert "| 3-way (ways=3, Dirichlet) |" in out


def test_ablation_rejects_unknown_method(capsys):
    ablation = load()
    with pytest.raises(SystemExit) as exc:
        ablation.main(["--methods", "erm,bogus"])
    assert exc.value.code == 2
    assert "bogus" in capsys.readouterr().err
