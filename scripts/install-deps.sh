#!/usr/bin/env bash
# Installs every build, test and demo dependency of penstock from Debian
# packages. Idempotent, and a fast no-op when everything is present, so
# `make check` and `make demo` can call it on every run.
set -euo pipefail

packages=(
  build-essential pkg-config
  libpq-dev libjansson-dev libcmocka-dev libsqlite3-dev sqlite3
  libmicrohttpd-dev libcurl4-openssl-dev
  librdkafka-dev kcat python3-confluent-kafka
  postgresql-15 postgresql-client-15
  python3 python3-pytest python3-psycopg2
  procps util-linux
  mariadb-server mariadb-client libmariadb-dev zlib1g-dev python3-pymysql
  libssl-dev scdoc man-db
  # TLS (issue 22): the tests make their CA and certificates with openssl;
  # libmicrohttpd12 is built with GnuTLS (HTTPS for the API), ca-certificates
  # is the system trust store the CLI falls back on
  openssl ca-certificates
  # the operator's console (issue 20): the status page is tested in a real
  # headless browser over the DevTools protocol, /metrics and the example
  # alert rules with promtool
  chromium python3-websocket prometheus
)

# make bench also needs the peers it compares with.
if [ "${1:-}" = "--bench" ]; then
  packages+=(pgcopydb pgloader)
fi
# make fuzz, and make check (which replays the fuzz corpora), build with
# clang's libFuzzer.
packages+=(clang libfuzzer-15-dev)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
