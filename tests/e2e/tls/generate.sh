#!/usr/bin/env bash
# Regenerates the test registry's TLS fixtures: a CA, a server certificate for 127.0.0.1 and
# localhost, and a client certificate for mTLS, all P-256 and valid for 100 years. Test-only keys.
set -euo pipefail
cd "$(dirname "$0")"
days=36500
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
  -keyout ca.key -out ca.pem -subj "/CN=weir test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
for who in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$who.key" -out "$who.csr" -subj "/CN=weir test $who"
  if [ "$who" = server ]; then
    ext="subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"
  else
    ext="subjectAltName=DNS:weir-client\nextendedKeyUsage=clientAuth"
  fi
  openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
    -out "$who.pem" -extfile <(printf "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n$ext\n")
  rm "$who.csr"
done
rm -f ca.srl ca.key
