"""Calibration: the expected calibration error metric and reliability diagrams.

Bins (shared by the metric and the diagram): ``num_bins`` equal-width bins
over [0, 1], left-closed, ``[k/B, (k+1)/B)``, except the last, which also
holds a confidence of exactly 1.0 (``np.histogram``'s convention). A
confidence goes to bin ``k`` when it is ``>= e_k`` for the float32 edge
``e_k = float32(k/B)`` — an exact comparison, so the metric and its NumPy
reference agree even on the edges.
"""

import numbers
import os

import keras
import numpy as np
from keras import ops


def _check_num_bins(num_bins):
    if isinstance(num_bins, bool) or not isinstance(num_bins, numbers.Integral) or num_bins < 1:
        raise ValueError(
            f"`num_bins` must be an int >= 1 (15 is the usual choice); got {num_bins!r}."
        )
    return int(num_bins)


def _rank(x):
    """The rank of a tensor, or None when it is unknown (a TF graph)."""
    try:
        return len(x.shape)
    except (TypeError, ValueError):
        return None


def _per_prediction(sample_weight, y_pred, rank):
    """One float32 weight per prediction, of ``y_pred``'s leading shape.

    Accepts ``(batch,)``, ``(batch, 1)`` or the leading axes of ``y_pred``
    (e.g. ``(batch, steps)`` for sequences), broadcast over the missing
    trailing axes.
    """
    weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    weight_rank = _rank(weight)
    if weight_rank is None:
        return weight
    if weight_rank == rank:
        weight = ops.squeeze(weight, axis=-1)
        weight_rank -= 1
    for _ in range(rank - 1 - weight_rank):
        weight = ops.expand_dims(weight, -1)
    return weight * ops.ones_like(y_pred[..., 0])


def _edges(num_bins):
    """The inner bin edges ``float32(k / num_bins)``, k = 1 .. num_bins - 1."""
    return (np.arange(1, num_bins, dtype=np.float64) / num_bins).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_mixup")
class ExpectedCalibrationError(keras.metrics.Metric):
    """Expected calibration error (ECE) of a classifier, streamed over batches.

    The confidence of a prediction is its largest probability and it is
    correct when that class is the label. Predictions are grouped in
    ``num_bins`` equal-width confidence bins over [0, 1] (left-closed,
    ``[k/B, (k+1)/B)``; a confidence of exactly 1.0 goes in the last bin, 0
    in the first), and

        ``ECE = Σ_b (n_b / N)·|acc_b − conf_b|``,

    with ``n_b`` the (weighted) count, ``acc_b`` the accuracy and ``conf_b``
    the mean confidence of bin ``b`` (Naeini et al., 2015; Guo et al.,
    2017). The state is three per-bin sums (count, confidence, correct), so
    the result over many ``update_state`` calls equals the result over all
    the data at once, and the metric compiles with XLA.

    Args:
        num_bins: number of equal-width bins (default 15).
        from_logits: whether predictions are logits (softmax is applied) or
            probabilities (default).
        name: metric name (default ``"ece"``).
        **kwargs: ``keras.metrics.Metric`` arguments such as ``dtype``.

    Labels may be sparse class ids, shape ``(batch,)`` or ``(batch, 1)``, or
    one-hot / soft labels ``(batch, num_classes)`` (their arg-max is the
    class). Predictions are ``(batch, num_classes)``; extra leading axes
    (e.g. sequences) are flattened. ``sample_weight`` weights each
    prediction.

    Example:

    >>> ece = keras_mixup.metrics.ExpectedCalibrationError(num_bins=10)
    >>> ece.update_state([0, 1], [[0.9, 0.1], [0.7, 0.3]])
    >>> round(float(ece.result()), 4)   # bins 0.9: 1 right; 0.7: 1 wrong
    0.4
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...               metrics=[keras_mixup.metrics.ExpectedCalibrationError(from_logits=True)])
    """

    def __init__(self, num_bins=15, from_logits=False, name="ece", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_bins = _check_num_bins(num_bins)
        if not isinstance(from_logits, bool):
            raise TypeError(f"`from_logits` must be True or False; got {from_logits!r}.")
        self.from_logits = from_logits
        self._edge_values = _edges(self.num_bins)
        self.bin_counts = self._bins("bin_counts")
        self.bin_confidence = self._bins("bin_confidence")
        self.bin_correct = self._bins("bin_correct")

    def _bins(self, name):
        return self.add_variable(
            shape=(self.num_bins,), initializer="zeros", dtype="float32", name=name
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
        rank = _rank(y_pred)
        if rank is None or rank < 2 or y_pred.shape[-1] == 1:
            shape = "of unknown rank" if rank is None else tuple(y_pred.shape)
            raise ValueError(
                "ExpectedCalibrationError needs predictions of shape (batch, "
                f"num_classes) with num_classes >= 2; got shape {shape}. "
                "For a binary sigmoid output p, pass the two-class "
                "probabilities keras.ops.concatenate([1 - p, p], axis=-1)."
            )
        num_classes = y_pred.shape[-1]
        if num_classes is None:
            num_classes = ops.shape(y_pred)[-1]
        probs = ops.reshape(y_pred, (-1, num_classes))
        if self.from_logits:
            probs = ops.softmax(probs, axis=-1)
        y_true = ops.convert_to_tensor(y_true)
        if _rank(y_true) == rank and y_true.shape[-1] != 1:
            labels = ops.argmax(ops.reshape(y_true, (-1, num_classes)), axis=-1)
        else:
            labels = ops.reshape(y_true, (-1,))
        n_labels, n_preds = labels.shape[0], probs.shape[0]
        if n_labels is not None and n_preds is not None and n_labels != n_preds:
            raise ValueError(
                f"ExpectedCalibrationError got {n_labels} labels for {n_preds} "
                f"predictions (y_true of shape {tuple(y_true.shape)}, y_pred of "
                f"shape {tuple(y_pred.shape)}); pass one label (a class id, or a "
                "one-hot row) per prediction."
            )
        labels = ops.cast(labels, "int32")
        confidence = ops.max(probs, axis=-1)
        predicted = ops.cast(ops.argmax(probs, axis=-1), "int32")
        correct = ops.cast(ops.equal(predicted, labels), "float32")
        if sample_weight is None:
            weight = ops.ones_like(confidence)
        else:
            weight = ops.reshape(_per_prediction(sample_weight, y_pred, rank), (-1,))
        edges = ops.convert_to_tensor(self._edge_values, dtype="float32")
        index = ops.sum(
            ops.cast(ops.expand_dims(confidence, -1) >= edges, "int32"), axis=-1
        )
        stats = ops.stack([weight, weight * confidence, weight * correct], axis=-1)
        sums = ops.segment_sum(stats, index, num_segments=self.num_bins)
        self.bin_counts.assign_add(sums[:, 0])
        self.bin_confidence.assign_add(sums[:, 1])
        self.bin_correct.assign_add(sums[:, 2])

    def result(self):
        total = ops.sum(self.bin_counts)
        gap = ops.sum(ops.abs(self.bin_correct - self.bin_confidence))
        return ops.divide_no_nan(gap, total)

    def reset_state(self):
        for var in (self.bin_counts, self.bin_confidence, self.bin_correct):
            var.assign(ops.zeros(var.shape, dtype=var.dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"num_bins": self.num_bins, "from_logits": self.from_logits})
        return config


def calibration_bins(y_true, y_prob, num_bins=15):
    """Per-bin calibration statistics in NumPy (the bins of the ECE metric).

    Args:
        y_true: class ids ``(n,)`` or one-hot labels ``(n, num_classes)``.
        y_prob: predicted probabilities ``(n, num_classes)``.
        num_bins: number of equal-width bins.

    Returns:
        A dict of NumPy arrays over bins — ``lower``, ``upper``, ``count``,
        ``confidence`` (mean), ``accuracy`` (NaN for an empty bin) — and
        ``ece``, a float.

    Example:

    >>> stats = keras_mixup.metrics.calibration_bins([0, 1], [[0.9, 0.1], [0.7, 0.3]], 10)
    >>> stats["count"].tolist()[6:], round(stats["ece"], 4)
    ([0, 1, 0, 1], 0.4)
    """
    num_bins = _check_num_bins(num_bins)
    y_prob = np.asarray(y_prob, dtype=np.float32)
    y_true = np.asarray(y_true)
    if y_prob.ndim != 2 or y_prob.shape[1] < 2:
        raise ValueError(
            "`y_prob` must be predicted probabilities of shape (n, num_classes) "
            f"with num_classes >= 2; got shape {y_prob.shape}."
        )
    if y_true.ndim == 2 and y_true.shape[1] == y_prob.shape[1] and y_prob.shape[1] > 1:
        y_true = y_true.argmax(axis=1)
    y_true = y_true.reshape(-1)
    if y_true.shape[0] != y_prob.shape[0]:
        raise ValueError(
            f"`y_true` has {y_true.shape[0]} labels but `y_prob` has "
            f"{y_prob.shape[0]} predictions; pass one label per prediction."
        )
    confidence = y_prob.max(axis=1)
    correct = (y_prob.argmax(axis=1) == y_true).astype(np.float64)
    index = np.searchsorted(_edges(num_bins), confidence, side="right")
    count = np.bincount(index, minlength=num_bins)
    conf_sum = np.bincount(index, weights=confidence.astype(np.float64), minlength=num_bins)
    correct_sum = np.bincount(index, weights=correct, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = conf_sum / count
        accuracy = correct_sum / count
    total = max(count.sum(), 1)
    return {
        "lower": np.arange(num_bins) / num_bins,
        "upper": np.arange(1, num_bins + 1) / num_bins,
        "count": count,
        "confidence": mean_conf,
        "accuracy": accuracy,
        "ece": float(np.abs(correct_sum - conf_sum).sum() / total),
    }


def reliability_diagram(y_true, y_prob, path, num_bins=15, title=None):
    """Writes a reliability diagram (accuracy against confidence) as a PNG.

    Bars show each bin's accuracy, the diagonal is perfect calibration, and
    the hatched box spans the gap between a bin's accuracy and its mean
    confidence; the panel title gives the ECE. Pass a dict of predictions to draw several
    models side by side (e.g. ``{"plain": p, "rescaled": q}``).

    Needs matplotlib (``pip install matplotlib``); it draws on an Agg
    canvas without touching pyplot's global backend.

    Args:
        y_true: class ids ``(n,)`` or one-hot labels ``(n, num_classes)``.
        y_prob: predicted probabilities ``(n, num_classes)``, or a dict
            ``{name: probabilities}``, one panel each.
        path: where to write the PNG.
        num_bins: number of equal-width confidence bins (default 15).
        title: optional figure title.

    Returns:
        The per-bin statistics of `calibration_bins` (a dict of arrays and
        ``"ece"``), or for a dict ``y_prob`` a dict of them by name.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "reliability.png")
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    >>> stats = keras_mixup.metrics.reliability_diagram([0, 1, 1], probs, path, num_bins=5)
    >>> os.path.exists(path), stats["count"].tolist()
    (True, [0, 0, 0, 1, 2])
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - matplotlib is installed in tests
        raise ImportError(
            "reliability_diagram needs matplotlib to draw the PNG: "
            "`pip install matplotlib`."
        ) from error
    panels = dict(y_prob) if isinstance(y_prob, dict) else {None: y_prob}
    if not panels:
        raise ValueError("`y_prob` is an empty dict; pass at least one set of predictions.")
    stats = {name: calibration_bins(y_true, p, num_bins) for name, p in panels.items()}
    fig = Figure(figsize=(4.2 * len(panels), 4.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    width = 1.0 / num_bins
    for ax, (name, s) in zip(axes, stats.items()):
        acc = np.nan_to_num(s["accuracy"])
        conf = np.where(s["count"] > 0, s["confidence"], s["lower"] + width / 2)
        ax.bar(s["lower"], acc, width=width, align="edge", color="tab:blue",
               edgecolor="black", linewidth=0.5, label="accuracy")
        filled = s["count"] > 0
        ax.bar(s["lower"][filled], np.abs(conf - acc)[filled],
               bottom=np.minimum(conf, acc)[filled], width=width, align="edge",
               facecolor="none", edgecolor="tab:red", hatch="//", linewidth=0.5,
               label="gap to mean confidence")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        label = f"ECE = {100 * s['ece']:.2f}%"
        ax.set_title(label if name is None else f"{name}: {label}")
        ax.legend(loc="upper left", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=100)
    return stats if isinstance(y_prob, dict) else stats[None]
