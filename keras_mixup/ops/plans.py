"""Plans as values: the identity, switching off, k-way columns, stacking.

See `keras_mixup.ops.mixing` for what a plan holds. These functions are
what the layers, the sites and `MixupModel` share to pass plans around:
the per-example part of a plan (``index``, ``lam`` and, k-way,
``weights``) is what a site reports for the labels.
"""

from keras_mixup import backend
from keras_mixup.ops.mixing import partner_columns, per_example

LABEL_KEYS = ("index", "lam", "weights")


def identity_where_off(plan, on):
    """The plan where ``on`` (a bool scalar or ``(B,)``), the identity
    elsewhere: own index, λ = 1, partner weights 0, full mask."""
    K = backend.ops()
    out = dict(plan)
    index = plan["index"]
    own = K.range(K.batch_size(index), dtype="int32")
    if backend.rank(index) == 2:
        own = K.expand_dims(own, 1)
    index_on = on if backend.rank(on) == 0 or backend.rank(index) == 1 else K.expand_dims(on, 1)
    out["index"] = K.where(index_on, index, own)
    out["lam"] = K.where(on, plan["lam"], 1.0)
    if "weights" in plan:
        out["weights"] = K.where(index_on, plan["weights"], 0.0)
    if "active" in plan:  # a mask family's switch (see layers/masked.py)
        out["active"] = K.where(on, plan["active"], False)
    if "found" in plan:  # (a partner that is not used is not missing)
        out["found"] = K.where(index_on, plan["found"], True)
    if "mask" in plan:
        mask = plan["mask"]
        mask_on = on if backend.rank(on) == 0 else per_example(on, backend.rank(mask))
        out["mask"] = K.where(mask_on, mask, 1.0)
    if "bounds" in plan:  # (2k, N) cut bounds: an empty cut where off
        bounds_on = on if backend.rank(on) == 0 else K.expand_dims(on, 0)
        out["bounds"] = K.where(bounds_on, plan["bounds"], 0)
    return out


def label_plan(plan):
    """The part of a plan the labels read: ``index``, ``lam`` (and k-way
    ``weights``)."""
    return {k: plan[k] for k in LABEL_KEYS if k in plan}


def identity_plan(batch, partners=1):
    """The label plan that mixes nothing, with ``partners`` columns
    (two-way: ``(B,)`` index, no weights)."""
    K = backend.ops()
    own = K.range(batch, dtype="int32")
    plan = {"index": own, "lam": K.ones([batch], "float32")}
    if partners > 1:
        plan["index"] = K.stack([own] * partners, axis=1)
        plan["weights"] = K.stack([K.ones([batch], "float32") * 0.0] * partners, axis=1)
    return plan


def partners_of(plan):
    """How many partner columns a plan has (1 for two-way)."""
    index = plan["index"]
    return 1 if backend.rank(index) == 1 else backend.dim(index, 1)


def as_columns(plan, partners):
    """A label plan with ``partners`` columns: extra columns point at the
    example itself with weight 0 (and a ``found`` is padded with True)."""
    K = backend.ops()
    index, weights = partner_columns(plan)
    found = plan.get("found")
    if found is not None and backend.rank(found) == 1:
        found = K.expand_dims(found, 1)
    extra = partners - backend.dim(index, 1)
    if extra:
        own = K.expand_dims(K.range(K.batch_size(index), dtype="int32"), 1)
        index = K.concat([index] + [own] * extra, axis=1)
        weights = K.concat([weights] + [K.expand_dims(plan["lam"] * 0.0, 1)] * extra, axis=1)
        if found is not None:
            found = K.concat([found] + [K.ones_like(own) > 0] * extra, axis=1)
    out = {"index": index, "lam": plan["lam"], "weights": weights}
    if found is not None:
        out["found"] = found
    return out


def stack_choice(plans, choice):
    """The label plan ``plans[choice]`` (``choice`` a traced int32 scalar),
    as a gather: XLA needs slice starts at compile time. Plans with
    different numbers of partners are padded to the most."""
    K = backend.ops()
    most = max(partners_of(p) for p in plans)
    if most > 1 or any(backend.rank(p["index"]) == 2 for p in plans):
        plans = [as_columns(p, most) for p in plans]
    return {
        key: K.gather(K.stack([p[key] for p in plans]), choice) for key in plans[0]
    }
