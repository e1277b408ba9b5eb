#!/usr/bin/env bash
# Development-only mTLS material for the internal API: a CA, a server certificate for
# localhost/127.0.0.1, and a client certificate whose SAN is the allowed identity
# `smpp-connector`. Production mounts real certificates instead (INTERNAL_TLS_*).
set -euo pipefail
dir=${1:?usage: dev-certs.sh <dir>}
[[ -f $dir/client.crt ]] && exit 0
mkdir -p "$dir" && cd "$dir"
quiet() { "$@" >/dev/null 2>&1; }

quiet openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=operator-management dev CA" \
  -keyout ca.key -out ca.crt

issue() { # issue <name> <subject CN> <subjectAltName> <extendedKeyUsage>
  quiet openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$3" "$4" >"$1.ext"
  quiet openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext"
}
issue server localhost 'DNS:localhost,IP:127.0.0.1' serverAuth
issue client smpp-connector 'DNS:smpp-connector' clientAuth
# A client signed by the same CA but not on the allowlist, for tests of the 403 path.
issue stranger stranger 'DNS:stranger' clientAuth
chmod 600 ./*.key
