#!/usr/bin/env bash
# Every GPU measurement of docs/benchmarks.md in one run, within a time budget.
#
#   bash benchmarks/gpu_suite.sh [DATA] [LOGS] [extra natural.py arguments...]
#
# DATA: the benchmark data folder (default ../shared/data); LOGS: folder for the logs, the
# JSON files and a copy of the updated docs/benchmarks.md (default gpu-results). Runs from
# the repository root with the package importable (installed, or PYTHONPATH=src). The steps
# run most important first; one that would start with under 20 s of the budget left
# (GPU_SUITE_SECONDS, default 520) is skipped, and a step is stopped when the budget ends.
# DEVICE (default cuda) selects the torch device; GPU_SUITE_STEPS names the steps to run.
# The targets of networks trained together (about 6 minutes on an H200, by estimate):
#   GPU_SUITE_STEPS=batch bash benchmarks/gpu_suite.sh ../shared/data gpu-results
# GPU_SUITE_SMOKE=1 runs the batch steps at tiny sizes (DEVICE=cpu works): a test of the
# scripts, not a measurement.
set -u
DATA=${1:-../shared/data}
LOGS=${2:-gpu-results}
shift $(($# < 2 ? $# : 2))
DEVICE=${DEVICE:-cuda}
mkdir -p "$LOGS"
deadline=$((SECONDS + ${GPU_SUITE_SECONDS:-520}))
export PYTHONUNBUFFERED=1

step() {
    local name=$1
    shift
    local left=$((deadline - SECONDS))
    if [ "$left" -lt 20 ]; then
        echo "== $name: skipped (time budget spent)"
        return
    fi
    echo "== $name (budget left ${left} s)"
    timeout "$left" "$@" >"$LOGS/$name.log" 2>&1
    echo "   exit $? after $((left - deadline + SECONDS)) s"
    tail -n 4 "$LOGS/$name.log"
}

natural() {
    local name=$1
    shift
    step "$name" python3 benchmarks/natural.py "$DATA" --device "$DEVICE" --preset paper \
        --json "$LOGS/$name.json" "$@" "${EXTRA[@]}"
}

EXTRA=("$@")
SMOKE=()
CHECK_SMOKE=()
if [ -n "${GPU_SUITE_SMOKE:-}" ]; then
    SMOKE=(--smoke --threads 1)
    CHECK_SMOKE=(--smoke)
fi

batch() {
    local name=$1
    shift
    step "$name" python3 benchmarks/batch_bench.py --data "$DATA" --device "$DEVICE" \
        --json "$LOGS/$name.json" "${SMOKE[@]}" "$@"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"

run_step() {
    case $1 in
    gpu-check) step gpu-check python3 benchmarks/gpu_check.py --device "$DEVICE" ;;
    cuda-tests) step cuda-tests python3 -m pytest -q -p no:cacheprovider tests/test_train_step.py ;;
    set5-x2) natural set5-x2 --sets set5 --scale 2 ;;
    set5-x2-bf16) natural set5-x2-bf16 --sets set5 --scale 2 --mixed-precision ;;
    bsd100-x2) natural bsd100-x2 --sets bsd100 --scale 2 --limit 20 ;;
    bsd100-x2-bf16) natural bsd100-x2-bf16 --sets bsd100 --scale 2 --limit 20 --mixed-precision ;;
    set5-x4) natural set5-x4 --sets set5 --scale 4 ;;
    set5-x4-onejump) natural set5-x4-onejump --sets set5 --scale 4 --gradual "" ;;
    set5-x4-gradual2-3) natural set5-x4-gradual2-3 --sets set5 --scale 4 --gradual 2,3 ;;
    set14-x2) natural set14-x2 --sets set14 --scale 2 ;;
    # the reference's gradual x2 configuration (six steps; about 6x the time of set5-x2)
    set5-x2-gradual) natural set5-x2-gradual --sets set5 --scale 2 --preset paper-gradual ;;
    set5-x4-gradual) natural set5-x4-gradual --sets set5 --scale 4 --preset paper-gradual ;;
    set14-x2-gradual) natural set14-x2-gradual --sets set14 --scale 2 --preset paper-gradual ;;
    step-time) step step-time python3 benchmarks/step_time.py --device "$DEVICE" --crop 128 --image 1024 ;;
    # leads for the Set5 x2 gap (about 10 s each on an H200): seeds, x1.5 first, the
    # reference's father sampling, size-proportional scales, a longer schedule
    set5-x2-seeds)
        natural set5-x2-seed1 --sets set5 --scale 2 --seed 1
        natural set5-x2-seed2 --sets set5 --scale 2 --seed 2
        ;;
    set5-x2-leads)
        natural set5-x2-gradual1.5 --sets set5 --scale 2 --gradual 1.5
        natural set5-x2-native --sets set5 --scale 2 --set native_prob=0.5 --set affine_prob=1.0
        natural set5-x2-sizeprop --sets set5 --scale 2 --set size_proportional_sampling=True
        natural set5-x2-long --sets set5 --scale 2 --max-iters 6000 --set min_iters=1000
        ;;
    # networks trained together (issue targets): the batched step, per-plane stack speed
    # and quality (batch 1 vs auto, default/fp32/bf16), 20 BSD100 x2 images as one batch
    batch-check)
        step batch-check python3 benchmarks/gpu_check.py --device "$DEVICE" \
            --checks check_batched "${CHECK_SMOKE[@]}"
        ;;
    batch-stack) batch batch-stack --parts stack ;;
    batch-quality) batch batch-quality --parts quality ;;
    batch-bsd100) batch batch-bsd100 --parts bsd100 ;;
    batch)
        run_step batch-check
        run_step batch-stack
        run_step batch-quality
        run_step batch-bsd100
        ;;
    *) echo "unknown step $1" ;;
    esac
}

# GPU_SUITE_STEPS: the steps to run, in order (default: all, most important first).
for name in ${GPU_SUITE_STEPS:-gpu-check cuda-tests set5-x2-gradual bsd100-x2 set5-x2 set5-x4 \
    set5-x4-gradual set5-x4-onejump set14-x2-gradual set5-x2-bf16 bsd100-x2-bf16 \
    set5-x4-gradual2-3 set14-x2 step-time set5-x2-seeds set5-x2-leads}; do
    run_step "$name"
done
cp docs/benchmarks.md "$LOGS/benchmarks.md"
echo "== done in $SECONDS s"
