#!/usr/bin/env bash
# Proves that a failing test fails the run: vitest, with the project's global setup, must exit
# non-zero on a deliberately failing test (and stop the processes that test started), and 0 on a
# passing one. `make canary` runs it; `.ci/run` runs that before the real suite.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp)
pids=$(mktemp)
trap 'rm -f "$out" "$pids"' EXIT

CANARY=failing CANARY_PIDS=$pids npx vitest run --config test/canary/vitest.config.ts >"$out" 2>&1
rc=$?
if [[ $rc -eq 0 ]] || ! grep -q '1 failed' "$out"; then
  cat "$out" >&2
  echo "canary: a deliberately failing test exited $rc: the test runner cannot fail, so no test result means anything" >&2
  exit 1
fi
read -r child grandchild <"$pids" || true
if [[ -z "${grandchild:-}" ]]; then
  cat "$out" >&2
  echo "canary: the failing test did not start its processes" >&2
  exit 1
fi
# Dead, or a zombie not yet reaped by its new parent.
alive() { [[ -e /proc/$1 ]] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
for pid in "$child" "$grandchild"; do
  if alive "$pid"; then
    kill -9 "$pid"
    echo "canary: process $pid, started by the failing test, was left running" >&2
    exit 1
  fi
done

CANARY=passing npx vitest run --config test/canary/vitest.config.ts >"$out" 2>&1
rc=$?
if [[ $rc -ne 0 ]]; then
  cat "$out" >&2
  echo "canary: a passing test exited $rc" >&2
  exit 1
fi
echo "canary: a failing test fails the run and leaves no process behind; a passing one passes"
