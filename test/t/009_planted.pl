# Nothing an ordinary role can create is ever called with pg_chime's rights
# (SPEC §14, §8).  A role with CREATE on schema public (PostgreSQL 14's
# default) plants stand-ins in public for every function, operator and type
# name pg_chime's own SQL uses (test/planted.pl reads the list from the
# code); each counts and logs its calls.  A control shows that the
# stand-ins win where a statement leaves resolution to the search_path.
# Then every path of pg_chime's SQL runs, for the superuser and two
# ordinary roles: the API with and without public before pg_catalog in the
# caller's path (the ordinary roles' sessions also holding temporary
# domains named like the types pg_chime names), job loads at start and on change, runs that succeed, fail,
# retry, skip, claim and release once_per keys, an HTTP job with secrets, a
# job in another database, a run in flight across an immediate restart, an
# executor that crashes twice; then all of it again with the database's
# owner having set search_path = public, pg_catalog for every session.
# Not one stand-in may have been called.
use strict;
use warnings;
use Cwd 'abs_path';
use File::Basename;
use File::Path 'make_path';
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my $here = dirname(abs_path(__FILE__));
my $generator = "$here/../planted.pl";
# the source tree the generator reads: test/run.sh copies src/ and
# extension/ beside test/
my $top = $ENV{PG_CHIME_SRC} // abs_path("$here/../..");
my $deadline_s = 40;    # for any one thing the test waits for

# ---- the generator ----------------------------------------------------------

sub generator
{
	my ($src, $mode) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $^X, $generator, '--src', $src, "--$mode" ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

ok(-f "$top/src/scheduler.c" && glob("$top/extension/pg_chime--*.sql"),
	"the generator has pg_chime's source to read ($top)")
  or BAIL_OUT("no src/ and extension/ in $top: set PG_CHIME_SRC to the source tree");

my ($rc, $list, $err) = generator($top, 'list');
is($rc, 0, 'the generator knows how to plant every name pg_chime\'s SQL uses') or diag($err);
BAIL_OUT('the generator failed: it cannot build the stand-ins') if $rc;
my (%count, %names);
for (split /\n/, $list)
{
	next unless /^(function|operator|type) (.*?) \[(.*?)\]/;
	next if $3 eq 'control';
	$count{$1}++;
	push @{ $names{$1} }, $2;
}
diag("test/planted.pl found in pg_chime's SQL: "
	  . join('; ', map { "$count{$_} ${_}s (" . join(' ', @{ $names{$_} }) . ')' } qw(function operator type)));
my ($nstatements) = $list =~ /^statements (\d+)/m;
my ($nc) = $list =~ /^statements \d+ \((\d+) from src/m;
ok($nc >= 30 && $count{function} >= 6 && $count{operator} >= 6 && $count{type} >= 2,
	"a real list: $nc statements in src/*.c ($nstatements in all), $count{function} functions, "
	  . "$count{operator} operators, $count{type} types")
  or diag($list);
my (undef, $statements) = generator($top, 'statements');
my (undef, $plant) = generator($top, 'sql');
my $nplanted = () = $plant =~ /^CREATE (FUNCTION|OPERATOR|AGGREGATE|DOMAIN|VIEW) public\.(?!planted_)/mg;
diag("$nplanted stand-ins to plant");

# a name it does not know, SQL it cannot follow, an SPI function it does not
# know, a C lookup through search_path: each stops it
{
	my $probe = "${PostgreSQL::Test::Utils::tmp_check}/probe";
	make_path("$probe/src", "$probe/extension");
	open(my $fh, '>', "$probe/src/probe.c") or die;
	print $fh <<'EOF';
static void
probe_unknown(void)
{
	SPI_execute("SELECT planted_frobnicate(1) FROM cron.job WHERE a <-> b", true, 0);
}

static void
probe_dynamic(const char *tail)
{
	SPI_execute(text_to_cstring(probe_text()), true, 0);
}

static void
probe_spi(void)
{
	SPI_execute_frobnicated("SELECT 1");
}

static void
probe_lookup(void)
{
	Oid f = LookupFuncName(list_make1(makeString("f")), 0, NULL, false);
}
EOF
	close $fh;
	open($fh, '>', "$probe/extension/pg_chime--9.9.sql") or die;
	print $fh "CREATE FUNCTION cron.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';\n";
	close $fh;
	my ($prc, undef, $perr) = generator($probe, 'sql');
	isnt($prc, 0, 'the generator fails on what it cannot plant or follow, rather than passing over it');
	like($perr, qr/function planted_frobnicate .*does not know how to plant it/, '... an unknown function name');
	like($perr, qr/operator <-> .*does not know how to plant it/, '... an unknown operator');
	like($perr, qr/probe_dynamic.*cannot tell what SQL/, '... SQL built from something it cannot follow');
	like($perr, qr/SPI_execute_frobnicated is an SPI function test\/planted.pl does not know/,
		'... an unknown SPI function');
	like($perr, qr/LookupFuncName resolves names through search_path/, '... a C lookup through search_path');
	like($perr, qr/SECURITY DEFINER function without SET search_path/,
		'... a SECURITY DEFINER function without a fixed search_path');
}

# ---- a server, a loopback HTTP server, roles, the stand-ins ------------------

my $probe_sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die;
my $http_port = $probe_sock->sockport;
close $probe_sock;
my $http_log = "${PostgreSQL::Test::Utils::tmp_check}/fault_server.log";
my $http = IPC::Run::start([ 'python3', "$here/../fault_server.py", $http_port, $http_log ],
	'>', "$http_log.out", '2>', "$http_log.err");
my $base = "http://127.0.0.1:$http_port";

my $zone_conf = midday_zone_conf();
my ($zone) = $zone_conf =~ /'(.*)'/;
my $node = PostgreSQL::Test::Cluster->new('planted');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'chime'
cron.log_run = on
cron.log_statement = on
cron.max_retry_delay = '2s'
cron.http_timeout = '5s'
restart_after_crash = on
max_worker_processes = 16
timezone = 'UTC'
log_min_messages = warning
log_error_verbosity = default
log_line_prefix = '%m [%p] %b %u\@%d '
# the test's own SQL (cron.set_secret with a value) is not logged
log_statement = none
});
$node->append_conf('postgresql.conf', $zone_conf);
$node->start;

# The test's own sessions resolve nothing through public; the sessions that
# stand for users set their search_path themselves (api() below).
$ENV{PGOPTIONS} = '-c search_path=pg_catalog,pg_temp';
my $DEFAULT_PATH = '"$user", public';
my $PUBLIC_FIRST = 'public, pg_catalog';

$node->safe_psql('postgres', q{
	CREATE ROLE alice LOGIN;
	CREATE ROLE mallory LOGIN;
	CREATE ROLE dbowner LOGIN;
});
$node->safe_psql('postgres', 'CREATE DATABASE chime OWNER dbowner');
$node->safe_psql('postgres', 'CREATE DATABASE other OWNER dbowner');
for my $db ('chime', 'other')
{
	# PostgreSQL 14's default: anyone may create objects in public
	$node->safe_psql($db, 'GRANT CREATE ON SCHEMA public TO PUBLIC');
	$node->safe_psql($db, $plant, extra_params => [ '-U', 'mallory' ]);
}
is($node->safe_psql('chime', q{SELECT count(*) > 0 FROM pg_catalog.pg_operator o
		JOIN pg_catalog.pg_roles r ON r.oid = o.oprowner WHERE r.rolname = 'mallory'}),
	't', 'mallory, an ordinary role, planted her stand-ins in public');

# installed the way an administrator would, with the default search_path
$node->safe_psql('chime', qq{
	SET search_path = $DEFAULT_PATH;
	CREATE EXTENSION pg_chime;
	GRANT USAGE ON SCHEMA cron TO alice, mallory;
});
is($node->safe_psql('chime', q{
	SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
	         OPERATOR(pg_catalog.||) ' -> '
	         OPERATOR(pg_catalog.||) pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0), E'\n')
	FROM pg_catalog.pg_depend d
	WHERE pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) OPERATOR(pg_catalog.~) 'cron\.'
	  AND ((d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
	        AND d.refobjid IN (SELECT oid FROM pg_catalog.pg_proc WHERE pronamespace OPERATOR(pg_catalog.=) 'public'::pg_catalog.regnamespace))
	    OR (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass
	        AND d.refobjid IN (SELECT oid FROM pg_catalog.pg_operator WHERE oprnamespace OPERATOR(pg_catalog.=) 'public'::pg_catalog.regnamespace))
	    OR (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
	        AND d.refobjid IN (SELECT oid FROM pg_catalog.pg_type WHERE typnamespace OPERATOR(pg_catalog.=) 'public'::pg_catalog.regnamespace))
	    OR (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
	        AND d.refobjid IN (SELECT oid FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) 'public'::pg_catalog.regnamespace)))}),
	'', 'no default, constraint, policy or trigger of pg_chime is bound to an object in public');

# ---- helpers ----------------------------------------------------------------

# api(role, search_path, sql): run as that role ('' = the superuser)
sub api
{
	my ($role, $path, $sql) = @_;
	return $node->safe_psql('chime', "SET search_path = $path;\n$sql",
		extra_params => [ $role ? ('-U', $role) : () ]);
}

# user(role, search_path, sql): as api(), for a role that has also made, in
# its session, temporary domains named like every type pg_chime's SQL names
# (pg_temp comes before pg_catalog for type names unless the path lists it)
my $temp_types = join('', map { "CREATE DOMAIN pg_temp.$_ AS pg_catalog.$_ CHECK (public.planted_hit('temp type $_'));\n" }
	  grep { /^(int2|int4|int8|float4|float8|numeric|text|varchar|name|bool|timestamptz|timestamp|date|interval|jsonb|json|xid|xid8|regclass|oid|bytea)$/ }
	  @{ $names{type} });

sub user
{
	my ($role, $path, $sql) = @_;
	return api($role, $path, $role ? "$temp_types$sql" : $sql);
}

# wait_for(query, what): poll until the query returns 't', within the deadline
sub wait_for
{
	my ($query, $what, $db) = @_;
	my $end = time + $deadline_s;
	my $last = '';
	while (time < $end)
	{
		my ($r, $out, $e) = ('', '', '');
		$r = $node->psql($db // 'chime', $query, stdout => \$out, stderr => \$e);
		$last = $r == 0 ? $out : "error: $e";
		return pass($what) if $r == 0 && $out eq 't';
		usleep(100_000);
	}
	fail($what);
	diag("last value: $last\nquery: $query");
	return 0;
}

sub hits
{
	my $n = 0;
	for my $db ('chime', 'other')
	{
		$n += $node->safe_psql($db,
			'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.planted_hits');
	}
	return $n;
}

sub reset_hits
{
	$node->safe_psql($_, q{SELECT pg_catalog.setval('public.planted_hits', 1, false)},
		extra_params => [ '-U', 'mallory' ])
	  for 'chime', 'other';
}

sub log_at { return -s $node->logfile }

# The stand-ins called in the server log after $from: one line each,
# "what | role | process | statement"
my %statement_at;
my @cursor_at;
for (split /\n/, $statements)
{
	my ($where, $spi, $text) = split /\t/, $_, 3;
	(my $norm = $text) =~ s/\s+/ /g;
	$statement_at{$norm} //= $where;
	push @cursor_at, $where if $spi =~ /cursor/;
}
my $cursor_at = join(', ', @cursor_at) || 'none known';

sub called_since
{
	my ($from) = @_;
	my $log = slurp_file($node->logfile, $from);
	my @lines = split /\n/, $log;
	my %calls;
	for (my $i = 0; $i < @lines; $i++)
	{
		next unless $lines[$i] =~ /^.*? \[\d+\] (.*?) \S*\@\S* WARNING:  planted (.*) called by (\S+)$/;
		my ($backend, $what, $role) = ($1, $2, $3);
		my $context = '';
		for (my $j = $i + 1; $j < @lines; $j++)
		{
			last unless $lines[$j] =~ /^\t/ || $lines[$j] =~ /\] .*? (CONTEXT|STATEMENT):  /;
			$context .= "$lines[$j]\n";
		}
		# the innermost statement is the stand-in's own; the outermost, pg_chime's
		my @sql = grep { !/^SELECT public\.planted_hit/ } $context =~ /SQL statement "(.*?)"\s*$/mg;
		my $stmt = @sql ? $sql[-1]
		  : $backend eq 'client backend' ? "(the session's own query)"
		  : "(no SQL statement in CONTEXT: a cursor's fetch, $cursor_at)";
		(my $norm = $stmt) =~ s/\s+/ /g;
		my ($where) = map { $statement_at{$_} } grep { index($_, substr($norm, 0, 60)) == 0 } keys %statement_at;
		$calls{"$what | by $role | $backend | " . ($where ? "$where: " : '') . substr($norm, 0, 160)}++;
	}
	return map { "$calls{$_}x $_" } sort keys %calls;
}

# none_called(from, what): no stand-in was called since log position $from
sub none_called
{
	my ($from, $what) = @_;
	my @calls = called_since($from);
	my $n = hits();
	ok($n == 0 && !@calls, $what) or diag("the hit counter says $n; stand-ins called:\n" . join("\n", @calls));
}

sub at_soon
{
	my ($s) = @_;
	my @t = gmtime(int(time) + ($s // 2));
	return sprintf('@at %04d-%02d-%02d %02d:%02d:%02d+00', $t[5] + 1900, $t[4] + 1, @t[ 3, 2, 1, 0 ]);
}

sub rows
{
	my ($job) = @_;
	return $node->safe_psql('chime', qq{
		SELECT pg_catalog.string_agg(attempt OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) trigger
		         OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) status, ', ' ORDER BY runid)
		FROM cron.job_run_details WHERE jobid OPERATOR(pg_catalog.=) $job});
}

# runs_are(job, count of rows whose status is final, condition on those rows, what)
sub runs_are
{
	my ($job, $cond, $what) = @_;
	wait_for(qq{SELECT $cond FROM cron.job_run_details WHERE jobid OPERATOR(pg_catalog.=) $job}, $what)
	  or diag("runs of job $job: " . rows($job));
}

my $N = 'pg_catalog.count(*)';
my $FINAL = q{status OPERATOR(pg_catalog.<>) ALL ('{starting,running}'::pg_catalog.text[])};

# ---- the control: the stand-ins do win where resolution is left to the path --

none_called(0, 'planting and CREATE EXTENSION called no stand-in');
$node->safe_psql('chime', q{
	SET search_path = pg_catalog, pg_temp;
	CREATE SEQUENCE public.planted_control;
	GRANT USAGE, UPDATE ON SEQUENCE public.planted_control TO PUBLIC;
}, extra_params => [ '-U', 'mallory' ]);
my @control = (
	[ $DEFAULT_PATH, q{SELECT nextval('public.planted_control')}, 'function nextval(text)' ],
	[ $DEFAULT_PATH, q{SELECT extract(epoch FROM interval '1 second') * 1000}, 'operator numeric * int4' ],
	[ $DEFAULT_PATH, q{PREPARE p(bigint[]) AS SELECT * FROM unnest($1); EXECUTE p('{1,2}')}, 'function unnest(int8[])' ],
	[ $DEFAULT_PATH, q{SELECT array_agg(x) FROM (VALUES ('a'::text)) AS v(x)}, 'aggregate array_agg(text)' ],
	[ $PUBLIC_FIRST, q{SELECT '1'::int8}, 'type int8' ],
	[ $PUBLIC_FIRST, q{SELECT 1::bigint = 2::bigint}, 'operator int8 = int8' ],
	[ $DEFAULT_PATH, q{CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (public.planted_hit('temp type int8'));
	                   SELECT '1'::int8}, 'temp type int8' ],
);
for my $c (@control)
{
	my ($path, $sql, $standin) = @$c;
	my $from = log_at();
	my $before = hits();
	api('alice', $path, $sql);
	my $after = hits();
	my @calls = called_since($from);
	ok($after > $before && grep({ /^\d+x \Q$standin\E \| by alice/ } @calls),
		"control: as alice with search_path $path, $sql calls mallory's $standin")
	  or diag("hits $before -> $after; calls:\n" . join("\n", @calls));
}
reset_hits();
is(hits(), 0, 'the hit counter is reset after the control');

# ---- every path of pg_chime's SQL --------------------------------------------

# exercise(role, search_path, prefix): every API function, and jobs that
# succeed, fail and retry, run HTTP with secrets, claim a once_per key, run
# manually; returns the job ids
sub exercise
{
	my ($role, $path, $p) = @_;
	my $at = at_soon(2);
	my %j;
	user($role, $path, qq{SELECT cron.set_secret('${p}tok', 'planted-secret-$p')});
	$j{ok} = user($role, $path, qq{
		SELECT cron.schedule('${p}ok', '* * * * * *', 'SELECT 1', timezone => '$zone',
		       run_window => '00:00-23:59', overlap => 'skip', concurrency_key => '${p}key',
		       max_attempts => 1, retry_delay => '1 second', timeout => '5 seconds',
		       catchup => '30 seconds', dst_gap => 'end', active => true)});
	$j{fail} = user($role, $path, qq{
		SELECT cron.schedule('${p}fail', '$at', 'SELECT pg_catalog.int4div(1, 0)',
		       max_attempts => 2, retry_delay => '1 second')});
	$j{http} = user($role, $path, qq{
		SELECT cron.schedule_http('${p}http', '$at', '$base/status/201', method => 'POST',
		       headers => '{"x-token": "{{secret.${p}tok}}"}', body => '{"t": "{{secret.${p}tok}}"}',
		       timeout => '5 seconds', max_attempts => 2, retry_delay => '1 second')});
	$j{flaky} = user($role, $path, qq{
		SELECT cron.schedule_http('${p}flaky', '$at', '$base/flaky/$p', max_attempts => 2,
		       retry_delay => '1 second')});
	$j{daily} = user($role, $path, qq{
		SELECT cron.schedule('${p}daily', '* * * * * *', 'SELECT 2', once_per => 'day')});
	$j{win} = user($role, $path, qq{
		SELECT cron.schedule('${p}win', '0 0 1 1 *', 'SELECT 3', run_window => '03:00-03:01')});
	$j{unnamed} = user($role, $path, q{SELECT cron.schedule('0 0 1 1 *', 'SELECT 4')});
	user($role, $path, qq{
		SELECT cron.alter_job($j{ok}, schedule => '* * * * * *', command => 'SELECT 11', database => 'chime',
		       active => true, timezone => '$zone', run_window => '00:00-23:59', overlap => 'buffer_one',
		       concurrency_key => '${p}key2', max_attempts => 3, retry_delay => '2 seconds',
		       timeout => '6 seconds', catchup => '20 seconds', dst_gap => 'skip');
		SELECT cron.alter_job($j{win}, once_per => 'month');
		SELECT cron.alter_job($j{http}, url => '$base/ok', method => 'PUT',
		       headers => '{"x-other": "{{secret.${p}tok}}"}', body => 'plain {{secret.${p}tok}}');
		SELECT cron.next_runs('*/5 * * * *', '$zone', '2026-01-05 00:00+00', 3, 'end', '00:00-23:59');
		SELECT cron.next_runs($j{ok}, 3);
		SELECT cron.run_now('${p}win', ignore_window => true);
		SELECT cron.run_now($j{unnamed});
	});
	return \%j;
}

# after(role, path, prefix, jobs): wait for the runs; the once_per key's
# release and re-run; explain; unschedule by name and by id; drop the secret
sub after
{
	my ($role, $path, $p, $j) = @_;
	runs_are($j->{ok}, "pg_catalog.bool_or(status OPERATOR(pg_catalog.=) 'succeeded' AND command OPERATOR(pg_catalog.=) 'SELECT 11')",
		"$p: a job with every option runs, and runs as altered by alter_job with every option");
	runs_are($j->{fail}, "$N OPERATOR(pg_catalog.=) 2 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'failed') "
		  . "AND pg_catalog.max(attempt) OPERATOR(pg_catalog.=) 2", "$p: a failing job is retried once, then failed");
	runs_are($j->{http}, "$N OPERATOR(pg_catalog.=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded' AND http_status OPERATOR(pg_catalog.=) 200)",
		"$p: an HTTP job with secrets in headers and body succeeds");
	runs_are($j->{flaky}, "$N OPERATOR(pg_catalog.=) 2 AND pg_catalog.max(http_status) OPERATOR(pg_catalog.=) 500 AND pg_catalog.bool_or(status OPERATOR(pg_catalog.=) 'succeeded')",
		"$p: an HTTP job answered 500 then 200 is retried and succeeds");
	runs_are($j->{daily}, "$N OPERATOR(pg_catalog.=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded')",
		"$p: a once_per job runs once for its key");
	runs_are($j->{win}, "$N OPERATOR(pg_catalog.=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded' AND trigger OPERATOR(pg_catalog.=) 'manual')",
		"$p: run_now by name outside the window, with ignore_window");
	runs_are($j->{unnamed}, "$N OPERATOR(pg_catalog.=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded')",
		"$p: run_now by id");

	my $key = $node->safe_psql('chime', "SELECT run_key FROM cron.job_run_key WHERE jobid OPERATOR(pg_catalog.=) $j->{daily}");
	user($role, $path, "SELECT cron.alter_job($j->{daily}, active => false)");
	my ($r, $out, $e) = ('', '', '');
	$r = $node->psql('chime', "SET search_path = $path; " . ($role ? $temp_types : '') . "SELECT cron.run_now($j->{daily})",
		stdout => \$out, stderr => \$e, extra_params => [ $role ? ('-U', $role) : () ]);
	like($e, qr/has already run for key \Q$key\E/, "$p: run_now refuses a claimed key");
	is(user($role, $path, "SELECT cron.release_key($j->{daily}, '$key')"), 't', "$p: release_key");
	user($role, $path, "SELECT cron.run_now($j->{daily})");
	runs_are($j->{daily}, "$N OPERATOR(pg_catalog.=) 2 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded')",
		"$p: after release_key, run_now runs it for the key again");

	# cron.explain reads the job, its key, its concurrency key and its runs
	is(user($role, $path, qq{
		SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM cron.explain($j->{ok});
		SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM cron.explain($j->{daily});
		SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM cron.explain($j->{fail});
		SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM cron.explain($j->{win});
	}), "t\nt\nt\nt", "$p: explain");

	is(user($role, $path, qq{
		SELECT cron.unschedule('${p}ok');
		SELECT cron.unschedule($j->{unnamed});
		SELECT cron.unschedule('${p}daily');
		SELECT cron.drop_secret('${p}tok');
	}), "t\nt\nt\nt", "$p: unschedule by name and by id, drop_secret");
}

my $stage1 = log_at();
my @callers = (
	[ 'alice', $DEFAULT_PATH, 'a_' ],
	[ 'mallory', $DEFAULT_PATH, 'm_' ],
	[ '', $DEFAULT_PATH, 's_' ],
	[ 'alice', $PUBLIC_FIRST, 'p_' ],
);
my %jobs;
$jobs{ $_->[2] } = exercise(@$_) for @callers;

# the superuser's jobs for alice, in another database, and mallory's
# @reboot and overlapping jobs
my %more;
$more{for_alice} = api('', $DEFAULT_PATH, "SELECT cron.schedule('s_for_alice', '" . at_soon(2) . "', 'SELECT 7', username => 'alice')");
$more{other} = api('', $DEFAULT_PATH, "SELECT cron.schedule_in_database('s_other', '" . at_soon(2) . "', 'SELECT 6', 'other')");
$more{reboot} = api('mallory', $DEFAULT_PATH, q{SELECT cron.schedule('m_reboot', '@reboot', 'SELECT 5')});
$more{overlap} = api('mallory', $DEFAULT_PATH,
	q{SELECT cron.schedule('m_overlap', '* * * * * *', 'SELECT pg_catalog.pg_sleep(2.5)', overlap => 'skip')});
after(@$_, $jobs{ $_->[2] }) for @callers;
runs_are($more{for_alice}, "$N OPERATOR(pg_catalog.=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded' AND username OPERATOR(pg_catalog.=) 'alice')",
	'the superuser schedules a job for alice: it runs as alice');
runs_are($more{other}, "$N OPERATOR(pg_catalog.=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded')",
	'a job in another database runs and commits');
runs_are($more{overlap}, q{pg_catalog.bool_or(status OPERATOR(pg_catalog.=) 'skipped' AND occurrences OPERATOR(pg_catalog.>=) 2)},
	'occurrences of a job still running are skipped and counted');
api('mallory', $DEFAULT_PATH, q{SELECT cron.unschedule('m_overlap')});

# a run in flight when the server stops at once: reconciled at start, retried
$more{sleeper} = api('', $DEFAULT_PATH, "SELECT cron.schedule('s_sleeper', '" . at_soon(3)
	  . "', 'SELECT pg_catalog.pg_sleep(4)', max_attempts => 2, retry_delay => '1 second')");
runs_are($more{sleeper}, q{pg_catalog.bool_or(status OPERATOR(pg_catalog.=) 'running' AND job_pid IS NOT NULL)},
	'a long run is in flight');
$node->stop('immediate');
$node->start;
runs_are($more{sleeper}, "$N OPERATOR(pg_catalog.=) 2 AND pg_catalog.bool_and($FINAL) AND pg_catalog.bool_or(status OPERATOR(pg_catalog.=) 'succeeded' AND attempt OPERATOR(pg_catalog.=) 2)",
	'after the immediate restart the interrupted run is failed and retried');
runs_are($more{reboot}, "$N OPERATOR(pg_catalog.>=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded')",
	'the @reboot job runs when the scheduler starts');

# an executor that crashes twice: the second crash deactivates the job
$more{poison} = api('', $DEFAULT_PATH, q{SELECT cron.schedule('s_poison', '0 0 30 2 *', 'SELECT pg_catalog.pg_sleep(60)')});
api('', $DEFAULT_PATH, "SELECT cron.run_now($more{poison})");
for my $round (1, 2)
{
	runs_are($more{poison}, "pg_catalog.bool_or(attempt OPERATOR(pg_catalog.=) $round AND status OPERATOR(pg_catalog.=) 'running' AND job_pid IS NOT NULL)",
		"poison: attempt $round is running");
	kill 'KILL', $node->safe_psql('chime', "SELECT job_pid FROM cron.job_run_details WHERE jobid OPERATOR(pg_catalog.=) $more{poison} AND attempt OPERATOR(pg_catalog.=) $round");
}
wait_for("SELECT NOT active FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) $more{poison}",
	'poison: the second crash deactivates the job');
runs_are($more{poison}, "$N OPERATOR(pg_catalog.=) 2 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'failed')",
	'poison: both attempts are failed');

# an executor terminated in the middle of a run: its outcome is looked up
$more{term} = api('', $DEFAULT_PATH, q{SELECT cron.schedule('s_term', '0 0 30 2 *', 'SELECT pg_catalog.pg_sleep(60)')});
api('', $DEFAULT_PATH, "SELECT cron.run_now($more{term})");
runs_are($more{term}, q{pg_catalog.bool_or(status OPERATOR(pg_catalog.=) 'running' AND job_pid IS NOT NULL)},
	'terminated: the run is going');
$node->safe_psql('chime', "SELECT pg_catalog.pg_terminate_backend(job_pid) FROM cron.job_run_details WHERE jobid OPERATOR(pg_catalog.=) $more{term}");
runs_are($more{term}, "$N OPERATOR(pg_catalog.=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'failed')",
	'terminated: the run whose executor was terminated is failed');

none_called($stage1, 'no stand-in was called by any of it');
reset_hits();

# ---- again, with the database's owner putting public first for everyone -----

my $stage2 = log_at();
$node->safe_psql('postgres', "ALTER DATABASE $_ SET search_path = $PUBLIC_FIRST", extra_params => [ '-U', 'dbowner' ])
  for 'chime', 'other';
$node->restart;
my $d = exercise('alice', $PUBLIC_FIRST, 'd_');
my $other2 = api('', $PUBLIC_FIRST, "SELECT cron.schedule_in_database('d_other', '" . at_soon(2) . "', 'SELECT 8', 'other')");
after('alice', $PUBLIC_FIRST, 'd_', $d);
runs_are($other2, "$N OPERATOR(pg_catalog.=) 1 AND pg_catalog.bool_and(status OPERATOR(pg_catalog.=) 'succeeded')",
	'public first: a job in another database runs and commits');
runs_are($more{reboot}, "$N OPERATOR(pg_catalog.>=) 2", 'public first: the @reboot job runs again');
none_called($stage2, "no stand-in was called when the database's search_path puts public first");

$node->stop;
$http->kill_kill;
done_testing();
