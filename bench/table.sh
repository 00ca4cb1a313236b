#!/usr/bin/env bash
# Prints, in one run, the comparison table of issue 17: coffer beside
# restic (and kopia, when it is on PATH) and the ceilings (pg_dump to
# /dev/null, pg_restore from a local file, pg_dump | zstd | age), each
# time the median of RUNS interleaved runs, with ratios.
#
#   bench/table.sh                 (PGURL, SCALE, RUNS, BIG, MANY: see below)
#
# PGURL   a PostgreSQL server where the user may create databases
#         (default postgres://postgres@127.0.0.1:5432)
# SCALE   pgbench scale of the database (default 50: a 513 MB dump)
# RUNS    runs per measurement, interleaved across tools (default 3)
# BIG     size of the generated stream whose backup's peak RSS is shown
#         (default 4G; the issue's figure is for 16.7 GB); 0 skips the
#         last two rows
# MANY    data backed up at 16 KiB chunks to make the large repository
#         for the last row (default 1G, about 65 k chunks)
# BEFORE  another coffer binary (e.g. built from main) measured beside
#         this tree's in the same interleaved runs, in its own column
#
# Needs: go, psql, pg_dump, pg_restore, pgbench, zstd, age, GNU time, bc;
# restic and kopia are optional. Runs in about 10 minutes at the defaults
# on 2 cores. Writes only under a temporary directory and databases named
# coffer_bench_*, which it drops.
set -euo pipefail
cd "$(dirname "$0")/.."
pgurl=${PGURL:-postgres://postgres@127.0.0.1:5432}
scale=${SCALE:-50}
runs=${RUNS:-3}
big=${BIG:-4G}
many=${MANY:-1G}
before=${BEFORE:-}
db=coffer_bench_t
work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-table.XXXXXX")
res=$work/res
mkdir -p "$res"
. bench/lib.sh
for c in psql pg_dump pg_restore pgbench zstd age age-keygen; do
  command -v $c >/dev/null || { echo "needs $c" >&2; exit 1; }
done
dropdbs() {
  for d in "$db" "${db}_r"; do psql -qX "$pgurl/postgres" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
}
cleanup() { dropdbs; rm -rf "$work"; }
trap cleanup EXIT
have_restic=false have_kopia=false
command -v restic >/dev/null && have_restic=true
command -v kopia >/dev/null && have_kopia=true

go build -o "$work/coffer" ./cmd/coffer
go build -o "$work/gendump" ./bench/gendump
coffer=$work/coffer
age-keygen -o "$work/age.key" 2>/dev/null
recipient=$(age-keygen -y "$work/age.key")
echo "bench-only-password" >"$work/pass"
export RESTIC_PASSWORD_FILE=$work/pass KOPIA_PASSWORD=bench-only-password

# Fresh, empty repositories (not timed): coffer_repo V (V: c for this
# tree's coffer, b for BEFORE's), restic_repo, kopia_repo.
declare -A bin=([c]=$coffer)
variants=c
if [ -n "$before" ]; then
  bin[b]=$(realpath "$before")
  variants="c b"
fi
use() { # use V: point COFFER_* at variant V's repository and keys
  export COFFER_REPO=$work/$1-repo COFFER_WRITER_KEY_FILE=$work/$1-writer.key COFFER_IDENTITY_FILE=$work/$1-id.txt
  C=${bin[$1]}
}
coffer_repo() {
  local v=$1; shift
  use "$v"
  rm -rf "$COFFER_REPO" "$COFFER_WRITER_KEY_FILE" "$COFFER_IDENTITY_FILE" "$COFFER_IDENTITY_FILE.trust"
  "$C" init "$@" >/dev/null
}
restic_repo() { rm -rf "$work/restic-repo"; restic -r "$work/restic-repo" init -q >/dev/null; }
kopia_repo() {
  rm -rf "$work/kopia-repo" "$work/kopia.config" "$work/kopia-cache"
  kopia repository create filesystem --path "$work/kopia-repo" --config-file "$work/kopia.config" \
    --cache-directory "$work/kopia-cache" >/dev/null 2>&1
}
K="kopia --config-file $work/kopia.config"

echo "creating pgbench scale $scale…" >&2
dropdbs
psql -qX "$pgurl/postgres" -c "CREATE DATABASE $db" >/dev/null
pgbench -q -i -s "$scale" "$pgurl/$db" >/dev/null 2>&1
pg_dump -Fc -Z0 "$pgurl/$db" >"$work/night1.pgdump"
dump=$(stat -c %s "$work/night1.pgdump")
# A realistic day: pgbench's transactions (updates of accounts, tellers
# and branches, inserts into history), then the second night's dump.
# (synchronous_commit off: the day's commits need not wait for the disk)
PGOPTIONS="-c synchronous_commit=off" pgbench -n -c 2 -t "$((400 * scale))" "$pgurl/$db" >/dev/null 2>&1
pg_dump -Fc -Z0 "$pgurl/$db" >"$work/night2.pgdump"

echo "measuring ($runs interleaved runs of each)…" >&2
for i in $(seq "$runs"); do
  # backup of the dump file, then the second night (stored bytes, once)
  for v in $variants; do
    coffer_repo "$v"
    timed "${v}_backup" "'$C' backup --source bench --stdin < '$work/night1.pgdump' >/dev/null"
    if [ "$i" = "$runs" ]; then
      s1=$(du -sb "$COFFER_REPO" | cut -f1)
      "$C" backup --source bench --stdin <"$work/night2.pgdump" >/dev/null
      echo $(($(du -sb "$COFFER_REPO" | cut -f1) - s1)) >"$res/${v}_night2"
    fi
    timed "${v}_restore" "'$C' restore latest > '$work/out'"
    cmp -s "$work/out" "$work/night$([ "$i" = "$runs" ] && echo 2 || echo 1).pgdump" || { echo "coffer ($v) restored other bytes" >&2; exit 1; }
  done
  if $have_restic; then
    restic_repo
    timed r_backup "restic -r '$work/restic-repo' backup -q --stdin --stdin-filename dump < '$work/night1.pgdump' >/dev/null"
    if [ "$i" = "$runs" ]; then
      s1=$(du -sb "$work/restic-repo" | cut -f1)
      restic -r "$work/restic-repo" backup -q --stdin --stdin-filename dump <"$work/night2.pgdump" >/dev/null
      echo $(($(du -sb "$work/restic-repo" | cut -f1) - s1)) >"$res/r_night2"
    fi
    timed r_restore "restic -r '$work/restic-repo' dump -q latest dump > '$work/out'"
  fi
  if $have_kopia && kopia_repo; then
    timed k_backup "$K snapshot create --stdin-file=dump - < '$work/night1.pgdump' >/dev/null"
    if [ "$i" = "$runs" ]; then
      s1=$(du -sb "$work/kopia-repo" | cut -f1)
      $K snapshot create --stdin-file=dump - <"$work/night2.pgdump" >/dev/null 2>&1
      echo $(($(du -sb "$work/kopia-repo" | cut -f1) - s1)) >"$res/k_night2"
    fi
    root=$($K snapshot list --json 2>/dev/null | sed -n 's/.*"rootEntry".*"obj": *"\([^"]*\)".*/\1/p' | tail -1)
    timed k_restore "$K show '$root/dump' > '$work/out'"
  fi

  # live backups of the database, and the ceilings
  timed pgdump "pg_dump -Fc -Z0 '$pgurl/$db' > /dev/null"
  timed zage "pg_dump -Fc -Z0 '$pgurl/$db' | zstd -q -1 | age -r '$recipient' > /dev/null"
  for v in $variants; do
    coffer_repo "$v"
    timed "${v}_live" "'$C' backup --source pg --postgres '$pgurl/$db' >/dev/null"
  done
  if $have_restic; then
    restic_repo
    timed r_live "pg_dump -Fc -Z0 '$pgurl/$db' | restic -r '$work/restic-repo' backup -q --stdin --stdin-filename db.dump >/dev/null"
  fi
  if $have_kopia && kopia_repo; then
    timed k_live "pg_dump -Fc -Z0 '$pgurl/$db' | $K snapshot create --stdin-file=db.dump - >/dev/null"
  fi

  # restores into the database: verified (coffer), from restic's dump
  # (unverified), and pg_restore from a local file, all in one transaction
  for v in $variants; do
    use "$v"
    psql -qX "$pgurl/postgres" -c "DROP DATABASE IF EXISTS ${db}_r WITH (FORCE)" >/dev/null
    timed "${v}_restoredb" "'$C' restore latest --to '$pgurl/${db}_r' >/dev/null"
  done
  if $have_restic; then
    psql -qX "$pgurl/postgres" -c "DROP DATABASE IF EXISTS ${db}_r WITH (FORCE)" -c "CREATE DATABASE ${db}_r" >/dev/null
    timed r_restoredb "restic -r '$work/restic-repo' dump -q latest db.dump | pg_restore --single-transaction -d '$pgurl/${db}_r'"
  fi
  psql -qX "$pgurl/postgres" -c "DROP DATABASE IF EXISTS ${db}_r WITH (FORCE)" -c "CREATE DATABASE ${db}_r" >/dev/null
  timed pgrestore "pg_restore --single-transaction -d '$pgurl/${db}_r' '$work/night1.pgdump'"
done
rm -f "$work/out"

if [ "$big" != 0 ]; then
echo "peak memory of a $big stream, and a backup into a repository of many chunks…" >&2
coffer_repo c
timed c_big "'$work/gendump' -size $big -seed 7 | '$C' backup --source big --stdin >/dev/null"
"$work/gendump" -size 10M -seed 11 >"$work/small"
coffer_repo c --chunk-avg 16K
timed c_small_empty "'$C' backup --source small --stdin < '$work/small' >/dev/null"
coffer_repo c --chunk-avg 16K
"$work/gendump" -size "$many" -seed 3 | "$C" backup --source many --stdin >/dev/null
chunks=$("$C" stats --json | sed -n 's/.*"chunks": *\([0-9]*\).*/\1/p' | head -1)
timed c_small_many "'$C' backup --source small --stdin < '$work/small' >/dev/null"
fi

# The table.
nd() { [ -s "$res/$1" ] && printf '%.1f MB' "$(echo "$(cat "$res/$1") / 1000000" | bc -l)" || printf '—'; }
rr() { $have_restic && ratio "$1" "$2" || printf '—'; }
echo
echo "Machine: $(machine)"
echo "Tools: $("$coffer" --version)$([ -n "$before" ] && echo " (before: ${bin[b]})"), restic $($have_restic && restic version | cut -d' ' -f2 || echo absent), kopia $($have_kopia && kopia --version | head -1 | cut -d' ' -f1 || echo absent), $(pg_dump --version)"
echo "Data: pgbench scale $scale, pg_dump -Fc -Z0 $(mb "$dump"); median of $runs interleaved runs"
echo
b() { [ -n "$before" ] && printf ' (before: %s)' "$("$@")"; return 0; }
echo "| work | coffer | restic | kopia | ceiling | coffer ÷ restic | coffer ÷ ceiling |"
echo "|---|---|---|---|---|---|---|"
echo "| backup of the dump file | $(secs c_backup)$(b secs b_backup) | $(secs r_backup) | $(secs k_backup) | — | $(rr c_backup r_backup) | — |"
echo "| stored on the second night ($((800 * scale)) pgbench transactions) | $(nd c_night2)$(b nd b_night2) | $(nd r_night2) | $(nd k_night2) | — | — | — |"
echo "| restore of the snapshot to a file | $(secs c_restore)$(b secs b_restore) | $(secs r_restore) | $(secs k_restore) | — | $(rr c_restore r_restore) (restic ÷ coffer: $(ratio r_restore c_restore)$(b ratio r_restore b_restore)) | — |"
echo "| live \`backup --postgres\` end to end | $(secs c_live)$(b secs b_live) | $(secs r_live) (pg_dump \\| restic) | $(secs k_live) | pg_dump > /dev/null $(secs pgdump); pg_dump \\| zstd \\| age $(secs zage) | $(rr c_live r_live) | $(ratio c_live pgdump)$(b ratio b_live pgdump) of pg_dump, $(ratio c_live zage) of zstd \\| age |"
echo "| restore into a database, verified | $(secs c_restoredb)$(b secs b_restoredb) | $(secs r_restoredb) (restic dump \\| pg_restore, unverified) | — | pg_restore from a local file $(secs pgrestore) | $(rr c_restoredb r_restoredb) | $(ratio c_restoredb pgrestore)$(b ratio b_restoredb pgrestore) |"
if [ "$big" != 0 ]; then
  echo "| peak RSS, backup of a $big stream | $(median_rss c_big) MiB | — | — | — | — | — |"
  echo "| 10 MB backup into a repository of ${chunks:-?} chunks (16 KiB) | $(secs c_small_many), $(median_rss c_small_many) MiB (empty repository: $(secs c_small_empty), $(median_rss c_small_empty) MiB) | — | — | — | — | — |"
fi
echo
echo "All runs (seconds), and the median CPU time (user + system) of the commands run"
echo "(not the server's), the steadier figure when other work shares the machine:"
for k in c_backup b_backup r_backup k_backup c_restore b_restore r_restore k_restore c_live b_live r_live k_live pgdump zage c_restoredb b_restoredb r_restoredb pgrestore; do
  [ -s "$res/$k" ] && printf '  %-12s %-24s CPU %s s\n' "$k" "$(all_s "$k")" "$(median_cpu "$k")"
done
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
