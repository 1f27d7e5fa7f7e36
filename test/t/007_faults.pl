# Faults a job or an administrator brings: a job that crashes its process
# twice is deactivated and the server stays up; whatever ends the
# scheduler (terminate, an ERROR, kill -9), no once_per key runs twice;
# a pending retry survives a restart; the run log locked for 20 seconds
# stops nothing and loses nothing; 24 (database, role) pairs share the
# default worker slots; DROP EXTENSION never deadlocks with the
# scheduler; an idle executor leaves a database being dropped.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my $node = PostgreSQL::Test::Cluster->new('faults');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
restart_after_crash = on
max_worker_processes = 8
timezone = 'UTC'
});
$node->append_conf('postgresql.conf', midday_zone_conf());
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE effects (job text, at timestamptz DEFAULT clock_timestamp());
	CREATE TABLE flag (fail boolean);
	INSERT INTO flag VALUES (true);
});

sub poll_until
{
	my ($query, $what, $db) = @_;
	ok($node->poll_query_until($db // 'postgres', $query), $what);
}

sub scheduler_pid
{
	my $pid = '';
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'});
	$pid = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'});
	return $pid;
}

# ---- the poison-job rule ----------------------------------------------------
# (a job whose process dies twice in a row, here by kill -9)
$node->safe_psql('postgres', q{
	SELECT cron.schedule('poison', '0 0 30 2 *', 'SELECT pg_sleep(60)');
	SELECT cron.run_now('poison');
});
for my $round (1, 2)
{
	poll_until(qq{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	              WHERE j.jobname = 'poison' AND r.attempt = $round AND r.status = 'running'
	              AND r.job_pid IS NOT NULL},
		"poison: attempt $round is running");
	my $pid = $node->safe_psql('postgres', qq{SELECT r.job_pid FROM cron.job_run_details r
		JOIN cron.job j USING (jobid) WHERE j.jobname = 'poison' AND r.attempt = $round});
	kill 'KILL', $pid;
	poll_until(qq{SELECT status = 'failed' FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	              WHERE j.jobname = 'poison' AND r.attempt = $round},
		"poison: attempt $round is failed after the crash-restart");
}
like($node->safe_psql('postgres', q{SELECT string_agg(r.attempt || ' ' || r.trigger || ' ' || r.return_message, E'\n'
		ORDER BY r.attempt) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'poison'}),
	qr/^1 manual crashed: .*\n2 retry crashed: .*deactivated/,
	'poison: retried once after the first crash (max_attempts is 1), the second crash deactivates it');
is($node->safe_psql('postgres', q{SELECT active FROM cron.job WHERE jobname = 'poison'}), 'f',
	'poison: the job is inactive');
ok($node->log_contains(qr/WARNING:  pg_chime: job \d+ \(poison, role \w+\) deactivated/),
	'poison: a WARNING names the job');
$node->safe_psql('postgres', q{SELECT cron.schedule('after-poison', '0 0 30 2 *', $$INSERT INTO effects VALUES ('after-poison')$$);
	SELECT cron.run_now('after-poison')});
poll_until(q{SELECT count(*) = 1 FROM effects WHERE job = 'after-poison'}, 'poison: the cluster runs jobs afterwards');
my $restarts = () = slurp_file($node->logfile) =~ /all server processes terminated; reinitializing/g;
is($restarts, 2, 'poison: two crash-restarts, no more');

# ---- whatever ends the scheduler, a once_per key runs once ----------------
# Eight once_per jobs start together, each sleeping a different time
# before its effect; the scheduler is ended while some are running and
# some have committed.  In the catalog's database the success commits
# with the job; in another one the run's transaction id is noted first.
$node->safe_psql('postgres', 'CREATE DATABASE elsewhere');
$node->safe_psql('elsewhere', 'CREATE TABLE effects (job text, at timestamptz DEFAULT clock_timestamp())');
for my $how ('terminate', 'error', 'kill', 'elsewhere')
{
	my $old = scheduler_pid();
	my $db = $how eq 'elsewhere' ? 'elsewhere' : 'postgres';
	$node->safe_psql('postgres', qq{
		SELECT cron.schedule('$how-' || i, '* * * * * *',
		       format(\$\$SELECT pg_sleep(%s); INSERT INTO effects VALUES ('$how-%s')\$\$, i * 0.25, i),
		       once_per => 'day', max_attempts => 5, retry_delay => '1 second', database => '$db')
		FROM generate_series(1, 8) i;
	});
	ok($node->poll_query_until($db, qq{SELECT count(*) >= 2 FROM effects WHERE job LIKE '$how-%'}),
		"$how: some runs have committed");
	if ($how eq 'terminate' || $how eq 'elsewhere')
	{
		# three times in a row, each as soon as the new scheduler is up
		for my $round (1 .. 3)
		{
			$node->safe_psql('postgres', "SELECT pg_terminate_backend($old)");
			$node->poll_query_until('postgres', qq{SELECT count(*) = 1 FROM pg_stat_activity
				WHERE backend_type = 'pg_chime scheduler' AND pid <> $old});
			$old = scheduler_pid();
		}
	}
	elsif ($how eq 'error')
	{
		$node->safe_psql('postgres', "SELECT pg_cancel_backend($old)");
	}
	else
	{
		kill 'KILL', $old;
	}
	poll_until(qq{SELECT count(*) = 8 FROM cron.job_run_key k JOIN cron.job j USING (jobid)
	              WHERE j.jobname LIKE '$how-%' AND k.state = 'succeeded'}, "$how: every key ends succeeded");
	is($node->safe_psql($db, qq{SELECT count(*) FROM effects WHERE job LIKE '$how-%'}), '8',
		"$how: eight effects");
	is($node->safe_psql($db, qq{SELECT count(*) FROM (SELECT job FROM effects WHERE job LIKE '$how-%'
		GROUP BY job HAVING count(*) > 1) s}), '0', "$how: no job ran twice");
	is($node->safe_psql('postgres', qq{SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
		WHERE j.jobname LIKE '$how-%' AND r.status = 'succeeded'}), '8', "$how: one succeeded row per key");
	$node->safe_psql('postgres', qq{SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE '$how-%'});
}

# ---- a pending retry survives a restart --------------------------------------
$node->safe_psql('postgres', q{
	SELECT cron.schedule('flaky', format('@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
	       $$INSERT INTO effects VALUES ('flaky'); SELECT 1 / (NOT fail)::int FROM flag$$,
	       once_per => 'day', max_attempts => 3, retry_delay => '4 seconds');
});
poll_until(q{SELECT retry_at IS NOT NULL FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'flaky' AND r.attempt = 1 AND r.status = 'failed'},
	'retry: the first attempt failed, its retry is planned');
$node->restart;
$node->safe_psql('postgres', 'UPDATE flag SET fail = false');
poll_until(q{SELECT state = 'succeeded' FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'flaky'},
	'retry: made after the restart, and the key ends succeeded');
is($node->safe_psql('postgres', q{SELECT string_agg(r.attempt || ' ' || r.trigger || ' ' || r.status || ' ' ||
		(r.retry_at IS NULL), ', ' ORDER BY r.attempt) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
		WHERE j.jobname = 'flaky'}),
	'1 schedule failed true, 2 retry succeeded true', 'retry: two attempts, nothing left pending');
is($node->safe_psql('postgres', q{SELECT count(*) FROM effects WHERE job = 'flaky'}), '1',
	'retry: the effect of the failed attempt was rolled back, the retry committed');

# ---- a scheduler that stops before it plans the retries of interrupted runs
# The new scheduler ends the interrupted runs, then cannot load the jobs
# (cron.job is locked) and exits before it has set the retries' times:
# the next one makes the retries all the same, and the keys are kept.
$node->safe_psql('postgres', q{
	CREATE TABLE hold (on_ boolean);
	INSERT INTO hold VALUES (true);
	SELECT cron.schedule('replan-' || i, '* * * * * *',
	       format($$SELECT pg_sleep(CASE WHEN on_ THEN 60 ELSE 0 END) FROM hold; INSERT INTO effects VALUES ('replan-%s')$$, i),
	       once_per => 'day', max_attempts => 3, retry_delay => '1 second')
	FROM generate_series(1, 2) i;
});
poll_until(q{SELECT count(*) = 2 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname LIKE 'replan-%' AND r.status = 'running' AND r.job_pid IS NOT NULL},
	'replan: both first attempts are running');
$node->safe_psql('postgres', 'UPDATE hold SET on_ = false');
# (cron.job is not read while it is locked)
my $replan_ids = $node->safe_psql('postgres',
	q{SELECT string_agg(jobid::text, ',') FROM cron.job WHERE jobname LIKE 'replan-%'});
my $replan_locker = $node->background_psql('postgres');
$replan_locker->query_safe('BEGIN');
$replan_locker->query_safe('LOCK TABLE cron.job IN ACCESS EXCLUSIVE MODE');
my $replan_old = scheduler_pid();
my $replan_log = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($replan_old)");
poll_until(qq{SELECT count(*) = 2 FROM cron.job_run_details r
             WHERE r.status = 'failed' AND r.return_message LIKE 'interrupted:%'
             AND r.jobid IN ($replan_ids)},
	'replan: a new scheduler ended both interrupted attempts');
ok($node->wait_for_log(qr/lock timeout|canceling statement due to lock timeout/, $replan_log),
	'replan: and could not load the jobs while cron.job is locked');
is($node->safe_psql('postgres', qq{SELECT string_agg(k.state || ' ' || (r.retry_at IS NOT NULL), ', ')
		FROM cron.job_run_key k JOIN cron.job_run_details r ON r.jobid = k.jobid AND r.run_key = k.run_key
		WHERE k.jobid IN ($replan_ids)}),
	'running true, running true', 'replan: the keys stay taken, a retry is still to be made');
$replan_locker->query_safe('COMMIT');
$replan_locker->quit;
poll_until(q{SELECT count(*) = 2 FROM cron.job_run_key k JOIN cron.job j USING (jobid)
             WHERE j.jobname LIKE 'replan-%' AND k.state = 'succeeded'},
	'replan: the retries are made and both keys end succeeded');
is($node->safe_psql('postgres', q{SELECT string_agg(job || ' ' || n, ', ' ORDER BY job)
		FROM (SELECT job, count(*) n FROM effects WHERE job LIKE 'replan-%' GROUP BY job) s}),
	'replan-1 1, replan-2 1', 'replan: each job took effect once');
is($node->safe_psql('postgres', q{SELECT string_agg(r.attempt || ' ' || r.status || ' ' || (r.retry_at IS NULL), ', '
		ORDER BY r.attempt) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'replan-1'}),
	'1 failed true, 2 succeeded true', 'replan: two attempts, nothing left pending');
$node->safe_psql('postgres', q{SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'replan-%'});

# ---- the run log locked for 20 seconds ---------------------------------------
my $tick = $node->safe_psql('postgres', q{SELECT cron.schedule('tick', '* * * * * *', $$INSERT INTO effects VALUES ('tick')$$)});
poll_until(q{SELECT count(*) >= 2 FROM effects WHERE job = 'tick'}, 'locked: the ticks run');
my $sched = scheduler_pid();
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE cron.job_run_details IN ACCESS EXCLUSIVE MODE');
my $locked_at = time;
# hold it 20 seconds (nothing here reads the run log meanwhile)
ok($node->poll_query_until('postgres', "SELECT clock_timestamp() > to_timestamp($locked_at) + interval '20 seconds'"),
	'locked: twenty seconds pass');
$locker->query_safe('COMMIT');
$locker->quit;
poll_until(qq{SELECT count(*) >= 1 FROM cron.job_run_details WHERE jobid = $tick AND trigger = 'catchup'
              AND status = 'succeeded' AND start_time > to_timestamp($locked_at + 19)},
	'locked: the occurrences it held up start late, as one catch-up run');
poll_until(qq{SELECT count(*) >= 2 FROM cron.job_run_details WHERE jobid = $tick AND trigger = 'schedule'
              AND status = 'succeeded' AND start_time > to_timestamp($locked_at + 19)},
	'locked: then the ticks are on time again');
$node->safe_psql('postgres', q{SELECT cron.unschedule('tick')});
poll_until(qq{SELECT count(*) = 0 FROM cron.job_run_details WHERE jobid = $tick AND status IN ('starting', 'running')},
	'locked: nothing is left starting or running');
is($node->safe_psql('postgres', qq{SELECT (SELECT count(*) FROM effects WHERE job = 'tick') || ' ' ||
		(SELECT count(*) FROM cron.job_run_details WHERE jobid = $tick AND status = 'succeeded')}),
	$node->safe_psql('postgres', q{SELECT count(*) || ' ' || count(*) FROM effects WHERE job = 'tick'}),
	'locked: every tick that ran is recorded once, none recorded that did not run');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM cron.job_run_details WHERE jobid = $tick
		AND status NOT IN ('succeeded', 'skipped')}), '0', 'locked: no run failed or went missing');
is(scheduler_pid(), $sched, 'locked: the scheduler never restarted');
ok($node->log_contains(qr/WARNING:  pg_chime: could not record the runs/), 'locked: a WARNING says so');

# ---- a stored row out of range; a trigger on the run log that raises --------
my $bad = $node->safe_psql('postgres', q{SELECT cron.schedule('bad-row', '* * * * * *', 'SELECT 1')});
$node->safe_psql('postgres', qq{UPDATE cron.job SET timeout = '1000000 days', retry_delay = '2000000000 days'
	WHERE jobid = $bad});
my $good = $node->safe_psql('postgres', q{SELECT cron.schedule('good-row', '* * * * * *', $$INSERT INTO effects VALUES ('good-row')$$)});
poll_until(q{SELECT count(*) >= 3 FROM effects WHERE job = 'good-row'}, 'bad row: other jobs run');
ok($node->log_contains(qr/WARNING:  pg_chime: job $bad cannot be scheduled/), 'bad row: a WARNING names it');
$node->safe_psql('postgres', qq{SELECT cron.unschedule($bad)});

$node->safe_psql('postgres', q{
	CREATE TABLE refuse (now_on boolean);
	INSERT INTO refuse VALUES (true);
	CREATE FUNCTION refuse_runs() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT now_on FROM public.refuse) THEN RAISE EXCEPTION 'the run log refuses rows'; END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER refuse_runs BEFORE INSERT OR UPDATE ON cron.job_run_details
	    FOR EACH ROW EXECUTE FUNCTION refuse_runs();
});
my $refused_at = time;
ok($node->poll_query_until('postgres', "SELECT clock_timestamp() > to_timestamp($refused_at) + interval '8 seconds'"),
	'trigger: eight seconds pass');
$node->safe_psql('postgres', 'UPDATE refuse SET now_on = false');
poll_until(qq{SELECT count(*) >= 2 FROM cron.job_run_details WHERE jobid = $good AND status = 'succeeded'
              AND trigger = 'schedule' AND start_time > to_timestamp($refused_at + 8)},
	'trigger: the job runs and is recorded again');
$node->safe_psql('postgres', qq{SELECT cron.unschedule($good)});
poll_until(qq{SELECT count(*) = 0 FROM cron.job_run_details WHERE jobid = $good AND status IN ('starting', 'running')},
	'trigger: nothing is left starting or running');
is($node->safe_psql('postgres', qq{SELECT (SELECT count(*) FROM effects WHERE job = 'good-row') =
		(SELECT count(*) FROM cron.job_run_details WHERE jobid = $good AND status = 'succeeded')}), 't',
	'trigger: every run that committed is recorded once');
is(scheduler_pid(), $sched, 'trigger: the scheduler never restarted');
ok($node->log_contains(qr/could not record the runs .*: the run log refuses rows/), 'trigger: a WARNING says why');
$node->safe_psql('postgres', 'DROP TRIGGER refuse_runs ON cron.job_run_details');

# ---- 24 (database, role) pairs, max_worker_processes = 8 ---------------------
$node->safe_psql('postgres', q{
	CREATE TABLE hits (who name, at timestamptz DEFAULT clock_timestamp());
	GRANT INSERT ON hits TO PUBLIC;
	DO $$BEGIN FOR i IN 1..24 LOOP
		EXECUTE format('CREATE ROLE pair_%s LOGIN', i);
		EXECUTE format('GRANT USAGE ON SCHEMA cron TO pair_%s', i);
	END LOOP; END$$;
	SELECT cron.schedule('pair-' || i, format('@at %s', to_char(date_trunc('second', now()) + interval '3 seconds',
	       'YYYY-MM-DD HH24:MI:SS+00')), 'INSERT INTO public.hits (who) VALUES (current_user)',
	       username => 'pair_' || i)
	FROM generate_series(1, 24) i;
});
poll_until(q{SELECT count(*) = 24 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname LIKE 'pair-%' AND r.status = 'succeeded'}, 'pairs: all 24 ran');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT who) FROM hits}), '24', 'pairs: each once, as its role');
my $late = $node->safe_psql('postgres', q{SELECT round(extract(epoch FROM max(h.at) - (SELECT min(r.scheduled_time)
	FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname LIKE 'pair-%'))::numeric, 3) FROM hits h});
note("pairs: the last of 24 started $late s after the instant");
ok($late < 10, 'pairs: all started within seconds (not in waves of a minute)');
ok($node->log_contains(qr/WARNING:  pg_chime: no background worker slot is free/), 'pairs: a WARNING says slots are short');

# ---- DROP EXTENSION while the scheduler reloads jobs -------------------------
my $dropped = 0;
for my $i (1 .. 20)
{
	# each statement commits, and so wakes the scheduler to reload
	my $sql = join('', map { "SELECT count(cron.schedule('reload-$_-' || g, '* * * * * *', 'SELECT 1')) FROM generate_series(1, 3) g;\n" } 1 .. 8);
	my ($ret, $out, $err) = $node->psql('postgres', $sql . "DROP EXTENSION pg_chime;\nCREATE EXTENSION pg_chime;\n",
		on_error_stop => 1);
	$dropped++ if $ret == 0;
	diag("round $i: $err") if $ret != 0;
}
is($dropped, 20, 'drop extension: 20 of 20 rounds drop and create it, no deadlock');
$node->safe_psql('postgres', q{SELECT cron.schedule('after-drop', '0 0 30 2 *', $$INSERT INTO public.effects VALUES ('after-drop')$$);
	SELECT cron.run_now('after-drop')});
poll_until(q{SELECT count(*) = 1 FROM effects WHERE job = 'after-drop'}, 'drop extension: jobs run afterwards');

# ---- plain DROP DATABASE with an idle executor in it -------------------------
$node->safe_psql('postgres', q{CREATE DATABASE doomed});
$node->safe_psql('postgres', q{SELECT cron.schedule_in_database('doomed-job', '0 0 30 2 *', 'VACUUM', 'doomed');
	SELECT cron.run_now('doomed-job')});
poll_until(q{SELECT status = 'succeeded' FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'doomed-job'}, 'drop database: its job ran there');
ok($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'doomed'}) >= 1,
	'drop database: an idle executor is connected to it');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE doomed');
is($ret, 0, 'drop database: plain DROP DATABASE succeeds') or diag($err);

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up at the end');
done_testing();
