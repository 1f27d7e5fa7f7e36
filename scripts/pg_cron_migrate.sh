#!/usr/bin/env bash
# Copy pg_cron 1.x jobs into pg_chime, from a dump of pg_cron's job table
# (pg_cron and pg_chime are never in one cluster: both use schema cron).
#
#   # in the pg_cron cluster, in its cron.database_name:
#   pg_dump --data-only --table=cron.job -d postgres -f pg_cron_jobs.sql
#   # in the pg_chime cluster, as a superuser, in its cron.database_name:
#   scripts/pg_cron_migrate.sh pg_cron_jobs.sql -d postgres
#
# Arguments after the dump go to psql (-h, -p, -d, -U).  Each job is made
# with pg_chime's API (so its schedule and rights are checked), with its
# name, schedule, command, database, owner and active flag: a named job
# replaces pg_chime's job of the same name and owner, as in pg_cron, and
# an unnamed one copied by an earlier run is kept ('copied before').  A
# six-field schedule loses its sixth field (pg_cron 1.x reads five and
# ignores a sixth; pg_chime reads six as seconds first).  nodename and
# nodeport are not copied.  One row per job is printed: its old and new
# id, and 'copied', 'copied; sixth field dropped' or 'not copied: <why>';
# the exit status is 3 when some job was not copied (the others are).
# Nothing is copied when the dump cannot be read (exit status 2).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

if [ $# -lt 1 ]; then
	echo "usage: $0 DUMP [psql options]" >&2
	exit 2
fi
dump=$1
shift
if [ ! -r "$dump" ]; then
	echo "$0: cannot read $dump" >&2
	exit 2
fi
block=$(sed -n '/^COPY cron\.job (/,/^\\\.$/p' "$dump")
if [ -z "$block" ]; then
	echo "$0: $dump has no data of cron.job; make it with pg_dump --data-only --table=cron.job (plain format)" >&2
	exit 2
fi

{
	echo '\set ON_ERROR_STOP on'
	grep -m1 "^SET client_encoding = " "$dump" || true
	cat <<'SQL'
CREATE TEMP TABLE pg_cron_job (
    jobid bigint, schedule text, command text, nodename text, nodeport int,
    database text, username text, active boolean, jobname text);
SQL
	printf '%s\n' "$block" | sed '1s/^COPY cron\.job (/COPY pg_temp.pg_cron_job (/'
	cat "$here/pg_cron_migrate.sql"
} | psql -X -q -v ON_ERROR_STOP=1 "$@"
