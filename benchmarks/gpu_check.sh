#!/usr/bin/env bash
# keras_mixup on a GPU machine that has JAX with CUDA but no TensorFlow, no
# Keras and no package index. From the repository root (or anywhere):
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh [--scale gpu|cpu|cpu-small] [bench_jax.py args]
#
# 1. installs what is missing from wheels/ (offline, --no-deps): Keras and
#    its pure-Python requirements, optree (one wheel per CPython version; pip
#    picks the one that fits), and keras_mixup (always reinstalled: the wheel
#    is the code under test);
# 2. prints `nvidia-smi -L` and JAX's devices;
# 3. runs the JAX train-step benchmark (benchmarks/bench_jax.py --section
#    train, default --scale gpu: batch 256 of 128x128x3, CNN widths 64/128)
#    with every TensorFlow import made to fail (--no-tensorflow): input
#    MixUp / input CutMix / 3-site manifold vs the plain model, a Markdown
#    table to stdout and $OUT/gpu_bench.md;
# 4. runs `python -m pytest -q -m gpu tests/test_gpu.py` on JAX if pytest is there.
#
# Everything goes to stdout and $OUT/gpu_check.log. Exit status: non-zero
# when the install, the benchmark or a test failed (no gpu tests, or no
# pytest, is not a failure). Target: a few minutes on an H200; the benchmark
# and the tests each run under a time limit (BENCH_TIMEOUT, TEST_TIMEOUT).
# PYTHON picks the interpreter (default python3).

set -u -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
PY=${PYTHON:-python3}
OUT=${OUT:-$PWD/out}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-330}
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
SCALE=gpu
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=$2; shift 2 ;;
    --scale=*) SCALE=${1#--scale=}; shift ;;
    *) EXTRA+=("$1"); shift ;;
  esac
done
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
T0=$SECONDS
say() { echo "[gpu_check $((SECONDS - T0)) s] $*"; }
status=0

# ------------------------------------------------------------ 1. install
say "python: $(command -v "$PY") ($("$PY" --version 2>&1)), scale $SCALE"
if [ ! -d wheels ]; then
  say "FAIL: no wheels/ folder in $PWD"; exit 1
fi
PIP=("$PY" -m pip install -q --no-index --no-deps --find-links wheels
     --disable-pip-version-check)
installed() { "$PY" -m pip show -q "$1" >/dev/null 2>&1; }
for dist in namex optree absl-py packaging typing-extensions rich \
            markdown-it-py mdurl pygments; do
  if ! installed "$dist"; then
    "${PIP[@]}" "$dist" && say "installed $dist from wheels/" \
      || say "could not install $dist from wheels/"
  fi
done
keras_whl=$(ls wheels/keras-[0-9]*.whl 2>/dev/null | head -n 1)
mixup_whl=$(ls wheels/keras_mixup-*.whl 2>/dev/null | head -n 1)
if [ -z "$keras_whl" ] || [ -z "$mixup_whl" ]; then
  say "FAIL: wheels/ lacks the keras or the keras_mixup wheel"; exit 1
fi
keras_version=$(basename "$keras_whl" | cut -d- -f2)
"${PIP[@]}" "keras==$keras_version" || status=1
"${PIP[@]}" --force-reinstall "$mixup_whl" || status=1
# Import from the installed wheel, not from ./keras_mixup: run outside the repo.
if ! (cd / && KERAS_BACKEND=jax "$PY" -c "
import keras, keras_mixup
print('keras', keras.__version__, 'on', keras.backend.backend(),
      '| keras_mixup', keras_mixup.__version__, 'from', keras_mixup.__file__)"); then
  say "FAIL: keras / keras_mixup do not import"; exit 1
fi

# -------------------------------------------------------------- 2. devices
say "nvidia-smi -L:"
nvidia-smi -L 2>&1 || say "(no nvidia-smi)"
"$PY" -c "
import jax
print('jax', jax.__version__, '| default backend', jax.default_backend(),
      '|', jax.devices())" || status=1
if [ "$SCALE" = gpu ] && [ "$("$PY" -c 'import jax; print(jax.default_backend())' 2>/dev/null)" != gpu ]; then
  say "WARNING: --scale gpu, but JAX does not run on a GPU here"
fi

# ------------------------------------------------------------ 3. benchmark
say "JAX train-step benchmark (scale $SCALE, limit ${BENCH_TIMEOUT} s)"
# From the repository root, `python benchmarks/x.py` puts benchmarks/ (not
# the root) on sys.path, so keras_mixup comes from the installed wheel.
KERAS_BACKEND=jax timeout "$BENCH_TIMEOUT" "$PY" benchmarks/bench_jax.py \
  --section train --scale "$SCALE" --no-tensorflow \
  --markdown "$OUT/gpu_bench.md" "${EXTRA[@]}"
rc=$?
if [ $rc -ne 0 ]; then
  status=1
  say "FAIL: benchmark exited with status $rc (124: over ${BENCH_TIMEOUT} s)"
fi

# ---------------------------------------------------------------- 4. tests
if "$PY" -c "import pytest" 2>/dev/null; then
  say "pytest -m gpu on JAX (limit ${TEST_TIMEOUT} s)"
  # The gpu-marked tests live in tests/test_gpu.py (TensorFlow-free).
  KERAS_BACKEND=jax timeout "$TEST_TIMEOUT" "$PY" -m pytest -q -m gpu \
    -p no:cacheprovider tests/test_gpu.py \
    > "$OUT/gpu_pytest.txt" 2>&1
  rc=$?
  tail -n 25 "$OUT/gpu_pytest.txt"
  case $rc in
    0) say "gpu tests passed" ;;
    5) say "no tests marked gpu were collected" ;;
    124) say "FAIL: pytest ran past ${TEST_TIMEOUT} s"; status=1 ;;
    *) # Modules that import TensorFlow fail to collect here: expected.
       if grep -qE "[0-9]+ failed" "$OUT/gpu_pytest.txt"; then
         say "FAIL: gpu tests failed (pytest status $rc); see gpu_pytest.txt"; status=1
       else
         say "pytest status $rc, no test failed (collection errors of modules" \
             "that need TensorFlow are expected here); see gpu_pytest.txt"
       fi ;;
  esac
else
  say "pytest is not installed: tests skipped"
fi

say "done, status $status; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $status
