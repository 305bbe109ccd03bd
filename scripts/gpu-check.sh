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
# Status: written and built here; not yet run on a GPU (no GPU machine was lent to the session that wrote it).
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
# Keep CubeCL's autotune results between runs on the same machine.
export CUBECL_AUTOTUNE_CACHE="${CUBECL_AUTOTUNE_CACHE:-$OUT/cubecl-autotune}"
./gpu_bench --device cuda:0 --what compare | tee "$OUT/burn.jsonl"
./gpu_bench --device cuda:0 --what infer --batch 128 --size 224 | tee -a "$OUT/burn.jsonl"
./gpu_bench --device cuda:0 --what train --batch 128 --size 224 | tee -a "$OUT/burn.jsonl"
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
