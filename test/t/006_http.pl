# HTTP jobs against a loopback fault server (test/fault_server.py): what
# each fault is recorded as, retries, secrets that reach the server and
# nowhere else, a one-second SQL job that keeps its rhythm while transfers
# hang, and a fast shutdown with transfers in flight.
use strict;
use warnings;
use Cwd 'abs_path';
use File::Basename;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my $server_script = dirname(abs_path(__FILE__)) . '/../fault_server.py';
my $log = "${PostgreSQL::Test::Utils::tmp_check}/fault_server.log";

# a free loopback port for the fault server
my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die;
my $port = $probe->sockport;
close $probe;
my $server = IPC::Run::start(['python3', $server_script, $port, $log],
	'>', "$log.out", '2>', "$log.err");
my $base = "http://127.0.0.1:$port";

my $node = PostgreSQL::Test::Cluster->new('http');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
cron.http_timeout = '3s'
cron.http_max_response_size = '1MB'
cron.max_retry_delay = '10s'
timezone = 'UTC'
# the test's own SQL (cron.set_secret with a value) is not logged
log_statement = none
});
$node->append_conf('postgresql.conf', midday_zone_conf());
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE ticks (at timestamptz DEFAULT clock_timestamp());
	SELECT cron.set_secret('api_token', 'tok-7f3a9c-secret');
});
ok($node->poll_query_until('postgres', "SELECT true FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'"),
	'the scheduler is up');
my $ready = 0;
for (1 .. 100) { my $s = IO::Socket::INET->new("127.0.0.1:$port"); if ($s) { $ready = 1; last } select(undef, undef, undef, 0.1) }
ok($ready, 'the fault server is up');

# http(name, path, options): schedule it due in a second; its job id
sub http
{
	my ($name, $path, $options) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT cron.schedule_http('$name', format('\@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
		                          '$base$path'$options)});
}

sub rows
{
	my ($job) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(attempt || ' ' || status || ' ' || coalesce(http_status::text, '-') || ' ' || return_message,
		                  E'\\n' ORDER BY attempt)
		FROM cron.job_run_details WHERE jobid = $job});
}

sub settled
{
	my ($job, $n, $what) = @_;
	ok($node->poll_query_until('postgres', qq{
		SELECT count(*) = $n AND bool_and(status NOT IN ('starting', 'running'))
		FROM cron.job_run_details WHERE jobid = $job}), $what);
}

# a slow server must not delay other jobs: a one-second SQL job all along
$node->safe_psql('postgres', q{SELECT cron.schedule('tick', '* * * * * *', 'INSERT INTO ticks DEFAULT VALUES')});

my $ok = http('ok', '/ok', q{, method => 'POST', headers => '{"x-token": "{{secret.api_token}}"}', body => '{"token": "{{secret.api_token}}"}'});
my $flaky = http('flaky', '/flaky/a', q{, max_attempts => 3, retry_delay => '1 second'});
my $limited = http('limited', '/limited/a', q{, max_attempts => 2, retry_delay => '1 second'});
my $notfound = http('notfound', '/status/404', q{, max_attempts => 3, retry_delay => '1 second'});
my $hang = http('hang', '/hang', q{, max_attempts => 1});
my $trickle = http('trickle', '/trickle', q{, timeout => '2 seconds'});
my $big = http('big', '/big', '');
my $loop = http('loop', '/loop', q{, max_attempts => 3});
my $tofile = http('to-file', '/to-file', q{, max_attempts => 3});
my $denied = $node->safe_psql('postgres', q{
	SELECT cron.schedule_http('denied', format('@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
	                          'http://169.254.169.254/latest/meta-data')});
my $refused = $node->safe_psql('postgres', q{
	SELECT cron.schedule_http('refused-port', format('@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
	                          'http://127.0.0.1:1/')});

settled($ok, 1, '200: done');
like(rows($ok), qr/^1 succeeded 200 200 OK, 4 bytes, \d+ ms$/, '200: succeeded, with status, size and time');
is($node->safe_psql('postgres', "SELECT response_body FROM cron.job_run_details WHERE jobid = $ok"), 'fine',
	'200: the body is recorded');

settled($flaky, 2, '500 then 200: two attempts');
like(rows($flaky), qr/^1 failed 500 500 .*\n2 succeeded 200 200 OK/, '500 then 200: retried, then succeeded');

settled($limited, 2, '429 with Retry-After: two attempts');
like(rows($limited), qr/^1 failed 429 429 .*\n2 succeeded 200/, '429: retried');
ok($node->safe_psql('postgres', qq{
	SELECT max(start_time) - min(start_time) >= interval '1.9 seconds' FROM cron.job_run_details WHERE jobid = $limited}) eq 't',
	'429: the retry waited for Retry-After (2 s) rather than retry_delay (1 s)');

settled($notfound, 1, '404: one attempt');
like(rows($notfound), qr/^1 failed 404 404 /, '404: failed, not retried');

settled($hang, 1, 'a hanging server: one attempt');
like(rows($hang), qr/^1 failed - timeout after 3000 ms$/, 'a hanging server: timeout after cron.http_timeout');

settled($trickle, 1, 'one byte a second: one attempt');
like(rows($trickle), qr/^1 failed - timeout after 2000 ms$/, "one byte a second: the job's own timeout");

settled($big, 1, '100 MB: one attempt');
like(rows($big), qr/^1 failed .* refused: response larger than cron.http_max_response_size/, '100 MB: refused past the size cap');

settled($loop, 1, 'a redirect loop: one attempt');
like(rows($loop), qr/^1 failed .*refused: more than 5 redirects/, 'a redirect loop: refused, not retried');

settled($tofile, 1, 'a redirect to file://: one attempt');
like(rows($tofile), qr/^1 failed .*refused: only http and https/, 'a redirect to file://: refused, not retried');

settled($refused, 1, 'a refused connection: done');
like(rows($refused), qr/^1 failed - connection refused$/, 'a refused connection');

settled($denied, 1, 'a denied address: done');
like(rows($denied), qr/^1 failed - refused: address 169\.254\.169\.254 is in cron\.http_deny_networks$/,
	'an address in cron.http_deny_networks is refused before connecting');

# the secret reached the server, in the header and the body, and is nowhere else
open(my $fh, '<', $log) or die "no fault server log";
my @ok_requests = grep { m{"path": "/ok"} } <$fh>;
close $fh;
like($ok_requests[0], qr/"x-token": "tok-7f3a9c-secret"/, 'the secret header arrives with its value');
like($ok_requests[0], qr/\{\\"token\\": \\"tok-7f3a9c-secret\\"\}/, 'and so does the secret in the body');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
		SELECT row(j.*)::text AS t FROM cron.job j
		UNION ALL SELECT row(r.*)::text FROM cron.job_run_details r
		UNION ALL SELECT row(k.*)::text FROM cron.job_run_key k) x
	WHERE t LIKE '%tok-7f3a9c%'}), '0', 'the secret value is in no table but cron.secret');
my $server_log = slurp_file($node->logfile);
unlike($server_log, qr/tok-7f3a9c/, 'nor in the server log');

# a secret dropped after scheduling: the run fails naming it
$node->safe_psql('postgres', q{SELECT cron.set_secret('gone_soon', 'x')});
my $gone = http('gone', '/ok', q{, headers => '{"x-gone": "{{secret.gone_soon}}"}', max_attempts => 3});
$node->safe_psql('postgres', q{SELECT cron.drop_secret('gone_soon')});
settled($gone, 1, 'a missing secret: one attempt');
like(rows($gone), qr/^1 failed - failed: secret "gone_soon" of role (\w+) does not exist \(pg_dump does not keep secret values\); as \1, SELECT cron.set_secret\('gone_soon', '<value>'\)$/, 'it fails naming the secret');

# windows, keys and overlap apply to HTTP jobs as to SQL jobs: a job every
# second, once per day, runs once
my $daily = $node->safe_psql('postgres', qq{
	SELECT cron.schedule_http('daily-hook', '* * * * * *', '$base/ok', once_per => 'day')});
ok($node->poll_query_until('postgres', qq{SELECT state = 'succeeded' FROM cron.job_run_key WHERE jobid = $daily}),
	'a once-per-day HTTP job claims its key and succeeds');
ok($node->poll_query_until('postgres', qq{
	SELECT now() > finished_at + interval '2.5 seconds' FROM cron.job_run_key WHERE jobid = $daily}),
	'later occurrences of the day come and go');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM cron.job_run_details WHERE jobid = $daily}), '1',
	'the once-per-day HTTP job ran once');
$node->safe_psql('postgres', qq{SELECT cron.unschedule($daily)});

# the one-second job kept its rhythm while transfers hung and trickled
note('largest gap between ticks: ' . $node->safe_psql('postgres',
	q{SELECT max(gap) FROM (SELECT at - lag(at) OVER (ORDER BY at) AS gap FROM ticks) g}));
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT at - lag(at) OVER (ORDER BY at) AS gap FROM ticks) g
	WHERE gap > interval '1.5 seconds'}), '0', 'the one-second SQL job never waited more than 1.5 s');

# fast shutdown with transfers in flight: prompt; nothing left running
$node->safe_psql('postgres', qq{
	SELECT cron.schedule_http('hang-' || i, '* * * * * *', '$base/hang', timeout => '1 hour')
	FROM generate_series(1, 20) i});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) >= 20 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname LIKE 'hang-%' AND r.status = 'running'}), 'transfers are hanging');
my $t0 = time();
$node->stop('fast');
ok(time() - $t0 < 20, 'a fast shutdown with transfers in flight is prompt');
$node->start;
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname LIKE 'hang-%' AND r.status IN ('starting', 'running')
	  AND r.start_time < pg_postmaster_start_time()}), 'after the restart no run of before is left running');

$node->stop('immediate');
$server->kill_kill;
done_testing();
