#!/usr/bin/env bash
# The rows of SPEC §9 that are measured against the machine's own limits,
# each beside its ceiling measured in the same run:
#
#   - N SQL jobs (one INSERT each) due at one instant, against pgbench
#     with 8 clients running the same INSERT, one per transaction;
#   - N HTTP jobs due at once against a loopback nginx, against one bare
#     libcurl multi handle (bench/curl_ceiling.c), the best of 64 and of
#     1,000 requests in flight;
#   - the first due run after a restart with 1,000,000 jobs defined;
#   - 24 (database, role) pairs due at once with the default
#     max_worker_processes;
#   - 100 jobs every second from a start_at 3 s after they are made, right
#     after a restart (no executor running): the start lag of the first
#     second's runs beside that of the later seconds.
#
#   bash bench/limits_bench.sh              (make bench runs it)
#   BENCH=quick bash bench/limits_bench.sh  (smaller counts; make bench BENCH=quick)
#
# Start lag is taken inside the job (clock_timestamp() when its INSERT
# runs, minus the instant it was due); a burst's start rate is its job
# count over the lag of its last start.  Environment (full / quick):
# BENCH_TENANTS (100000 / 20000), BENCH_HTTP_BURST (50000 / 10000),
# BENCH_START_JOBS (1000000 both), BENCH_RHYTHM_SECONDS (30 / 10),
# BENCH_PGBENCH_SECONDS (10 / 5).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
. "$here/common.sh"
if [ "${BENCH:-}" = quick ]; then
	tenants=${BENCH_TENANTS:-20000}
	http_jobs=${BENCH_HTTP_BURST:-10000}
	rhythm_seconds=${BENCH_RHYTHM_SECONDS:-10}
	pgbench_seconds=${BENCH_PGBENCH_SECONDS:-5}
else
	tenants=${BENCH_TENANTS:-100000}
	http_jobs=${BENCH_HTTP_BURST:-50000}
	rhythm_seconds=${BENCH_RHYTHM_SECONDS:-30}
	pgbench_seconds=${BENCH_PGBENCH_SECONDS:-10}
fi
start_jobs=${BENCH_START_JOBS:-1000000}
port=5494
web_port=8094

bench_setup limits
data=$out/data
cleanup() {
	[ -f "$data/postmaster.pid" ] && as_user "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1
	stop_nginx
	rm -rf "$out"
}
trap cleanup EXIT

q() { as_user env PGOPTIONS='-c client_min_messages=warning' "$bindir/psql" -X -qAt -h "$out" -p "$port" -d "${2:-postgres}" -v ON_ERROR_STOP=1 -c "$1"; }

# wait_until SQL SECONDS: poll until SQL returns t
wait_until() {
	local deadline=$((SECONDS + $2))
	while [ "$(q "$1")" != t ]; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}

# instant SECONDS: a whole second at least SECONDS from now (epoch), and
# the six-field schedule due at it once a day ("S M H * * *", UTC)
instant() {
	local t
	t=$(q "SELECT extract(epoch FROM date_trunc('second', now()) + interval '$1 seconds')::bigint")
	echo "$t $(q "SELECT to_char(to_timestamp($t) AT TIME ZONE 'UTC', 'FMSS FMMI FMHH24') || ' * * *'")"
}

# ratio A B: A / B as a percentage
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.0f %%", 100 * a / b; else print "-"}'; }

install_pg_chime
bench_cluster "$data" "$port" 'max_worker_processes = 40' 'max_connections = 200'
q "CREATE EXTENSION pg_chime; CREATE TABLE bench_runs (jobid int, t timestamptz DEFAULT clock_timestamp())" >/dev/null
echo "== the machine's limits ($(nproc) cores, fsync off$([ "${BENCH:-}" = quick ] && echo ", quick counts"))"

# ---- N SQL jobs due at one instant, against pgbench -----------------------
echo "-- pgbench: 8 clients, one INSERT per transaction, ${pgbench_seconds}s"
echo "INSERT INTO bench_runs (jobid) VALUES (1);" >"$out/insert.sql"
chmod 644 "$out/insert.sql"
pgbench_tps=$(as_user "$bindir/pgbench" -n -h "$out" -p "$port" -c 8 -j 2 -T "$pgbench_seconds" -f "$out/insert.sql" postgres 2>/dev/null |
	sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
pgbench_tps=${pgbench_tps%.*}
q "TRUNCATE bench_runs; CHECKPOINT" >/dev/null

echo "-- $tenants SQL jobs due at one instant"
read -r t0 sched < <(instant $((10 + tenants / 10000)))
q "INSERT INTO cron.job (jobname, schedule, command)
   SELECT 'tenant-' || i, '$sched', 'INSERT INTO bench_runs (jobid) VALUES (' || i || ')' FROM generate_series(1, $tenants) i" >/dev/null
wait_until "SELECT count(*) >= $tenants FROM bench_runs" $((t0 - $(date +%s) + 120)) || true
read -r sql_n sql_p99 sql_last < <(q "SELECT count(DISTINCT jobid),
	       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM t - to_timestamp($t0)))::numeric, 3),
	       round(extract(epoch FROM max(t) - to_timestamp($t0))::numeric, 3)
	FROM bench_runs" | tr '|' ' ')
sql_rate=$(awk -v n="$sql_n" -v s="$sql_last" 'BEGIN {printf "%.0f", n / s}')
wait_until "SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')" 120 || true
q "DELETE FROM cron.job; TRUNCATE bench_runs, cron.job_run_details" >/dev/null

# ---- N HTTP jobs due at once, against bare libcurl -------------------------
start_nginx "$web_port"
url="http://127.0.0.1:$web_port/hook"
gcc -O2 -o "$out/curl_ceiling" "$here/curl_ceiling.c" -lcurl
echo "-- libcurl ceiling: $http_jobs requests, 64 and 1,000 in flight, twice each"
curl_best=0
curl_best_text=""
for in_flight in 64 1000 64 1000; do
	c=$("$out/curl_ceiling" "$url" "$http_jobs" "$in_flight")
	r=$(echo "$c" | sed -E 's/.*: ([0-9]+) requests\/s.*/\1/')
	if [ "$r" -gt "$curl_best" ]; then
		curl_best=$r
		curl_best_text="$in_flight in flight"
	fi
done

echo "-- $http_jobs HTTP jobs due at one instant"
read -r t0 sched < <(instant $((10 + http_jobs / 10000)))
q "INSERT INTO cron.job (jobname, schedule, command, kind, url, method)
   SELECT 'hook-' || i, '$sched', 'GET $url', 'http', '$url', 'GET' FROM generate_series(1, $http_jobs) i" >/dev/null
wait_until "SELECT count(*) >= $http_jobs FROM cron.job_run_details WHERE status NOT IN ('starting', 'running')" $((t0 - $(date +%s) + 120)) || true
read -r http_ok http_secs < <(q "SELECT count(*) FILTER (WHERE status = 'succeeded' AND http_status = 200),
	       round(extract(epoch FROM max(end_time) - to_timestamp($t0))::numeric, 3)
	FROM cron.job_run_details WHERE scheduled_time = to_timestamp($t0)" | tr '|' ' ')
http_rate=$(awk -v n="$http_ok" -v s="$http_secs" 'BEGIN {printf "%.0f", n / s}')
q "DELETE FROM cron.job; TRUNCATE cron.job_run_details" >/dev/null
stop_nginx

# ---- 100 jobs every second: the first second and the later ones ------------
# after a restart, no executor is running
as_user "$bindir/pg_ctl" -D "$data" -m fast -w restart -l "$data.log" >/dev/null
echo "-- 100 jobs every second for ${rhythm_seconds}s, right after a restart, from 3 s after they are made"
q "SELECT count(cron.schedule('rhythm-' || i, '* * * * * *', 'INSERT INTO bench_runs (jobid) VALUES (' || i || ')',
                              start_at => date_trunc('second', now()) + interval '3 seconds'))
   FROM generate_series(1, 100) i" >/dev/null
wait_until "SELECT count(DISTINCT date_trunc('second', t)) > $rhythm_seconds FROM bench_runs" $((rhythm_seconds + 30)) || true
q "DELETE FROM cron.job" >/dev/null
read -r first_max later_p99 later_max < <(q "
	WITH lag AS (SELECT date_trunc('second', t) AS s, 1000 * extract(epoch FROM t - date_trunc('second', t)) AS ms FROM bench_runs),
	     first AS (SELECT min(s) AS s FROM lag)
	SELECT round(max(ms) FILTER (WHERE s = (SELECT s FROM first))::numeric, 1),
	       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE s > (SELECT s FROM first)))::numeric, 1),
	       round(max(ms) FILTER (WHERE s > (SELECT s FROM first))::numeric, 1)
	FROM lag" | tr '|' ' ')
wait_until "SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')" 60 || true
q "TRUNCATE bench_runs, cron.job_run_details" >/dev/null

# ---- 24 (database, role) pairs, default max_worker_processes --------------
echo "-- 24 (database, role) pairs due at one instant, max_worker_processes 8"
sed -i 's/^max_worker_processes = 40$/max_worker_processes = 8/' "$data/postgresql.conf"
as_user "$bindir/pg_ctl" -D "$data" -m fast -w restart -l "$data.log" >/dev/null
for d in 1 2 3 4; do
	q "CREATE DATABASE pairs$d" >/dev/null
	q "CREATE TABLE bench_runs (jobid int, t timestamptz DEFAULT clock_timestamp()); GRANT INSERT ON bench_runs TO PUBLIC" "pairs$d" >/dev/null
done
for r in 1 2 3 4 5 6; do q "CREATE ROLE pair_role$r LOGIN" >/dev/null; done
read -r t0 sched < <(instant 8)
q "SELECT count(cron.schedule_in_database('pair-' || d || '-' || r, '$sched',
                'INSERT INTO bench_runs (jobid) VALUES (' || (10 * d + r) || ')', 'pairs' || d, 'pair_role' || r))
   FROM generate_series(1, 4) d, generate_series(1, 6) r" >/dev/null
pairs_sql() { for d in 1 2 3 4; do q "SELECT count(*), coalesce(extract(epoch FROM max(t) - to_timestamp($t0)), 0) FROM bench_runs" "pairs$d"; done; }
deadline=$((t0 + 30))
while :; do
	read -r pairs_n pairs_last < <(pairs_sql | awk -F'|' '{n += $1; if ($2 > m) m = $2} END {printf "%d %.3f\n", n, m}')
	[ "$pairs_n" -ge 24 ] || [ "$(date +%s)" -ge $deadline ] && break
	sleep 0.2
done
q "DELETE FROM cron.job" >/dev/null
wait_until "SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')" 60 || true
sed -i 's/^max_worker_processes = 8$/max_worker_processes = 40/' "$data/postgresql.conf"

# ---- first due run after a restart, 1,000,000 jobs defined ---------------
echo "-- first due run after a restart, $start_jobs jobs defined"
q "TRUNCATE bench_runs, cron.job_run_details" >/dev/null
month=$(q "SELECT (extract(month FROM now())::int + 4) % 12 + 1")
q "INSERT INTO cron.job (jobname, schedule, command)
   SELECT 'idle-' || i, (i % 60) || ' ' || (i / 60 % 24) || ' ' || (1 + i / 1440 % 28) || ' $month *', 'SELECT 1'
   FROM generate_series(1, $start_jobs) i" >/dev/null
# an every-second job: the instant missed while the server was down is
# caught up as soon as the scheduler can start it
q "SELECT cron.schedule('canary', '* * * * * *', 'INSERT INTO bench_runs (jobid) VALUES (0)')" >/dev/null
wait_until "SELECT count(*) > 0 FROM bench_runs" 60 || true
as_user "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
# down across a whole second, so that an instant of the canary is missed
# and due at once when the server is back (a start within the second it
# stopped in would wait for the next instant, up to a second, instead)
stopped=$(date +%s)
while [ "$(date +%s)" -le "$stopped" ]; do sleep 0.05; done
q_quiet() { as_user "$bindir/psql" -X -qAt -h "$out" -p "$port" -d postgres -c "$1" 2>/dev/null; }
as_user "$bindir/pg_ctl" -D "$data" -l "$data.log" start >/dev/null
until [ "$(q_quiet 'SELECT 1')" = 1 ]; do sleep 0.01; done
# the moment the server logged it accepts connections (a client polling
# for it sees it some tens of milliseconds later)
accepted=$(date -d "$(grep 'ready to accept connections' "$data.log" | tail -1 | cut -d' ' -f1-3)" +%s.%N 2>/dev/null ||
	date +%s.%N)
# (the runs before the stop are in the table too)
wait_until "SELECT count(*) > 0 FROM bench_runs WHERE t > pg_postmaster_start_time()" 60 || true
first_run=$(q "SELECT extract(epoch FROM min(t)) FROM bench_runs WHERE t > pg_postmaster_start_time()")
start_lag=$(awk -v a="$accepted" -v b="${first_run:-0}" 'BEGIN {printf "%.3f", b - a}')

echo
printf '%-46s | %-44s | %-36s | %-6s | %s\n' "benchmark" "pg_chime" "ceiling, same run" "ratio" "target"
printf '%-46s | %-44s | %-36s | %-6s | %s\n' "--------" "--------" "-------" "-----" "------"
printf '%-46s | %-44s | %-36s | %-6s | %s\n' "$tenants SQL jobs due at one instant" \
	"$sql_n started, last ${sql_last} s after (p99 ${sql_p99}): ${sql_rate}/s" "pgbench 8 clients: ${pgbench_tps} tx/s" \
	"$(ratio "$sql_rate" "$pgbench_tps")" ">= 60 %"
printf '%-46s | %-44s | %-36s | %-6s | %s\n' "$http_jobs HTTP jobs due at once, loopback nginx" \
	"$http_ok succeeded, recorded in ${http_secs} s: ${http_rate}/s" "libcurl: ${curl_best}/s (${curl_best_text})" \
	"$(ratio "$http_rate" "$curl_best")" ">= 60 %"
printf '%-46s | %-44s | %-36s | %-6s | %s\n' "first due run after restart, $start_jobs jobs" \
	"${start_lag} s after connections are accepted" "" "" "<= 0.5 s"
printf '%-46s | %-44s | %-36s | %-6s | %s\n' "24 (database, role) pairs, max_worker_processes 8" \
	"$pairs_n of 24 started, last ${pairs_last} s after" "" "" "all within 2 s"
printf '%-46s | %-44s | %-36s | %-6s | %s\n' "100 jobs every second, start lag" \
	"first second max ${first_max} ms; later p99 ${later_p99} ms (max ${later_max})" "" "" "<= 20 ms from the first second"
