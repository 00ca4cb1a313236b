#!/usr/bin/env bash
# How a physical base backup is read from the server, on a cluster whose
# pgbench data (SCALE) is split over pg_default and two user tablespaces:
#   A  coffer backup --physical: BASE_BACKUP on a replication connection,
#      the archives streamed straight into the repository;
#   B  the alternative that pg_basebackup allows with tablespaces:
#      pg_basebackup -D DIR -Ft into a directory, then the tars backed up.
# Prints wall time, coffer's peak RSS, and the disk B needs on the backup
# host (A needs none).
#
#   bench/physical-source.sh [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-30}
work=$(mktemp -d /tmp/coffer-physsrc.XXXXXX)
. bench/lib-cluster.sh
cleanup() { cluster_stop; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/coffer" ./cmd/coffer
go build -o "$work/physread" ./bench/physread
repo=$work/repoA
cluster_init
COFFER_REPO=$work/repoB COFFER_WRITER_KEY_FILE=$work/writerB.key COFFER_IDENTITY_FILE=$work/operator.txt \
  "$work/coffer" init --recipient "$(age-keygen -y "$work/operator.txt")" >/dev/null 2>&1
mkdir -m 0700 "$work/ts1" "$work/ts2" "$work/tars"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work"
psql -c "CREATE TABLESPACE ts1 LOCATION '$work/ts1'" -c "CREATE TABLESPACE ts2 LOCATION '$work/ts2'"
echo "loading pgbench scale $scale…" >&2
pgbench -q -i -s "$scale" postgres >/dev/null 2>&1
psql -c "ALTER TABLE pgbench_accounts SET TABLESPACE ts1" -c "ALTER INDEX pgbench_accounts_pkey SET TABLESPACE ts2" -c "CHECKPOINT" >/dev/null
size=$(psql -c "SELECT (sum(pg_tablespace_size(oid)) / 1048576)::int FROM pg_tablespace")
# Both ways wait at their end until the WAL they end in is archived: let the
# archiver catch up with the load's WAL first, so neither waits for it.
caught_up() {
  last=$(psql -c "SELECT pg_walfile_name(pg_current_wal_lsn())"); psql -c "SELECT pg_switch_wal()" >/dev/null
  until [ "$(psql -c "SELECT coalesce(last_archived_wal, '') >= '$last' FROM pg_stat_archiver")" = t ]; do sleep 0.5; done
}
caught_up
rss() { awk '/Maximum resident/ {printf "%.0f MiB", $6 / 1024}' "$1"; }
# The reader alone, and pg_basebackup alone, each into nothing.
r=$(COFFER_CPUPROFILE=${PHYSREAD_PROFILE:-} "$work/physread" "$(pgurl)")
caught_up
s=$(date +%s.%N)
"${as[@]}" "$bin/pg_basebackup" -h "$work" -p "$port" -U postgres -D "$work/tars/r" -Ft -X none --checkpoint=fast --no-sync
r2=$(echo "$(date +%s.%N) - $s" | bc -l)
rm -rf "$work/tars/r"
caught_up
s=$(date +%s.%N)
COFFER_CPUPROFILE=${COFFER_CPUPROFILE:-} COFFER_REPO=$work/repoA COFFER_WRITER_KEY_FILE=$work/writer.key /usr/bin/time -v -o "$work/a.time" \
  "$work/coffer" backup --source pg --physical --postgres "$(pgurl)" >/dev/null
a=$(echo "$(date +%s.%N) - $s" | bc -l)
caught_up
s=$(date +%s.%N)
"${as[@]}" "$bin/pg_basebackup" -h "$work" -p "$port" -U postgres -D "$work/tars/b" -Ft -X none --checkpoint=fast --no-sync
b1=$(echo "$(date +%s.%N) - $s" | bc -l)
disk=$(du -sm "$work/tars/b" | cut -f1)
s=$(date +%s.%N)
cat "$work"/tars/b/*.tar "$work/tars/b/backup_manifest" | COFFER_REPO=$work/repoB COFFER_WRITER_KEY_FILE=$work/writerB.key \
  /usr/bin/time -v -o "$work/b.time" "$work/coffer" backup --source pg --stdin >/dev/null
b2=$(echo "$(date +%s.%N) - $s" | bc -l)
printf 'cluster %d MiB in pg_default and two tablespaces\n' "$size"
printf 'reading only: coffer BASE_BACKUP reader %s; pg_basebackup -D DIR -Ft %.1f s\n' "$r" "$r2"
printf 'A  coffer backup --physical (BASE_BACKUP streamed)   %6.1f s, peak RSS %s, no disk\n' "$a" "$(rss "$work/a.time")"
printf 'B  pg_basebackup -D DIR -Ft, then coffer backup       %6.1f s (%.1f + %.1f), peak RSS %s, %d MiB on disk\n' \
  "$(echo "$b1 + $b2" | bc -l)" "$b1" "$b2" "$(rss "$work/b.time")" "$disk"
