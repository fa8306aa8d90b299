"""Semi-supervised learning with Interpolation Consistency Training (ICT).

ICT (Verma et al., IJCAI 2019; Neural Networks 2022) uses unlabeled data by
asking the model to be *linear between unlabeled points*: for two unlabeled
examples ``u_j, u_k`` and ``λ ~ Beta(α, α)``, the student's prediction on the
mixed input ``λ·u_j + (1 − λ)·u_k`` should match the same mix of a *mean
teacher's* predictions, ``λ·T(u_j) + (1 − λ)·T(u_k)``. The teacher is an
exponential moving average (EMA) of the student's weights, and the weight of
this consistency loss ramps up from 0 during the first part of training.

The method is `keras_mixup.ICTModel`; this script shows it against
supervised training on the labeled part alone. Inside, the mixing is one
plan for inputs and targets alike (``keras_mixup.ops.interpolate`` of the
unlabeled batch and the teacher's probabilities), stateless and
XLA-compilable (``--jit-compile``).

On scikit-learn's digits (offline) with only 100 labeled training images
(10 per class) and the rest of the training set unlabeled, the script
compares ICT with the same network trained on the 100 labeled images alone,
and with training on all labels (a reference, not a competitor):

    python examples/semi_supervised_ict.py                  # < 1 min
    python examples/semi_supervised_ict.py --labeled 50 --full
"""

import argparse

from keras_mixup_cli import positive_float, positive_int, quiet_startup, subset_of

# Imports without TensorFlow's start-up logs (TF_CPP_MIN_LOG_LEVEL=0 shows them).
with quiet_startup():
    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import keras_mixup

NUM_CLASSES = 10
METHODS = ("supervised", "ict", "all-labels")


def build_mlp(seed, hidden=256):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(NUM_CLASSES),
    ])


# The model is the library's: keras_mixup.ICTModel (student + EMA teacher,
# interpolation consistency in `compute_loss`, on any backend).
ICTModel = keras_mixup.ICTModel


# ---------------------------------------------------------------- runs


def load_data(labeled, seed):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype("int32"), test_size=0.3, random_state=seed, stratify=y)
    # A class-balanced labeled subset; every training image is unlabeled
    # data. ("all" keeps every label: the fully supervised reference.)
    rng = np.random.default_rng(seed)
    per_class = labeled // NUM_CLASSES
    keep = np.concatenate([rng.choice(np.flatnonzero(y_train == c), per_class, replace=False)
                           for c in range(NUM_CLASSES)])
    return {"labeled": (x_train[keep], y_train[keep]), "unlabeled": x_train,
            "all": (x_train, y_train), "test": (x_test, y_test)}


def labeled_stream(x, y, batch_size, seed):
    return (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed).repeat().batch(batch_size))


def run(method, data, args, seed):
    x_l, y_l = data["all"] if method == "all-labels" else data["labeled"]
    x_u, (x_test, y_test) = data["unlabeled"], data["test"]
    student = build_mlp(seed)
    optimizer = keras.optimizers.Adam(1e-3)
    if method == "ict":
        unlabeled = (tf.data.Dataset.from_tensor_slices(x_u).shuffle(len(x_u), seed=seed + 1)
                     .repeat().batch(args.unlabeled_batch_size))
        ds = tf.data.Dataset.zip(labeled_stream(x_l, y_l, args.batch_size, seed), unlabeled)
        ds = ds.map(lambda lab, u: ((lab[0], u), lab[1]))  # ((x_l, x_u), y_l)
        model = ICTModel(student, alpha=args.alpha, max_weight=args.consistency,
                         rampup_steps=int(0.4 * args.steps), seed=seed)
        model.compile(optimizer=optimizer, jit_compile=args.jit_compile,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    else:
        ds = labeled_stream(x_l, y_l, args.batch_size, seed)
        model = student
        model.compile(optimizer=optimizer, jit_compile=args.jit_compile,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    epochs = 10
    model.fit(ds.prefetch(tf.data.AUTOTUNE), steps_per_epoch=args.steps // epochs,
              epochs=epochs, verbose=args.verbose, shuffle=False)

    def error(net):
        predictions = net.predict(x_test, batch_size=1024, verbose=0).argmax(-1)
        return 100.0 * float(np.mean(predictions != y_test))

    teacher = error(model.teacher) if method == "ict" else None
    return error(student), teacher, len(x_l)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labeled", type=int, default=100,
                        help="labeled training images, a multiple of 10 (default 100)")
    parser.add_argument("--full", action="store_true",
                        help="full-size run: 5 seeds, 6000 steps")
    parser.add_argument("--steps", type=positive_int, help="training steps (default "
                        "2000; --full: 6000)")
    parser.add_argument("--seeds", type=positive_int, help="default 1 (--full: 5)")
    parser.add_argument("--methods", type=subset_of(METHODS), default=list(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--alpha", type=positive_float, default=1.0)
    parser.add_argument("--consistency", type=positive_float, default=10.0,
                        help="consistency weight after the ramp-up (default 10)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--unlabeled-batch-size", type=positive_int, default=128)
    parser.add_argument("--jit-compile", action="store_const", const=True, default="auto",
                        help="compile the train step with XLA (default: Keras' 'auto', "
                             "XLA on GPU/TPU but not on CPU, where it is slower)")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = parser.parse_args(argv)
    if args.labeled < NUM_CLASSES or args.labeled % NUM_CLASSES:
        parser.error(f"--labeled must be a positive multiple of {NUM_CLASSES}; "
                     f"got {args.labeled}")
    methods = args.methods
    args.steps = args.steps or (6000 if args.full else 2000)
    if args.steps < 10:
        parser.error(f"--steps must be at least 10; got {args.steps}")
    if args.labeled > 1000:
        parser.error(f"--labeled must be at most 1000 (digits has ~125 training "
                     f"images per class); got {args.labeled}")
    seeds = range(args.seeds or (5 if args.full else 1))
    data = {s: load_data(args.labeled, s) for s in seeds}
    print(f"digits: {args.labeled} labeled + {len(data[0]['unlabeled'])} unlabeled "
          f"training images, {len(data[0]['test'][0])} test; MLP, {args.steps} steps, "
          f"{len(seeds)} seed(s)")

    rows = []
    for method in methods:
        runs = [run(method, data[s], args, s) for s in seeds]
        student = np.array([r[0] for r in runs])
        teacher = None if runs[0][1] is None else float(np.mean([r[1] for r in runs]))
        rows.append((method, runs[0][2], float(student.mean()), float(student.std()), teacher))
        extra = "" if teacher is None else f"  (EMA teacher {teacher:.2f}%)"
        print(f"  {method:10s} test error {student.mean():5.2f}% ± {student.std():.2f}{extra}")

    print("\n| method | labels used | test error | ± std over seeds | EMA teacher |")
    print("|---|---:|---:|---:|---:|")
    for method, labels, err, err_sd, teacher in rows:
        shown = "—" if teacher is None else f"{teacher:.2f}%"
        print(f"| {method} | {labels} | {err:.2f}% | {err_sd:.2f} | {shown} |")
    return rows


if __name__ == "__main__":
    main()
