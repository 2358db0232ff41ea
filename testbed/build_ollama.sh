#!/usr/bin/env bash
# Build Ollama (CPU only) from its Go module, once, into the cache, and pack it as Ollama's release archive is laid
# out (bin/ollama), for the testbed's mirror (testbed/svc_60_mirror.sh) that the kubernetes-ollama template installs
# from on the testbed (template variable ollama_source = archive):
#
#   $cache/bin/ollama-$OLLAMA_VERSION                              the binary, linked as $state/bin/ollama
#   $cache/artifacts/ollama-$OLLAMA_VERSION-linux-amd64.tgz       bin/ollama, and its .sha256
#
# * The module zip of github.com/ollama/ollama carries llama.cpp and ggml (compiled by cgo: the CPU backend is part of
#   the binary) but not llama.cpp's vendor/ directory: Go module zips leave out every directory named vendor. Its
#   headers come from elsewhere, at versions that compile: nlohmann/json and stb_image from Debian
#   (nlohmann-json3-dev, libstb-dev, testbed/apt-packages.txt), miniaudio.h from the sdist of the `miniaudio` package
#   on PyPI (checked against MINIAUDIO_SDIST_SHA256). They are only headers, on the include path (CGO_CPPFLAGS).
# * C and C++ at -O1 without debug info: the testbed's models are tiny, and the cold build takes about half the time
#   of -O2 -g.
#
# Usage: testbed/build_ollama.sh   (warm run: only checks the cache and relinks .testbed/bin)
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

v=${OLLAMA_VERSION:?OLLAMA_VERSION missing in testbed/versions.env}
out="$cache/bin/ollama-$v"
art="$cache/artifacts/ollama-$v-linux-amd64.tgz"

if [ ! -x "$out" ]; then
  t0=$SECONDS
  src="$cache/src/ollama-$v"
  inc="$cache/src/ollama-$v-include"
  probe="$cache/src/probe"
  mkdir -p "$probe" "$inc/miniaudio"
  [ -f "$probe/go.mod" ] || (cd "$probe" && go mod init probe >/dev/null 2>&1)
  log "ollama $v: downloading the module (a cold cache downloads its dependencies too)"
  dir=$(cd "$probe" && go mod download -json "github.com/ollama/ollama@$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p' | head -n 1)
  [ -d "$dir" ] || die "cannot download github.com/ollama/ollama@$v"
  rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  if [ ! -s "$inc/miniaudio/miniaudio.h" ]; then
    sd="$cache/src/miniaudio-sdist"
    rm -rf "$sd" && mkdir -p "$sd"
    "$repo/.venv/bin/pip" download -q --no-deps --no-binary :all: "miniaudio==$MINIAUDIO_SDIST_VERSION" -d "$sd" \
      || die "cannot download the sdist of miniaudio $MINIAUDIO_SDIST_VERSION from PyPI"
    f=$(ls "$sd"/miniaudio-*.tar.gz)
    echo "$MINIAUDIO_SDIST_SHA256  $f" | sha256sum -c - >/dev/null || die "$f: sha256 is not MINIAUDIO_SDIST_SHA256"
    tar -xzf "$f" -C "$sd" --wildcards '*/miniaudio/miniaudio.h'
    cp "$sd"/miniaudio-*/miniaudio/miniaudio.h "$inc/miniaudio/miniaudio.h"
  fi
  for h in /usr/include/nlohmann/json.hpp /usr/include/stb/stb_image.h; do
    [ -f "$h" ] || die "$h missing (Debian packages nlohmann-json3-dev, libstb-dev: scripts/setup.sh installs them)"
  done
  log "building ollama $v (cgo: llama.cpp and ggml's CPU backend; cold build: several minutes)"
  (cd "$src" && CGO_ENABLED=1 GOFLAGS=-buildvcs=false CGO_CPPFLAGS="-I$inc" \
    CGO_CFLAGS="-O1" CGO_CXXFLAGS="-O1" \
    go build -trimpath -ldflags "-s -w -X github.com/ollama/ollama/version.Version=${v#v}" -o "$out.tmp" . \
    2>"$cache/src/build-ollama.log") \
    || { tail -n 40 "$cache/src/build-ollama.log" >&2; die "building ollama failed (full log: $cache/src/build-ollama.log)"; }
  mv "$out.tmp" "$out"
  rm -rf "$src"
  log "built ollama $v in $((SECONDS - t0))s"
fi
ln -sfn "$out" "$state/bin/ollama"

if [ ! -s "$art" ] || [ ! -s "$art.sha256" ] || [ "$out" -nt "$art" ]; then
  pack="$cache/src/ollama-pack"
  rm -rf "$pack" && mkdir -p "$pack/bin" "$(dirname "$art")"
  cp "$out" "$pack/bin/ollama"
  tar -C "$pack" --owner=0 --group=0 --mtime=@0 -czf "$art.tmp" bin
  sha256sum "$art.tmp" | cut -d' ' -f1 >"$art.sha256"
  mv "$art.tmp" "$art"
  rm -rf "$pack"
  log "packed $art ($(du -h "$art" | cut -f1))"
fi
