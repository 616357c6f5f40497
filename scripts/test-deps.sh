#!/usr/bin/env bash
# System packages the test suite needs beyond `mscr setup` (idempotent).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    }
  else
    echo "test-deps: please install: ${need[*]}" >&2
    exit 1
  fi
fi

# The tests read real benchmark files kept beside the project (not copied into
# it): say so before a long build, not as a dozen test panics after it.
data="${MSCR_SHARED_DATA:-$(cd "$(dirname "$0")/.." && pwd)/../shared/data}"
missing=()
for f in gsm8k_test.jsonl gsm8k_train.jsonl math500_test.jsonl asdiv_a.jsonl; do
  [ -f "$data/$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: the test data is missing from $data (${missing[*]}): clone the project beside" \
       "the shared folder (../shared/data) or set MSCR_SHARED_DATA to a folder holding these files" >&2
  exit 1
fi
