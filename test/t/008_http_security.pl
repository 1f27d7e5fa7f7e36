# HTTP jobs against hostile URLs, servers and values, on loopback only
# (test/fault_server.py as origin servers on 127.0.0.1, 127.0.0.2 and ::1,
# and as a recording proxy): the unspecified addresses are always refused,
# directly and as redirect targets; proxy settings of the server's
# environment are ignored and cron.http_proxy is checked against the
# target's address; a redirect to another origin is refused when the
# request carries a secret; no secret value reaches a message, a run row or
# the server log; a value with a line break does not go into a URL or
# header; secret values are at most 64 kB.
use strict;
use warnings;
use Cwd 'abs_path';
use File::Basename;
use IO::Socket::IP;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my $server_script = dirname(abs_path(__FILE__)) . '/../fault_server.py';
my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my @servers;

# a free port on a loopback address
sub free_port
{
	my ($address) = @_;
	my $probe = IO::Socket::IP->new(LocalHost => $address, LocalPort => 0, Listen => 1)
	  or die "no port on $address: $@";
	my $port = $probe->sockport;
	close $probe;
	return $port;
}

# start fault_server.py with these arguments; wait until it answers
sub start_server
{
	my ($address, $name, @mode) = @_;
	my $port = free_port($address);
	my $log = "$tmp/$name.log";
	open(my $touch, '>', $log) or die;
	close $touch;
	push @servers, IPC::Run::start(['python3', $server_script, @mode, $port, $log, @mode ? () : ($address)],
		'>', "$log.out", '2>', "$log.err");
	my $up = 0;
	for (1 .. 100)
	{
		if (IO::Socket::IP->new(PeerHost => $address, PeerPort => $port)) { $up = 1; last }
		select(undef, undef, undef, 0.1);
	}
	ok($up, "$name listens on $address port $port");
	return ($port, $log);
}

# the requests a server logged, decoded
sub requests
{
	my ($log) = @_;
	open(my $fh, '<', $log) or die "no log $log";
	my @r = map { decode_json($_) } grep { /\S/ } <$fh>;
	close $fh;
	return @r;
}

# the requests a server logged for a path (or an absolute URL, for the proxy)
sub requests_for
{
	my ($log, $path) = @_;
	return grep { $_->{path} eq $path } requests($log);
}

# the first request a server logged for a path ({} if none)
sub first_request
{
	my ($log, $path) = @_;
	my @r = requests_for($log, $path);
	return @r ? $r[0] : {};
}

# a request's header, by name in any case
sub header
{
	my ($request, $name) = @_;
	return undef unless $request && $request->{headers};
	for my $k (keys %{ $request->{headers} })
	{
		return $request->{headers}{$k} if lc($k) eq lc($name);
	}
	return undef;
}

my ($port, $log) = start_server('127.0.0.1', 'origin');
my ($port2, $log2) = start_server('127.0.0.2', 'other_origin');
my ($port6, $log6) = start_server('::1', 'origin6');
my ($pport, $plog) = start_server('127.0.0.1', 'proxy', '--proxy');
my $base = "http://127.0.0.1:$port";
my $other = "http://127.0.0.2:$port2";

my $node = PostgreSQL::Test::Cluster->new('http_security');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
cron.http_timeout = '5s'
timezone = 'UTC'
# the test's own SQL (cron.set_secret with a value) is not logged
log_statement = none
# everything allowed, explicitly: the unspecified addresses are refused anyway
cron.http_allow_networks = '0.0.0.0/0, ::/0'
cron.http_deny_networks = '169.254.0.0/16, fe80::/10'
});
$node->append_conf('postgresql.conf', midday_zone_conf());

# the server starts with proxies in its environment, all pointing at the
# recording proxy: they must be ignored
my @proxy_vars = qw(http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY);
$ENV{$_} = "http://127.0.0.1:$pport" for @proxy_vars;
$ENV{no_proxy} = $ENV{NO_PROXY} = '';
$node->start;
delete $ENV{$_} for @proxy_vars, 'no_proxy', 'NO_PROXY';

my $badhost = ('b' x 64) . '.invalid';    # a 64-byte label: no resolver asks anyone
my %secret = (
	tok => 'tok-5e1b7c-secret',
	ip => '169.254.7.7',
	badhost => $badhost,
	echo => 'Echo-9d2f-Value',
	one => 'Q',
	crlf => "ok\r\nX-Injected: yes",
	lf => "ok\nX-Injected: yes",
	empty => '');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_chime');
for my $name (sort keys %secret)
{
	my $value = $secret{$name};
	$value =~ s/'/''/g;
	$node->safe_psql('postgres', "SELECT cron.set_secret('$name', E'" . ($value =~ s/\r/\\r/gr =~ s/\n/\\n/gr) . "')");
}
sub scheduler_up
{
	my ($what) = @_;
	ok($node->poll_query_until('postgres', "SELECT true FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'"),
		$what);
}
scheduler_up('the scheduler is up');

# http(name, url, options): an HTTP job due in a second; its job id
sub http
{
	my ($name, $url, $options) = @_;
	$options //= '';
	return $node->safe_psql('postgres', qq{
		SELECT cron.schedule_http('$name', format('\@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
		                          '$url'$options)});
}

# "status http_status return_message" of its one run, once it has ended
sub outcome
{
	my ($job) = @_;
	$node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 AND bool_and(status NOT IN ('starting', 'running'))
		FROM cron.job_run_details WHERE jobid = $job})
	  or diag("job $job did not end");
	return $node->safe_psql('postgres', qq{
		SELECT status || ' ' || coalesce(http_status::text, '-') || ' ' || return_message
		FROM cron.job_run_details WHERE jobid = $job});
}

sub redirect
{
	my ($code, $to) = @_;
	$to =~ s/([^A-Za-z0-9])/sprintf('%%%02X', ord($1))/ge;
	return "$base/redirect/$code?to=$to";
}

my $h_tok = q{, headers => '{"x-token": "{{secret.tok}}"}'};

# ---- the unspecified addresses ---------------------------------------------
# [URL host, the address the message names]
my %unspecified = (
	zero4 => [ '0.0.0.0', '0.0.0.0' ],
	zero6 => [ '[::]', '::' ],
	'zero4-net' => [ '0.1.2.3', '0.1.2.3' ],
	'zero-mapped' => [ '[::ffff:0.0.0.0]', '0.0.0.0' ]);
my %unspecified_job;
for my $name (sort keys %unspecified)
{
	my $p = $unspecified{$name}[0] =~ /^\[::\]$/ ? $port6 : $port;
	$unspecified_job{$name} = http($name, "http://$unspecified{$name}[0]:$p/tag/$name");
}
my $to_zero4 = http('to-zero4', redirect(302, "http://0.0.0.0:$port/tag/to-zero4"));
my $to_zero6 = http('to-zero6', redirect(307, "http://[::]:$port6/tag/to-zero6"));
my $v6_ok = http('v6-ok', "http://[::1]:$port6/tag/v6-ok");

# ---- redirects and secrets ---------------------------------------------------
my $xo_header = http('xo-header', redirect(302, "$other/tag/xo-header"), $h_tok);
my $xo_body = http('xo-body', redirect(307, "$other/tag/xo-body"),
	q{, method => 'POST', body => '{"token": "{{secret.tok}}"}'});
my $xo_url = http('xo-url', redirect(308, "$other/tag/xo-url") . '&t={{secret.tok}}');
my $xo_empty = http('xo-empty', redirect(302, "$other/tag/xo-empty"),
	q{, headers => '{"x-token": "{{secret.empty}}"}'});
my $xo_port = http('xo-port', redirect(302, "http://127.0.0.1:$port2/tag/xo-port"), $h_tok);
my $xo_chain = http('xo-chain', redirect(302, redirect(302, "$other/tag/xo-chain")), $h_tok);
my $same_rel = http('same-relative', redirect(302, '/tag/same-relative'), $h_tok);
my $same_abs = http('same-absolute', redirect(307, "$base/tag/same-absolute"),
	q{, method => 'PUT', headers => '{"x-token": "{{secret.tok}}"}', body => 'b={{secret.tok}}'});
my $plain = http('plain-cross', redirect(302, "$other/tag/plain-cross"),
	q{, headers => '{"x-plain": "visible", "Authorization": "Bearer typed-in"}'});
my $plain307 = http('plain-307', redirect(307, "$other/tag/plain-307"), q{, method => 'POST', body => 'kept'});
my $plain303 = http('plain-303', redirect(303, "$other/tag/plain-303"), q{, method => 'PUT', body => 'dropped'});

# ---- values in messages ------------------------------------------------------
my $in_host = http('in-host', 'http://{{secret.badhost}}/x');
my $in_ip = http('in-ip', 'http://{{secret.ip}}/x');
my $in_reason = http('in-reason', "$base/echo-reason", q{, headers => '{"x-echo": "{{secret.echo}}"}'});
my $in_body = http('in-body', "$base/echo-body", q{, headers => '{"x-echo": "say {{secret.echo}} twice {{secret.echo}}"}'});
my $lower = http('lower-case', "$base/echo-reason",
	q{, headers => '{"x-echo": "echo-9d2f-value", "x-token": "{{secret.echo}}"}'});
my $short = http('short', "$base/echo-body", q{, headers => '{"x-echo": "Quick quiet {{secret.one}}"}'});

# ---- line breaks -------------------------------------------------------------
my $crlf_header = http('crlf-header', "$base/tag/crlf-header", q{, headers => '{"x-a": "{{secret.crlf}}"}'});
my $lf_header = http('lf-header', "$base/tag/lf-header", q{, headers => '{"x-a": "{{secret.lf}}"}'});
my $crlf_url = http('crlf-url', "$base/tag/crlf-url?a={{secret.crlf}}");
my $crlf_body = http('crlf-body', "$base/tag/crlf-body", q{, method => 'POST', body => '<{{secret.crlf}}>'});

# ---- with proxies in the environment -----------------------------------------
my $env_direct = http('env-direct', "$base/tag/env-direct");

# the unspecified addresses
for my $name (sort keys %unspecified)
{
	my ($host, $address) = @{ $unspecified{$name} };
	like(outcome($unspecified_job{$name}), qr/^failed - refused: address \Q$address\E is unspecified \(0\.0\.0\.0\/8 and :: are always refused\)$/,
		"a URL to $host is refused, though cron.http_allow_networks allows everything");
}
like(outcome($to_zero4), qr/^failed - refused: address 0\.0\.0\.0 is unspecified/, 'a redirect to 0.0.0.0 is refused');
like(outcome($to_zero6), qr/^failed - refused: address :: is unspecified/, 'a redirect to [::] is refused');
is(scalar(grep { $_->{path} =~ m{^/tag/.*zero} } requests($log), requests($log6)), 0,
	'no request reached the servers through an unspecified address');
like(outcome($v6_ok), qr/^succeeded 200 /, 'while [::1] itself is reached');

# cross-origin redirects of requests with secrets
like(outcome($xo_header), qr{^failed - refused: redirect to another origin \(http://127\.0\.0\.2:$port2\) from a request that carries a secret$},
	'a cross-origin redirect of a request with a secret header is refused');
like(outcome($xo_body), qr{^failed - refused: redirect to another origin }, 'so is a 307 of a request with a secret body');
like(outcome($xo_url), qr{^failed - refused: redirect to another origin }, 'and one of a request with a secret in its URL');
like(outcome($xo_empty), qr{^failed - refused: redirect to another origin }, 'even when the secret is empty');
like(outcome($xo_port), qr{^failed - refused: redirect to another origin \(http://127\.0\.0\.1:$port2\)}, 'another port is another origin');
like(outcome($xo_chain), qr{^failed - refused: redirect to another origin }, 'so is a second hop to another origin');
is(scalar(grep { $_->{path} =~ /xo-/ } requests($log2)), 0, 'the other origin received nothing from them');
is(scalar(grep { $_->{path} =~ /xo-port/ } requests($log)), 0, 'nor did another port');

# same-origin redirects keep working, secrets and all
like(outcome($same_rel), qr/^succeeded 200 200 OK/, 'a same-origin (relative) redirect with a secret header is followed');
is(header(first_request($log, '/tag/same-relative'), 'x-token'), $secret{tok}, 'and the secret header arrives');
like(outcome($same_abs), qr/^succeeded 200 200 OK/, 'a same-origin 307 with a secret in header and body is followed');
my $sa = first_request($log, '/tag/same-absolute');
is(($sa->{method} // '') . ' ' . ($sa->{body} // ''), "PUT b=$secret{tok}", 'keeping its method and body');

# requests without secrets follow cross-origin redirects as before
like(outcome($plain), qr/^succeeded 200 200 OK/, 'a request without secrets follows a cross-origin redirect');
my $pc = first_request($log2, '/tag/plain-cross');
is(header($pc, 'x-plain'), 'visible', 'with its headers');
is(header($pc, 'authorization'), undef, 'but not Authorization, as libcurl would');
like(outcome($plain307), qr/^succeeded 200/, 'a 307 without secrets is followed');
my $p7 = first_request($log2, '/tag/plain-307');
is(($p7->{method} // '') . ' ' . ($p7->{body} // ''), 'POST kept', 'as a POST with its body');
like(outcome($plain303), qr/^succeeded 200/, 'a 303 is followed');
my $p3 = first_request($log2, '/tag/plain-303');
is(($p3->{method} // '') . ' ' . ($p3->{body} // ''), 'GET ', 'as a GET without body');

# values in messages and rows
like(outcome($in_host), qr/^failed - Could not resolve host: \{\{secret\.badhost\}\}$/,
	'a secret host that does not resolve shows as its reference');
like(outcome($in_ip), qr/^failed - refused: address \{\{secret\.ip\}\} is in cron\.http_deny_networks$/,
	'a secret address that is refused shows as its reference');
like(outcome($in_reason), qr/^succeeded 200 200 \{\{secret\.echo\}\}, 0 bytes/, 'a reason phrase echoing a secret is scrubbed');
like(outcome($in_body), qr/^succeeded 200 /, 'a body echoing a secret: done');
is($node->safe_psql('postgres', "SELECT response_body FROM cron.job_run_details WHERE jobid = $in_body"),
	'say {{secret.echo}} twice {{secret.echo}}', 'and the recorded body is scrubbed');
like(outcome($lower), qr/^succeeded 200 200 \{\{secret\.echo\}\}, /,
	'a value is scrubbed in another case too (libcurl may lower-case a host)');
like(outcome($short), qr/^succeeded 200 /, 'a one-character secret: done');
is($node->safe_psql('postgres', "SELECT response_body FROM cron.job_run_details WHERE jobid = $short"),
	'{{secret.one}}uick {{secret.one}}uiet {{secret.one}}',
	'every occurrence of a one-character value is scrubbed, in any case');

# line breaks
like(outcome($crlf_header), qr/^failed - failed: secret "crlf" of role \w+ contains a line break; it cannot go into a URL or header$/,
	'a value with CR LF is refused in a header, naming the secret');
like(outcome($lf_header), qr/^failed - failed: secret "lf" of role \w+ contains a line break/, 'so is one with LF alone');
like(outcome($crlf_url), qr/^failed - failed: secret "crlf" of role \w+ contains a line break/, 'and in a URL');
is(scalar(grep { $_->{path} =~ /crlf-(header|url)/ } requests($log)), 0, 'those requests were not sent');
like(outcome($crlf_body), qr/^succeeded 200 /, 'a value with CR LF goes into a body');
is(first_request($log, '/tag/crlf-body')->{body}, "<$secret{crlf}>", 'unchanged');
is(scalar(grep { defined header($_, 'x-injected') } requests($log), requests($log2)), 0, 'no header was injected');

# environment proxies
like(outcome($env_direct), qr/^succeeded 200 /, 'with proxies in the environment, a job succeeds');
is(scalar(requests_for($log, '/tag/env-direct')), 1, 'reaching the server directly');
is(scalar(requests($plog)), 0, 'and the proxy of the environment received nothing at all');

# ---- secret values are at most 64 kB -------------------------------------------
$node->safe_psql('postgres', "SELECT cron.set_secret('big', 'small')");
my ($rc, $out, $err) = $node->psql('postgres', "SELECT cron.set_secret('big', repeat('x', 65537))",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($rc, 0, 'a secret value of 65537 bytes is refused');
like($err, qr/ERROR:  22023: value of secret "big" is too long: 65537 bytes/, 'with 22023 and its size');
like($err, qr/HINT:  A secret value is at most 65536 bytes\./, 'and the limit');
is($node->safe_psql('postgres', "SELECT value FROM cron.secret WHERE name = 'big'"), 'small', 'the secret is unchanged');
$node->safe_psql('postgres', "SELECT cron.set_secret('big', repeat('x', 65536))");
is($node->safe_psql('postgres', "SELECT length(value) FROM cron.secret WHERE name = 'big'"), '65536',
	'a value of 65536 bytes is taken');

# ---- a value libcurl refuses fails its run, not the scheduler -------------------
# 123 times the 64 kB secret is 8,060,928 bytes: under the 8 MB a request may
# have with its secrets in place, over the 8,000,000 bytes libcurl takes in a
# string option, so curl_easy_setopt refuses it.
my $scheduler_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'");
my $long_body = http('long-body', "$base/tag/long-body", q{, method => 'POST', body => repeat('{{secret.big}}', 123)});
my $long_url = http('long-url', "$base/tag/long-url?a=" . ('{{secret.big}}' x 123));
like(outcome($long_body),
	qr/^failed - could not start a transfer: curl_easy_setopt\(CURLOPT_COPYPOSTFIELDS\) failed: \S.*$/,
	'a body libcurl refuses fails its run, naming the option and libcurl\'s reason');
like(outcome($long_url), qr/^failed - could not start a transfer: curl_easy_setopt\(CURLOPT_URL\) failed: \S.*$/,
	'so does a URL libcurl refuses');
is(scalar(grep { $_->{path} =~ /long-/ } requests($log)), 0, 'neither was sent');
my $after_long = http('after-long', "$base/tag/after-long");
like(outcome($after_long), qr/^succeeded 200 /, 'the next HTTP job succeeds');
is($node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'"),
	$scheduler_pid, 'with the same scheduler: it never stopped');

# ---- the issue's case: loopback denied, the unspecified addresses still refused --
$node->append_conf('postgresql.conf', qq{
cron.http_allow_networks = ''
cron.http_deny_networks = '127.0.0.0/8, ::1/128'
});
$node->restart;
scheduler_up('the scheduler is back, with loopback denied');
my $d4 = http('denied-loopback-zero4', "http://0.0.0.0:$port/tag/denied-loopback-zero4");
my $d6 = http('denied-loopback-zero6', "http://[::]:$port6/tag/denied-loopback-zero6");
like(outcome($d4), qr/^failed - refused: address 0\.0\.0\.0 is unspecified/, 'with loopback denied, 0.0.0.0 is refused');
like(outcome($d6), qr/^failed - refused: address :: is unspecified/, 'and so is [::]');
is(scalar(grep { $_->{path} =~ /denied-loopback/ } requests($log), requests($log6)), 0, 'neither reached loopback');

# ---- cron.http_proxy ---------------------------------------------------------
my ($src, $sout, $serr) = $node->psql('postgres', "ALTER SYSTEM SET cron.http_proxy = 'ftp://127.0.0.1:$pport'");
like($serr, qr/invalid value for parameter "cron.http_proxy"/, 'cron.http_proxy refuses a scheme that is no proxy');
$node->safe_psql('postgres', q{CREATE ROLE mallory LOGIN});
my ($mrc, $mout, $merr) = $node->psql('postgres', 'SHOW cron.http_proxy', extra_params => [ '-U', 'mallory' ]);
like($merr, qr/must be superuser|permission denied/, 'an ordinary role cannot read cron.http_proxy');

$node->append_conf('postgresql.conf', qq{
cron.http_proxy = 'http://127.0.0.1:$pport'
cron.http_deny_networks = '169.254.0.0/16, fe80::/10, 127.0.0.2/32'
});
$node->restart;
scheduler_up('the scheduler is back, with cron.http_proxy set');
my $via = http('via-proxy', "$base/tag/via-proxy", $h_tok);
my $via_denied = http('via-proxy-denied', "$other/tag/via-proxy-denied");
my $via_redirect = http('via-proxy-redirect', redirect(302, "$other/tag/via-proxy-redirect"));
my $via_same = http('via-proxy-same', redirect(302, '/tag/via-proxy-same'));
my $via_zero = http('via-proxy-zero', "http://0.0.0.0:$port/tag/via-proxy-zero");
my $via_zero_redirect = http('via-proxy-to-zero', redirect(302, "http://[::]:$port6/tag/via-proxy-to-zero"));
my $via_host = http('via-proxy-host', 'http://{{secret.badhost}}/x');

like(outcome($via), qr/^succeeded 200 200 OK/, 'with cron.http_proxy, a job succeeds');
my $pv = first_request($plog, "$base/tag/via-proxy");
ok($pv->{proxy}, 'through the proxy');
is(header($pv, 'x-token'), $secret{tok}, 'with its headers');
is(scalar(requests_for($log, '/tag/via-proxy')), 1, 'and the server got it from the proxy');

like(outcome($via_denied), qr/^failed - refused: address 127\.0\.0\.2 is in cron\.http_deny_networks$/,
	'a target in cron.http_deny_networks is refused, though the proxy is allowed');
like(outcome($via_redirect), qr/^failed - refused: address 127\.0\.0\.2 is in cron\.http_deny_networks$/,
	'so is a redirect to it');
is(scalar(requests_for($plog, "$base/redirect/302?to=" . ("$other/tag/via-proxy-redirect" =~ s/([^A-Za-z0-9])/sprintf('%%%02X', ord($1))/ger))),
	1, 'the first hop went through the proxy');
is(scalar(grep { $_->{path} =~ /via-proxy-(denied|redirect)/ && $_->{path} !~ /redirect\/302/ } requests($plog)), 0,
	'the denied target was never asked of the proxy');
is(scalar(grep { $_->{path} =~ /via-proxy/ } requests($log2)), 0, 'nor reached');

like(outcome($via_same), qr/^succeeded 200 /, 'a redirect through the proxy is followed');
is(scalar(requests_for($plog, "$base/tag/via-proxy-same")), 1, 'its second hop through the proxy too');
like(outcome($via_zero), qr/^failed - refused: address 0\.0\.0\.0 is unspecified/, 'through the proxy, 0.0.0.0 is refused');
like(outcome($via_zero_redirect), qr/^failed - refused: address :: is unspecified/, 'and a redirect to [::]');
is(scalar(grep { $_->{path} =~ /zero/ && $_->{path} !~ /redirect/ } requests($plog)), 0, 'neither went to the proxy');
like(outcome($via_host), qr/^failed - Could not resolve host: \{\{secret\.badhost\}\}$/,
	'the target is resolved before the proxy is asked, and the message is scrubbed');
is(scalar(grep { $_->{path} =~ /invalid/ } requests($plog)), 0, 'the proxy was not asked for a name that does not resolve');

# ---- no secret value anywhere ------------------------------------------------
my $rows = $node->safe_psql('postgres', q{
	SELECT string_agg(coalesce(return_message, '') || E'\n' || coalesce(response_body, '') || E'\n' || command, E'\n')
	FROM cron.job_run_details});
my $server_log = slurp_file($node->logfile);
for my $name (sort keys %secret)
{
	my $value = $secret{$name};
	next if length($value) <= 1;
	ok(index(lc($rows), lc($value)) < 0, "the value of secret $name is in no run row, in any case");
	ok(index(lc($server_log), lc($value)) < 0, "nor in the server log");
}
ok(index($rows, 'X-Injected') < 0, 'nor is any part of a value with a line break');
is(scalar(grep { index(encode_json($_), $secret{tok}) >= 0 } requests($log2)), 0, 'the other origin never saw the token');

$node->stop('immediate');
$_->kill_kill for @servers;
done_testing();
