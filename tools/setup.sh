#!/usr/bin/env bash
# tools/setup.sh [release|asan|tsan|fuzz|all|deps] — install what Trellis needs and build it
# (deps: install only, build nothing; the CI recipes in tools/recipes/ build one target).
#
# Idempotent: Debian packages are installed only when one is missing (this needs root), and
# the build reuses build/<preset>/ if it exists. Works on a fresh Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."

presets="${1:-release}"
[ "$presets" = all ] && presets="release asan tsan fuzz"
[ "$presets" = deps ] && presets=""

packages=(build-essential cmake ninja-build clang clang-format libboost-context-dev
          libboost-fiber-dev libabsl-dev librapidcheck-dev libbenchmark-dev libgtest-dev
          libgmock-dev libmsgpack-cxx-dev
          libssl-dev openssl  # trellis::tls (OpenSSL 3); openssl s_client/s_server interop
          python3)  # python3: a real client no one here wrote (tests/io/external_client_test.cc)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages and not root; run as root (sudo $0)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

for preset in $presets; do
  echo "setup: configuring and building preset '$preset'"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$(nproc)"
done
