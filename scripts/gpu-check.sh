#!/bin/sh
# The GPU check of issues 4 and 6, in two halves.
#
# Here (no GPU needed):   scripts/gpu-check.sh prepare
#   builds examples/gpu_bench with --features cuda (LLVM stand-in: scripts/setup-cuda-build.sh), strips and
#   xz-compresses it into gpu/ (ignored by git), with ../shared/bench/torch_anchor.py and gpu/run.sh.
# On the GPU machine (the device tool, carry ["gpu"], from the repository root):   sh gpu/run.sh
#   unpacks the binary, checks CUDA against the CPU, times ResNet-50 inference, the SimCLR step and PGD-50, and
#   runs PyTorch's figures on the same card; everything lands in $OUT (or /tmp) as JSON lines.
#
# Status: an earlier version ran on an H200 (issue 23's figures); this one (tuning cache, cold and warm) not yet.
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  scripts/setup-cuda-build.sh /var/tmp/cadet-llvm
  export XDG_DATA_HOME=/var/tmp/cadet-llvm/xdg CUDARC_CUDA_VERSION=13000
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cadet-rs-target}-cuda"
  cargo build --release --features cuda --example gpu_bench
  mkdir -p gpu
  grep -qx 'gpu/' .git/info/exclude 2>/dev/null || echo 'gpu/' >> .git/info/exclude
  strip -o gpu/gpu_bench "$CARGO_TARGET_DIR/release/examples/gpu_bench"
  rm -f gpu/gpu_bench.xz
  xz -9 -T2 gpu/gpu_bench
  cp ../shared/bench/torch_anchor.py gpu/
  cat > gpu/run.sh <<'RUN'
#!/bin/sh
set -u
OUT=${OUT:-/tmp}
cd "$(dirname "$0")"
xz -dkf gpu_bench.xz && chmod +x gpu_bench
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
# CubeCL's tuning cache in a folder of its own, empty at first: the first pass tunes cold, the second reads the
# cache (each record's warmup_s says how long the warm-up took). CUBECL_AUTOTUNE_CACHE is a switch (1/0), not a path.
export CADET_TUNE_CACHE=/tmp/cadet-tune-cache
: > "$OUT/burn.jsonl"
for what in infer train; do
  rm -rf "$CADET_TUNE_CACHE"  # each measurement's cold pass starts from an empty cache
  for pass in cold warm; do
    ./gpu_bench --device cuda:0 --what $what --batch 128 --size 224 | sed "s/^{/{\"tuning_cache\": \"$pass\", /" \
      | tee -a "$OUT/burn.jsonl"
  done
done
# Mixed precision (bf16 forward, f32 weights, batch norm and loss).
for what in infer train; do
  ./gpu_bench --device cuda:0 --what $what --batch 128 --size 224 --precision bf16 | tee -a "$OUT/burn.jsonl"
done
./gpu_bench --device cuda:0 --what compare | tee -a "$OUT/burn.jsonl"
./gpu_bench --device cuda:0 --what phases --batch 128 --size 224 | tee -a "$OUT/burn.jsonl"
./gpu_bench --device cuda:0 --what pgd --pgd-batch 64 --size 224 | tee -a "$OUT/burn.jsonl"
OUT="$OUT" python3 torch_anchor.py | tee "$OUT/torch.txt"
RUN
  ls -la gpu/
  echo "now: the device tool with carry [\"gpu\"] and command: sh gpu/run.sh"
  ;;
*)
  echo "usage: scripts/gpu-check.sh prepare   (then run gpu/run.sh on the GPU machine)" >&2
  exit 2
  ;;
esac
