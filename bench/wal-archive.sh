#!/usr/bin/env bash
# Measures WAL archiving with `coffer wal-push` under a pgbench load: a
# cluster of its own (initdb on a free port, run as the postgres user when
# root) archives into a local repository (or the repository COFFER_REPO and
# the S3 variables name), while `pgbench -c 4 -T DURATION` runs. Prints the
# segments archived per second, the WAL the server generated, whether pg_wal
# stayed bounded (the archiver kept up), and the CPU time of one wal-push.
#
#   bench/wal-archive.sh [DURATION_SECONDS]     (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
work=$(mktemp -d /tmp/coffer-walbench.XXXXXX)
. bench/lib-cluster.sh
cleanup() { cluster_stop; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/coffer" ./cmd/coffer
repo=${COFFER_REPO:-$work/repo}
cluster_init
pgbench -q -i -s 20 postgres >/dev/null 2>&1
start_lsn=$(psql -c "SELECT pg_current_wal_lsn()")
start_count=$(psql -c "SELECT archived_count FROM pg_stat_archiver")
maxwal=0
pgbench -c 4 -j 2 -T "$duration" postgres > "$work/pgbench.out" 2>&1 &
pb=$!
while kill -0 $pb 2>/dev/null; do
  n=$(du -sm "$work/data/pg_wal" | cut -f1); [ "$n" -gt "$maxwal" ] && maxwal=$n
  sleep 2
done
tps=$(grep -m1 'tps = ' "$work/pgbench.out" | sed 's/.*tps = \([0-9.]*\).*/\1/')
last=$(psql -c "SELECT pg_walfile_name(pg_current_wal_lsn())"); psql -c "SELECT pg_switch_wal()" >/dev/null
t0=$(date +%s.%N)
for i in $(seq 600); do [ "$(psql -c "SELECT coalesce(last_archived_wal,'') >= '$last' FROM pg_stat_archiver")" = t ] && break; sleep 0.2; done
drain=$(echo "$(date +%s.%N) - $t0" | bc)
end_lsn=$(psql -c "SELECT pg_current_wal_lsn()")
wal_mb=$(psql -c "SELECT round(pg_wal_lsn_diff('$end_lsn', '$start_lsn') / 1048576)")
count=$(( $(psql -c "SELECT archived_count FROM pg_stat_archiver") - start_count ))
failed=$(psql -c "SELECT failed_count FROM pg_stat_archiver")
seg=$(ls "$work/data/pg_wal" | grep -E '^[0-9A-F]{24}$' | tail -1)
cp "$work/data/pg_wal/$seg" "$work/0000000100000000000000FE"; chmod 644 "$work/0000000100000000000000FE"
/usr/bin/time -f "%e %U %S" -o "$work/time" "${as[@]}" env -i sh -c "set -a; . $work/archive.env; cd $work && ./coffer wal-push 0000000100000000000000FE"
read -r wall user sys < "$work/time"
printf 'repository            %s\n' "$repo"
printf 'pgbench -c 4 -T %s    %s tps, %s MiB of WAL\n' "$duration" "$tps" "$wal_mb"
printf 'archived              %d segments in %ss + %.1fs to drain = %.2f segments/s (%d failures)\n' "$count" "$duration" "$drain" "$(echo "$count / ($duration + $drain)" | bc -l)" "$failed"
printf 'pg_wal peak           %d MiB (max_wal_size 256 MB: bounded when near it)\n' "$maxwal"
printf 'one wal-push          %ss wall, %ss user + %ss system CPU (16 MiB segment)\n' "$wall" "$user" "$sys"
