#!/usr/bin/env bash
# make demo: install what is missing, build and install pg_chime, start a
# throwaway cluster with it preloaded, schedule example jobs and show them
# with their next runs across the coming daylight-saving change.
#
# The cluster is left running so you can look around; the last lines say
# how to connect and how to stop it.  DEMO_STOP=1 stops it at the end.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}

bash "$top/scripts/install-deps.sh"
bindir=$("$PG_CONFIG" --bindir)

echo "== building and installing pg_chime"
make -s -C "$top"
if [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then
	make -s -C "$top" install >/dev/null
else
	sudo make -s -C "$top" install >/dev/null
fi

if [ "$(id -u)" = 0 ]; then
	demo_user=postgres
	as_user() { runuser -u "$demo_user" -- "$@"; }
else
	demo_user=$(id -un)
	as_user() { "$@"; }
fi

dir=${DEMO_DIR:-/tmp/pg_chime_demo}
port=${DEMO_PORT:-5497}
if [ -f "$dir/data/postmaster.pid" ]; then
	as_user "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
fi
rm -rf "$dir"
mkdir -p "$dir"
chown "$demo_user" "$dir" 2>/dev/null || true

echo "== starting a throwaway cluster in $dir (port $port, user $demo_user)"
as_user "$bindir/initdb" -D "$dir/data" -A trust --no-sync >"$dir/initdb.log"
cat >>"$dir/data/postgresql.conf" <<EOF
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
port = $port
unix_socket_directories = '$dir'
listen_addresses = ''
timezone = 'UTC'
EOF
as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null

# a small local endpoint for the HTTP jobs (it records what it receives)
web_port=8089
python3 "$top/test/fault_server.py" "$web_port" "$dir/endpoint.log" >/dev/null 2>&1 &
web_pid=$!
trap 'kill $web_pid 2>/dev/null' EXIT
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$web_port") 2>/dev/null && break
	sleep 0.1
done

psql_demo() { as_user "$bindir/psql" -X -q -h "$dir" -p "$port" -d postgres "$@"; }

psql_demo <<'SQL'
CREATE EXTENSION pg_chime;
\pset footer off
\echo
\echo == scheduling example jobs
-- the HTTP job the README opens with: a secret header, New York time,
-- only between 03:00 and 06:00, at most once a day, three attempts
\o /dev/null
SELECT cron.set_secret('cron_secret', 'not-a-real-secret');
SELECT cron.schedule_http('nightly-batch', '0 3 * * *', 'http://127.0.0.1:8089/ok',
       headers => '{"x-cron-secret": "{{secret.cron_secret}}"}',
       timezone => 'America/New_York', run_window => '03:00-06:00', once_per => 'day',
       max_attempts => 3, timeout => '120 seconds') AS nightly_batch;
-- a fixed-time job at 02:30 New York: on the spring-forward night 02:30
-- does not exist, and dst_gap => 'shift' runs it at 03:30 instead
SELECT cron.schedule('nightly-rollup', '30 2 * * *', 'SELECT 1',
       timezone => 'America/New_York', dst_gap => 'shift') AS nightly_rollup;
-- a wildcard job: every 30 minutes, by the wall clock in New York
SELECT cron.schedule('half-hourly', '*/30 * * * *', 'SELECT 2',
       timezone => 'America/New_York') AS half_hourly;
-- once a month, on the last day, in London
SELECT cron.schedule('month-end', '0 23 L * *', 'SELECT 3',
       timezone => 'Europe/London', once_per => 'month') AS month_end;
-- pg_cron's plain form still works
SELECT cron.schedule('*/5 * * * *', 'SELECT 4') AS plain;
-- and one that runs right away, every two seconds, so there is something to see
CREATE TABLE heartbeat (at timestamptz DEFAULT clock_timestamp(), who name DEFAULT current_user);
SELECT cron.schedule('heartbeat', '@every 2 seconds', 'INSERT INTO heartbeat DEFAULT VALUES') AS heartbeat;
-- a once-per-day job whose window is open now (this hour and the next, New
-- York time): it runs once, claims today's key, and every later occurrence
-- today starts nothing
SELECT cron.schedule('daily-in-window', '*/5 * * * * *', 'INSERT INTO heartbeat DEFAULT VALUES',
       timezone => 'America/New_York', once_per => 'day',
       run_window => to_char(now() AT TIME ZONE 'America/New_York', 'HH24:00') || '-' ||
                     to_char(now() AT TIME ZONE 'America/New_York' + interval '2 hours', 'HH24:00'))
       AS daily_in_window;
\o

\echo
\echo == the jobs
SELECT jobid, jobname, schedule, coalesce(timezone, 'UTC (cron.timezone)') AS timezone,
       run_window, once_per, dst_gap, max_attempts, kind
FROM cron.job ORDER BY jobid;

\echo
\echo == the next three runs of each job, in UTC and in the local time of the job
SELECT j.jobid, j.jobname, t AS next_run_utc,
       to_char(t AT TIME ZONE coalesce(j.timezone, 'UTC'), 'Dy YYYY-MM-DD HH24:MI') AS local_time
FROM cron.job j, LATERAL cron.next_runs(j.jobid, 3) AS t
ORDER BY j.jobid, t;

-- wait (at most 20 seconds) for three runs of the heartbeat job and the
-- windowed job's run of the day
DO $$
DECLARE deadline timestamptz := clock_timestamp() + interval '20 seconds';
BEGIN
    WHILE ((SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
            WHERE j.jobname = 'heartbeat' AND r.status = 'succeeded') < 3
           OR NOT EXISTS (SELECT 1 FROM cron.job_run_key k JOIN cron.job j USING (jobid)
                          WHERE j.jobname = 'daily-in-window' AND k.state = 'succeeded'))
          AND clock_timestamp() < deadline LOOP
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
\echo
\echo == the windowed once-per-day job: one run, its key claimed for the day
SELECT j.jobname, j.run_window, k.run_key, k.state, r.runid, r.status, r.trigger,
       to_char(r.scheduled_time, 'HH24:MI:SS') AS scheduled,
       (SELECT count(*) FROM cron.job_run_details x WHERE x.jobid = j.jobid) AS rows_today
FROM cron.job j JOIN cron.job_run_key k USING (jobid) JOIN cron.job_run_details r ON r.runid = k.runid
WHERE j.jobname = 'daily-in-window';

-- the HTTP job, run now (it is outside its window, hence ignore_window)
SELECT cron.run_now('nightly-batch', ignore_window => true) AS http_run \gset
DO $$
DECLARE deadline timestamptz := clock_timestamp() + interval '10 seconds';
BEGIN
    WHILE NOT EXISTS (SELECT 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
                      WHERE j.jobname = 'nightly-batch' AND r.status NOT IN ('starting', 'running'))
          AND clock_timestamp() < deadline LOOP
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
\echo
\echo == the HTTP job, run now: its recorded response (the secret is in no column)
SELECT runid, status, trigger, http_status, return_message, response_body, command, run_key
FROM cron.job_run_details WHERE runid = :http_run;
-- a job that fails every second, with an HTTP hook that pages someone
-- after three failures in a row (the hook posts the run's payload)
\o /dev/null
SELECT cron.schedule_http('page-oncall', '0 0 30 2 *', 'http://127.0.0.1:8089/tag/page-oncall');
SELECT cron.schedule('flaky-import', '* * * * * *', 'SELECT 1/0',
       on_failure => 'page-oncall', alert_after => 3);
\o
DO $$
DECLARE deadline timestamptz := clock_timestamp() + interval '20 seconds';
BEGIN
    WHILE NOT EXISTS (SELECT 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
                      WHERE j.jobname = 'page-oncall' AND r.status = 'succeeded')
          AND clock_timestamp() < deadline LOOP
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
\o /dev/null
SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE jobname = 'flaky-import';
\o
\echo
\echo == a failing job reached alert_after: its on_failure hook ran, posting the payload
SELECT r.runid, r.status, r.trigger, r.http_status,
       r.payload->'job'->>'name' AS after_job, r.payload->'run'->>'status' AS after_status,
       r.payload->>'consecutive_failures' AS failures_in_a_row
FROM cron.job_run_details r JOIN cron.job j USING (jobid)
WHERE j.jobname = 'page-oncall' ORDER BY r.runid LIMIT 1;
\echo
\echo == cron.job_status
SELECT jobname, active, next_run, last_status, running, consecutive_failures, total_runs,
       total_failures, round(extract(epoch FROM avg_duration) * 1000, 1) AS avg_ms
FROM cron.job_status ORDER BY jobid;
\echo
\echo == cron.explain: why the nightly HTTP job does not run now
SELECT cron.explain(jobid) AS why FROM cron.job WHERE jobname = 'nightly-batch';
\echo
\echo == runs so far (cron.job_run_details)
SELECT runid, jobid, job_pid, status, return_message, trigger,
       to_char(scheduled_time, 'HH24:MI:SS') AS scheduled,
       round(extract(epoch FROM start_time - scheduled_time) * 1000, 1) AS start_lag_ms,
       round(extract(epoch FROM end_time - start_time) * 1000, 1) AS duration_ms
FROM cron.job_run_details ORDER BY runid LIMIT 10;
\echo
\echo == the scheduler and its executor
SELECT pid, backend_type, usename, datname, state, query FROM pg_stat_activity
WHERE backend_type LIKE 'pg_chime%' ORDER BY backend_type DESC;

-- the next daylight-saving change in New York
SELECT min(h) AS dst_change
FROM generate_series(date_trunc('hour', now()), now() + interval '1 year', interval '1 hour') AS h
WHERE (h AT TIME ZONE 'America/New_York') - (h AT TIME ZONE 'UTC')
   <> ((h - interval '1 hour') AT TIME ZONE 'America/New_York') - ((h - interval '1 hour') AT TIME ZONE 'UTC')
\gset
\echo
\echo == around the next daylight-saving change in New York (:dst_change)
SELECT j.jobname, j.schedule, j.dst_gap, t AS run_utc,
       to_char(t AT TIME ZONE j.timezone, 'Dy YYYY-MM-DD HH24:MI') AS new_york_time
FROM cron.job j,
     LATERAL cron.next_runs(j.schedule, j.timezone,
                            :'dst_change'::timestamptz - CASE WHEN j.schedule LIKE '*%'
                                                              THEN interval '61 minutes'
                                                              ELSE interval '26 hours' END,
                            CASE WHEN j.schedule LIKE '*%' THEN 4 ELSE 3 END,
                            j.dst_gap, j.run_window) AS t
WHERE j.timezone = 'America/New_York'
ORDER BY j.jobid, t;
SQL

echo
echo "== what the local endpoint received (the secret header arrived with its value):"
grep -o '"path": "/ok", "method": "[A-Z]*"\|"[Xx]-[Cc]ron-[Ss]ecret": "[^"]*"' "$dir/endpoint.log" | head -2
echo
echo "== what the paging endpoint received from the hook (the payload, as JSON):"
grep '"path": "/tag/page-oncall"' "$dir/endpoint.log" | head -1 |
	python3 -c 'import json, sys; r = json.loads(sys.stdin.read()); h = {k.lower(): v for k, v in r["headers"].items()}; print("Content-Type:", h.get("content-type")); print(json.dumps(json.loads(r["body"]), indent=2))'

cat <<EOF

== the cluster is running
   connect:  psql -h $dir -p $port -d postgres -U $demo_user
   stop:     $bindir/pg_ctl -D $dir/data stop   (as $demo_user)
   The heartbeat job keeps running every two seconds until you stop the
   cluster or run: SELECT cron.unschedule('heartbeat');
   The local HTTP endpoint stops with this script.
EOF

if [ -n "${DEMO_STOP:-}" ]; then
	as_user "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
	echo "== stopped"
fi
