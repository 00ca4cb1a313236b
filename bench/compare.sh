#!/usr/bin/env bash
# Backs up and restores the same file with coffer and, when restic is on
# PATH, with restic; then a second night after 1 % of the bytes changed.
# Prints MB/s, bytes stored and peak RSS for each.
#
#   bench/compare.sh [FILE]      (default: SIZE=2G of synthetic customer rows)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/coffer" ./cmd/coffer

file=${1:-}
size=${SIZE:-2G}
if [ -z "$file" ]; then
  echo "generating $size of synthetic customer rows…" >&2
  go run ./bench/gendump -size "$size" -seed 1 > "$work/night1"
  file=$work/night1
fi
bytes=$(stat -c %s "$file")
echo "editing 1 % of it for the second night…" >&2
go run ./bench/gendump -size "$bytes" -seed 1 -edit 0.01 > "$work/night2"
[ -n "${1:-}" ] && { echo "(the second night is synthetic rows of the same size, not an edit of $1)" >&2; }

# measure LABEL CMD…: runs CMD, records seconds and peak RSS (KiB)
measure() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@"
  read -r secs rss < "$work/time"
  printf '%-8s %-16s %8.1f MB/s %8d MiB peak RSS\n' "$tool" "$label" \
    "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$((rss / 1024))"
}
stored() { printf '%-8s %-16s %8d MiB stored (%s)\n' "$tool" "$1" "$(( $(du -sb "$2" | cut -f1) / 1048576 ))" "$3"; }

printf 'input: %d MB\n\n' "$((bytes / 1000000))"

tool=coffer
export COFFER_REPO=$work/coffer-repo COFFER_WRITER_KEY_FILE=$work/writer.key COFFER_IDENTITY_FILE=$work/id.txt
"$work/coffer" init >/dev/null
measure "backup" sh -c "'$work/coffer' backup --source bench --stdin < '$file' > /dev/null"
s1=$(du -sb "$COFFER_REPO" | cut -f1)
stored "night 1" "$COFFER_REPO" "after the first backup"
measure "restore" sh -c "'$work/coffer' restore latest > '$work/out'"
cmp -s "$file" "$work/out" || { echo "coffer restore differs!" >&2; exit 1; }
rm -f "$work/out"
measure "backup night 2" sh -c "'$work/coffer' backup --source bench --stdin < '$work/night2' > /dev/null"
printf '%-8s %-16s %8d MiB uploaded on the second night\n' coffer "night 2" "$(( ($(du -sb "$COFFER_REPO" | cut -f1) - s1) / 1048576 ))"

if command -v restic >/dev/null; then
  tool=restic
  export RESTIC_REPOSITORY=$work/restic-repo RESTIC_PASSWORD_FILE=$work/restic-pass
  echo "bench-only-password" > "$RESTIC_PASSWORD_FILE"
  restic init -q >/dev/null
  measure "backup" sh -c "restic backup -q --stdin --stdin-filename dump < '$file' > /dev/null"
  s1=$(du -sb "$RESTIC_REPOSITORY" | cut -f1)
  stored "night 1" "$RESTIC_REPOSITORY" "restic $(restic version | cut -d' ' -f2)"
  measure "restore" sh -c "restic dump -q latest dump > '$work/out'"
  cmp -s "$file" "$work/out" || { echo "restic restore differs!" >&2; exit 1; }
  rm -f "$work/out"
  measure "backup night 2" sh -c "restic backup -q --stdin --stdin-filename dump < '$work/night2' > /dev/null"
  printf '%-8s %-16s %8d MiB uploaded on the second night\n' restic "night 2" "$(( ($(du -sb "$RESTIC_REPOSITORY" | cut -f1) - s1) / 1048576 ))"
else
  echo "(restic is not on PATH: apt-get install restic to compare)"
fi
