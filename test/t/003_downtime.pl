# Downtime: occurrences that fell while the server was down start late
# under catchup (coalesced into one run) or are recorded missed, from the
# horizon the scheduler persisted.  cron.clock_skew stands in for hours of
# downtime: the server is stopped, the skew moved forward, and started.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('downtime');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE ran (job text, at timestamptz DEFAULT clock_timestamp());
	SELECT cron.schedule('hourly-2h', '0 * * * *', $$INSERT INTO ran VALUES ('hourly-2h')$$,
	                     catchup => '2 hours');
	SELECT cron.schedule('hourly-1m', '0 * * * *', $$INSERT INTO ran VALUES ('hourly-1m')$$);
	SELECT cron.schedule('every-10s', '*/10 * * * * *', $$INSERT INTO ran VALUES ('every-10s')$$);
});
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM ran WHERE job = 'every-10s'}),
	'jobs run before the downtime');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM cron.scheduler_state}),
	'the scheduler saved its horizon');

# Down for "three hours": back at half past, three hours later, so the
# hourly occurrences missed are 2.5 h, 1.5 h and 0.5 h old.
my $now = $node->safe_psql('postgres', q{SELECT extract(epoch FROM now())::bigint});
my $back = (int($now / 3600) + 3) * 3600 + 1800;
my $first = (int($now / 3600) + 1) * 3600;
$node->stop('fast');
$node->append_conf('postgresql.conf', sprintf("cron.clock_skew = '%d seconds'\n", $back - $now));
$node->start;

ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM ran WHERE job = 'hourly-2h'}),
	'the job whose catchup covers the downtime ran once');
is($node->safe_psql('postgres', qq{
	SELECT status || ' ' || trigger || ' ' || occurrences || ' ' || extract(epoch FROM scheduled_time)::bigint
	FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'hourly-2h' ORDER BY scheduled_time}),
	join("\n", "missed schedule 1 $first", 'succeeded catchup 1 ' . ($first + 7200)),
	'older occurrences are one missed row; the two within catchup coalesce into one catch-up run of the latest');
is($node->safe_psql('postgres', qq{
	SELECT status || ' ' || occurrences || ' ' || extract(epoch FROM scheduled_time)::bigint
	FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'hourly-1m'}),
	"missed 3 $first", 'a job with the default catchup records all three as one missed row');
like($node->safe_psql('postgres', q{
	SELECT return_message FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'hourly-1m'}), qr/catchup/, 'the missed row says why');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ran WHERE job = 'hourly-1m'}), '0',
	'and does not run');

# the 10-second job: one catch-up row for the downtime, then on time
ok($node->poll_query_until('postgres', q{
	SELECT count(*) >= 2 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'every-10s' AND r.trigger = 'schedule' AND r.status = 'succeeded'
	  AND r.scheduled_time > now() - interval '1 minute'}),
	'a frequent job is back on its schedule');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'every-10s' AND r.status = 'missed'}), '1',
	'its occurrences during the downtime are one missed row');

# a clean restart without downtime misses nothing and repeats nothing
my $before = $node->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details WHERE status = 'missed'});
$node->restart;
ok($node->poll_query_until('postgres', q{
	SELECT count(*) >= 2 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'every-10s' AND r.start_time > pg_postmaster_start_time() + current_setting('cron.clock_skew')::interval}),
	'jobs run after a clean restart');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details WHERE status = 'missed'}), $before,
	'a restart of a few seconds records nothing missed');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT jobid, scheduled_time FROM cron.job_run_details
	                      WHERE trigger IN ('schedule', 'catchup')
	                      GROUP BY 1, 2 HAVING count(*) > 1) d}), '0',
	'no occurrence ran twice');

# a job created while the scheduler is held up (SIGSTOP) and due before it
# notices still runs, late, as a catch-up run
my $sched = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'});
kill 'STOP', $sched;
# (pg_chime's clock is now + cron.clock_skew, set above)
my $at = $node->safe_psql('postgres', q{
	SELECT to_char(now() + current_setting('cron.clock_skew')::interval + interval '2 seconds',
	               'YYYY-MM-DD HH24:MI:SS+00')});
$node->safe_psql('postgres', qq{SELECT cron.schedule('while-stopped', '\@at $at', \$\$INSERT INTO ran VALUES ('while-stopped')\$\$)});
ok($node->poll_query_until('postgres', qq{
	SELECT now() + current_setting('cron.clock_skew')::interval > '$at'::timestamptz + interval '1 second'}),
	'its instant passes while the scheduler is stopped');
kill 'CONT', $sched;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM ran WHERE job = 'while-stopped'}),
	'a job the scheduler learns of after its instant runs');
is($node->safe_psql('postgres', qq{
	SELECT trigger || ' ' || (scheduled_time = '$at'::timestamptz)
	FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'while-stopped'}),
	'catchup true', 'late, as a catch-up run of its instant');

# cron.log_run = off: runs are not recorded (a new session seeing the
# setting means the postmaster has already signalled the scheduler)
$node->append_conf('postgresql.conf', "cron.log_run = off\n");
$node->reload;
ok($node->poll_query_until('postgres', q{SELECT current_setting('cron.log_run') = 'off'}), 'cron.log_run is off');
$node->safe_psql('postgres', q{
	SELECT cron.schedule('unlogged', '* * * * * *', $$INSERT INTO ran VALUES ('unlogged')$$);
});
ok($node->poll_query_until('postgres', q{SELECT count(*) >= 2 FROM ran WHERE job = 'unlogged'}),
	'with cron.log_run off, jobs run');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'unlogged'}),
	'0', 'and leave no run rows');

$node->stop;
done_testing();
