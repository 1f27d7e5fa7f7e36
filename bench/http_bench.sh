#!/usr/bin/env bash
# The HTTP row of SPEC section 9: 10,000 HTTP jobs due at the same instant
# against a loopback nginx (Debian's nginx-light, started here), with
# pg_chime's default settings.  Prints the seconds until every result is
# recorded, the rate, and the raw ceiling of one libcurl multi handle
# against the same server with the same number in flight
# (bench/curl_ceiling.c).  pg_net is not in Debian; it is measured only if
# its library happens to be installed.
#
#   bash bench/http_bench.sh        (make bench runs it last)
#
# BENCH_HTTP_JOBS (10000) changes the number of jobs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
. "$here/common.sh"
jobs=${BENCH_HTTP_JOBS:-10000}
port=5493
web_port=8093

bench_setup httpbench
cleanup() {
	[ -f "$out/data/postmaster.pid" ] && as_user "$bindir/pg_ctl" -D "$out/data" -m immediate stop >/dev/null 2>&1
	stop_nginx
	rm -rf "$out"
}
trap cleanup EXIT

# nginx on loopback: a small fixed answer, keep-alive
start_nginx "$web_port"
url="http://127.0.0.1:$web_port/hook"

# the ceiling: one libcurl multi handle, same server, same number in flight
gcc -O2 -o "$out/curl_ceiling" "$here/curl_ceiling.c" -lcurl
in_flight=1000
# the best of three (a short run is at the mercy of the machine)
ceiling=""
ceiling_rate=0
for _ in 1 2 3; do
	c=$("$out/curl_ceiling" "$url" "$jobs" "$in_flight")
	r=$(echo "$c" | sed -E 's/.*: ([0-9]+) requests\/s.*/\1/')
	if [ "$r" -gt "$ceiling_rate" ]; then ceiling=$c; ceiling_rate=$r; fi
done

# pg_chime with its defaults (fsync off, as every benchmark here)
install_pg_chime
bench_cluster "$out/data" "$port"
q() { as_user env PGOPTIONS='-c client_min_messages=warning' "$bindir/psql" -X -qAt -h "$out" -p "$port" -d postgres -v ON_ERROR_STOP=1 -c "$1"; }
q "CREATE EXTENSION pg_chime" >/dev/null

# all due at one second, about eight seconds from now (six-field cron)
instant=$(q "SELECT extract(epoch FROM date_trunc('second', now()) + interval '8 seconds')::bigint")
second=$(q "SELECT extract(second FROM to_timestamp($instant))::int")
q "SELECT count(cron.schedule_http('hook-' || i, '$second * * * * *', '$url', method => 'GET'))
   FROM generate_series(1, $jobs) i" >/dev/null
deadline=$((SECONDS + 120))
while [ "$(q "SELECT count(*) >= $jobs FROM cron.job_run_details WHERE status NOT IN ('starting', 'running') AND scheduled_time = to_timestamp($instant)")" != t ]; do
	[ $SECONDS -ge $deadline ] && break
	sleep 0.2
done
q "UPDATE cron.job SET active = false" >/dev/null
read -r recorded succeeded secs < <(q "
	SELECT count(*), count(*) FILTER (WHERE status = 'succeeded' AND http_status = 200),
	       round(extract(epoch FROM max(end_time) - to_timestamp($instant))::numeric, 3)
	FROM cron.job_run_details WHERE scheduled_time = to_timestamp($instant)" | tr '|' ' ')
rate=$(awk -v n="$succeeded" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')

pgnet="not installed (not in Debian)"
[ -f "$pkglibdir/pg_net.so" ] && pgnet="installed, but not measured by this script"

echo "== HTTP jobs: $jobs due at the same instant, loopback nginx, default settings"
printf '%-34s | %s\n' "pg_chime" "$succeeded of $recorded succeeded, all recorded $secs s after the instant: $rate requests/s"
printf '%-34s | %s\n' "libcurl ceiling ($in_flight in flight)" "$ceiling (best of 3)"
printf '%-34s | %s\n' "ratio to the ceiling" "$(awk -v a="$rate" -v b="$ceiling_rate" 'BEGIN {printf "%.0f %%", 100 * a / b}')"
printf '%-34s | %s\n' "target" ">= 20,000 requests/s recorded"
printf '%-34s | %s\n' "pg_net" "$pgnet"
