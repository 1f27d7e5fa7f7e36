# A reload of the configuration (SIGHUP) reaches a live executor: the same
# executor process runs the job before and after pg_reload_conf() and sees
# the new value of a PGC_SIGHUP setting; settings a run SETs never reach
# the next run, the file's new values do, and an ALTER ROLE setting stays
# the role's, as in a new session of the role.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my $node = PostgreSQL::Test::Cluster->new('executor');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
timezone = 'UTC'
});
$node->append_conf('postgresql.conf', midday_zone_conf());
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE ROLE alice LOGIN;
	GRANT USAGE ON SCHEMA cron TO alice;
	ALTER ROLE alice SET work_mem = '5MB';
	CREATE TABLE seen (pid int, checkpoint_timeout text, work_mem text, lock_timeout text,
	                   at timestamptz DEFAULT clock_timestamp());
	GRANT INSERT ON seen TO alice;
});
ok($node->poll_query_until('postgres', "SELECT true FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'"),
	'the scheduler is up');

# every second: what the run sees, then a SET that must not reach the next run
my $jobid = $node->safe_psql('postgres', q{SET ROLE alice;
	SELECT cron.schedule('observe', '* * * * * *', $$
		INSERT INTO public.seen (pid, checkpoint_timeout, work_mem, lock_timeout)
		VALUES (pg_backend_pid(), current_setting('checkpoint_timeout'),
		        current_setting('work_mem'), current_setting('lock_timeout'));
		SET lock_timeout = '42s'$$)});

ok($node->poll_query_until('postgres', 'SELECT count(*) >= 3 FROM seen'), 'the job runs')
  or diag($node->safe_psql('postgres', "SELECT status, return_message FROM cron.job_run_details WHERE jobid = $jobid"));
my $before = $node->safe_psql('postgres', 'SELECT pid FROM seen ORDER BY at DESC LIMIT 1');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT pid) FROM seen'), '1', 'one executor runs the job');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'pg_chime executor' AND pid = } . $before),
	'1', 'it is a live pg_chime executor');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT checkpoint_timeout || ' ' || work_mem || ' ' || lock_timeout, ', ') FROM seen}),
	'5min 5MB 0', "before the reload: the defaults, the role's work_mem, and no run's SET");

# a PGC_SIGHUP setting, one the role's ALTER ROLE sets, and one the run SETs
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET checkpoint_timeout = '7min';
	ALTER SYSTEM SET work_mem = '9MB';
	ALTER SYSTEM SET lock_timeout = '3s';
	SELECT pg_reload_conf();
});
my $reloaded = q{SELECT count(*) FROM seen WHERE checkpoint_timeout = '7min'};
ok($node->poll_query_until('postgres', "SELECT ($reloaded) >= 3"), 'the executor sees the reloaded PGC_SIGHUP setting')
  or diag($node->safe_psql('postgres', 'SELECT * FROM seen ORDER BY at DESC LIMIT 5'));
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT pid::text, ',') FROM seen WHERE checkpoint_timeout = '7min'}),
	$before, 'the same executor before and after the reload');
is($node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime executor'"),
	$before, 'the executor was not replaced');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT work_mem || ' ' || lock_timeout, ', ') FROM seen WHERE checkpoint_timeout = '7min'}),
	'5MB 3s', "after it: the role's work_mem stays, the file's lock_timeout comes, no run's SET");

# and it keeps running the job, without handing runs back
my $n = $node->safe_psql('postgres', 'SELECT count(*) FROM seen');
ok($node->poll_query_until('postgres', "SELECT count(*) >= $n + 3 FROM seen"), 'the executor keeps running the job');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT pid) FROM seen'), '1', 'in the same process');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE jobid = $jobid AND status NOT IN ('succeeded', 'starting', 'running')"),
	'0', 'every run succeeded');

$node->safe_psql('postgres', "SELECT cron.unschedule($jobid)");

# the executors the runs of an instant need are started ahead of it
$node->safe_psql('postgres', q{
	CREATE ROLE bob LOGIN;
	GRANT USAGE ON SCHEMA cron TO bob;
	CREATE TABLE ahead (job int, pid int, backend_start timestamptz);
	GRANT INSERT ON ahead TO bob;
});
my $at = $node->safe_psql('postgres',
	q{SELECT to_char(date_trunc('second', now()) + interval '4 seconds', 'YYYY-MM-DD HH24:MI:SS+00')});
$node->safe_psql('postgres', qq{SET ROLE bob;
	SELECT count(cron.schedule('ahead-' || i, '\@at $at',
		'INSERT INTO public.ahead SELECT ' || i || ', pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()'))
	FROM generate_series(1, 3) i});
ok($node->poll_query_until('postgres', 'SELECT count(*) = 3 FROM ahead'), 'the three runs due at one instant run');
is($node->safe_psql('postgres', qq{SELECT count(DISTINCT pid) || ' ' || count(*) FILTER (WHERE backend_start < '$at'::timestamptz) FROM ahead}),
	'3 3', 'in three executors, all started before that instant')
  or diag($node->safe_psql('postgres', "SELECT *, '$at' FROM ahead"));

$node->stop;
done_testing();
