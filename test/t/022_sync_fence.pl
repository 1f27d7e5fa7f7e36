# A run's start is committed, and replicated to the synchronous standbys,
# before the run is handed on: with a synchronous standby named that is not
# there, the scheduler waits in its start commit and nothing runs, even
# when synchronous_commit is off for everyone else.  Once the standby is no
# longer required, the runs go on, each recorded.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sync_fence');
# (streaming allowed: without WAL senders nothing waits for a standby)
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
timezone = 'UTC'
synchronous_commit = off
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE ticks (at timestamptz DEFAULT clock_timestamp());
	ALTER SYSTEM SET synchronous_standby_names = 'absent_standby';
	SELECT pg_reload_conf();
});
ok($node->poll_query_until('postgres', q{SELECT current_setting('synchronous_standby_names') = 'absent_standby'}),
	'a synchronous standby is required, and none is there');

# (this session's own commit does not wait: synchronous_commit is off)
my $made = $node->safe_psql('postgres', 'SELECT now()');
my $id = $node->safe_psql('postgres', q{SELECT cron.schedule('tick', '* * * * * *', 'INSERT INTO ticks DEFAULT VALUES')});
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler' AND wait_event = 'SyncRep'
	   AND clock_timestamp() > '$made'::timestamptz + interval '2 seconds'}),
	'two instants later, the scheduler waits for the standby in a commit');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ticks'), '0', 'and the run has not been executed');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE jobid = $id"), '0',
	'nor is its start visible');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_chime executor'"),
	'0', 'no executor was given it');

my $reset = $node->safe_psql('postgres', 'SELECT now()');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', 'SELECT count(*) >= 3 FROM ticks'), 'without the standby required, the runs go on');
# (the wait in the commit had reset the latch that told of the new job:
# it was read only at the next timer, up to 30 s later)
is($node->safe_psql('postgres', "SELECT min(at) < '$reset'::timestamptz + interval '10 seconds' FROM ticks"), 't',
	'at once, not at the next timer');
$node->safe_psql('postgres', "SELECT cron.unschedule($id)");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM cron.job_run_details WHERE jobid = $id AND status IN ('starting', 'running')"),
	'the last run ends');
is($node->safe_psql('postgres', "SELECT (SELECT count(*) FROM ticks) = count(*) FROM cron.job_run_details WHERE jobid = $id AND status = 'succeeded'"),
	't', 'each execution has its run recorded');

done_testing();
