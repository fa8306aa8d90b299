"""Interpolation Consistency Training (Verma et al., IJCAI 2019) as a model.

ICT uses unlabeled data by asking the network to be linear *between
unlabeled points*: for unlabeled ``u_j, u_k`` and ``λ ~ Beta(α, α)``, the
student's prediction on ``λ·u_j + (1 − λ)·u_k`` should match the same mix
of a mean teacher's predictions, ``λ·T(u_j) + (1 − λ)·T(u_k)``. The
teacher is an exponential moving average (EMA) of the student's weights;
the consistency weight ramps up from 0 (``w·exp(−5(1 − t)²)``).

Written once for every backend: the model overrides ``call`` and
``compute_loss`` only, so Keras' own train step (TensorFlow's and JAX's)
computes the gradients; the teacher's EMA and the step counter are
non-trainable variables assigned in the loss, which both backends carry.
"""

import keras

from keras_mixup import backend
from keras_mixup.ops.mixing import interpolate
from keras_mixup.ops.pairing import permutation
from keras_mixup.ops.random import check_concentration, check_seed, fold_seed, sample_beta


@keras.saving.register_keras_serializable(package="keras_mixup")
class ICTModel(keras.Model):
    """A student network trained with interpolation consistency.

    ``fit`` takes batches ``((x_labeled, x_unlabeled), y_labeled)`` (e.g. a
    zipped ``tf.data`` pipeline, or arrays of equal length). The supervised
    loss is the one passed to ``compile`` (default: sparse categorical
    cross-entropy on logits); the consistency loss is the squared error
    between probability vectors. ``evaluate`` and ``predict`` take plain
    inputs and use the student; ``model.teacher`` is the EMA model (often a
    little better at the end of training).

    The teacher's EMA uses the student's weights as they are when a step
    starts (one step behind the update), with decay
    ``min(ema_decay, 1 − 1/(step + 1))`` (faster at the start).

    Args:
        student: a Keras model returning class scores.
        alpha: Beta(α, α) of λ (the paper: 1.0 on CIFAR-10, 0.1 on SVHN).
        max_weight: consistency weight after the ramp-up.
        rampup_steps: steps of the ramp-up.
        ema_decay: teacher EMA decay (the paper: 0.999).
        from_logits: whether the student returns logits (default) or
            probabilities.
        seed: int seed of the mixing stream, or None.

    Example:

    >>> student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model = keras_mixup.ICTModel(student, rampup_steps=10, seed=0)
    >>> model.compile("adam")
    >>> x_l, y_l = np.random.rand(8, 4).astype("float32"), np.arange(8) % 3
    >>> x_u = np.random.rand(8, 4).astype("float32")
    >>> history = model.fit((x_l, x_u), y_l, epochs=2, verbose=0)
    >>> sorted(history.history)
    ['consistency', 'consistency_weight', 'loss', 'supervised']
    """

    def __init__(self, student, alpha=1.0, max_weight=10.0, rampup_steps=1000,
                 ema_decay=0.999, from_logits=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(student, dict):
            student = keras.saving.deserialize_keras_object(student)
        if not isinstance(student, keras.Model):
            raise TypeError(
                f"`student` must be a Keras model returning class scores; got "
                f"{type(student).__name__}."
            )
        self.alpha = float(check_concentration(alpha, "alpha"))
        for value, name in ((max_weight, "max_weight"), (ema_decay, "ema_decay")):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"`{name}` must be a number >= 0; got {value!r}.")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1); got {ema_decay!r}.")
        if not isinstance(rampup_steps, int) or isinstance(rampup_steps, bool) or rampup_steps < 0:
            raise ValueError(f"`rampup_steps` must be an integer >= 0; got {rampup_steps!r}.")
        self.max_weight, self.rampup_steps = float(max_weight), rampup_steps
        self.ema_decay, self.from_logits = float(ema_decay), bool(from_logits)
        self.seed, self._base_seed = check_seed(seed)
        self.student = student
        self.teacher = keras.models.clone_model(student)
        self.teacher.set_weights(student.get_weights())
        self.teacher.trainable = False
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                    trainable=False, name="ict_step")
        self._trackers = {name: keras.metrics.Mean(name=name)
                          for name in ("supervised", "consistency", "consistency_weight")}
        self._default_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)

    @staticmethod
    def _labeled(x):
        if isinstance(x, (tuple, list)) and len(x) == 2:
            return x[0], x[1]
        return x, None

    def call(self, inputs, training=False):
        labeled, _ = self._labeled(inputs)
        return self.student(labeled, training=training)

    def consistency_weight(self, step):
        """``max_weight · exp(−5 (1 − t)²)``, ``t = min(step / rampup, 1)``."""
        ops = keras.ops
        if self.rampup_steps == 0:
            return ops.convert_to_tensor(self.max_weight, "float32")
        t = ops.minimum(ops.cast(step, "float32") / float(self.rampup_steps), 1.0)
        return self.max_weight * ops.exp(-5.0 * ops.square(1.0 - t))

    def _probs(self, scores):
        scores = keras.ops.cast(scores, "float32")
        return keras.ops.softmax(scores) if self.from_logits else scores

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self._compile_loss is not None:
            supervised = super().compute_loss(x, y, y_pred, sample_weight, training)
        else:
            supervised = self._default_loss(y, y_pred, sample_weight)
        _, unlabeled = self._labeled(x)
        if not training or unlabeled is None:
            return supervised
        if y is None:
            raise ValueError("ICTModel needs labels for the labeled batch: fit it on "
                             "((x_labeled, x_unlabeled), y_labeled).")
        ops = keras.ops
        K = backend.ops()
        step = self.step.value
        seed = fold_seed(K.seed_from_int(self._base_seed), K.convert_to_tensor(step))
        unlabeled = ops.convert_to_tensor(unlabeled)
        batch = K.batch_size(unlabeled)
        lam = ops.broadcast_to(sample_beta([1], self.alpha, self.alpha, seed=fold_seed(seed, 1)),
                               [batch])  # one λ per batch, as in the paper
        index = permutation(batch, fold_seed(seed, 2))
        teacher = ops.stop_gradient(self._probs(self.teacher(unlabeled, training=False)))
        mixed, target = interpolate((unlabeled, teacher), lam, index)
        probs = self._probs(self.student(mixed, training=True))
        consistency = ops.mean(ops.sum(ops.square(probs - ops.stop_gradient(target)), axis=-1))
        weight = self.consistency_weight(step)
        # Mean teacher, one step behind: EMA of the student's current weights.
        decay = ops.minimum(self.ema_decay, 1.0 - 1.0 / ops.cast(step + 1, "float32"))
        for t, s in zip(self.teacher.weights, self.student.weights):
            if backend.is_float(t):
                t.assign(decay * t + (1.0 - decay) * ops.stop_gradient(s))
        self.step.assign(step + 1)
        for name, value in (("supervised", supervised), ("consistency", consistency),
                            ("consistency_weight", weight)):
            self._trackers[name].update_state(value)
        return supervised + weight * consistency

    def get_config(self):
        config = super().get_config()
        config.update({
            "student": keras.saving.serialize_keras_object(self.student),
            "alpha": self.alpha, "max_weight": self.max_weight,
            "rampup_steps": self.rampup_steps, "ema_decay": self.ema_decay,
            "from_logits": self.from_logits, "seed": self.seed,
        })
        return config
