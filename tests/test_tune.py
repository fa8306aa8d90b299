"""Uniform designs (keras_mixup.tune) and the `keras-mixup tune` command:
balance, discrepancy, errors, resumable results, exit codes."""

import json
import math

import numpy as np
import pytest

import keras_mixup_cli
from keras_mixup import cli_tune, tune


@pytest.mark.parametrize("runs, factors", [(7, 3), (12, 4), (13, 5), (30, 5), (8, 2), (10, 3)])
def test_every_level_once_and_more_uniform_than_random_designs(runs, factors):
    design = tune.uniform_design(runs, factors)
    assert design.shape == (runs, factors)
    for j in range(factors):
        assert sorted(design[:, j]) == list(range(1, runs + 1))
    # Random designs with the same balance (a permutation per factor): the
    # good lattice point beats at least 3 in 4 of them (usually all but a
    # few of 200).
    rng = np.random.default_rng(0)
    random = [
        tune.discrepancy(np.stack([rng.permutation(runs) + 1 for _ in range(factors)], 1), runs)
        for _ in range(200)
    ]
    assert tune.discrepancy(design, runs) <= np.quantile(random, 0.25)


def test_fewer_levels_are_run_equally_often():
    design = tune.uniform_design(12, 3, levels=4)
    for j in range(3):
        assert np.bincount(design[:, j], minlength=5)[1:].tolist() == [3, 3, 3, 3]
    assert len({tuple(r) for r in design}) == 12


def test_discrepancy_formula():
    # One point at the centre of [0, 1]: CD2^2 = 13/12 - 2 + 1 = 1/12.
    assert tune.discrepancy(np.array([[0.5]]), levels=0) == pytest.approx(math.sqrt(1 / 12))
    # Direct evaluation of Hickernell's formula on a random point set.
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(9, 3))
    c = np.abs(x - 0.5)
    direct = (13 / 12) ** 3
    direct -= 2 / 9 * sum(np.prod(1 + c[i] / 2 - c[i] ** 2 / 2) for i in range(9))
    direct += sum(
        np.prod(1 + c[i] / 2 + c[j] / 2 - np.abs(x[i] - x[j]) / 2) for i in range(9) for j in range(9)
    ) / 81
    assert tune.discrepancy(x, levels=0) == pytest.approx(math.sqrt(direct))
    # Invariant under reflection x -> 1 - x and under reordering runs and factors.
    assert tune.discrepancy(1 - x, levels=0) == pytest.approx(tune.discrepancy(x, levels=0))
    assert tune.discrepancy(x[::-1, ::-1], levels=0) == pytest.approx(tune.discrepancy(x, levels=0))


def test_level_values_span_the_ranges():
    values = tune.level_values(np.array([[1, 1], [3, 2], [5, 3]]), [(0.0, 1.0), (0.01, 1.0, "log")], levels=5)
    assert values[:, 0].tolist() == [0.0, 0.5, 1.0]
    # Levels 1, 2, 3 of 5 on a log scale: 0.01 * 100 ** (0, 1/4, 1/2).
    assert np.allclose(values[:, 1], [0.01, 0.01 * 100**0.25, 0.1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(runs=6, factors=2, levels=4), "divide"),
        (dict(runs=4, factors=2, levels=6), "More levels"),
        (dict(runs=2, factors=3), "Run counts that serve 3 factors"),
        (dict(runs=1, factors=1), "runs"),
        (dict(runs=5, factors=0), "factors"),
    ],
)
def test_design_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tune.uniform_design(**kwargs)


# ------------------------------------------------------------- the command


def _args(tmp_path, *extra):
    parser = keras_mixup_cli.build_parser()
    args = parser.parse_args(["tune", "--results", str(tmp_path / "r.jsonl"),
                              "--out", str(tmp_path / "t.png"), *extra])
    args.check(args)
    return args


def fake_train(calls):
    def train(data, values, epochs, seed):
        calls.append(values)
        # A smooth bowl: best near alpha = 0.3, learning rate = 0.05.
        v = (np.log(values["alpha"] / 0.3)) ** 2 + (np.log(values["learning_rate"] / 0.05)) ** 2
        return 2.0 + v + 0.1 * seed, 2.5 + v
    return train


def test_tune_runs_resumes_and_reports(tmp_path, capsys):
    calls = []
    args = _args(tmp_path, "--runs", "6", "--seeds", "2", "--compare",
                 "--factor", "alpha", "--factor", "learning_rate=0.01:0.2:log")
    rows = cli_tune.run_tune(args, train=fake_train(calls))
    assert len(calls) == (6 + 4 + 6) * 2  # the grid: 2 levels of 2 factors
    assert [r["method"] for r in rows] == ["uniform", "grid", "random"]
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "keras-mixup tune" and len(lines) == 1 + 32
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "| uniform | 6 |" in out and "| grid | 4 |" in out  # 2 levels of 2 factors
    # Everything is done: a second call trains nothing and reports the same.
    again = cli_tune.run_tune(_args(tmp_path, "--runs", "6", "--seeds", "2", "--compare",
                                    "--factor", "alpha", "--factor", "learning_rate=0.01:0.2:log"),
                              train=fake_train(calls))
    assert len(calls) == 32 and again[0]["val"] == rows[0]["val"]


def test_an_interrupted_tune_loses_no_finished_run(tmp_path):
    calls = []
    inner = fake_train(calls)

    def flaky(data, values, epochs, seed):
        if len(calls) == 3:
            raise KeyboardInterrupt
        return inner(data, values, epochs, seed)

    args = _args(tmp_path, "--runs", "6", "--factor", "alpha", "--factor", "learning_rate")
    with pytest.raises(KeyboardInterrupt):
        cli_tune.run_tune(args, train=flaky)
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1 + 3
    cli_tune.run_tune(args, train=inner)
    assert len(calls) == 6 * 2  # 3 before, 9 after: no finished run repeated
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1 + 12


def test_a_mismatched_or_unreadable_results_file_is_refused(tmp_path, capsys):
    cli_tune.run_tune(_args(tmp_path, "--runs", "4", "--seeds", "1", "--factor", "alpha",
                            "--factor", "learning_rate"), train=fake_train([]))
    code = keras_mixup_cli.main(["tune", "--runs", "6", "--results", str(tmp_path / "r.jsonl"),
                                 "--out", str(tmp_path / "t.png")])
    assert code == 2 and "different search" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    code = keras_mixup_cli.main(["tune", "--results", str(tmp_path / "bad.jsonl"),
                                 "--out", str(tmp_path / "t.png")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot read" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--factor", "beta"], "unknown factor"),
        (["--factor", "alpha=2:1"], "empty or inverted"),
        (["--factor", "alpha=1:1"], "empty or inverted"),
        (["--factor", "alpha=0:1:log"], "outside"),
        (["--factor", "label_smoothing=0:1"], "outside"),
        (["--factor", "alpha=a:b"], "numbers"),
        (["--factor", "alpha", "--factor", "alpha"], "each factor once"),
        (["--runs", "4", "--levels", "6"], "more levels than runs"),
        (["--runs", "6", "--levels", "4"], "must divide"),
        (["--runs", "2"], "Run counts that serve 3 factors"),
    ],
)
def test_bad_tune_arguments_exit_2_without_traceback(tmp_path, capsys, argv, match):
    code = keras_mixup_cli.main(["tune", "--results", str(tmp_path / "x.jsonl"),
                                 "--out", str(tmp_path / "t.png"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and match in err and "Traceback" not in err


@pytest.mark.slow
def test_tune_trains_for_real(tmp_path):
    """Two runs of one factor, three epochs on 300 images: the real
    training path learns something (chance is 90% error)."""
    rows = cli_tune.run_tune(_args(tmp_path, "--runs", "2", "--epochs", "3", "--seeds", "1",
                                   "--factor", "site_weight"))
    assert rows[0]["runs"] == 2 and 0.0 <= rows[0]["val"][0] < 80.0
