#!/bin/sh
# Makes `--features cuda` build offline. Burn 0.22's CUDA backend compiles kernels with LLVM (cubecl-llvm), whose
# build dependency tracel-llvm-bundler downloads an LLVM bundle from github.com at build time. This script puts
# Debian's LLVM 22 packages (extracted, not installed) where the bundler looks for its bundle, so nothing is
# downloaded during the build. From ../shared/burn-probe/setup-llvm22-standin.sh, where it was worked out.
#
#   scripts/setup-cuda-build.sh [DIR]        # default DIR: /var/tmp/cadet-llvm (about 740 MB)
#   export XDG_DATA_HOME=DIR/xdg CUDARC_CUDA_VERSION=13000
#   cargo build --release --features cuda --example ...
#
# CUDARC_CUDA_VERSION pins cudarc's driver bindings (13000 = CUDA 13.0, the GPU machines' driver); the CUDA
# toolkit is not needed, only the driver at run time. The stand-in is LLVM 22 where the bundle is 23.1: it
# links, and its NVPTX target has ptx90 / sm_90 (H100, H200 on a CUDA 13.0 driver).
set -eu
ROOT=${1:-/var/tmp/cadet-llvm}
L=$ROOT/llvm22
B=$ROOT/xdg/tracel/tracel-llvm-23.1.0-4
if [ -x "$B/bin/llvm-config" ] && "$B/bin/llvm-config" --version >/dev/null 2>&1; then
  echo "LLVM stand-in ready in $ROOT"
  exit 0
fi
mkdir -p "$L/debs" "$L/root"
cd "$L/debs"
if [ -z "$(ls ./*.deb 2>/dev/null)" ]; then
  apt-get update -qq || true
  apt-get download llvm-22-dev llvm-22 libllvm22
fi
for d in ./*.deb; do dpkg-deb -x "$d" "$L/root"; done
# -lzstd needs a link-time libzstd.so; Debian ships only libzstd.so.1 without libzstd-dev.
ln -sf /usr/lib/x86_64-linux-gnu/libzstd.so.1 "$L/root/usr/lib/llvm-22/lib/libzstd.so"
mkdir -p "$B/bin"
touch "$B/.tracel-llvm-installed"
cat > "$B/bin/llvm-config" <<WRAPPER
#!/bin/sh
# Debian's LLVM 22 llvm-config; --system-libs trimmed (no libz3, libxml2), Polly dropped from --libs.
R=$L/root
export LD_LIBRARY_PATH="\$R/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
out=\$("\$R/usr/lib/llvm-22/bin/llvm-config" "\$@") || exit \$?
case " \$* " in
  *" --system-libs "*) out="-lrt -ldl -lm -lz -lzstd" ;;
  *" --libs "*) out=\$(printf '%s\n' "\$out" | tr ' ' '\n' | grep -v -e '^-lPolly\$' -e '^-lPollyISL\$' | tr '\n' ' ') ;;
esac
printf '%s\n' "\$out"
WRAPPER
chmod +x "$B/bin/llvm-config"
echo "LLVM stand-in: $("$B/bin/llvm-config" --link-static --version) in $ROOT"
