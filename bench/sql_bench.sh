#!/usr/bin/env bash
# The SQL-job rows of SPEC §9, measured in throwaway clusters: pg_chime in
# one, and pg_cron (Debian's postgresql-15-cron) in another when it is
# installed.  Each figure is printed with its target and pg_cron's figure.
#
#   bash bench/sql_bench.sh            (make bench runs it after the engine)
#
# Start lag is measured inside the job: clock_timestamp() when its INSERT
# runs, minus the instant it was due.  Settings: fsync off, loopback socket,
# cron.log_statement off in both clusters, max_worker_processes 40 so that
# cron.max_running_jobs (32, both) is the limit.
#
# The 1,000-job burst runs three ways in pg_chime: on an empty run table
# (the anchor), with BENCH_HISTORY_ROWS finished runs of 10,000 jobs in
# cron.job_run_details (cron.run_retention at its default, so the oldest
# go while it runs), and on the empty table again after that (the anchor
# on the cluster as the history left it); with the history, SELECT * FROM
# cron.job_status is timed too when the view exists.
#
# Environment: BENCH_IDLE_JOBS (1000000), BENCH_CRON_IDLE_JOBS (100000),
# BENCH_SINGLE_SECONDS (60), BENCH_CRON_SINGLE_SAMPLES (2),
# BENCH_IDLE_SECONDS (60), BENCH_HISTORY_ROWS (10000000; 0 leaves the
# history phase out), BENCH_BURSTS (3: how many times each 1,000-job burst
# of pg_chime runs; the one with the median p99 is printed, as one burst's
# p99 varies by tens of milliseconds from minute to minute),
# BENCH_SKIP_CRON=1 to leave pg_cron out.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
. "$here/common.sh"
idle_jobs=${BENCH_IDLE_JOBS:-1000000}
cron_idle_jobs=${BENCH_CRON_IDLE_JOBS:-100000}
single_seconds=${BENCH_SINGLE_SECONDS:-60}
cron_single_samples=${BENCH_CRON_SINGLE_SAMPLES:-2}
idle_seconds=${BENCH_IDLE_SECONDS:-60}
history_rows=${BENCH_HISTORY_ROWS:-10000000}
bursts_each=${BENCH_BURSTS:-3}

bench_setup sqlbench

clusters=()
cleanup() {
	for d in "${clusters[@]}"; do
		[ -f "$d/postmaster.pid" ] && as_user "$bindir/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$out"
}
trap cleanup EXIT

# start_cluster NAME PORT LIBRARY
start_cluster() {
	local d=$out/$1
	as_user "$bindir/initdb" -D "$d" -A trust --no-sync >/dev/null
	cat >>"$d/postgresql.conf" <<CONF
shared_preload_libraries = '$3'
cron.database_name = 'postgres'
cron.log_statement = off
port = $2
unix_socket_directories = '$out'
listen_addresses = ''
fsync = off
max_worker_processes = 40
max_connections = 200
timezone = 'UTC'
CONF
	[ "$3" = pg_cron ] && echo "cron.host = '$out'" >>"$d/postgresql.conf"
	clusters+=("$d")
	as_user "$bindir/pg_ctl" -D "$d" -l "$out/$1.log" -w start >/dev/null
}

# q PORT SQL: one value or row, unaligned
q() { as_user env PGOPTIONS='-c client_min_messages=warning' "$bindir/psql" -X -qAt -h "$out" -p "$1" -d postgres -v ON_ERROR_STOP=1 -c "$2"; }

CHIME=5491
CRON=5492

# wait_until PORT SQL SECONDS: poll until SQL returns t
wait_until() {
	local deadline=$((SECONDS + $3))
	while [ "$(q "$1" "$2")" != t ]; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.2
	done
}

# Every benchmark writes here, from inside its jobs
setup_sql="CREATE TABLE bench_runs (jobid int, t timestamptz DEFAULT clock_timestamp());"

# next_minute PORT: the next minute boundary at least 8 s away (epoch)
next_minute() {
	q "$1" "SELECT extract(epoch FROM date_trunc('minute', now() + interval '68 seconds'))::bigint"
}

# burst PORT N: N jobs '* * * * *' due at the same minute; prints
# "p50 p99 max started" (seconds, from the minute's start)
burst() {
	local port=$1 n=$2 m mark
	q "$port" "TRUNCATE bench_runs" >/dev/null
	# the runs recorded before stay (a history, when there is one)
	mark=$(q "$port" "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM cron.runid_seq")
	m=$(next_minute "$port")
	# create them in the minute before, so nothing runs early
	while [ "$(q "$port" "SELECT extract(epoch FROM now())::bigint >= $m - 55")" != t ]; do sleep 0.5; done
	q "$port" "SELECT count(cron.schedule('burst-' || i, '* * * * *', 'INSERT INTO bench_runs (jobid) VALUES (' || i || ')')) FROM generate_series(1, $n) i" >/dev/null
	wait_until "$port" "SELECT count(DISTINCT jobid) >= $n OR now() > to_timestamp($m + 58) FROM bench_runs WHERE t >= to_timestamp($m) AND t < to_timestamp($m + 60)" 200 || true
	q "$port" "SELECT count(cron.unschedule(jobid)) FROM cron.job WHERE jobname LIKE 'burst-%'" >/dev/null
	# '-' for the figures when none started in the minute
	q "$port" "SELECT concat_ws(' ', coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY l)::numeric, 3)::text, '-'),
	                  coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY l)::numeric, 3)::text, '-'),
	                  coalesce(round(max(l)::numeric, 3)::text, '-'), count(*))
	           FROM (SELECT DISTINCT ON (jobid) extract(epoch FROM t - to_timestamp($m)) AS l
	                 FROM bench_runs WHERE t >= to_timestamp($m) AND t < to_timestamp($m + 60)
	                 ORDER BY jobid, t) s"
	# let the last runs finish before the next measurement
	wait_until "$port" "SELECT count(*) = 0 FROM cron.job_run_details WHERE runid > $mark AND status IN ('starting', 'running')" 120 || true
	q "$port" "TRUNCATE bench_runs; DELETE FROM cron.job_run_details WHERE runid > $mark" >/dev/null
}

# bursts PORT N K: K bursts of N jobs, one after the other; prints the
# figures of the one with the median p99, then every p99 ("a,b,c")
bursts() {
	local i all=()
	for ((i = 0; i < $3; i++)); do all+=("$(burst "$1" "$2")"); done
	echo "$(printf '%s\n' "${all[@]}" | sort -k2,2n | sed -n "$((($3 + 1) / 2))p")" \
		"$(printf '%s\n' "${all[@]}" | cut -d' ' -f2 | paste -sd,)"
}

# history PORT ROWS: 10,000 jobs (none due), and ROWS finished runs of
# theirs over the last 30 days, in time order as the scheduler writes
# them (1 in 50 failed), in one INSERT; then VACUUM ANALYZE and a
# CHECKPOINT (the steady state, not the write of the rows just inserted).
history() {
	local port=$1 rows=$2 month first
	month=$(q "$port" "SELECT (extract(month FROM now())::int + 4) % 12 + 1")
	q "$port" "INSERT INTO cron.job (jobname, schedule, command)
	           SELECT 'history-' || i, (i % 60) || ' ' || (i / 60 % 24) || ' ' || (1 + i / 1440 % 28) || ' $month *',
	                  'INSERT INTO bench_runs (jobid) VALUES (' || i || ')' FROM generate_series(1, 10000) i" >/dev/null
	first=$(q "$port" "SELECT min(jobid) FROM cron.job WHERE jobname LIKE 'history-%'")
	q "$port" "INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status, return_message,
	                                             start_time, end_time, scheduled_time, attempt, trigger)
	           SELECT $first + i % 10000, 20000 + i % 30000, 'postgres', current_user,
	                  'INSERT INTO bench_runs (jobid) VALUES (' || (1 + i % 10000) || ')',
	                  CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'succeeded' END,
	                  CASE WHEN i % 50 = 0 THEN 'ERROR: 57014: canceling statement due to statement timeout'
	                       ELSE 'INSERT 0 1' END,
	                  t + interval '2 milliseconds', t + interval '6 milliseconds', t, 1, 'schedule'
	           FROM generate_series(1, $rows) i,
	                LATERAL (SELECT date_trunc('second', now() - interval '30 days' + i * (interval '30 days' / $rows))) s(t)" >/dev/null
	# their statistics, as the scheduler would have kept them
	q "$port" "INSERT INTO cron.job_stats (jobid, last_start, last_end, last_status, last_message, last_duration,
	                                      last_success, total_runs, total_successes, total_failures, total_duration)
	           SELECT j.jobid, now() - interval '1 hour', now() - interval '1 hour' + interval '4 milliseconds',
	                  'succeeded', 'INSERT 0 1', interval '4 milliseconds', now() - interval '1 hour',
	                  $rows / 10000, $rows / 10000 - $rows / 500000, $rows / 500000, ($rows / 10000) * interval '4 milliseconds'
	           FROM cron.job j WHERE j.jobname LIKE 'history-%'
	           ON CONFLICT (jobid) DO NOTHING" >/dev/null 2>&1 || true
	q "$port" "VACUUM ANALYZE cron.job_run_details" >/dev/null
	q "$port" "VACUUM ANALYZE cron.job" >/dev/null
	q "$port" "CHECKPOINT" >/dev/null
}

# job_status PORT: "ms exec_ms": the median of 5 of SELECT * FROM
# cron.job_status as psql times it (rows received; each in a new
# connection, after one that warms the shared buffers), and the median of
# 5 of its execution in the server alone (EXPLAIN ANALYZE, no per-node
# timing); "-" when there is no such view
job_status() {
	local port=$1 t e
	if [ "$(q "$port" "SELECT to_regclass('cron.job_status') IS NOT NULL")" != t ]; then
		echo "-"
		return
	fi
	t=$(for i in 0 1 2 3 4 5; do
		e=$(as_user "$bindir/psql" -X -qAt -h "$out" -p "$port" -d postgres -v ON_ERROR_STOP=1 \
			-c '\timing on' -c 'SELECT * FROM cron.job_status' | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
		[ "$i" -gt 0 ] && echo "$e"
	done | sort -n | sed -n 3p)
	e=$(for i in 1 2 3 4 5; do
		q "$port" "EXPLAIN (ANALYZE, TIMING OFF) SELECT * FROM cron.job_status" | sed -n 's/^Execution Time: \([0-9.]*\) ms.*/\1/p'
	done | sort -n | sed -n 3p)
	echo "$t $e"
}

# idle PORT N SECONDS PROCESS-TYPE NAME: N jobs none of which is due,
# then a restart, so the scheduler reads them as it would after any
# restart (the INSERT's pages are not left in its shared buffers).
# Prints "ready_seconds cpu_percent rss_mb private_mb"; ready_seconds is
# how long after the restart a job scheduled then runs (pg_chime only).
idle() {
	local port=$1 n=$2 secs=$3 type=$4 name=$5 pid t0 t1 c0 c1 hz ready=-
	# a month five months away: nothing is due while measuring
	local month
	month=$(q "$port" "SELECT (extract(month FROM now())::int + 4) % 12 + 1")
	q "$port" "TRUNCATE bench_runs" >/dev/null
	if [ "$type" = "pg_chime scheduler" ]; then
		# a superuser's INSERT is seen by the scheduler like the API's
		q "$port" "INSERT INTO cron.job (jobname, schedule, command)
		           SELECT 'idle-' || i, (i % 60) || ' ' || (i / 60 % 24) || ' ' || (1 + i / 1440 % 28) || ' $month *',
		                  'SELECT 1' FROM generate_series(1, $n) i" >/dev/null
	else
		q "$port" "SELECT count(cron.schedule((i % 60) || ' ' || (i / 60 % 24) || ' ' || (1 + i / 1440 % 28) || ' $month *', 'SELECT 1'))
		           FROM generate_series(1, $n) i" >/dev/null
	fi
	as_user "$bindir/pg_ctl" -D "$out/$name" -m fast -w restart -l "$out/$name.log" >/dev/null
	t0=$(date +%s.%N)
	if [ "$type" = "pg_chime scheduler" ]; then
		q "$port" "SELECT cron.schedule('idle-canary', '@at ' || to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00'), 'INSERT INTO bench_runs (jobid) VALUES (0)')" >/dev/null
		wait_until "$port" "SELECT count(*) > 0 FROM bench_runs" 600
		t1=$(date +%s.%N)
		ready=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
	else
		# pg_cron reads its jobs at start; give it the same time to settle
		sleep 10
	fi
	pid=$(q "$port" "SELECT pid FROM pg_stat_activity WHERE backend_type = '$type'")
	hz=$(getconf CLK_TCK)
	c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	sleep "$secs"
	c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	printf '%s %.3f %d %d\n' "$ready" "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$secs" 'BEGIN {print (b - a) * 100 / hz / s}')" \
		"$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")" \
		"$(awk '/^RssAnon/ {print int($2 / 1024)}' "/proc/$pid/status")"
	q "$port" "TRUNCATE cron.job CASCADE; TRUNCATE bench_runs" >/dev/null
}

# ---- pg_chime -------------------------------------------------------------
install_pg_chime
start_cluster chime $CHIME pg_chime
q $CHIME "CREATE EXTENSION pg_chime; $setup_sql" >/dev/null

have_cron=0
if [ -z "${BENCH_SKIP_CRON:-}" ] && [ -f "$pkglibdir/pg_cron.so" ]; then
	have_cron=1
	start_cluster cron $CRON pg_cron
	q $CRON "CREATE EXTENSION pg_cron; $setup_sql" >/dev/null
	cron_version=$(q $CRON "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
fi

echo "== SQL jobs (fsync off, $(nproc) cores); pg_cron: $([ $have_cron = 1 ] && echo "$cron_version, separate cluster, same run" || echo "not installed")"

# single job, every second: start lag
echo "-- single job, every second for ${single_seconds}s"
q $CHIME "SELECT cron.schedule('single', '1 seconds', 'INSERT INTO bench_runs (jobid) VALUES (1)')" >/dev/null
sleep "$single_seconds"
q $CHIME "SELECT cron.unschedule('single')" >/dev/null
single=$(q $CHIME "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY l)::numeric, 2) || ' ' ||
                          round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY l)::numeric, 2) || ' ' || count(*)
                   FROM (SELECT extract(epoch FROM t - date_trunc('second', t)) AS l FROM bench_runs) s")
q $CHIME "TRUNCATE bench_runs" >/dev/null

# 100 jobs every second for 60 s: gaps between a job's runs
echo "-- 100 jobs every second for 60s"
q $CHIME "SELECT count(cron.schedule('rhythm-' || i, '1 seconds', 'INSERT INTO bench_runs (jobid) VALUES (' || i || ')')) FROM generate_series(1, 100) i" >/dev/null
sleep 62
q $CHIME "SELECT count(cron.unschedule(jobid)) FROM cron.job" >/dev/null
rhythm=$(q $CHIME "WITH runs AS (SELECT jobid, t, t - lag(t) OVER (PARTITION BY jobid ORDER BY t) AS gap FROM bench_runs),
                        span AS (SELECT jobid, extract(epoch FROM max(t) - min(t))::int + 1 AS expected, count(*) AS got FROM bench_runs GROUP BY jobid)
                   SELECT round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY abs(extract(epoch FROM gap) - 1))::numeric, 1) || ' ' ||
                          round(1000 * max(abs(extract(epoch FROM gap) - 1))::numeric, 1) || ' ' ||
                          (SELECT sum(got) FROM span) || ' ' || (SELECT sum(expected - got) FROM span)
                   FROM runs WHERE gap IS NOT NULL")
q $CHIME "TRUNCATE bench_runs; DELETE FROM cron.job_run_details" >/dev/null

echo "-- 1,000 jobs due in the same minute, $bursts_each times"
chime_1k=$(bursts $CHIME 1000 "$bursts_each")
echo "-- 5,000 jobs due in the same minute"
chime_5k=$(burst $CHIME 5000)
echo "-- $idle_jobs jobs, none due: restart, then ${idle_seconds}s idle"
chime_idle=$(idle $CHIME "$idle_jobs" "$idle_seconds" "pg_chime scheduler" chime)
chime_hist="- - - -"
chime_after="- - - -"
chime_status="-"
if [ "$history_rows" -gt 0 ]; then
	echo "-- 1,000 jobs due in the same minute, $history_rows runs of 10,000 jobs in cron.job_run_details"
	hist_t0=$SECONDS
	history $CHIME "$history_rows"
	echo "   (history written and analysed in $((SECONDS - hist_t0)) s)"
	chime_hist=$(bursts $CHIME 1000 "$bursts_each")
	chime_status=$(job_status $CHIME)
	[ "$chime_status" = - ] && echo "-- SELECT * FROM cron.job_status: skipped (no view cron.job_status in this version)"
	# the anchor again, on this cluster as it is now but for the history
	echo "-- 1,000 jobs due in the same minute, $bursts_each times, the history deleted again"
	q $CHIME "TRUNCATE cron.job_run_details" >/dev/null
	q $CHIME "CHECKPOINT" >/dev/null
	chime_after=$(bursts $CHIME 1000 "$bursts_each")
	q $CHIME "TRUNCATE cron.job_run_details; TRUNCATE cron.job CASCADE" >/dev/null
fi

cron_1k="- - - -"
cron_5k="- - - -"
cron_single="- - -"
cron_idle="- - - -"
if [ $have_cron = 1 ]; then
	echo "-- pg_chime done; pg_cron $cron_version:"
	echo "-- 1,000 jobs due in the same minute"
	cron_1k=$(burst $CRON 1000)
	echo "-- 5,000 jobs due in the same minute"
	cron_5k=$(burst $CRON 5000)
	echo "-- single job every minute, $cron_single_samples samples (pg_cron $cron_version has no second schedules)"
	q $CRON "SELECT cron.schedule('single', '* * * * *', 'INSERT INTO bench_runs (jobid) VALUES (1)')" >/dev/null
	wait_until $CRON "SELECT count(*) >= $cron_single_samples FROM bench_runs" $((cron_single_samples * 60 + 70)) || true
	q $CRON "SELECT cron.unschedule('single')" >/dev/null
	cron_single=$(q $CRON "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY l)::numeric, 2) || ' ' ||
	                              round(1000 * max(l)::numeric, 2) || ' ' || count(*)
	                       FROM (SELECT extract(epoch FROM t - date_trunc('minute', t)) AS l FROM bench_runs) s")
	q $CRON "TRUNCATE bench_runs" >/dev/null
	echo "-- $cron_idle_jobs jobs, none due"
	cron_idle=$(idle $CRON "$cron_idle_jobs" "$idle_seconds" "pg_cron launcher" cron)
fi

read -r s50 s99 sn <<<"$single"
read -r r99 rmax rn rmissing <<<"$rhythm"
read -r a50 a99 amax an alist <<<"$chime_1k"
read -r b50 b99 bmax bn <<<"$chime_5k"
read -r iload icpu irss ianon <<<"$chime_idle"
read -r h50 h99 hmax hn hlist <<<"$chime_hist"
read -r e50 e99 emax en elist <<<"$chime_after"
read -r c1_50 c1_99 c1_max c1_n <<<"$cron_1k"
read -r c5_50 c5_99 c5_max c5_n <<<"$cron_5k"
read -r cs50 csmax csn <<<"$cron_single"
read -r ciload cicpu cirss cianon <<<"$cron_idle"

echo
printf '%-44s | %-40s | %-30s | %s\n' "benchmark" "pg_chime" "pg_cron ${cron_version:-}" "target"
printf '%-44s | %-40s | %-30s | %s\n' "--------" "--------" "-------" "------"
printf '%-44s | %-40s | %-30s | %s\n' "1,000 SQL jobs due in the same minute" \
	"p99 ${a99} s (p50 ${a50}, max ${amax}, ${an} started; median of p99s ${alist})" "p99 ${c1_99} s (max ${c1_max}, ${c1_n} started)" "p99 <= 0.1 s"
if [ "$history_rows" -gt 0 ]; then
	printf '%-44s | %-40s | %-30s | %s\n' "1,000 SQL jobs due, $history_rows history rows" \
		"p99 ${h99} s (p50 ${h50}, max ${hmax}, ${hn} started; median of p99s ${hlist})" "anchors, empty table: p99 ${a99} s before, ${e99} s after (${elist})" "the anchors' p99"
	if [ "$chime_status" = - ]; then
		printf '%-44s | %-40s | %-30s | %s\n' "SELECT * FROM cron.job_status" \
			"skipped: no view cron.job_status" "" "<= 50 ms"
	else
		printf '%-44s | %-40s | %-30s | %s\n' "SELECT * FROM cron.job_status" \
			"${chime_status% *} ms (median of 5; 10,000 jobs; executes in ${chime_status#* } ms)" "" "<= 50 ms with $history_rows rows"
	fi
fi
printf '%-44s | %-40s | %-30s | %s\n' "5,000 SQL jobs due in the same minute" \
	"p99 ${b99} s (p50 ${b50}, max ${bmax}, ${bn} started)" "p99 ${c5_99} s (max ${c5_max}, ${c5_n} started)" "all started, p99 <= 0.5 s"
printf '%-44s | %-40s | %-30s | %s\n' "single job, start lag" \
	"p99 ${s99} ms (p50 ${s50}, ${sn} runs)" "max ${csmax} ms (p50 ${cs50}, ${csn} runs)" "p99 <= 5 ms"
printf '%-44s | %-40s | %-30s | %s\n' "100 jobs every second for 60 s" \
	"gap p99 1 s +- ${r99} ms (max ${rmax}), ${rmissing} of ${rn} runs missing" "n/a (no second schedules)" "every run, p99 within 20 ms of 1 s"
printf '%-44s | %-40s | %-30s | %s\n' "idle jobs: scheduler CPU, RSS" \
	"${idle_jobs}: ${icpu} % core, RSS ${irss} MB (${ianon} private), running ${iload} s after restart" \
	"${cron_idle_jobs}: ${cicpu} % core, RSS ${cirss} MB (${cianon} private)" "1,000,000: <= 0.5 %, <= 200 MB"
