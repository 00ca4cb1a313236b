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
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
work=$(mktemp -d /tmp/coffer-walbench.XXXXXX)
as=()
if [ "$(id -u)" = 0 ]; then as=(setpriv --reuid=postgres --regid=postgres --init-groups --); fi
cleanup() { "${as[@]}" "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/coffer" ./cmd/coffer
id=$work/operator.txt
age-keygen -o "$id" 2>/dev/null
repo=${COFFER_REPO:-$work/repo}
COFFER_REPO=$repo COFFER_WRITER_KEY_FILE=$work/writer.key COFFER_IDENTITY_FILE=$id \
  "$work/coffer" init --recipient "$(age-keygen -y "$id")" >/dev/null 2>&1
{
  echo "COFFER_REPO=$repo"; echo "COFFER_WRITER_KEY_FILE=$work/writer.key"
  for v in COFFER_S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION; do
    [ -n "${!v:-}" ] && echo "$v=${!v}"
  done
} > "$work/archive.env"
printf '#!/bin/sh\nset -a\n. %s/archive.env\nset +a\nexec %s/coffer wal-push "$1"\n' "$work" "$work" > "$work/wal-push.sh"
chmod 700 "$work/wal-push.sh"; chmod 600 "$work/archive.env" "$work/writer.key"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as[@]}" "$bin/initdb" -D "$work/data" -U postgres --auth=trust --no-sync >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$work'
wal_level = replica
archive_mode = on
archive_command = '$work/wal-push.sh %p'
max_wal_size = 256MB
CONF
"${as[@]}" "$bin/pg_ctl" -D "$work/data" -l "$work/pg.log" -w start >/dev/null
psql() { "${as[@]}" /usr/bin/psql -X -q -tA -h "$work" -p "$port" -U postgres "$@"; }
"${as[@]}" "$bin/pgbench" -q -i -s 20 -h "$work" -p "$port" -U postgres postgres >/dev/null 2>&1
start_lsn=$(psql -c "SELECT pg_current_wal_lsn()")
start_count=$(psql -c "SELECT archived_count FROM pg_stat_archiver")
maxwal=0
"${as[@]}" "$bin/pgbench" -c 4 -j 2 -T "$duration" -h "$work" -p "$port" -U postgres postgres > "$work/pgbench.out" 2>&1 &
pb=$!
while kill -0 $pb 2>/dev/null; do
  n=$(du -sm "$work/data/pg_wal" | cut -f1); [ "$n" -gt "$maxwal" ] && maxwal=$n
  sleep 2
done
tps=$(grep -m1 'tps = ' "$work/pgbench.out" | sed 's/.*tps = \([0-9.]*\).*/\1/')
last=$(psql -c "SELECT pg_walfile_name(pg_current_wal_lsn())"); psql -c "SELECT pg_switch_wal()" >/dev/null
t0=$(date +%s.%N)
until [ "$(psql -c "SELECT coalesce(last_archived_wal,'') >= '$last'")" = t ]; do sleep 0.2; done
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
