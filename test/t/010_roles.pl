# Roles cannot stop each other's jobs: a hostile role (mallory) against an
# ordinary one (alice), with the pool of executors and HTTP slots small on
# purpose.  Foreign holders of advisory locks, concurrency keys of the same
# name, one role's long SQL runs and hanging HTTP transfers, superuser jobs
# when cron.enable_superuser_jobs is turned off, and a sub-millisecond
# timeout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my ($port, $log, $server) = start_fault_server('roles_server');
my $base = "http://127.0.0.1:$port";

my $node = PostgreSQL::Test::Cluster->new('roles');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
cron.max_running_jobs = 2
cron.http_max_in_flight = 4
cron.http_timeout = '60s'
timezone = 'UTC'
});
$node->append_conf('postgresql.conf', midday_zone_conf());
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE ROLE alice LOGIN;
	CREATE ROLE mallory LOGIN;
	CREATE ROLE outsider LOGIN;
	GRANT USAGE ON SCHEMA cron TO alice, mallory;
	CREATE TABLE ticks (who text, at timestamptz DEFAULT clock_timestamp());
	GRANT INSERT ON ticks TO alice, mallory;
	-- long commands of mallory's wait for a row here
	CREATE TABLE release (at timestamptz);
	GRANT SELECT ON release TO mallory;
});
ok($node->poll_query_until('postgres', "SELECT true FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'"),
	'the scheduler is up');

sub as
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', "SET ROLE $role; $sql");
}

# count(role, job, status): that job's rows in that status
sub count_runs
{
	my ($jobid, $status) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM cron.job_run_details WHERE jobid = $jobid AND status = '$status'");
}

sub wait_runs
{
	my ($jobid, $status, $n, $what) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT count(*) >= $n FROM cron.job_run_details WHERE jobid = $jobid AND status = '$status'");
	ok($ok, $what) or diag($node->safe_psql('postgres',
		"SELECT status, count(*), min(return_message) FROM cron.job_run_details WHERE jobid = $jobid GROUP BY 1"));
}

# ---- advisory locks of anyone decide nothing ------------------------------
my $locked = as('alice', q{SELECT cron.schedule('locked', '* * * * * *', $$INSERT INTO public.ticks VALUES ('locked')$$)});
my $holder = $node->background_psql('postgres', on_error_stop => 0);
$holder->query_safe('SET ROLE outsider');
# every lock pg_chime 1.0 took, and the shape of today's in both advisory forms
$holder->query_safe(qq{
	SELECT pg_advisory_lock(1667788033, hashint4($locked)), pg_advisory_lock(1667788034, 0),
	       pg_advisory_lock(1667788035, hashint4($locked)), pg_advisory_lock(0, $locked),
	       pg_advisory_lock($locked), pg_advisory_lock(1, $locked)});
wait_runs($locked, 'succeeded', 3, 'a role without cron access holding advisory locks does not stop a job');
is(count_runs($locked, 'skipped'), '0', 'no run was skipped for a foreign lock');
$holder->quit;
as('alice', "SELECT cron.unschedule($locked)");

# a command that waits until 'release' has a row newer than the job
sub held
{
	return q{DO $$BEGIN WHILE NOT EXISTS (SELECT 1 FROM public.release) LOOP PERFORM pg_sleep(0.05); END LOOP; END$$};
}

# ---- concurrency keys are per owner ---------------------------------------
my $hog_key = as('mallory', "SELECT cron.schedule('hog-key', '* * * * * *', \$q\$" . held() . "\$q\$, concurrency_key => 'nightly')");
ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = $hog_key AND status = 'running'"),
	"mallory's job holds key 'nightly'");
is($node->safe_psql('postgres', q{SELECT string_agg(l.locktype || ' ' || l.objsubid, ',' ORDER BY l.objsubid)
	FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	WHERE a.backend_type = 'pg_chime executor' AND l.locktype IN ('advisory', 'userlock')}),
	'userlock 1,userlock 2', "the run holds its job's and its key's locks as userlocks, which no SQL function takes");
my $keyed = as('alice', q{SELECT cron.schedule('keyed', '* * * * * *', $$INSERT INTO public.ticks VALUES ('keyed')$$, concurrency_key => 'nightly')});
wait_runs($keyed, 'succeeded', 2, "alice's job with the same key name runs while mallory's holds it");
is(count_runs($keyed, 'skipped'), '0', "alice's runs never skip for mallory's key");
as('alice', "SELECT cron.unschedule($keyed)");
as('mallory', "SELECT cron.unschedule($hog_key)");
$node->safe_psql('postgres', 'INSERT INTO release VALUES (now())');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM cron.job_run_details WHERE jobid = $hog_key AND status IN ('starting', 'running')"),
	"mallory's held run ends when released");
$node->safe_psql('postgres', 'DELETE FROM release');

# ---- one role's long SQL runs do not take every executor -----------------
$node->append_conf('postgresql.conf', "cron.max_running_jobs_per_role = 1\n");
$node->reload;
my @long;
for my $i (1 .. 4)
{
	push @long, as('mallory', "SELECT cron.schedule('long-$i', '* * * * * *', \$q\$" . held() . "\$q\$)");
}
my $held_now = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_chime executor' AND query LIKE 'DO %public.release%'";
ok($node->poll_query_until('postgres', "SELECT ($held_now) = 1"),
	"mallory's long runs hold one executor (cron.max_running_jobs_per_role = 1)");
my $steady = as('alice', q{SELECT cron.schedule('steady', '* * * * * *', $$INSERT INTO public.ticks VALUES ('steady')$$)});
wait_runs($steady, 'succeeded', 3, "alice's job runs beside mallory's long ones");
is($node->safe_psql('postgres', $held_now), '1', 'mallory never had more than her share of executors');
for my $j (@long) { as('mallory', "SELECT cron.unschedule($j)") }
$node->safe_psql('postgres', 'INSERT INTO release VALUES (now())');
as('alice', "SELECT cron.unschedule($steady)");
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')}),
	"mallory's queued long runs end once released");

# ---- without a per-role cap, the executors are shared fairly -------------
$node->append_conf('postgresql.conf', "cron.max_running_jobs_per_role = 0\n");
$node->reload;
my @busy;
for my $i (1 .. 12)
{
	push @busy, as('mallory', qq{SELECT cron.schedule('busy-$i', '* * * * * *', 'SELECT pg_sleep(0.7)')});
}
ok($node->poll_query_until('postgres', "SELECT count(*) >= 6 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.username = 'mallory' AND j.jobname LIKE 'busy-%' AND r.status = 'succeeded'"),
	"mallory's busy jobs fill both executors");
my $fair = as('alice', q{SELECT cron.schedule('fair', '* * * * * *', $$INSERT INTO public.ticks VALUES ('fair')$$)});
wait_runs($fair, 'succeeded', 3, "alice's job gets an executor while mallory's keep both busy");
my $mallory_after = $node->safe_psql('postgres', qq{SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.username = 'mallory' AND r.status = 'succeeded' AND r.start_time > (SELECT min(start_time) FROM cron.job_run_details WHERE jobid = $fair)});
cmp_ok($mallory_after, '>', 0, "and mallory's jobs kept running too");
for my $j (@busy) { as('mallory', "SELECT cron.unschedule($j)") }
as('alice', "SELECT cron.unschedule($fair)");

# ---- HTTP: one role's hanging transfers do not take every slot -----------
$node->append_conf('postgresql.conf', "cron.http_max_in_flight_per_role = 2\n");
$node->reload;
my @hangs;
for my $i (1 .. 6)
{
	push @hangs, as('mallory', qq{SELECT cron.schedule_http('hang-$i', '* * * * * *', '$base/hang')});
}
# the fault server logs each request as it arrives
sub hangs_received
{
	open(my $fh, '<', $log) or return 0;
	my $n = grep { /"\/hang"/ } <$fh>;
	close $fh;
	return $n;
}
my $deadline = time + 60;
select(undef, undef, undef, 0.1) while hangs_received() < 2 && time < $deadline;
is(hangs_received(), 2, "mallory's hanging transfers hold two slots (cron.http_max_in_flight_per_role = 2)");
my $hook = as('alice', qq{SELECT cron.schedule_http('alice-hook', '* * * * * *', '$base/ok')});
wait_runs($hook, 'succeeded', 3, "alice's HTTP job runs beside mallory's hanging ones");
is(hangs_received(), 2, 'mallory never had more than two transfers going');

# unscheduling a job cancels its transfers in flight
for my $j (@hangs) { as('mallory', "SELECT cron.unschedule($j)") }
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM cron.job_run_details r
	WHERE r.username = 'mallory' AND r.status IN ('starting', 'running')}),
	"unscheduling mallory's jobs ends their transfers at once");
like($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT return_message, ' | ') FROM cron.job_run_details
	WHERE username = 'mallory' AND command LIKE '%/hang' AND status = 'failed'}),
	qr/cancelled/, 'their runs are recorded as cancelled');
as('alice', "SELECT cron.unschedule($hook)");

# ---- cron.enable_superuser_jobs is checked at every start ----------------
$node->safe_psql('postgres', q{CREATE ROLE grows LOGIN; GRANT USAGE ON SCHEMA cron TO grows; GRANT INSERT ON ticks TO grows});
my $super = $node->safe_psql('postgres', q{SELECT cron.schedule('super', '* * * * * *', $$INSERT INTO public.ticks VALUES ('super')$$)});
my $grows = as('grows', q{SELECT cron.schedule('grows', '* * * * * *', $$INSERT INTO public.ticks VALUES ('grows')$$)});
my $super_http = $node->safe_psql('postgres', qq{SELECT cron.schedule_http('super-http', '* * * * * *', '$base/ok')});
wait_runs($super, 'succeeded', 1, 'a superuser job runs while cron.enable_superuser_jobs is on');
wait_runs($grows, 'succeeded', 1, 'so does the job of an ordinary role');
$node->safe_psql('postgres', 'ALTER ROLE grows SUPERUSER');
$node->append_conf('postgresql.conf', "cron.enable_superuser_jobs = off\n");
$node->reload;
wait_runs($super, 'failed', 2, 'then turned off: the superuser job fails at its next starts');
like($node->safe_psql('postgres', "SELECT return_message FROM cron.job_run_details WHERE jobid = $super AND status = 'failed' LIMIT 1"),
	qr/42501: role "\w+" is a superuser and cron.enable_superuser_jobs is off/, 'saying why');
wait_runs($grows, 'failed', 2, 'a role made superuser after scheduling is refused too');
wait_runs($super_http, 'failed', 2, 'and a superuser HTTP job');
like($node->safe_psql('postgres', "SELECT return_message FROM cron.job_run_details WHERE jobid = $super_http AND status = 'failed' LIMIT 1"),
	qr/is a superuser and cron.enable_superuser_jobs is off/, 'saying why');
$node->safe_psql('postgres', "SELECT cron.unschedule($super); SELECT cron.unschedule($grows); SELECT cron.unschedule($super_http)");

# ---- a timeout under a millisecond is one millisecond, not none ----------
my $tiny = as('alice', q{SELECT cron.schedule('tiny', '* * * * * *', 'SELECT pg_sleep(2)', timeout => '100 microseconds')});
wait_runs($tiny, 'failed', 1, 'timeout => 100 microseconds cancels a 2 s command');
like($node->safe_psql('postgres', "SELECT return_message FROM cron.job_run_details WHERE jobid = $tiny AND status = 'failed' LIMIT 1"),
	qr/statement timeout/, 'as a statement timeout');
as('alice', "SELECT cron.unschedule($tiny)");

# ---- a role's job quota bounds a job that schedules jobs -----------------
$node->safe_psql('postgres', 'ALTER ROLE alice SET cron.max_jobs_per_role = 3');
my $spawner = as('alice', q{SELECT cron.schedule('spawner', '* * * * * *', $$SELECT cron.schedule('@daily', 'SELECT 1')$$)});
wait_runs($spawner, 'failed', 2, 'a job scheduling a job every second hits cron.max_jobs_per_role');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job WHERE username = 'alice'}), '3',
	"alice has exactly her quota of jobs");
like($node->safe_psql('postgres', "SELECT return_message FROM cron.job_run_details WHERE jobid = $spawner AND status = 'failed' LIMIT 1"),
	qr/54000: .*cron\.max_jobs_per_role \(3\)/, 'the failure names the setting and its value');

# ---- rows a role holds in an open transaction hold up no one else ----------
$node->safe_psql('postgres', 'ALTER ROLE alice RESET cron.max_jobs_per_role');
as('alice', "SELECT cron.unschedule($spawner)");
$node->safe_psql('postgres', q{DELETE FROM cron.job WHERE username = 'alice'});
my $beat = as('alice', q{SELECT cron.schedule('beat', '* * * * * *', $$INSERT INTO public.ticks VALUES ('beat')$$)});
wait_runs($beat, 'succeeded', 1, "alice's heartbeat job runs");
my $at = as('mallory', q{SELECT cron.schedule('at-held', format('@at %s', to_char(now() + interval '3 seconds',
	'YYYY-MM-DD HH24:MI:SS+00')), 'SELECT 1')});
my $keyed_fail = as('mallory', q{SELECT cron.schedule('key-held', '* * * * * *', 'SELECT 1/0', once_per => 'day',
	max_attempts => 3, retry_delay => '3 seconds')});
wait_runs($keyed_fail, 'failed', 1, "mallory's keyed job claims its day and fails once");
my $hold = $node->background_psql('postgres', on_error_stop => 0);
$hold->query_safe('SET ROLE mallory');
$hold->query_safe('BEGIN');
# the @at job's row (alter_job locks it), and the claims of the keyed job (release_key)
$hold->query_safe("SELECT cron.alter_job($at, command => 'SELECT 2')");
$hold->query_safe("SELECT cron.release_key($keyed_fail, 'no-such-key')");
my $held_since = $node->safe_psql('postgres', 'SELECT now()');
wait_runs($keyed_fail, 'failed', 3, "mallory's keyed job retries while she holds its claims");
ok($node->poll_query_until('postgres', qq{SELECT count(*) >= 8 FROM cron.job_run_details WHERE jobid = $beat
	AND status = 'succeeded' AND start_time > '$held_since'}),
	"alice's job keeps running while mallory holds her rows in an open transaction");
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM cron.job_run_details WHERE jobid = $at AND status = 'succeeded'"),
	"mallory's \@at job ran though she holds its row");
is($node->safe_psql('postgres', "SELECT active FROM cron.job WHERE jobid = $at"), 't',
	'its deactivation waits for her transaction');
$hold->query_safe('ROLLBACK');
$hold->quit;
ok($node->poll_query_until('postgres', "SELECT NOT active FROM cron.job WHERE jobid = $at"),
	'and is made once she lets go');
ok($node->poll_query_until('postgres', "SELECT state = 'failed' FROM cron.job_run_key WHERE jobid = $keyed_fail"),
	"the keyed job's key ends failed once she lets go");
ok(!$node->log_contains(qr/could not record the runs/), 'recording never failed for it');
as('mallory', "SELECT cron.unschedule($keyed_fail)");

# ---- a huge error, and a request huge with its secrets in place ----------
my $loud = as('alice', q{SELECT cron.schedule('loud', '* * * * * *', $q$DO $x$BEGIN RAISE EXCEPTION '%', repeat('x', 3000000); END$x$ $q$)});
wait_runs($loud, 'failed', 2, 'a job raising a 3 MB error fails');
like($node->safe_psql('postgres', "SELECT length(return_message) < 70000 AND return_message LIKE '%(cut: % bytes in all)'
	FROM cron.job_run_details WHERE jobid = $loud AND status = 'failed' LIMIT 1"), qr/^t$/,
	'its return_message is cut to 64 kB, saying so');
wait_runs($beat, 'succeeded', 20, 'and other jobs are recorded meanwhile');
as('alice', "SELECT cron.unschedule($loud)");
as('alice', q{SELECT cron.set_secret('big', repeat('s', 64000))});
my $swell = as('alice', qq{SELECT cron.schedule_http('swell', '* * * * * *', '$base/ok', body => repeat('{{secret.big}}', 200))});
wait_runs($swell, 'failed', 1, 'a body that swells past 8 MB with its secrets fails');
like($node->safe_psql('postgres', "SELECT return_message FROM cron.job_run_details WHERE jobid = $swell AND status = 'failed' LIMIT 1"),
	qr/with its secrets and variables in place the request is longer than 8388608 bytes/, 'saying why');
my $beat_now = $node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE jobid = $beat AND status = 'succeeded'");
wait_runs($beat, 'succeeded', $beat_now + 3, 'and other jobs go on');
as('alice', "SELECT cron.unschedule($swell); SELECT cron.unschedule($beat)");

$node->stop;
$server->kill_kill;
done_testing();
