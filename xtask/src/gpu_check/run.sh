#!/bin/bash
# The one-call GPU check (written by `cargo xtask gpu-pack`; docs/performance.md has its results).
# On the GPU machine, from anywhere:   bash .gpu/run.sh
# Results go to $OUT (the device tool's folder), else to .gpu/results: machine.txt, steps.txt
# (each step's exit code and seconds), one log per step, the runs, the bench tables and
# summary.md, which compares every training on the GPU with the same training on the CPU.
#   DEVICE=cpu QUICK=1 bash .gpu/run.sh    the same steps, briefly, on a CPU (how it is tested)
#   TORCH_VENV=/path/to/venv               the torch to run against (default /opt/torch/.venv)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE/results}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
VENV=${TORCH_VENV:-/opt/torch/.venv}
LIB=$(ls -d "$VENV"/lib/python3*/site-packages/torch/lib 2>/dev/null | head -1)
if [ -z "$LIB" ]; then
    echo "run.sh: no torch under $VENV (set TORCH_VENV)" >&2
    exit 2
fi
export LD_LIBRARY_PATH="$LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export STOKER_PACKED="$HERE" STOKER_TORCH_VENV="$VENV"
mkdir -p "$OUT/runs"
cd "$HERE" || exit 2
: > "$OUT/steps.txt"
started=$(date +%s)

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, its output in NAME.log.
step() {
    local name=$1 limit=$2 t0 code
    shift 2
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    code=$?
    echo "$name exit=$code seconds=$(( $(date +%s) - t0 ))" | tee -a "$OUT/steps.txt"
}

{
    date -u
    nvidia-smi 2>&1 || echo "no nvidia-smi"
    "$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.version.cuda)"
    ./stoker list precision
} > "$OUT/machine.txt" 2>&1

# train LABEL DEVICE CONFIG [--set ...]: one training, its run under runs/LABEL.
train() {
    local label=$1 device=$2 config=$3
    shift 3
    local limits=()
    if [ "$QUICK" = 1 ]; then
        limits=(--set trainer.args.max_epochs=1 --set trainer.args.limit_train_batches=3 --set trainer.args.limit_val_batches=2 --set trainer.args.limit_test_batches=2)
    fi
    step "train-$label" 120 ./stoker train "configs/$config" --output-dir "$OUT/runs/$label" \
        --set "environment.device=$device" "$@" "${limits[@]}"
}

for device in "$DEVICE" cpu; do
    train "quickstart-$device" "$device" quickstart.yaml
    train "bearing_cnn-$device" "$device" bearing_cnn.yaml --set trainer.args.max_epochs=5
    train "darcy_fno-$device" "$device" darcy_fno.yaml --set trainer.args.max_epochs=10
    [ "$device" = cpu ] && break
done
train "quickstart-$DEVICE-bf16-mixed" "$DEVICE" quickstart.yaml --set trainer.args.precision=bf16-mixed
train "darcy_fno-$DEVICE-bf16-mixed" "$DEVICE" darcy_fno.yaml --set trainer.args.max_epochs=10 --set trainer.args.precision=bf16-mixed
# Data-parallel training through the launcher: one rank (world size 1, every collective run),
# on NCCL on a GPU and Gloo on a CPU. Its metrics should equal quickstart-$DEVICE's.
train "quickstart-$DEVICE-ddp" "$DEVICE" quickstart.yaml --nproc 1 --set trainer.args.strategy=ddp
# And batch statistics through the process group (sync_batchnorm's differentiable all-reduce).
train "bearing_cnn-$DEVICE-ddp-sync_batchnorm" "$DEVICE" bearing_cnn.yaml --nproc 1 \
    --set trainer.args.strategy=ddp --set trainer.args.sync_batchnorm=true --set trainer.args.max_epochs=5
# Read in place by two workers, each batch through pinned memory and an asynchronous copy. The
# Darcy files are Fortran-ordered, which cannot be read row by row: they are sharded first.
SHARDS="$HERE/shards"
step shard-darcy 60 bash -c "for f in darcy_train_16 darcy_test_16 darcy_test_32; do
    [ -d '$SHARDS/'\$f ] || ./stoker data shard data/fno/\$f.npz '$SHARDS/'\$f || exit 1; done"
train "darcy_fno-$DEVICE-in-place" "$DEVICE" darcy_fno.yaml --set trainer.args.max_epochs=10 \
    --set data.args.in_memory=false --set trainer.args.num_workers=2 \
    --set "data.args.train=$SHARDS/darcy_train_16" --set "data.args.val=$SHARDS/darcy_test_16" \
    --set "data.args.test={16: $SHARDS/darcy_test_16, 32: $SHARDS/darcy_test_32}"

if [ "$QUICK" = 1 ]; then
    step bench 300 ./xtask bench --device "$DEVICE" --short
else
    step bench 240 ./xtask bench --device "$DEVICE" --repeat 3
    step bench-bf16-mixed 120 ./xtask bench --device "$DEVICE" --precision bf16-mixed --repeat 1
    step bench-stream 150 ./xtask bench stream1g --device "$DEVICE" --repeat 1
fi
cp bench/results/*.md "$OUT/" 2>/dev/null

"$VENV/bin/python" compare.py "$OUT" "$DEVICE" > "$OUT/summary.md" 2> "$OUT/compare.log"
echo "compare exit=$? total_seconds=$(( $(date +%s) - started ))" | tee -a "$OUT/steps.txt"
cat "$OUT/summary.md"
