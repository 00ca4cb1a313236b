#!/usr/bin/env bash
# Second-night cost of physical base backups. A cluster of its own holds a
# pgbench database plus a customers table (SCALE 30 + 1 M customers: about
# 550 MB); night 0 is a base backup into repositories with 16 KiB and 64 KiB
# average chunks, night 1 follows the first VACUUM; then
#   day A, "realistic": orders appended, updates on the newest 1 % of
#          customers, 0.01 % of older customers updated, VACUUM (ANALYZE);
#   day B: 0.1 % of customers updated uniformly at random, VACUUM;
# and a base backup after each. Prints what each night stored, as a share of
# night 1, per chunk size.
#
#   bench/pitr-dedup.sh [SCALE] [CUSTOMERS]
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-30}
customers=${2:-1000000}
work=$(mktemp -d /tmp/coffer-pitrdedup.XXXXXX)
. bench/lib-cluster.sh
cleanup() { cluster_stop; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/coffer" ./cmd/coffer
repo=$work/repo64
cluster_init --chunk-avg 64K
COFFER_REPO=$work/repo16 COFFER_WRITER_KEY_FILE=$work/writer16.key COFFER_IDENTITY_FILE=$work/operator.txt \
  "$work/coffer" init --recipient "$(age-keygen -y "$work/operator.txt")" --chunk-avg 16K >/dev/null 2>&1
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$work"
echo "loading pgbench scale $scale and $customers customers…" >&2
pgbench -q -i -s "$scale" postgres >/dev/null 2>&1
psql -c "CREATE TABLE customers (id bigserial PRIMARY KEY, email text, name text, city text, updated timestamptz DEFAULT now())" \
     -c "INSERT INTO customers (email, name, city) SELECT 'c' || g || '@example.com', 'Customer ' || g, 'City ' || (g % 500) FROM generate_series(1, $customers) g" \
     -c "CREATE TABLE orders (id bigserial PRIMARY KEY, customer bigint, amount numeric, at timestamptz DEFAULT now())" \
     -c "CHECKPOINT" >/dev/null
size=$(psql -c "SELECT pg_database_size('postgres') / 1048576")
night() { # night LABEL: a base backup into both repositories; prints stored bytes
  for avg in 64 16; do
    COFFER_REPO=$work/repo$avg COFFER_WRITER_KEY_FILE=$work/writer$([ $avg = 16 ] && echo 16).key \
      "$work/coffer" backup --json --source pg --physical --postgres "$(pgurl)" | jq -r '.stored_bytes' > "$work/$1.$avg"
  done
}
night n0
# The first VACUUM after a bulk load sets hint bits and the visibility map on
# every page: a one-time cost a database in service has paid long ago.
psql -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null
night n1
psql -c "INSERT INTO orders (customer, amount) SELECT (random() * $customers)::bigint, random() * 100 FROM generate_series(1, $((customers / 20)))" \
     -c "UPDATE customers SET city = city || '.', updated = now() WHERE id > $((customers * 99 / 100))" \
     -c "UPDATE customers SET name = name || '.', updated = now() WHERE id IN (SELECT (random() * $((customers * 99 / 100)))::bigint FROM generate_series(1, $((customers / 10000))))" \
     -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null
night n2
psql -c "UPDATE customers SET name = name || '+', updated = now() WHERE id IN (SELECT (random() * $customers)::bigint FROM generate_series(1, $((customers / 1000))))" \
     -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null
night n3
printf 'database %d MiB; base backups into repositories of 64 KiB and 16 KiB average chunks\n' "$size"
printf '%-44s %12s %12s\n' "night" "64 KiB" "16 KiB"
label() { case $1 in n0) echo "0: full, just loaded";; n1) echo "1: after the first VACUUM (hint bits)";;
  n2) echo "2: after a realistic day";; n3) echo "3: after 0.1 % random updates";; esac; }
for n in n0 n1 n2 n3; do
  a=$(cat "$work/$n.64"); b=$(cat "$work/$n.16")
  printf '%-44s %7.1f MiB %3d%% %7.1f MiB %3d%%\n' "$(label $n)" "$(echo "$a / 1048576" | bc -l)" $((100 * a / $(cat "$work/n0.64"))) \
    "$(echo "$b / 1048576" | bc -l)" $((100 * b / $(cat "$work/n0.16")))
done
echo "(percentages of the full night 0)"
