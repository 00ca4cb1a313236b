# Sourced by the bench scripts: a PostgreSQL cluster of their own in $work
# (initdb on a free port, run as the postgres user when root), archiving its
# WAL with `coffer wal-push` into $repo. Needs $work, $repo and $work/coffer.
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as=()
if [ "$(id -u)" = 0 ]; then as=(setpriv --reuid=postgres --regid=postgres --init-groups --); fi

# cluster_init: an operator identity and writer key in $work, the repository
# (init ARGS), the archive script, and a started cluster on $port.
cluster_init() {
  age-keygen -o "$work/operator.txt" 2>/dev/null
  COFFER_REPO=$repo COFFER_WRITER_KEY_FILE=$work/writer.key COFFER_IDENTITY_FILE=$work/operator.txt \
    "$work/coffer" init --recipient "$(age-keygen -y "$work/operator.txt")" "$@" >/dev/null 2>&1
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
}

cluster_stop() { "${as[@]}" "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; }

psql() { "${as[@]}" /usr/bin/psql -X -q -tA -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres "$@"; }
pgbench() { "${as[@]}" "$bin/pgbench" -h "$work" -p "$port" -U postgres "$@"; }
pgurl() { echo "postgres://postgres@/postgres?host=$work&port=$port"; }
