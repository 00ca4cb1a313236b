#!/usr/bin/env bash
# Backs up and restores a pgbench database (scale 50 by default, about
# 750 MB) with coffer, and with pg_dump | restic when restic is on PATH;
# prints time, MB/s, bytes stored and peak RSS for each.
#
#   bench/pgbench.sh [SCALE]        (PGURL defaults to postgres://postgres@127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-50}
pgurl=${PGURL:-postgres://postgres@127.0.0.1:5432}
db=coffer_bench_pgbench
work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-pgbench.XXXXXX")
cleanup() {
  for d in "$db" "${db}_coffer" "${db}_restic"; do psql -q "$pgurl/postgres" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/coffer" ./cmd/coffer

echo "creating pgbench scale $scale…" >&2
psql -q "$pgurl/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
pgbench -q -i -s "$scale" "$pgurl/$db" >/dev/null 2>&1
size=$(psql -tA "$pgurl/$db" -c "SELECT pg_database_size('$db')")
printf 'database: %d MB on disk\n\n' "$((size / 1000000))"

# measure TOOL LABEL BYTES CMD: time and peak RSS of a shell command
measure() {
  local tool=$1 label=$2 bytes=$3; shift 3
  /usr/bin/time -f "%e %M" -o "$work/time" sh -c "$*"
  read -r secs rss < "$work/time"
  printf '%-8s %-22s %7.1f s %8.1f MB/s %6d MiB peak RSS\n' "$tool" "$label" "$secs" "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$((rss / 1024))"
}

export COFFER_REPO=$work/coffer-repo COFFER_WRITER_KEY_FILE=$work/writer.key COFFER_IDENTITY_FILE=$work/id.txt
"$work/coffer" init >/dev/null
# The dump's size is known once coffer has read it; time first, rate after.
/usr/bin/time -f "%e %M" -o "$work/time" "$work/coffer" backup --source pgbench --postgres "$pgurl/$db" --json > "$work/b.json"
dump=$(sed -n 's/.*"size_bytes": \([0-9]*\).*/\1/p' "$work/b.json")
read -r secs rss < "$work/time"
printf 'dump (pg_dump -Fc -Z0 + globals): %d MB\n' "$((dump / 1000000))"
printf '%-8s %-22s %7.1f s %8.1f MB/s %6d MiB peak RSS\n' coffer "backup --postgres" "$secs" "$(echo "$dump / 1000000 / $secs" | bc -l)" "$((rss / 1024))"
printf '%-8s %-22s %7d MB stored\n' coffer "repository" "$(( $(du -sb "$COFFER_REPO" | cut -f1) / 1000000 ))"
measure coffer "restore --to (-j 2)" "$dump" "'$work/coffer' restore latest --to '$pgurl/${db}_coffer' --jobs 2 >/dev/null"
measure coffer "restore --to (-j 1)" "$dump" "'$work/coffer' restore latest --to '$pgurl/${db}_coffer' --jobs 1 --clean >/dev/null"
before=$(du -sb "$COFFER_REPO" | cut -f1)
measure coffer "backup, 2nd night" "$dump" "'$work/coffer' backup --source pgbench --postgres '$pgurl/$db' >/dev/null"
printf '%-8s %-22s %7d MB stored (unchanged database)\n' coffer "2nd night" "$(( ($(du -sb "$COFFER_REPO" | cut -f1) - before) / 1000000 ))"

if command -v restic >/dev/null; then
  export RESTIC_REPOSITORY=$work/restic-repo RESTIC_PASSWORD_FILE=$work/restic-pass
  echo "bench-only-password" > "$RESTIC_PASSWORD_FILE"
  restic init -q >/dev/null
  measure restic "pg_dump | backup" "$dump" "pg_dump -Fc -Z0 '$pgurl/$db' | restic backup -q --stdin --stdin-filename db.dump >/dev/null"
  printf '%-8s %-22s %7d MB stored\n' restic "repository" "$(( $(du -sb "$RESTIC_REPOSITORY" | cut -f1) / 1000000 ))"
  psql -q "$pgurl/postgres" -c "CREATE DATABASE ${db}_restic" >/dev/null
  measure restic "dump | pg_restore" "$dump" "restic dump -q latest db.dump | pg_restore -d '$pgurl/${db}_restic'"
else
  echo "(restic is not on PATH: apt-get install restic to compare)"
fi
