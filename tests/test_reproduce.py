"""`keras-mixup reproduce mixupe | manifold | ablation | adversarial` with
tiny settings: the rows build what they say, the tables print with the
paper's numbers beside ours, the attacks are what their formulas say, and
bad arguments exit 2."""

import numpy as np
import pytest

import keras_mixup_cli
from keras_mixup import reproduce


def test_reproduce_mixupe_prints_the_paper_rows(capsys, monkeypatch):
    # The command's plumbing and table (the training loop itself runs in
    # the manifold test below): each model "trains" to a fixed error.
    trained = []
    monkeypatch.setattr(reproduce.common, "train",
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
    monkeypatch.setattr(reproduce.manifold, "MANIFOLD_ROWS", chosen)
    rows = reproduce.run_manifold(seeds=1, epochs=1, log=lambda _: None)
    assert [r[0] for r in rows] == [r[0] for r in chosen]
    for _, best, last in rows:
        assert len(best) == len(last) == 1 and 0 <= best[0] <= last[0] + 1e-9 <= 100
    table = reproduce.manifold_table(rows)
    assert "gradient blocked" in table and "1 seed." in table


def _site_layers(model):
    plain = getattr(model, "model", model)
    names = [type(layer).__name__ for layer in plain.layers]
    return plain, names


def test_ablation_rows_build_what_they_say():
    import keras

    from keras_mixup.layers import MixUp
    from keras_mixup.reproduce import ablation

    shape = (8, 8, 1)
    for key, (_, _, spec) in ablation.ROWS.items():
        model = ablation.cnn(shape, 10, 0, 5e-4, spec)
        plain, names = _site_layers(model)
        mixers = [layer for layer in plain.layers if isinstance(layer, MixUp)]
        assert (model is not plain) == ("mix" in spec), key
        assert len(mixers) == ("mix" in spec), key
        assert ("GaussianNoise" in names) == ("noise" in spec), key
        if mixers:
            mixer, options = mixers[0], spec["mix"]
            assert mixer.pairing == options["pairing"] and mixer.alpha == 1.0, key
            assert mixer.mix == options.get("mix", "both") and mixer.ways == options.get("ways", 2)
            # The site: after the input (0) or after block k (k convolutions before it).
            before = names[:names.index("MixUp")]
            assert before.count("Conv2D") == spec.get("site", 0), key
        for layer in plain.layers:
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
                assert layer.kernel_regularizer.l2 == pytest.approx(2.5e-4), key
    labels = {key: row[0] for key, row in ablation.ROWS.items()}
    assert "SC + KNN" in labels["inputs-sc-knn"] and ablation.ROWS["inputs-sc-knn"][2]["mix"][
        "pairing"] == "nearest_same_class"


def test_ablation_trains_and_prints_the_table(capsys, monkeypatch):
    from keras_mixup.reproduce import ablation

    outcome = ablation.run_ablation(["layer2", "ls-0.1"], data="digits", seeds=1, epochs=1,
                                    weight_decays=(5e-4,), train_size=256, test_size=128,
                                    log=lambda _: None)
    assert outcome["data"] == "digits"
    for row in ("layer2", "ls-0.1"):
        (error,) = outcome["results"][row][5e-4]
        assert 0.0 <= error < 90.0  # one epoch learns something on digits
    table = ablation.ablation_table(outcome)
    assert "| ours, wd 5e-4 | paper (CIFAR-10, wd 1e-4) |" in table
    assert "| label smoothing, ε = 0.1 |" in table and "5.25–5.34" in table
    # The command: rows are checked before training; `--rows help` lists them.
    assert keras_mixup_cli.main(["reproduce", "ablation", "--rows", "help"]) == 0
    assert "inputs-sc-knn" in capsys.readouterr().out
    trained = []
    monkeypatch.setattr(ablation, "train_row",
                        lambda spec, data, seed, wd, epochs: trained.append((wd, epochs)) or 3.0)
    assert keras_mixup_cli.main(["reproduce", "ablation", "--quick", "--rows", "erm,3-way"]) == 0
    assert trained == [(1e-4, 4)] * 2
    out = capsys.readouterr().out
    assert "| ERM | 3.00 ± 0.00 | 5.53 |" in out and "Wall time" in out


def test_fgsm_is_the_signed_gradient_step_of_the_cross_entropy():
    import keras

    from keras_mixup.reproduce import adversarial

    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3)).astype("float32")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, use_bias=False)])
    model.layers[0].set_weights([w])
    x = rng.uniform(0.2, 0.8, size=(16, 6)).astype("float32")
    y = rng.integers(0, 3, size=16)
    z = x @ w
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = (p - np.eye(3)[y]) @ w.T  # d CE / dx for logits x·W
    got = keras.ops.convert_to_numpy(adversarial.fgsm(model, x, y, 0.1))
    assert np.allclose(got, np.clip(x + 0.1 * np.sign(grad), 0, 1), atol=1e-6)
    steps = keras.ops.convert_to_numpy(adversarial.iterative_fgsm(model, x, y, 0.3))
    assert np.abs(steps - x).max() <= 0.3 + 1e-6 and steps.min() >= 0 and steps.max() <= 1
    ce = lambda a: float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(  # noqa: E731
        y, model(a), from_logits=True)))
    assert ce(steps) > ce(got) > ce(x)  # each attack raises the loss; 10 steps more than 1


def test_adversarial_runs_and_plots(tmp_path):
    from keras_mixup.reproduce import adversarial

    outcome = adversarial.run_adversarial("digits", seeds=1, epochs=2, epsilons=[0.0, 0.2],
                                          train_size=300, test_size=150, log=lambda _: None)
    errors = outcome["errors"]
    for method in ("erm", "mixup"):
        clean = outcome["clean"][method][0]
        for attack in ("FGSM", "I-FGSM"):
            assert errors[attack]["white-box"][method][0.0] == [clean]  # ε = 0: no change
            assert errors[attack]["white-box"][method][0.2][0] > clean
    table = adversarial.adversarial_table(outcome)
    assert "| I-FGSM, black-box | 0.2 |" in table and "not in our reference notes" in table
    path = adversarial.plot_adversarial(outcome, str(tmp_path / "adv.png"))
    assert (tmp_path / "adv.png").stat().st_size > 10_000 and path.endswith("adv.png")


def test_reproduce_gan_command(capsys, monkeypatch, tmp_path):
    # The command's plumbing (the training itself runs in tests/test_gan.py):
    # each run "covers" seed + 1 modes at every checkpoint.
    from keras_mixup.reproduce import gan

    def fake(distribution, mixup, alpha, seed, steps, checkpoints):
        run = {"distribution": distribution, "method": "mixup" if mixup else "gan",
               "alpha": alpha if mixup else None, "seed": seed, "iterations": checkpoints,
               "modes": [seed + 1] * len(checkpoints), "quality": [0.5] * len(checkpoints),
               "seconds": 0.0}
        return run, {at: np.zeros((4, 2)) for at in checkpoints}

    monkeypatch.setattr(gan, "train_gan", fake)
    out_png = tmp_path / "gan.png"
    assert keras_mixup_cli.main(["reproduce", "gan", "--seeds", "2", "--steps", "16",
                                 "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "| modes covered @ 8 | high quality @ 8 | modes covered @ 16 |" in out
    assert "| grid | mixup GAN (α = 0.2) | 1.5 ± 0.5 of 25 | 50.0% ± 0.0% |" in out
    assert out_png.stat().st_size > 0 and "Wall time" in out


@pytest.mark.parametrize("argv", [["reproduce", "mixupe", "--seeds", "0"],
                                  ["reproduce", "manifold", "--epochs", "x"],
                                  ["reproduce", "ablation", "--rows", "erm,nope"],
                                  ["reproduce", "ablation", "--data", "cifar10"],
                                  ["reproduce", "adversarial", "--epsilons", "0.1,1.5"],
                                  ["reproduce", "adversarial", "--out", "."],
                                  ["reproduce", "gan", "--steps", "4"],
                                  ["reproduce", "nope"]])
def test_bad_reproduce_arguments_exit_2(capsys, argv):
    assert keras_mixup_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" in err
