#!/usr/bin/env bash
# `make run`: the simulator (demo scenario) and the daemon side by side on 127.0.0.1.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
CONFIG=${CONFIG:-config/hlrd.toml}
SCENARIO=${SCENARIO:-config/scenarios/demo.toml}

"$BIN/hlrd" config check "$CONFIG" >/dev/null
# The ports must be free: a second `make run` would otherwise find the first one's
# daemon answering and say "up" while its own processes fail.
for port in 2775 8081 8080 2776; do
  if "$BIN/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.5).close()" \
      2>/dev/null; then
    echo "make run: 127.0.0.1:$port is already in use (is make run already running?)" >&2
    exit 1
  fi
done
"$BIN/hlrd-sim" --scenario "$SCENARIO" --smpp-port 2775 --http-port 8081 &
SIM=$!
# Let the simulator listen before the daemon binds to it (bounded wait).
for _ in $(seq 1 50); do
  "$BIN/python" -c 'import socket; socket.create_connection(("127.0.0.1", 2775), 0.2).close()' \
    2>/dev/null && break
  sleep 0.1
done
"$BIN/hlrd" run --config "$CONFIG" &
HLRD=$!
stop() {
  kill -TERM "$HLRD" 2>/dev/null || true
  wait "$HLRD" 2>/dev/null || true
  kill -TERM "$SIM" 2>/dev/null || true
  wait "$SIM" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM

# Wait (bounded) until the daemon has bound to the simulator.
for _ in $(seq 1 100); do
  kill -0 "$HLRD" 2>/dev/null || { echo "hlrd exited; see the log above" >&2; stop; exit 1; }
  kill -0 "$SIM" 2>/dev/null || { echo "hlrd-sim exited; see the log above" >&2; stop; exit 1; }
  if "$BIN/python" - <<'PY' 2>/dev/null; then break; fi
import urllib.request
urllib.request.urlopen("http://127.0.0.1:8080/readyz", timeout=1)
PY
  sleep 0.1
done

# The page's demo data (a list, a washed calling list), through the API.
"$BIN/python" scripts/seed_demo.py http://127.0.0.1:8080 || echo "  (demo data not loaded; see above)" >&2

cat <<TXT

  hlrd is up, with the simulator as its upstream.
    Web page   http://127.0.0.1:8080/ui   (wash a list, check a number, lists, erasure)
    HTTP API   http://127.0.0.1:8080   (/v1/lookup/{number}, /v1/check/{number}, /metrics)
    SMPP       127.0.0.1:2776          (system_id callcenter, password cc-pass)
    simulator  SMPP 127.0.0.1:2775, HTTP http://127.0.0.1:8081 (and its vendor imitations)
    routes     DE -> CAMARA, FR ES IT NL BE -> Infobip, GB -> Vonage, US CA BR MX -> tyntec,
               JP AU SG -> a generic JSON mapping, the rest -> the SMPP simulator, then
               hlr-lookups.com (config/hlrd.toml)

  Try:
    curl 'http://127.0.0.1:8080/v1/check/+48600000003?format=digit'   # roaming in Egypt -> 1
    curl 'http://127.0.0.1:8080/v1/check/+48600000001?format=digit'   # at home -> 0
    curl  http://127.0.0.1:8080/v1/lookup/48600000002                  # roaming in Germany, JSON
    curl  http://127.0.0.1:8080/v1/lookup/4915112345678                # a German number: CAMARA
    curl  http://127.0.0.1:8080/v1/lookup/447400123456                 # a UK number: Vonage

  Ctrl-C stops both.
TXT
wait "$HLRD"
stop
