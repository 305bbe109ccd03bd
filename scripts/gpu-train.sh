#!/bin/sh
# SimCLR on CIFAR-10 across short GPU runs (issue 7): each run trains for a bounded time and brings back its
# newest checkpoint, which the next run resumes from, so an encoder accumulates.
#
# Here:  scripts/gpu-train.sh prepare [DATA_DIR]     # DATA_DIR: ../shared/data by default
#   builds train_simclr with --features cuda, strips and xz-compresses it, packs CIFAR-10 JPEG train (15.5 MB as
#   tar.xz) and writes gpu-train/run.sh. What travels stays under the 64 MiB carry limit: binary ~22 MB + data
#   15.5 MB + a 1,000-image test probe for the k-NN monitor (~1 MB) + one checkpoint (ResNet-18, CIFAR stem, base width 24, head 768: weights and LARS velocity ~19 MB; width 32 would be 32 MB, over the limit).
# There: the device tool with carry ["gpu-train"] and command: MINUTES=8 sh gpu-train/run.sh
#   trains (resuming when gpu-train/ckpt holds a checkpoint) and writes the newest checkpoint and the log to $OUT.
# Here:  scripts/gpu-train.sh adopt FILES_AT       # FILES_AT: the folder the device tool returned
#   makes that checkpoint the one the next run resumes from.
#
# The schedule (epochs, batch, width) is fixed by the first run and stored in the checkpoint.
# Status: packaging and resume tested here on the CPU (DEVICE=cpu); not yet run on a GPU.
set -eu
cd "$(dirname "$0")/.."
G=gpu-train
case "${1:-}" in
prepare)
  DATA=${2:-../shared/data}
  scripts/setup-cuda-build.sh /var/tmp/cadet-llvm
  export XDG_DATA_HOME=/var/tmp/cadet-llvm/xdg CUDARC_CUDA_VERSION=13000
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cadet-rs-target}-cuda"
  cargo build --release --features cuda --example train_simclr
  mkdir -p "$G"
  grep -qx "$G/" .git/info/exclude 2>/dev/null || echo "$G/" >> .git/info/exclude
  strip -o "$G/train_simclr" "$CARGO_TARGET_DIR/release/examples/train_simclr"
  rm -f "$G/train_simclr.xz" && xz -9 -T2 "$G/train_simclr"
  [ -f "$G/cifar10-train.tar.xz" ] || tar -C "$DATA/cifar10-jpeg" -cf - train | xz -6 -T2 > "$G/cifar10-train.tar.xz"
  # The k-NN monitor's queries: the first 100 test images of each class (about 1 MB).
  if [ ! -f "$G/cifar10-probe.tar.xz" ]; then
    P=$(mktemp -d)
    for c in "$DATA"/cifar10-jpeg/test/*/; do
      mkdir -p "$P/probe/$(basename "$c")"
      ls "$c" | sort | head -100 | while read -r f; do cp "$c$f" "$P/probe/$(basename "$c")/"; done
    done
    tar -C "$P" -cf - probe | xz -6 > "$G/cifar10-probe.tar.xz" && rm -rf "$P"
  fi
  cat > "$G/run.sh" <<'RUN'
#!/bin/sh
# On the GPU machine: train SimCLR for $MINUTES, resume from ckpt/ when present, newest checkpoint to $OUT.
set -eu
G=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/gpu-train-out}
W=${WORK:-/tmp/cadet-gpu-train}
mkdir -p "$W" "$OUT"
xz -dc "$G/train_simclr.xz" > "$W/train_simclr" && chmod +x "$W/train_simclr"
[ -d "$W/train" ] || xz -dc "$G/cifar10-train.tar.xz" | tar -C "$W" -xf -
[ -d "$W/probe" ] || xz -dc "$G/cifar10-probe.tar.xz" | tar -C "$W" -xf -
rm -rf "$W/ckpt" && mkdir -p "$W/ckpt"
RESUME=""
if [ -f "$G/ckpt/latest" ]; then cp -r "$G/ckpt/." "$W/ckpt/"; RESUME=--resume; fi
# CubeCL's tuning cache (autotune results, compiled kernels), kept between runs on this machine.
export CADET_TUNE_CACHE="${CADET_TUNE_CACHE:-$W/tune-cache}"
"$W/train_simclr" --folder "$W/train" --device "${DEVICE:-cuda:0}" --minutes "${MINUTES:-8}" \
  --epochs "${EPOCHS:-200}" --batch "${BATCH:-512}" --depth 18 --base-width "${BASE_WIDTH:-24}" \
  --checkpoints "$W/ckpt" --probe "$W/probe" --knn-every "${KNN_EVERY:-100}" $RESUME 2>&1 | tee "$OUT/train.log"
LATEST=$(cat "$W/ckpt/latest")
rm -rf "$OUT/ckpt" && mkdir -p "$OUT/ckpt"
cp -r "$W/ckpt/$LATEST" "$OUT/ckpt/" && cp "$W/ckpt/latest" "$OUT/ckpt/"
du -sh "$OUT/ckpt"
RUN
  ls -la "$G"
  ;;
adopt)
  FROM=${2:?usage: scripts/gpu-train.sh adopt FILES_AT}
  SRC=$(find "$FROM" -type f -name latest -path '*ckpt*' | head -1)
  [ -n "$SRC" ] || { echo "no ckpt/latest under $FROM" >&2; exit 1; }
  rm -rf "$G/ckpt" && cp -r "$(dirname "$SRC")" "$G/ckpt"
  du -sh "$G/ckpt"
  ;;
*)
  echo "usage: scripts/gpu-train.sh prepare [DATA_DIR] | adopt FILES_AT" >&2
  exit 2
  ;;
esac
