# What an HTTP endpoint receives from a job: the {{...}} variables filled
# in (URL percent-encoded, headers, body), {{run.idempotency_key}} the same
# for every attempt of an occurrence and different between two run_now
# calls, the payload of cron.run_now, a payload that looks like a variable
# sent as it is, and the Content-Type chosen for a body.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;
use JSON::PP;

my $node = PostgreSQL::Test::Cluster->new('run_context');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
timezone = 'UTC'
cron.http_allow_networks = '127.0.0.0/8'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_chime');
my ($port, $log, $server) = start_fault_server('run_context');

sub poll_until
{
	my ($query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), $what);
}

# the requests whose path starts with 'prefix', in the order they came
sub requests
{
	my ($prefix) = @_;
	return () unless -e $log;
	return grep { index($_->{path}, $prefix) == 0 } map { decode_json($_) } split /\n/, slurp_file($log);
}

sub header
{
	my ($request, $name) = @_;
	my %h = map { lc($_) => $request->{headers}{$_} } keys %{ $request->{headers} };
	return $h{ lc $name };
}

# 1. Every variable, with a payload from cron.run_now
$node->safe_psql('postgres', qq{
	SELECT cron.set_secret('token', 's3cret');
	SELECT cron.schedule_http('ctx', '0 0 30 2 *',
		'http://127.0.0.1:$port/tag/ctx-{{job.id}}-{{run.id}}?org={{payload.org.name}}&k={{run.key}}',
		headers => '{"Idempotency-Key": "{{run.idempotency_key}}", "X-Attempt": "{{run.attempt}}",
		             "X-Trigger": "{{run.trigger}}", "Authorization": "Bearer {{secret.token}}"}',
		body => '{"job": "{{job.name}}", "at": "{{run.scheduled_time}}", "payload": {{payload}}, "n": {{payload.n}}}',
		once_per => 'day');
});
my $jobid = $node->safe_psql('postgres', q{SELECT jobid FROM cron.job WHERE jobname = 'ctx'});
my $runid = $node->safe_psql('postgres',
	q{SELECT cron.run_now('ctx', payload => '{"org": {"name": "a b/c&d"}, "n": 3, "x": "{{secret.token}}"}')});
poll_until(qq{SELECT status = 'succeeded' FROM cron.job_run_details WHERE runid = $runid}, 'the run succeeded');
my ($r) = requests('/tag/ctx-');
my $day = $node->safe_psql('postgres', q{SELECT to_char(now(), 'YYYY-MM-DD')});
is($r->{path}, "/tag/ctx-$jobid-$runid?org=a%20b%2Fc%26d&k=$day",
	'the URL has the job id, run id and key, the payload field percent-encoded');
is(header($r, 'Idempotency-Key'), "$jobid-$runid", 'the idempotency key of a first attempt');
is(header($r, 'X-Attempt') . ' ' . header($r, 'X-Trigger'), '1 manual', 'attempt and trigger');
is(header($r, 'Authorization'), 'Bearer s3cret', 'the secret is in place');
is(header($r, 'Content-Type'), 'application/json', 'a JSON body goes as application/json');
my $body = decode_json($r->{body});
my $scheduled = $node->safe_psql('postgres', qq{
	SELECT to_char(scheduled_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
	FROM cron.job_run_details WHERE runid = $runid});
is($body->{job} . ' ' . $body->{at} . ' ' . $body->{n}, "ctx $scheduled 3", 'job name, scheduled time (UTC) and a number field');
is($body->{payload}{x}, '{{secret.token}}', 'a payload naming a secret is sent as it is, not expanded');
is($body->{payload}{org}{name}, 'a b/c&d', 'the whole payload is in the body');

# 2. A retry (the endpoint fails the first request): a new run id and
# attempt, the same idempotency key and payload
$node->safe_psql('postgres', qq{
	SELECT cron.schedule_http('flaky', '0 0 30 2 *', 'http://127.0.0.1:$port/flaky/ctx',
		headers => '{"Idempotency-Key": "{{run.idempotency_key}}", "X-Run": "{{run.attempt}} {{run.id}}",
		             "X-At": "{{run.scheduled_time}}"}',
		body => 'n={{payload.n}}', max_attempts => 3, retry_delay => '1 second');
});
my $flaky = $node->safe_psql('postgres', q{SELECT jobid FROM cron.job WHERE jobname = 'flaky'});
my $first = $node->safe_psql('postgres', q{SELECT cron.run_now('flaky', payload => '{"n": 1}')});
poll_until(qq{SELECT count(*) = 1 FROM cron.job_run_details WHERE jobid = $flaky AND status = 'succeeded'},
	'the flaky job succeeds on its retry');
my @attempts = requests('/flaky/ctx');
is(scalar(@attempts), 2, 'it was sent twice');
my %keys = map { header($_, 'Idempotency-Key') => 1 } @attempts;
is(join(',', keys %keys), "$flaky-$first", 'both attempts carry the first attempt\'s idempotency key');
is(header($attempts[0], 'X-Run'), "1 $first", 'the first attempt: its number and run id');
my $second = $node->safe_psql('postgres', qq{SELECT runid FROM cron.job_run_details WHERE jobid = $flaky AND attempt = 2});
is(header($attempts[1], 'X-Run'), "2 $second", 'the second: its own');
is($attempts[1]{body}, 'n=1', 'the retry keeps the payload');
is(header($attempts[1], 'X-At'), header($attempts[0], 'X-At'), 'and the scheduled time, to the microsecond');
like(header($attempts[0], 'X-At'), qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/, 'ISO 8601 in UTC');
is(header($attempts[1], 'Content-Type'), 'text/plain', 'a body that is not JSON goes as text/plain');

# 3. Two run_now calls: different idempotency keys; a body with its own
# Content-Type keeps it; no body and a payload posts the payload
$node->safe_psql('postgres', qq{
	SELECT cron.schedule_http('twice', '0 0 30 2 *', 'http://127.0.0.1:$port/tag/twice',
		headers => '{"Idempotency-Key": "{{run.idempotency_key}}", "Content-Type": "application/x-www-form-urlencoded"}',
		body => 'a=1');
	SELECT cron.schedule_http('bare', '0 0 30 2 *', 'http://127.0.0.1:$port/tag/bare');
	SELECT cron.run_now('twice'); SELECT cron.run_now('twice');
	SELECT cron.run_now('bare', payload => '{"event": "signup", "user": 42}');
});
poll_until(q{SELECT count(*) = 3 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname IN ('twice', 'bare') AND r.status = 'succeeded'}, 'the three runs succeeded');
my @twice = requests('/tag/twice');
is(scalar(@twice), 2, 'two requests');
isnt(header($twice[0], 'Idempotency-Key'), header($twice[1], 'Idempotency-Key'), 'with different idempotency keys');
is(header($twice[0], 'Content-Type'), 'application/x-www-form-urlencoded', 'the job\'s own Content-Type is kept');
my ($bare) = requests('/tag/bare');
is_deeply(decode_json($bare->{body}), { event => 'signup', user => 42 }, 'a job without a body posts the payload');
is(header($bare, 'Content-Type'), 'application/json', 'as JSON');

# 4. A payload field that is missing fails the run, saying which
$node->safe_psql('postgres', qq{SELECT cron.release_key($jobid, '$day')});
my $missing = $node->safe_psql('postgres', q{SELECT cron.run_now('ctx', payload => '{"org": {}}')});
poll_until(qq{SELECT status = 'failed' FROM cron.job_run_details WHERE runid = $missing}, 'the run fails');
is($node->safe_psql('postgres', qq{SELECT return_message FROM cron.job_run_details WHERE runid = $missing}),
	'failed: {{payload.org.name}}: the payload has no field "org.name"', 'naming the field');
is(scalar(requests('/tag/ctx-')), 1, 'and sends nothing');

# 5. A body nested deeper than the JSON parser's stack allows is not JSON:
# it goes as text/plain, and the scheduler stays up
my $scheduler = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'});
$node->safe_psql('postgres', qq{
	SELECT cron.schedule_http('deep', '0 0 30 2 *', 'http://127.0.0.1:$port/tag/deep', body => repeat('[', 200000));
	SELECT cron.run_now('deep');
});
poll_until(q{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'deep' AND r.status = 'succeeded'}, 'the deeply nested body was sent');
my ($deep) = requests('/tag/deep');
is(header($deep, 'Content-Type'), 'text/plain', 'as text/plain');
is($node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'}),
	$scheduler, 'by the same scheduler');

$server->kill_kill;
$node->stop;
done_testing();
