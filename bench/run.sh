#!/usr/bin/env bash
# make bench: the time engine's micro-benchmark (ns per next-instant
# computation), then the same computation inside PostgreSQL through
# cron.next_runs, in a throwaway cluster; then the SQL-job benchmarks of
# SPEC section 9 against pg_cron (sql_bench.sh, about 15 minutes), the
# HTTP row against a loopback nginx (http_bench.sh), and the rows measured
# against the machine's own ceilings, each printed with its ceiling and
# the ratio (limits_bench.sh).
#
# make bench BENCH=quick: under 3 minutes; the engine with fewer calls and
# limits_bench.sh with smaller bursts (the pg_cron comparison and the
# minute-aligned bursts of sql_bench.sh are left out).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
out=$(mktemp -d "${TMPDIR:-/tmp}/pg_chime_bench.XXXXXX")
chmod 755 "$out"

cleanup() {
	if [ -f "$out/data/postmaster.pid" ]; then as_user "$bindir/pg_ctl" -D "$out/data" -m immediate stop >/dev/null 2>&1 || true; fi
	rm -rf "$out"
}
trap cleanup EXIT

if [ "$(id -u)" = 0 ]; then
	bench_user=postgres
	as_user() { runuser -u "$bench_user" -- "$@"; }
else
	bench_user=$(id -un)
	as_user() { "$@"; }
fi

echo "== time engine micro-benchmark (C, -O2)"
gcc -O2 -I"$top/src" -I"$top/test/unit" -o "$out/engine_bench" \
	"$top/src/schedule.c" "$top/src/occurrence.c" "$top/test/unit/zone_libc.c" "$here/engine_bench.c"
quick=0
[ "${BENCH:-}" = quick ] && quick=1
"$out/engine_bench" "${BENCH_CALLS:-$([ $quick = 1 ] && echo 50000 || echo 200000)}"

echo
instants=$([ $quick = 1 ] && echo 100000 || echo 1000000)
echo "== inside PostgreSQL: cron.next_runs over $instants instants (pg_tz zones)"
make -s -C "$top" >/dev/null
if [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then make -s -C "$top" install >/dev/null; else sudo make -s -C "$top" install >/dev/null; fi
chown "$bench_user" "$out" 2>/dev/null || true
as_user "$bindir/initdb" -D "$out/data" -A trust --no-sync >/dev/null
cat >>"$out/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
port = 5496
unix_socket_directories = '$out'
listen_addresses = ''
fsync = off
CONF
as_user "$bindir/pg_ctl" -D "$out/data" -l "$out/server.log" -w start >/dev/null
as_user "$bindir/psql" -X -q -h "$out" -p 5496 -d postgres -v instants="$instants" <<'SQL'
CREATE EXTENSION pg_chime;
\pset footer off
CREATE TEMP TABLE cases (schedule text, zone text, gap text, win text);
INSERT INTO cases VALUES
  ('0 3 * * *', 'America/New_York', 'end', NULL),
  ('*/15 * * * *', 'America/New_York', 'end', NULL),
  ('*/20 * * * * *', 'UTC', 'end', NULL),
  ('0 12 * * 5L', 'Europe/London', 'end', NULL),
  ('30 2 * * *', 'America/New_York', 'shift', '03:00-06:00');
CREATE TEMP TABLE results (schedule text, zone text, ns_per_instant numeric);
SET bench.instants = :instants;
DO $$
DECLARE
    c record; t0 timestamptz; n bigint;
BEGIN
    FOR c IN SELECT * FROM cases LOOP
        t0 := clock_timestamp();
        SELECT count(*) INTO n FROM cron.next_runs(c.schedule, c.zone, '2026-01-01', current_setting('bench.instants')::int, c.gap, c.win);
        INSERT INTO results VALUES (c.schedule, c.zone,
            round(extract(epoch FROM clock_timestamp() - t0) * 1e9 / greatest(n, 1)));
    END LOOP;
END $$;
SELECT * FROM results;
SQL
as_user "$bindir/pg_ctl" -D "$out/data" -m fast stop >/dev/null

if [ $quick = 0 ]; then
	echo
	bash "$here/sql_bench.sh"
	echo
	bash "$here/http_bench.sh"
fi

echo
bash "$here/limits_bench.sh"
