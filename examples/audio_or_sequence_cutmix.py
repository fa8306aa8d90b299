"""1-D CutMix on sequences: spectrogram-like "audio" frames and a Conv1D model.

On a sequence ``(batch, time, features)`` CutMix pastes a contiguous run of
time steps from a partner example, and the label weight is the exact
fraction of time steps each example kept (Yun et al., 2019, applied along
time, as in audio tagging). The same `keras_mixup.layers.CutMix` layer
handles images and sequences; it can run

- inside the train step, as an input site of `keras_mixup.MixupModel`
  (``cutmix``: integer labels, interpolated loss, no one-hot tensors), or
- in the ``tf.data`` pipeline, after batching (``cutmix-tfdata``: one-hot
  mixed labels, any model and loss).

The script compares both with ERM and with input mixup on a synthetic
sound-event task generated offline: 64 frames × 32 frequency bins of log
energy; each of 6 classes is a sound event (steady harmonic tones at two
pitches, a pulsed tone, rising and falling chirps, clicks) lasting 16-40
frames at a random position, over noise and a quieter distractor tone.

    python examples/audio_or_sequence_cutmix.py              # ~1 min
    python examples/audio_or_sequence_cutmix.py --full       # 3 seeds, more data

For channels-first sequences ``(batch, features, time)`` pass
``CutMix(data_format="channels_first")``.

What to expect: ERM is already strong on this task (about 10% test error),
and neither mixup nor CutMix improved on it in our default runs; the two
CutMix placements (in the model, in ``tf.data``) give about the same
error, as they should.
"""

import argparse

from keras_mixup_cli import positive_float, positive_int, quiet_startup, subset_of

# Imports without TensorFlow's start-up logs (TF_CPP_MIN_LOG_LEVEL=0 shows them).
with quiet_startup():
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_mixup

FRAMES, BINS, NUM_CLASSES = 64, 32, 6
METHODS = ("erm", "mixup", "cutmix", "cutmix-tfdata")


# ---------------------------------------------------------------- data


def tone_track(kind, length, rng):
    """Frequency bin(s) of the event at each of its ``length`` frames."""
    t = np.arange(length)
    if kind == "low":
        return [np.full(length, 4), np.full(length, 8), np.full(length, 12)]
    if kind == "high":
        return [np.full(length, 7), np.full(length, 14), np.full(length, 21)]
    if kind == "pulsed":
        on = (t // 4) % 2 == 0
        return [np.where(on, 10, -1)]
    if kind == "up":
        return [np.round(np.linspace(3, 28, length)).astype(int)]
    if kind == "down":
        return [np.round(np.linspace(28, 3, length)).astype(int)]
    # clicks: broadband at a few random frames
    clicks = rng.random(length) < 0.25
    return [np.where(clicks, b, -1) for b in range(0, BINS, 2)]


KINDS = ("low", "high", "pulsed", "up", "down", "clicks")


def make_sequences(n, rng, snr=2.0):
    """``n`` sequences ``(n, FRAMES, BINS)`` float32 and their classes."""
    x = rng.normal(0.0, 0.5, (n, FRAMES, BINS)).astype("float32")  # noise floor
    y = rng.integers(0, NUM_CLASSES, n)
    for i, label in enumerate(y):
        # A quieter distractor tone at a random bin, all along the clip.
        x[i, :, rng.integers(0, BINS)] += 0.5 * snr
        length = rng.integers(16, 41)
        start = rng.integers(0, FRAMES - length + 1)
        shift = rng.integers(-1, 2)  # small pitch jitter
        gain = snr * rng.uniform(0.7, 1.3)
        for track in tone_track(KINDS[label], length, rng):
            frames = np.arange(length)[track >= 0]
            bins = np.clip(track[track >= 0] + shift, 0, BINS - 1)
            x[i, start + frames, bins] += gain
    return x, y.astype("int32")


# --------------------------------------------------------------- model


def build_model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FRAMES, BINS))
    x = inputs
    for filters in (32, 64):
        x = keras.layers.Conv1D(filters, 5, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
        x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Conv1D(64, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(NUM_CLASSES)(x)
    return keras.Model(inputs, outputs)


def train(method, data, args, seed):
    x_train, y_train, x_test, y_test = data
    model = build_model(seed)
    ds = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
          .shuffle(len(x_train), seed=seed).repeat().batch(args.batch_size))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if method == "mixup":
        model = keras_mixup.MixupModel(
            model, mixer=keras_mixup.layers.MixUp(alpha=args.alpha, seed=seed), seed=seed)
    elif method == "cutmix":
        # CutMix as an input site: mixed inside the compiled train step; on
        # (B, T, D) inputs it cuts a segment of time steps.
        model = keras_mixup.MixupModel(
            model, mixer=keras_mixup.layers.CutMix(alpha=1.0, seed=seed), seed=seed)
    elif method == "cutmix-tfdata":
        # CutMix in the input pipeline (after batching): it returns one-hot
        # labels weighted by the exact fraction of frames kept.
        cutmix = keras_mixup.layers.CutMix(alpha=1.0, num_classes=NUM_CLASSES, seed=seed)
        ds = ds.map(cutmix, num_parallel_calls=tf.data.AUTOTUNE)
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    steps = -(-len(x_train) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, steps * args.epochs)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    model.fit(ds.prefetch(tf.data.AUTOTUNE), steps_per_epoch=steps,
              epochs=args.epochs, verbose=args.verbose, shuffle=False)
    logits = model.predict(x_test, batch_size=1024, verbose=0)
    return 100.0 * float(np.mean(logits.argmax(-1) != y_test))


# ---------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="full-size run: 3 seeds, 3000 training clips, 60 epochs")
    parser.add_argument("--train-size", type=positive_int,
                        help="training clips (default 600; --full: 3000)")
    parser.add_argument("--test-size", type=positive_int, default=3000)
    parser.add_argument("--epochs", type=positive_int, help="default 30 (--full: 60)")
    parser.add_argument("--seeds", type=positive_int, help="default 1 (--full: 3)")
    parser.add_argument("--methods", type=subset_of(METHODS), default=list(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--alpha", type=positive_float, default=0.4,
                        help="mixup's Beta(α, α) (CutMix uses α = 1)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = parser.parse_args(argv)
    methods = args.methods
    train_size = args.train_size or (3000 if args.full else 600)
    args.epochs = args.epochs or (60 if args.full else 30)
    seeds = range(args.seeds or (3 if args.full else 1))

    test = make_sequences(args.test_size, np.random.default_rng(0))
    print(f"synthetic sound events: {NUM_CLASSES} classes, {FRAMES} frames × {BINS} "
          f"bins, {train_size} train / {args.test_size} test clips, {args.epochs} epochs")
    rows = []
    for method in methods:
        errors = np.array([
            train(method, make_sequences(train_size, np.random.default_rng(1000 + s)) + test,
                  args, s)
            for s in seeds
        ])
        rows.append((method, float(errors.mean()), float(errors.std())))
        print(f"  {method:14s} test error {errors.mean():5.2f}% ± {errors.std():.2f}")

    where = {"erm": "—", "mixup": "MixupModel(mixer=MixUp)",
             "cutmix": "MixupModel(mixer=CutMix)", "cutmix-tfdata": "ds.map(CutMix)"}
    print("\n| method | where it mixes | test error | ± std over seeds |")
    print("|---|---|---:|---:|")
    for method, err, err_sd in rows:
        print(f"| {method} | `{where[method]}` | {err:.2f}% | {err_sd:.2f} |")
    return rows


if __name__ == "__main__":
    main()
