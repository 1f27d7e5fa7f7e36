# Hooks across crashes, chains, notifications and HTTP: a run that
# committed just before the server crashed still fires its hook, once; a
# hook run a crash interrupts is retried and takes effect once; a chain
# A -> B -> A stops; alert_after and recovery; notify_channel; an HTTP
# hook posts the payload as JSON.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;
use JSON::PP;

my $node = PostgreSQL::Test::Cluster->new('hooks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
restart_after_crash = on
timezone = 'UTC'
cron.http_allow_networks = '127.0.0.0/8'
});
$node->append_conf('postgresql.conf', midday_zone_conf());
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE alerts (job text, payload jsonb, at timestamptz DEFAULT clock_timestamp());
	CREATE TABLE gate (x int);
});

sub poll_until
{
	my ($query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), $what);
}

# a crash of the whole server: a backend killed
sub crash
{
	my $session = $node->background_psql('postgres');
	my $victim = $session->query_safe('SELECT pg_backend_pid()');
	chomp $victim;
	kill 'KILL', $victim;
	$session->{run}->kill_kill;
	ok($node->poll_query_until('postgres', 'SELECT true'), 'the server is back after the crash');
}

# 1. The run commits, then the server crashes before the scheduler records
# it: the restarted scheduler finds it succeeded and fires its hook, once.
$node->safe_psql('postgres', q{
	SELECT cron.schedule('notify-ops', '0 0 30 2 *',
	                     $$INSERT INTO alerts (job) VALUES ('notify-ops')$$);
	SELECT cron.schedule('nightly', '0 0 30 2 *', 'SELECT pg_sleep(1)', on_success => 'notify-ops');
});
my $runid = $node->safe_psql('postgres', q{SELECT cron.run_now('nightly')});
poll_until(qq{SELECT status = 'running' FROM cron.job_run_details WHERE runid = $runid},
	'the run is running');
# the scheduler cannot record the run while its row is locked
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe("SELECT 1 FROM cron.job_run_details WHERE runid = $runid FOR UPDATE");
poll_until(qq{SELECT count(*) = 1 FROM cron.run_commit WHERE runid = $runid},
	'the run committed its success');
crash();
$holder->{run}->kill_kill;
poll_until(q{SELECT count(*) = 1 FROM alerts WHERE job = 'notify-ops'}, 'its hook ran after the restart');
poll_until(qq{SELECT status = 'succeeded' FROM cron.job_run_details WHERE runid = $runid},
	'the run is recorded succeeded');
poll_until(q{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')},
	'nothing is left running');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'notify-ops' AND r.trigger = 'hook' AND (r.payload->'run'->>'id')::bigint = $runid}),
	'1', 'one hook run follows the run');
is($node->safe_psql('postgres', q{SELECT count(*) FROM alerts WHERE job = 'notify-ops'}), '1', 'the hook took effect once');
is($node->safe_psql('postgres', q{
	SELECT total_runs || ' ' || total_successes || ' ' || running FROM cron.job_status WHERE jobname = 'nightly'}),
	'1 1 0', 'the statistics count the run once, nothing running');

# 2. The hook run itself is interrupted by a crash: it is retried and takes
# effect once.
$node->safe_psql('postgres', q{
	SELECT cron.schedule('page', '0 0 30 2 *',
	                     $$LOCK gate; INSERT INTO alerts (job, payload) VALUES ('page', NULL)$$,
	                     max_attempts => 3, retry_delay => '1 second');
	SELECT cron.schedule('loader', '0 0 30 2 *', 'SELECT 1/0', on_failure => 'page');
});
$holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK gate');
$runid = $node->safe_psql('postgres', q{SELECT cron.run_now('loader')});
poll_until(q{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'page' AND r.status = 'running' AND r.job_pid IS NOT NULL},
	'the hook run is running (waiting for the gate)');
crash();
$holder->{run}->kill_kill;
poll_until(q{SELECT count(*) = 1 FROM alerts WHERE job = 'page'}, 'the interrupted hook run is retried and done');
poll_until(q{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running') OR retry_at IS NOT NULL},
	'nothing is left to do');
is($node->safe_psql('postgres', q{SELECT count(*) FROM alerts WHERE job = 'page'}), '1', 'the hook took effect once');
is($node->safe_psql('postgres', q{
	SELECT string_agg(r.attempt || ' ' || r.status || ' ' || r.trigger || ' ' || (r.payload->'run'->>'status'), ', ' ORDER BY r.runid)
	FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'page'}),
	'1 failed hook failed, 2 succeeded retry failed', 'the retry of the hook run keeps its payload');

# 3. A chain A -> B -> A stops at the job that already ran in it.
$node->safe_psql('postgres', q{
	SELECT cron.schedule('chain-a', '0 0 30 2 *', $$INSERT INTO alerts (job) VALUES ('chain-a')$$);
	SELECT cron.schedule('chain-b', '0 0 30 2 *', $$INSERT INTO alerts (job) VALUES ('chain-b')$$,
	                     on_success => 'chain-a');
	SELECT cron.alter_job(jobid, on_success => 'chain-b') FROM cron.job WHERE jobname = 'chain-a';
	SELECT cron.run_now('chain-a');
});
poll_until(q{SELECT count(*) = 2 FROM alerts WHERE job LIKE 'chain-%'}, 'the chain runs A, then B');
poll_until(q{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')},
	'and ends');
is($node->safe_psql('postgres', q{SELECT string_agg(job, ' ' ORDER BY at) FROM alerts WHERE job LIKE 'chain-%'}),
	'chain-a chain-b', 'A ran once and B once');
like(slurp_file($node->logfile), qr/hook job \d+ \(chain-a\) already ran in this chain of hooks/,
	'the stop is logged');

# 4. alert_after 3: on_failure fires at 3 and 6 failures in a row, and once
# more with "recovered" at the first success; notify_channel tells every
# outcome.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN outcomes');
$node->safe_psql('postgres', q{
	SELECT cron.schedule('oncall', '0 0 30 2 *',
	                     $$INSERT INTO alerts (job) VALUES ('oncall')$$);
	SELECT cron.schedule('sync', '* * * * * *', 'SELECT 1/0', on_failure => 'oncall', alert_after => 3,
	                     notify_channel => 'outcomes');
});
poll_until(q{SELECT consecutive_failures >= 7 FROM cron.job_status WHERE jobname = 'sync'},
	'seven failures in a row');
$node->safe_psql('postgres', q{SELECT cron.alter_job(jobid, command => 'SELECT 1') FROM cron.job WHERE jobname = 'sync'});
poll_until(q{SELECT consecutive_failures = 0 AND last_status = 'succeeded' FROM cron.job_status WHERE jobname = 'sync'},
	'then a success');
$node->safe_psql('postgres', q{SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE jobname = 'sync'});
poll_until(q{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')}, 'sync stops');
is($node->safe_psql('postgres', q{
	SELECT string_agg((r.payload->>'consecutive_failures') || coalesce(' ' || (r.payload->>'recovered'), ''), ', ' ORDER BY r.runid)
	FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'oncall'}) =~ /^3, 6, (\d+, )*0 true$/ ? 1 : 0,
	1, 'on_failure fired at 3 and 6 failures in a row, then at the recovery');
my $counts = $node->safe_psql('postgres', q{
	SELECT total_runs || ' ' || total_failures || ' ' || total_successes FROM cron.job_status WHERE jobname = 'sync'});
my ($runs) = split / /, $counts;
# psql prints the notifications that came with the output of a query
my $heard = '';
my @notes;
for (1 .. 50)
{
	$heard .= $listener->query_safe('SELECT 1');
	@notes = ($heard =~ /Asynchronous notification "outcomes" with payload "(\{.*?\})" received/g);
	last if @notes >= $runs;
}
is(scalar(@notes), $runs, "notify_channel told each of the $runs outcomes");
my $last = decode_json($notes[-1]);
is($last->{run}{status} . ' ' . $last->{consecutive_failures} . ' ' . ($last->{recovered} ? 'recovered' : ''),
	'succeeded 0 recovered', 'the last notification is the recovery');
$listener->quit;

# 5. An HTTP hook without a body posts the payload, as JSON.
my ($port, $log, $server) = start_fault_server('hooks_http');
$node->safe_psql('postgres', qq{
	SELECT cron.schedule_http('chat', '0 0 30 2 *', 'http://127.0.0.1:$port/tag/chat');
	SELECT cron.schedule('report', '0 0 30 2 *', 'SELECT 42', on_success => 'chat');
	SELECT cron.run_now('report');
});
poll_until(q{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'chat' AND r.status = 'succeeded'}, 'the HTTP hook succeeded');
my ($request) = grep { $_->{path} eq '/tag/chat' } map { decode_json($_) } split /\n/, slurp_file($log);
my %headers = map { lc($_) => $request->{headers}{$_} } keys %{ $request->{headers} };
is($headers{'content-type'}, 'application/json', 'it is sent as application/json');
my $body = decode_json($request->{body});
is($body->{job}{name} . ' ' . $body->{run}{status} . ' ' . $body->{run}{return_message},
	'report succeeded SELECT 1', 'its body is the payload of the run it follows');
$server->kill_kill;

# 6. A role holds its once_per hook job's key lock in an open transaction
# (cron.unschedule, not committed): its hook run waits; the other roles'
# runs go on being recorded; after the ROLLBACK the hook runs, once.
$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	GRANT USAGE ON SCHEMA cron TO mallory;
	GRANT INSERT ON alerts TO mallory;
	SELECT cron.schedule('others', '* * * * * *', 'SELECT 1');
});
$node->safe_psql('postgres', q{
	SELECT cron.schedule('m-key', '0 0 30 2 *', $$INSERT INTO alerts (job) VALUES ('m-key')$$, once_per => 'day');
	SELECT cron.schedule('m-src', '0 0 30 2 *', 'SELECT 1', on_success => 'm-key');
}, extra_params => [ '-U', 'mallory' ]);
$holder = $node->background_psql('postgres', extra_params => [ '-U', 'mallory' ]);
$holder->query_safe('BEGIN');
$holder->query_safe(q{SELECT cron.unschedule('m-key')});
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{SELECT cron.run_now('m-src')}, extra_params => [ '-U', 'mallory' ]);
poll_until(q{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'm-key' AND r.trigger = 'hook' AND r.status = 'starting'},
	'the hook run waits for the key its owner holds');
my $before = $node->safe_psql('postgres', q{
	SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'others' AND r.status = 'succeeded'});
poll_until(qq{SELECT count(*) >= $before + 3 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
              WHERE j.jobname = 'others' AND r.status = 'succeeded'},
	'meanwhile another role\'s runs are recorded');
is($node->safe_psql('postgres', q{SELECT count(*) FROM alerts WHERE job = 'm-key'}), '0', 'the hook has not run');
$holder->query_safe('ROLLBACK');
poll_until(q{SELECT count(*) = 1 FROM alerts WHERE job = 'm-key'}, 'after the rollback the hook runs');
unlike(substr(slurp_file($node->logfile), $log_offset), qr/could not record|lock timeout/,
	'recording never failed meanwhile');
$holder->quit;

$node->stop;
done_testing();
