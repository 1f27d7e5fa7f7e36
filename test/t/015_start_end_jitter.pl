# The scheduler fires exactly what cron.next_runs(job_id) lists for a job
# with start_at, end_at and jitter: the jittered instants, none before
# start_at, none at or after end_at.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('bounds');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_chime');

# every 10 seconds, each start up to 8 seconds late, from 12 s from now
# for 40 s: what next_runs lists when the job is made is what runs
my $id = $node->safe_psql('postgres', q{
	SELECT cron.schedule('bounded', '*/10 * * * * *', 'SELECT 1', jitter => '8 seconds',
	                     start_at => date_trunc('second', now()) + interval '12 seconds',
	                     end_at => date_trunc('second', now()) + interval '52 seconds')});
my $listed = $node->safe_psql('postgres', qq{
	SELECT string_agg(t::text, ',' ORDER BY t) FROM cron.next_runs($id, 10) t});
my @listed = split /,/, $listed;
ok(@listed == 4, 'four instants between start_at and end_at') or diag($listed);
is($node->safe_psql('postgres', qq{
	SELECT bool_and(extract(second FROM t)::int % 10 < 8) FROM cron.next_runs($id, 10) t}),
	't', 'each instant is less than the jitter after its 10-second mark');
ok($node->poll_query_until('postgres', qq{
	SELECT now() > (SELECT end_at + interval '3 seconds' FROM cron.job WHERE jobid = $id)
	   AND count(*) = 0 FROM cron.job_run_details WHERE jobid = $id AND status IN ('starting', 'running')}),
	'the job\'s span has passed');
my $ran = $node->safe_psql('postgres', qq{
	SELECT string_agg(scheduled_time::text, ',' ORDER BY scheduled_time) FROM cron.job_run_details
	WHERE jobid = $id AND status = 'succeeded'});
is($ran, $listed, 'the scheduler ran exactly the listed instants');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM cron.job_run_details WHERE jobid = $id AND start_time < scheduled_time}),
	'0', 'none started before its jittered instant');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM cron.next_runs($id, 5)}), '0', 'nothing is listed after end_at');

# @reboot: its one occurrence is the scheduler's start, bounded too
$node->safe_psql('postgres', q{
	CREATE TABLE booted (name text);
	SELECT cron.schedule('boot-now', '@reboot', $$INSERT INTO booted VALUES ('now')$$);
	SELECT cron.schedule('boot-ended', '@reboot', $$INSERT INTO booted VALUES ('ended')$$, end_at => '2001-01-01');
	SELECT cron.schedule('boot-later', '@reboot', $$INSERT INTO booted VALUES ('later')$$, start_at => '2100-01-01');
});
$node->restart;
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM booted WHERE name = 'now'}), 'an @reboot job runs at the start');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'boot-now' AND r.status IN ('starting', 'running')}), 'and ends');
is($node->safe_psql('postgres', q{SELECT string_agg(name, ',') FROM booted}), 'now',
	'the ones past end_at or before start_at do not');

$node->stop;
done_testing();
