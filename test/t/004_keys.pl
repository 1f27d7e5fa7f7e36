# once_per keys through crashes, downtime and a race: a run killed in the
# middle is retried inside the same key and succeeds once; a server back
# inside the window catches up, one back after it records a missed row;
# run_now in two sessions and the scheduler racing for one key: one claim.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my $node = PostgreSQL::Test::Cluster->new('keys');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
restart_after_crash = on
timezone = 'UTC'
});
$node->append_conf('postgresql.conf', midday_zone_conf());
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE done (job text, at timestamptz DEFAULT clock_timestamp());
});

sub poll_until
{
	my ($query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), $what);
}

# a run of a once_per job killed in the middle: the executor, a crash of
# the whole server (a backend killed), and the scheduler stopped (SIGTERM)
# while its executor goes on: the new scheduler stops that executor before
# it retries, so the job never runs twice
for my $how ('executor', 'backend', 'scheduler')
{
	my $job = "batch-$how";
	$node->safe_psql('postgres', qq{
		SELECT cron.schedule('$job', format('\@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
		                     \$\$SELECT pg_sleep(3); INSERT INTO done VALUES ('$job')\$\$,
		                     once_per => 'day', max_attempts => 3, retry_delay => '1 second');
	});
	poll_until(qq{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	              WHERE j.jobname = '$job' AND r.status = 'running' AND r.job_pid IS NOT NULL},
		"$job: the first attempt is running");
	my $victim;
	if ($how eq 'scheduler')
	{
		$victim = $node->safe_psql('postgres', q{
			SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'});
		kill 'TERM', $victim;
	}
	elsif ($how eq 'executor')
	{
		$victim = $node->safe_psql('postgres', qq{
			SELECT r.job_pid FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = '$job'});
	}
	else
	{
		my $session = $node->background_psql('postgres');
		$victim = $session->query_safe('SELECT pg_backend_pid()');
		chomp $victim;
		kill 'KILL', $victim;
		$session->{run}->kill_kill;
	}
	kill 'KILL', $victim if $how eq 'executor';
	poll_until(qq{SELECT count(*) = 1 FROM done WHERE job = '$job'}, "$job: it is retried and done");
	poll_until(qq{SELECT now() > max(end_time) + interval '4 seconds' FROM cron.job_run_details r
	              JOIN cron.job j USING (jobid) WHERE j.jobname = '$job'}, "$job: time for a second run to show");
	is($node->safe_psql('postgres', qq{SELECT count(*) FROM done WHERE job = '$job'}), '1', "$job: done once");
	poll_until(qq{SELECT state = 'succeeded' FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = '$job'},
		"$job: its key ends succeeded");
	is($node->safe_psql('postgres', qq{
		SELECT string_agg(r.attempt || ' ' || r.status || ' ' || (r.run_key = k.run_key), ', ' ORDER BY r.attempt)
		FROM cron.job_run_details r JOIN cron.job j USING (jobid) JOIN cron.job_run_key k USING (jobid)
		WHERE j.jobname = '$job'}),
		'1 failed true, 2 succeeded true', "$job: one failed attempt, one success, both in the key");
	is($node->safe_psql('postgres', qq{
		SELECT k.runid = max(r.runid) FROM cron.job_run_key k JOIN cron.job j USING (jobid)
		JOIN cron.job_run_details r USING (jobid) WHERE j.jobname = '$job' GROUP BY k.runid}),
		't', "$job: the key names the attempt that succeeded");
}

# two sessions call run_now for the same key while the scheduler's own
# occurrence of it comes due: exactly one claim wins
$node->safe_psql('postgres', q{
	SELECT cron.schedule('raced', format('@at %s', to_char(now() + interval '3 seconds', 'YYYY-MM-DD HH24:MI:SS+00')),
	                     $$INSERT INTO done VALUES ('raced')$$, once_per => 'day');
});
my $first = $node->background_psql('postgres');
my $second = $node->background_psql('postgres', on_error_stop => 0);
$first->query_safe('BEGIN');
$first->query_safe(q{SELECT cron.run_now('raced')});
$second->{stdin} .= q{SELECT cron.run_now('raced');} . "\n" . q{\echo second-done} . "\n";
$second->{run}->pump_nb;
poll_until(q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%run_now%'},
	'the second run_now waits for the first');
poll_until(q{SELECT now() > (SELECT substr(schedule, 5)::timestamptz FROM cron.job WHERE jobname = 'raced') + interval '1 second'},
	'the scheduler\'s occurrence passes while the first holds the key');
$first->query_safe('COMMIT');
$second->{run}->pump until $second->{stdout} =~ /second-done/;
like($second->{stderr}, qr/already run for key \d{4}-\d\d-\d\d/, 'the second run_now is refused, naming the key');
poll_until(q{SELECT count(*) = 1 FROM done WHERE job = 'raced'}, 'the winning claim runs');
poll_until(q{SELECT now() > (SELECT claimed_at FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'raced') + interval '3 seconds'},
	'the scheduler has had time to try its occurrence again');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || string_agg(trigger, ',') FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'raced'}), '1 manual', 'one run in all: the manual one');
$first->quit;
$second->quit;

# downtime with a window: a daily job at 03:00 New York time, window
# 03:00-06:00, catchup 3 hours.  Down at 02:59:50 and back at 04:30: it
# runs at 04:30 for its 03:00 occurrence.  Down again until 07:00 the next
# day: nothing runs, a missed row says why.
sub restart_at
{
	my ($utc) = @_;
	$node->stop('fast');
	my $now = time();
	$node->append_conf('postgresql.conf',
		sprintf("cron.clock_skew = '%d seconds'\n", $utc - $now));
	$node->start;
}
restart_at(1781074790);    # 2026-06-10 06:59:50Z = 02:59:50 EDT
$node->safe_psql('postgres', q{
	SELECT cron.schedule('daily-batch', '0 3 * * *', $$INSERT INTO done VALUES ('daily-batch')$$,
	                     timezone => 'America/New_York', run_window => '03:00-06:00', once_per => 'day',
	                     max_attempts => 5, retry_delay => '1 minute', catchup => '3 hours');
});
restart_at(1781080200);    # 2026-06-10 08:30:00Z = 04:30 EDT
poll_until(q{SELECT count(*) = 1 FROM done WHERE job = 'daily-batch'}, 'back at 04:30: the batch runs');
is($node->safe_psql('postgres', q{
	SELECT r.trigger || ' ' || r.scheduled_time || ' ' || r.run_key || ' ' || k.state
	FROM cron.job_run_details r JOIN cron.job j USING (jobid) JOIN cron.job_run_key k USING (jobid, run_key)
	WHERE j.jobname = 'daily-batch'}),
	'catchup 2026-06-10 07:00:00+00 2026-06-10 succeeded', 'as a catch-up run of 03:00, in the key of the 10th');
restart_at(1781175600);    # 2026-06-11 11:00:00Z = 07:00 EDT
poll_until(q{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'daily-batch' AND r.status = 'missed'}, 'back at 07:00 the next day: a missed row');
is($node->safe_psql('postgres', q{
	SELECT r.scheduled_time || ' ' || r.run_key || ' ' || r.return_message
	FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'daily-batch' AND r.status = 'missed'}),
	'2026-06-11 07:00:00+00 2026-06-11 could not start: the run_window had closed', 'saying why');
is($node->safe_psql('postgres', q{SELECT count(*) FROM done WHERE job = 'daily-batch'}), '1', 'and nothing ran');

$node->stop;
done_testing();
