#!/usr/bin/env bash
# The compose demo end to end: check the engine, build the images (no registry needed), bring the demo up, wait for
# the run, audit it, tear everything down. Exit status 0 only when the run completed and its audit passed.
#
#   docker/demo.sh             # scenarios/demo-4depts.yaml: SuperLink, coordinator, 4 x (SuperNode + ClientApp)
#   docker/demo.sh --secure    # the same with TLS + SuperNode authentication; an unlisted SuperNode must be refused
#
# The run directory is written on the host: docker/out/coordinator/demo-4depts (report, matrix, transfer log,
# audit.md); each department's own outputs stay in docker/out/<department>; compose output in docker/out/compose.log.
# Environment: C2GR_DEMO_TIMEOUT (s, default 3600), C2GR_BASE (auto|official|debian, see build-images.sh).
set -euo pipefail
cd "$(dirname "$0")"
DOCKER_DIR="$(pwd)"
SECURE=0
case "${1:-}" in
  "") ;;
  --secure) SECURE=1 ;;
  *) echo "usage: docker/demo.sh [--secure]" >&2; exit 2 ;;
esac
FILE=compose.yaml
[ "$SECURE" = 1 ] && FILE=compose.secure.yaml
PROJECT=c2gr-fed-demo
IMAGE=c2gr-fed:0.1.0-cpu
RUN_DIR="$DOCKER_DIR/out/coordinator/demo-4depts"
PORT=9093
T_START=$(date +%s)

say() { printf '[demo %4ss] %s\n' "$(( $(date +%s) - T_START ))" "$*"; }
die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------------------------------------ what is needed
command -v docker >/dev/null 2>&1 || die "no docker command: install Docker Engine (Debian/Ubuntu: apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: start it (systemctl start docker, or dockerd as root)"
docker compose version >/dev/null 2>&1 \
  || die "the Compose v2 plugin is missing ('docker compose'): docker/install-compose.sh installs it (pinned, hash-checked)"
mapfile -t DEPTS < <(sed -n 's/^  - name: *\([A-Za-z0-9_.-]*\).*/\1/p' ../scenarios/demo-4depts.yaml)
compose() { docker compose -p "$PROJECT" -f "$FILE" "$@"; }

if [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ]; then
  say "removing the containers of an earlier demo (project $PROJECT)"
  docker compose -p "$PROJECT" -f compose.yaml down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  docker compose -p "$PROJECT" -f compose.secure.yaml down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  docker rm -f $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT") >/dev/null 2>&1 || true
fi
if ! python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', $PORT))" 2>/dev/null; then
  die "port $PORT on 127.0.0.1 is taken (the SuperLink publishes it there): stop what listens on it ($(ss -ltnpH "sport = :$PORT" 2>/dev/null | awk '{print $NF}' | head -1))"
fi
for d in "${DEPTS[@]}"; do
  [ -d "data/$d" ] || mkdir -p "data/$d"   # phantom departments need no files; a real department puts its folders here
  [ -r "data/$d" ] || die "docker/data/$d is not readable: the department $d mounts it at /data"
done

# ------------------------------------------------------------------------------------------------ build
say "building the images (docker/build-images.sh)"
t=$(date +%s)
./build-images.sh
BUILD_S=$(( $(date +%s) - t ))
if docker image inspect flwr/superlink:1.42.0 >/dev/null 2>&1 && docker image inspect flwr/supernode:1.42.0 >/dev/null 2>&1 \
   || { timeout 60 docker pull -q flwr/superlink:1.42.0 >/dev/null 2>&1 && timeout 60 docker pull -q flwr/supernode:1.42.0 >/dev/null 2>&1; }; then
  say "SuperLink and SuperNodes: the official flwr/superlink and flwr/supernode 1.42.0 images"
else
  export C2GR_SUPERLINK_IMAGE="$IMAGE" C2GR_SUPERNODE_IMAGE="$IMAGE"
  say "no registry: SuperLink and SuperNodes run from $IMAGE (its flwr 1.42.0 ships flower-superlink and flower-supernode)"
fi

# ------------------------------------------------------------------------------------------------ up
mkdir -p out/coordinator
for d in "${DEPTS[@]}"; do mkdir -p "out/$d"; done
chmod 0777 out/coordinator "${DEPTS[@]/#/out/}"  # the containers' user (uid 10001) writes there
if [ -e "$RUN_DIR" ]; then
  rm -rf "$RUN_DIR.previous" && mv "$RUN_DIR" "$RUN_DIR.previous"
  say "the previous demo's run directory moved to $RUN_DIR.previous"
fi
cleanup() {
  say "tearing down (containers, network, volumes)"
  compose down -v --remove-orphans --timeout 10 >>out/compose.log 2>&1 || true
  left="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
  [ -z "$left" ] || { docker rm -f $left >/dev/null 2>&1 || true; }
}
trap cleanup EXIT
: > out/compose.log
if [ "$SECURE" = 1 ]; then
  say "certificates and SuperNode keys (docker/make-certs.sh; one unlisted key for the refusal check)"
  ./make-certs.sh >>out/compose.log 2>&1
  say "starting the SuperLink (TLS, SuperNode authentication; registers the listed departments' keys)"
  compose up -d --no-build --wait superlink >>out/compose.log 2>&1 || die "the SuperLink did not become healthy; see docker/out/compose.log"
  say "an unlisted SuperNode tries to join"
  set +e
  compose --profile unlisted run --rm --no-deps supernode-unlisted >>out/compose.log 2>&1
  rc=$?
  set -e
  [ "$rc" != 0 ] || die "the unlisted SuperNode was not refused (exit 0); see docker/out/compose.log"
  grep -q "Failed to activate SuperNode\|PERMISSION_DENIED\|not registered\|Unauthenticated\|UNAUTHENTICATED" out/compose.log \
    || say "warning: the unlisted SuperNode exited $rc without Flower's refusal message; see docker/out/compose.log"
  say "the unlisted SuperNode was refused (exit $rc)"
fi
say "docker compose up (compose output: docker/out/compose.log); waiting for the run"
t=$(date +%s)
set +e
timeout "${C2GR_DEMO_TIMEOUT:-3600}" docker compose -p "$PROJECT" -f "$FILE" up --no-build --exit-code-from submit >>out/compose.log 2>&1
rc=$?
set -e
UP_S=$(( $(date +%s) - t ))
[ "$rc" = 0 ] || die "the run did not complete (compose exit $rc after $UP_S s); last lines of docker/out/compose.log:
$(tail -15 out/compose.log)"
ROUNDS_S=$(python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$RUN_DIR/rounds.jsonl')]
print(round(sum(r.get('wall_s', 0) for r in rows)))" 2>/dev/null || echo "?")
say "run complete: $(python3 -c "
import json; s = json.load(open('$RUN_DIR/summary.json'))
print(f\"{s['completed_rounds']} of {s['total_rounds']} rounds, Overall {s.get('overall')}, BWT {s.get('bwt')}\")")"

# ------------------------------------------------------------------------------------------------ audit
say "auditing the run directory (c2gr-fed audit, in the project image)"
t=$(date +%s)
set +e
docker run --rm --network none -v "$DOCKER_DIR/out/coordinator:/runs" "$IMAGE" c2gr-fed audit /runs/demo-4depts
arc=$?
set -e
AUDIT_S=$(( $(date +%s) - t ))
[ "$arc" = 0 ] || die "the audit failed (exit $arc): see $RUN_DIR/audit.md"
say "timings: build ${BUILD_S} s, compose up to the run's end ${UP_S} s (rounds ${ROUNDS_S} s), audit ${AUDIT_S} s"
say "done: $RUN_DIR (report.md, audit.md)"
