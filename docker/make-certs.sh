#!/usr/bin/env bash
# Make the credentials of the secure compose profile (docker/compose.secure.yaml) in docker/certs/:
#
#   certs/server/ca.crt           local CA certificate (every client verifies the servers with it)
#   certs/server/server.pem|.key  server certificate + key for the SuperLink and every SuperNode runtime API
#                                 (SANs: superlink, supernode-<department>..., localhost, 127.0.0.1)
#   certs/ca.crt                  a copy of the CA certificate for the client-only containers
#   certs/nodes/<dept>.key        SuperNode authentication key per listed department (EC P-384, OpenSSH format,
#                                 as flower-supernode --auth-supernode-private-key expects)
#   certs/registered/<dept>.pub   the public keys the SuperLink registers (`flwr supernode register`): only these
#                                 departments may join
#   certs/unlisted/unlisted.key   a key that is not registered (the demo's refusal check)
#
# Usage: docker/make-certs.sh [DEPARTMENT ...]    (default: the departments of scenarios/demo-4depts.yaml)
# Needs openssl and ssh-keygen (OpenSSH). The CA key stays in certs/ca/ and is mounted nowhere.
# Key files are made world-readable (0644) so that the containers' unprivileged users (uid differs from yours) can
# read them: fine for a demo on one machine; in production give each host only its own key with owner-only rights.
set -euo pipefail
cd "$(dirname "$0")"
OUT="${CERTS_DIR:-certs}"
DAYS="${DAYS:-365}"

if [ "$#" -gt 0 ]; then
  DEPTS=("$@")
else
  mapfile -t DEPTS < <(sed -n 's/^  - name: *\([A-Za-z0-9_.-]*\).*/\1/p' ../scenarios/demo-4depts.yaml)
fi
[ "${#DEPTS[@]}" -gt 0 ] || { echo "no departments found" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/ca" "$OUT/server" "$OUT/nodes" "$OUT/registered"

# 1. local CA
openssl req -x509 -newkey rsa:4096 -sha256 -days "$DAYS" -nodes -subj "/CN=c2gr-fed demo CA" \
  -keyout "$OUT/ca/ca.key" -out "$OUT/server/ca.crt" 2>/dev/null

# 2. one server certificate for every service name a client connects to
SAN="DNS:superlink,DNS:localhost,IP:127.0.0.1"
for d in "${DEPTS[@]}"; do SAN="$SAN,DNS:supernode-$d"; done
openssl req -newkey rsa:4096 -sha256 -nodes -subj "/CN=superlink" \
  -keyout "$OUT/server/server.key" -out "$OUT/ca/server.csr" 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
  "$SAN" > "$OUT/ca/server.ext"
openssl x509 -req -in "$OUT/ca/server.csr" -CA "$OUT/server/ca.crt" -CAkey "$OUT/ca/ca.key" -CAserial "$OUT/ca/ca.srl" -CAcreateserial \
  -days "$DAYS" -sha256 -extfile "$OUT/ca/server.ext" -out "$OUT/server/server.pem" 2>/dev/null
cp "$OUT/server/ca.crt" "$OUT/ca.crt"

# 3. SuperNode authentication keys: one per listed department; only their public keys are registered
for d in "${DEPTS[@]}"; do
  ssh-keygen -q -t ecdsa -b 384 -N "" -C "$d" -f "$OUT/nodes/$d.key"
  mv "$OUT/nodes/$d.key.pub" "$OUT/registered/$d.pub"
done

# 4. one key that is NOT registered: the secure demo's `supernode-unlisted` (profile "unlisted") must be refused
mkdir -p "$OUT/unlisted"
ssh-keygen -q -t ecdsa -b 384 -N "" -C unlisted -f "$OUT/unlisted/unlisted.key"

chmod 0644 "$OUT/server/"* "$OUT/nodes/"* "$OUT/registered/"* "$OUT/unlisted/"* "$OUT/ca.crt"
chmod 0600 "$OUT/ca/ca.key"
openssl verify -CAfile "$OUT/server/ca.crt" "$OUT/server/server.pem" >/dev/null
echo "made $OUT/: CA, server certificate ($SAN), SuperNode keys for: ${DEPTS[*]}"
