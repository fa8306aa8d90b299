"""`keras-mixup reproduce mixupe | manifold` with tiny settings: the tables
print with the paper's numbers beside ours; bad arguments exit 2."""

import pytest

import keras_mixup_cli
from keras_mixup import reproduce


def test_reproduce_mixupe_prints_the_paper_rows(capsys, monkeypatch):
    # The command's plumbing and table (the training loop itself runs in
    # the manifold test below): each model "trains" to a fixed error.
    import numpy as np

    trained = []
    monkeypatch.setattr(reproduce, "_train",
                        lambda model, data, epochs, **kw: trained.append(epochs) or np.array([5.0]))
    code = keras_mixup_cli.main(["reproduce", "mixupe", "--seeds", "2", "--epochs", "3"])
    assert trained == [3] * 12  # 2 datasets x 2 seeds x 3 methods
    out = capsys.readouterr().out
    assert code == 0
    assert "| digits (UCI Optdigits test set) |" in out and "1.48 / 1.15 / 1.33" in out
    assert "| iris |" in out and "9.06 / 8.14 / 7.29" in out and "Wall time" in out
    assert "| 5.00 ± 0.00 | 5.00 ± 0.00 | 5.00 ± 0.00 |" in out


def test_reproduce_manifold_rows(monkeypatch):
    # The real training path, on two of the rows (each compiles a model):
    # ERM and manifold mixup at every site with the gradient blocked.
    chosen = (reproduce.MANIFOLD_ROWS[0], reproduce.MANIFOLD_ROWS[-1])
    monkeypatch.setattr(reproduce, "MANIFOLD_ROWS", chosen)
    rows = reproduce.run_manifold(seeds=1, epochs=1, log=lambda _: None)
    assert [r[0] for r in rows] == [r[0] for r in chosen]
    for _, best, last in rows:
        assert len(best) == len(last) == 1 and 0 <= best[0] <= last[0] + 1e-9 <= 100
    table = reproduce.manifold_table(rows)
    assert "gradient blocked" in table and "1 seed." in table


@pytest.mark.parametrize("argv", [["reproduce", "mixupe", "--seeds", "0"],
                                  ["reproduce", "manifold", "--epochs", "x"],
                                  ["reproduce", "ablation"]])
def test_bad_reproduce_arguments_exit_2(capsys, argv):
    assert keras_mixup_cli.main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err
