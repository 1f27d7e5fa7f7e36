# concurrency_limit: a key with limit 3 and 10 jobs due at once never has
# more than 3 running, runs all 10 in the order they came, skips none; a
# wait longer than catchup ends 'missed'; runs waiting across a restart
# still run, one at a time.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('limit');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
timezone = 'UTC'
max_worker_processes = 24
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE spans (job text, started timestamptz, ended timestamptz);
	-- the jobs' command: its span (clock_timestamp() at each statement)
	CREATE FUNCTION at_in(seconds int) RETURNS text LANGUAGE sql
	    AS $$SELECT '@at ' || to_char(now() + make_interval(secs => seconds), 'YYYY-MM-DD HH24:MI:SS+00')$$;
	CREATE FUNCTION span_command(job text, seconds numeric) RETURNS text LANGUAGE sql
	    AS $$SELECT format('INSERT INTO spans VALUES (%L, clock_timestamp(), NULL); SELECT pg_sleep(%s); '
	                       'UPDATE spans SET ended = clock_timestamp() WHERE job = %L', job, seconds, job)$$;
});

sub poll_until
{
	my ($query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), $what);
}

# the most spans of 'prefix' open at one instant
sub most_at_once
{
	my ($prefix) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT max(n) FROM (SELECT (SELECT count(*) FROM spans b WHERE b.job LIKE '$prefix%'
		                            AND b.started <= a.started AND (b.ended IS NULL OR b.ended > a.started)) AS n
		                    FROM spans a WHERE a.job LIKE '$prefix%') s});
}

# 1. limit 3, 10 jobs due at the same instant
$node->safe_psql('postgres', q{
	SELECT count(cron.schedule('ten-' || lpad(i::text, 2, '0'), at_in(4), span_command('ten-' || lpad(i::text, 2, '0'), 2),
	                           concurrency_key => 'pool', concurrency_limit => 3))
	FROM generate_series(1, 10) i;
});
poll_until(q{SELECT count(*) = 7 FROM cron.job_run_details WHERE status = 'waiting'}, 'seven runs wait for the key');
is($node->safe_psql('postgres', q{SELECT DISTINCT return_message FROM cron.job_run_details WHERE status = 'waiting'}),
	'waiting: concurrency_key "pool" is full (concurrency_limit 3)', 'saying why');
poll_until(q{SELECT count(*) = 10 FROM spans WHERE job LIKE 'ten-%' AND ended IS NOT NULL}, 'all ten ran');
poll_until(q{SELECT count(*) = 10 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname LIKE 'ten-%' AND r.status = 'succeeded'}, 'and succeeded');
is(most_at_once('ten-'), '3', 'never more than 3 at once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details WHERE status IN ('skipped', 'missed', 'waiting')}),
	'0', 'none skipped, missed or left waiting');
# first come, first served: those that waited were let in (their
# start_time) in the order they were recorded (runid; all had one instant)
my $order = $node->safe_psql('postgres', q{
	SELECT string_agg(r.runid::text, ' ' ORDER BY r.start_time)
	FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname LIKE 'ten-%' AND r.start_time > r.scheduled_time + interval '500 milliseconds'});
my @order = split / /, $order;
is(scalar(@order), 7, 'seven runs waited');
is($order, join(' ', sort { $a <=> $b } @order), 'and started in FIFO order');

# 2. a wait longer than catchup: missed, saying why
$node->safe_psql('postgres', q{
	SELECT cron.schedule('hog', at_in(3), span_command('hog', 6), concurrency_key => 'solo');
	SELECT cron.schedule('late', at_in(4), span_command('late', 0), concurrency_key => 'solo', catchup => '2 seconds');
});
poll_until(q{SELECT status = 'missed' FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'late'},
	'the run that waited past its catchup is missed');
is($node->safe_psql('postgres', q{SELECT return_message FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'late'}),
	'could not start within catchup: concurrency_key "solo" stayed full', 'saying why');
is($node->safe_psql('postgres', q{SELECT count(*) FROM spans WHERE job = 'late'}), '0', 'it did not run');
poll_until(q{SELECT count(*) = 1 FROM spans WHERE job = 'hog' AND ended IS NOT NULL}, 'the holder finishes');

# 3. a restart while runs wait: they are read back and run, one at a time
$node->safe_psql('postgres', q{
	SELECT cron.schedule('first', at_in(3), span_command('first', 4), concurrency_key => 'one');
	SELECT cron.schedule('then-a', at_in(4), span_command('then-a', 1), concurrency_key => 'one', catchup => '5 minutes');
	SELECT cron.schedule('then-b', at_in(4), span_command('then-b', 1), concurrency_key => 'one', catchup => '5 minutes');
});
poll_until(q{SELECT count(*) = 2 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname LIKE 'then-%' AND r.status = 'waiting'}, 'two runs wait');
# (an immediate stop: nothing is recorded on the way down, as in a crash)
$node->stop('immediate');
$node->start;
poll_until(q{SELECT count(*) = 2 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname LIKE 'then-%' AND r.status = 'succeeded'}, 'after the restart both ran');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details WHERE status = 'waiting'}), '0',
	'nothing is left waiting');
is(most_at_once('then-'), '1', 'one at a time');

$node->stop;
done_testing();
