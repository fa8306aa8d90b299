"""A gallery of what each image-mixing layer does to one pair of images.

Two synthetic 64×64 RGB images that cannot be confused — a red disc on
white (class 0) and blue-and-yellow diagonal stripes (class 1) — are mixed
with each other (``pairing="flip"``: each is the other's partner, fixed
seed) by every image-mixing layer of `keras_mixup.layers`: MixUp (with
``alpha=1``: its default 0.2 mostly draws λ near 0 or 1, a blend hard to
see), CutMix (random and saliency placement: SaliencyMix's box on the
partner's spectral-residual peak), FMix (binary and with soft edges, ``max_soft=0.2``),
ResizeMix, PatchUp (hard and soft 8×8 blocks, ``gamma=0.5``) and MaskMix
(one mask value per pixel, ``shared_axes=[-1]``). The figure has one column per layer after a column
of the two inputs; its rows are mixed image 0 and mixed image 1, each
captioned with the label weights the layer returned (the soft labels:
what the image kept of its own class and took of its partner's)::

    python examples/mask_gallery.py [--out docs/mask_families.png]

Runs offline in a few seconds on CPU; writes the PNG (matplotlib, Agg
backend) and prints its path.
"""

import argparse
import os

from keras_mixup_cli import quiet_startup

# Imports without TensorFlow's start-up logs (TF_CPP_MIN_LOG_LEVEL=0 shows them).
with quiet_startup():
    import numpy as np
    import tensorflow as tf

    from keras_mixup import layers

SIZE = 64
NUM_CLASSES = 2
DEFAULT_OUT = os.path.join("docs", "mask_families.png")


def make_images(size=SIZE):
    """A batch of two ``(size, size, 3)`` float32 images in [0, 1] and their
    labels ``[0, 1]``: a red disc on white, and blue/yellow diagonal stripes
    filling the frame (so a region taken from either one shows anywhere)."""
    yy, xx = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    disc = np.ones((size, size, 3), "float32")
    inside = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 <= (0.36 * size) ** 2
    disc[inside] = (0.85, 0.1, 0.1)
    stripes = np.empty((size, size, 3), "float32")
    band = ((xx + yy) // (size / 8)) % 2 == 0
    stripes[band] = (0.1, 0.25, 0.85)
    stripes[~band] = (1.0, 0.85, 0.3)
    return np.stack([disc, stripes]), np.array([0, 1], "int32")


def gallery_layers(seed, size=SIZE):
    """``(title, layer)`` for each layer of the gallery."""
    common = dict(num_classes=NUM_CLASSES, seed=seed, pairing="flip")
    block = max(1, size // 8)  # 8×8 px blocks on a 64×64 image
    return [
        # alpha=1 (λ uniform) instead of MixUp's 0.2, whose λ is mostly near
        # 0 or 1: a blend that shows.
        ("MixUp\nalpha=1", layers.MixUp(alpha=1.0, **common)),
        ("CutMix", layers.CutMix(**common)),
        ("CutMix\nplacement=\nsaliency", layers.CutMix(placement="saliency", **common)),
        ("FMix", layers.FMix(decay_power=3.0, **common)),
        ("FMix\nmax_soft=0.2", layers.FMix(decay_power=3.0, max_soft=0.2, **common)),
        ("ResizeMix", layers.ResizeMix(scale=(0.1, 0.8), **common)),
        (f"PatchUp hard\nblock {block}",
         layers.PatchUp(block_size=block, gamma=0.5, mode="hard", **common)),
        (f"PatchUp soft\nblock {block}",
         layers.PatchUp(block_size=block, gamma=0.5, mode="soft", **common)),
        ("MaskMix\nshared_axes=[-1]", layers.MaskMix(shared_axes=[-1], **common)),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=8,
                        help="seed of every layer (default 8: moderate weights for all)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Each layer traces its own tf.function; TensorFlow warns of "retracing"
    # after a few, which here is expected and harmless.
    tf.get_logger().setLevel("ERROR")
    x, y = make_images()
    partner = np.array([1, 0])  # pairing="flip" on a batch of two
    columns = [("Inputs", x, None)]
    for title, layer in gallery_layers(args.seed):
        mixed, soft = layer(x, y)
        mixed = np.clip(np.asarray(mixed, "float32"), 0.0, 1.0)
        soft = np.asarray(soft, "float32")
        columns.append((title, mixed, soft))

    fig, axes = plt.subplots(2, len(columns), figsize=(1.55 * len(columns), 4.4), squeeze=False)
    for col, (title, images, soft) in enumerate(columns):
        for row in range(2):
            ax = axes[row, col]
            ax.imshow(images[row], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8.5)
            if soft is None:
                caption = f"image {row} (class {y[row]})"
            else:
                own, other = soft[row, y[row]], soft[row, y[partner[row]]]
                caption = f"own {own:.2f} / partner {other:.2f}"
            ax.set_xlabel(caption, fontsize=7.5)
    axes[0, 0].set_ylabel("image 0", fontsize=8.5)
    axes[1, 0].set_ylabel("image 1", fontsize=8.5)
    fig.suptitle(f"Mixing layers on one pair (pairing='flip', seed={args.seed})", fontsize=10)
    fig.tight_layout()

    directory = os.path.dirname(args.out)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
