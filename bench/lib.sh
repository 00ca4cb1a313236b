# Helpers for the bench scripts (sourced, not run): timing with GNU time,
# medians of repeated runs, ratios, and the machine's description.
#
# Every measurement appends one line "SECONDS PEAK_RSS_KIB USER SYS" to
# $res/KEY; median_s, median_rss and median_cpu read them back. CPU time
# is the steadier figure when other work shares the machine.

command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
command -v bc >/dev/null || { echo "needs bc: apt-get install bc" >&2; exit 1; }

# timed KEY SHELL-COMMAND: runs the command with sh -c, records its wall
# time and peak RSS under KEY. A failing command stops the script.
timed() {
  local key=$1; shift
  if ! /usr/bin/time -f "%e %M %U %S" -o "$res/.time" sh -c "$*" >>"$res/log" 2>&1; then
    echo "failed ($key): $*" >&2
    tail -20 "$res/log" >&2
    exit 1
  fi
  cat "$res/.time" >>"$res/$key"
}

# median_s KEY / median_rss KEY: the median of KEY's times (seconds) or
# peak RSS (MiB); empty when KEY was not measured.
median_col() {
  [ -s "$res/$1" ] || return 0
  awk -v c="$2" '{print $c}' "$res/$1" | sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; print m}'
}
median_s() { median_col "$1" 1; }
median_rss() { local k; k=$(median_col "$1" 2); [ -n "$k" ] && echo $((${k%.*} / 1024)); return 0; }

# median_cpu KEY: the median of KEY's user + system seconds.
median_cpu() {
  [ -s "$res/$1" ] || return 0
  awk '{print $3 + $4}' "$res/$1" | sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; print m}'
}

# all_s KEY: every time of KEY, for the record ("9.6 10.1 9.8").
all_s() { [ -s "$res/$1" ] && awk '{printf "%s%s", sep, $1; sep=" "}' "$res/$1"; return 0; }

# secs KEY: "9.8 s" (median), or "—" when not measured.
secs() { local m; m=$(median_s "$1"); [ -n "$m" ] && printf '%.1f s' "$m" || printf '—'; }

# ratio A B: median(A) / median(B) as "1.23×", or "—".
ratio() {
  local a b
  a=$(median_s "$1"); b=$(median_s "$2")
  if [ -n "$a" ] && [ -n "$b" ] && [ "$(echo "$b > 0" | bc)" = 1 ]; then
    printf '%.2f×' "$(echo "$a / $b" | bc -l)"
  else
    printf '—'
  fi
}

# mb BYTES: "123 MB".
mb() { printf '%d MB' "$(($1 / 1000000))"; }

# machine: one line naming the date, cores, CPU and disk.
machine() {
  local cpu disk
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  disk=$(df -h "$work" | awk 'NR==2 {print $1 " (" $2 ")"}')
  printf '%s UTC, %s cores (nproc), %s, %s disk %s\n' "$(date -u '+%Y-%m-%d %H:%M')" "$(nproc)" "$cpu" \
    "$(cat /sys/block/"$(basename "$(df "$work" | awk 'NR==2 {print $1}')" | sed 's/[0-9]*$//')"/queue/rotational 2>/dev/null | sed 's/0/non-rotational/;s/1/rotational/')" "$disk"
}
