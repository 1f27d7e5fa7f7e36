# Crashes and failover: kill -9 of an executor and of the scheduler in the
# middle of runs, a clean restart, a standby that runs nothing, and its
# promotion, after which jobs run on it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
restart_after_crash = on
});
$node->append_conf('postgresql.conf', midday_zone_conf());
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE ticks (at timestamptz DEFAULT clock_timestamp());
});

# poll_until(node, query): wait for the query to return 't'
sub poll_until
{
	my ($n, $query, $what) = @_;
	ok($n->poll_query_until('postgres', $query), $what);
}

# a run that is still going when its process is killed
$node->safe_psql('postgres', q{SELECT cron.schedule('sleeper', '* * * * * *', 'SELECT pg_sleep(10)')});
poll_until($node, q{SELECT count(*) > 0 FROM cron.job_run_details WHERE status = 'running' AND job_pid IS NOT NULL},
	'a long run is running in an executor');
my ($runid, $exec_pid) = split /\|/, $node->safe_psql('postgres',
	q{SELECT runid, job_pid FROM cron.job_run_details WHERE status = 'running' ORDER BY runid LIMIT 1});
is($node->safe_psql('postgres', "SELECT backend_type FROM pg_stat_activity WHERE pid = $exec_pid"),
	'pg_chime executor', 'it runs in a pg_chime executor');

kill 'KILL', $exec_pid;
poll_until($node, qq{SELECT status = 'failed' FROM cron.job_run_details WHERE runid = $runid},
	'the run of the killed executor is failed');
like($node->safe_psql('postgres', qq{SELECT return_message FROM cron.job_run_details WHERE runid = $runid}),
	qr/crashed|interrupted|exited/, 'with a message saying why');
poll_until($node, q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'},
	'the scheduler is back');
$node->safe_psql('postgres', q{SELECT cron.unschedule('sleeper')});

# kill -9 of the scheduler itself while runs are going; a run with
# attempts left is retried after the restart
$node->safe_psql('postgres', q{
	SELECT cron.schedule('retried', format('@at %s', now() + interval '1 second'), 'SELECT pg_sleep(8)',
	                     max_attempts => 2, retry_delay => '1 second');
});
poll_until($node, q{SELECT count(*) > 0 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
                    WHERE j.jobname = 'retried' AND r.status = 'running' AND r.job_pid IS NOT NULL},
	'runs are going again');
my $sched_pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'});
kill 'KILL', $sched_pid;
poll_until($node, qq{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler' AND pid <> $sched_pid},
	'a new scheduler starts after the crash');
poll_until($node, q{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
                    WHERE j.jobname = 'retried' AND r.attempt = 2 AND r.trigger = 'retry'},
	'the interrupted run with attempts left is retried');
is($node->safe_psql('postgres', q{SELECT string_agg(attempt || ' ' || status, ', ' ORDER BY attempt)
                                  FROM cron.job_run_details r JOIN cron.job j USING (jobid)
                                  WHERE j.jobname = 'retried' AND r.attempt = 1}),
	'1 failed', 'its first attempt is failed');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT scheduled_time) FROM cron.job_run_details r
                                  JOIN cron.job j USING (jobid) WHERE j.jobname = 'retried'}),
	'1', 'both attempts belong to the same occurrence');
$node->safe_psql('postgres', q{SELECT cron.unschedule('retried')});
poll_until($node, q{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')},
	'no run is left starting or running');

# a clean restart: jobs keep running, on whole seconds
$node->safe_psql('postgres', q{SELECT cron.schedule('tick', '* * * * * *', 'INSERT INTO ticks DEFAULT VALUES')});
poll_until($node, q{SELECT count(*) >= 2 FROM ticks}, 'ticks before the restart');
$node->restart;
my $restarted = $node->safe_psql('postgres', 'SELECT now()');
poll_until($node, qq{SELECT count(*) >= 2 FROM ticks WHERE at > '$restarted'}, 'ticks after a clean restart');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details WHERE status IN ('starting', 'running') AND start_time < now() - interval '10 seconds'}),
	'0', 'no stale starting or running rows');

# a once-per-day job runs on the primary and claims today's key
$node->safe_psql('postgres', q{
	SELECT cron.schedule('daily', '* * * * * *', 'INSERT INTO ticks DEFAULT VALUES', once_per => 'day');
});
poll_until($node, q{SELECT state = 'succeeded' FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'daily'},
	'the once-per-day job ran on the primary');

# a streaming standby runs nothing
$node->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'base', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
is($standby->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_chime%'}),
	'0', 'no pg_chime process on the standby');

# the primary goes away; the promoted standby runs the jobs
$node->stop('immediate');
$standby->promote;
my $promoted = $standby->safe_psql('postgres', 'SELECT now()');
poll_until($standby, q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'},
	'the scheduler starts after promotion');
poll_until($standby, qq{SELECT count(*) >= 2 FROM ticks WHERE at > '$promoted'}, 'jobs run on the promoted standby');
poll_until($standby, q{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running') AND start_time < now() - interval '10 seconds'},
	'runs the old primary left open are failed');
is($standby->safe_psql('postgres', q{
	SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'daily' AND r.status <> 'skipped'}),
	'1', 'the promoted standby knows today\'s key is taken: the once-per-day job does not run again');

$standby->stop;
done_testing();
