#!/usr/bin/env bash
# Open time and peak RSS of a 10 MB backup into repositories of 0.3 M, 1 M,
# 3 M and 10 M indexed chunks. The chunks are SYNTHETIC: bench/genindex
# writes real, authenticated index objects listing random chunk ids in
# packs that do not exist (1000 chunks a pack, 64 packs an index object,
# as backups of 16 KiB chunks write them). That is what opening the index
# costs; the packs themselves play no part in a backup that stores only
# new chunks. REAL=1 adds one real point: a 5 GB generated stream backed up
# with --chunk-avg 16K, then the same 10 MB backup into it.
#
#   bench/index-curve.sh                 (COUNTS="300000 1000000 3000000 10000000")
#   COFFER=/path/to/coffer bench/index-curve.sh    (measure another build)
#   WORK=/var/tmp/curve KEEP=1 …         (keep the repositories for the next run)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
counts=${COUNTS:-300000 1000000 3000000 10000000}
work=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/coffer-curve.XXXXXX")}
mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
coffer=${COFFER:-}
if [ -z "$coffer" ]; then
  go build -o "$work/coffer" ./cmd/coffer
  coffer=$work/coffer
fi
go build -o "$work/genindex" ./bench/genindex
# measure: one backup of 10 MB of new random bytes (so it stores them,
# writes an index object, and the next one reads it); prints "wall cpu MiB"
# (cpu = user + system seconds, which a busy machine inflates less)
measure() {
  head -c 10000000 /dev/urandom > "$work/10mb"
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$coffer" backup --source curve --stdin < "$work/10mb" > /dev/null
  read -r secs user sys rss < "$work/time"
  printf '%s %s %d' "$secs" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
}

printf '%-20s %-32s %-32s\n' chunks "first backup: wall s (cpu s), MiB" "next backup: wall s (cpu s), MiB"
point() { # NAME: the repository $work/NAME exists
  export COFFER_REPO=$work/$1 COFFER_WRITER_KEY_FILE=$work/$1.key COFFER_IDENTITY_FILE=$work/$1.id
  export COFFER_CACHE_DIR=$work/$1.cache
  rm -rf "$COFFER_CACHE_DIR"
  read -r s1 c1 m1 <<< "$(measure)"
  read -r s2 c2 m2 <<< "$(measure)"
  printf '%-20s %-32s %-32s\n' "$2" "$s1 s ($c1 s), $m1 MiB" "$s2 s ($c2 s), $m2 MiB"
}
for n in $counts; do
  name=synthetic-$n
  if [ ! -d "$work/$name" ]; then
    COFFER_REPO=$work/$name COFFER_WRITER_KEY_FILE=$work/$name.key COFFER_IDENTITY_FILE=$work/$name.id \
      "$coffer" init --chunk-avg 16K >/dev/null 2>&1
    "$work/genindex" -repo "$work/$name" -writer-key "$work/$name.key" -chunks "$n" 2>/dev/null
  fi
  point "$name" "$n (synth.)"
done
if [ -n "${REAL:-}" ]; then
  name=real5g
  export COFFER_REPO=$work/$name COFFER_WRITER_KEY_FILE=$work/$name.key COFFER_IDENTITY_FILE=$work/$name.id
  export COFFER_CACHE_DIR=$work/$name.cache
  if [ ! -f "$work/$name.done" ]; then
    rm -rf "$work/$name" "$work/$name.key" "$work/$name.id"
    "$coffer" init --chunk-avg 16K >/dev/null 2>&1
    go run ./bench/gendump -size 5G -seed 1 | "$coffer" backup --source real --stdin > /dev/null
    touch "$work/$name.done"
  fi
  chunks=$("$coffer" stats --json | sed -n 's/.*"chunks": *\([0-9]*\).*/\1/p')
  point "$name" "$chunks (real)"
fi
