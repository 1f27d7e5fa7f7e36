# Under Patroni: three members managed by Patroni with one etcd, all on
# loopback and started by this test.  Jobs run on the leader only; kill -9 of
# the leader's postmaster in the middle of a burst fails over to a replica,
# where the jobs go on with no once_per key run twice and the interrupted runs
# retried; a switchover and a failback leave the demoted member running
# nothing.  With PG_CHIME_HA_LONG=1 (make test-ha) the old leader is also cut
# off from etcd while its PostgreSQL goes on as a primary: with
# synchronous_mode it commits nothing that the new leader runs again; without
# it both primaries run jobs, and the test counts the runs made twice.
#
# Skipped when patroni or etcd is not installed (Debian: patroni, etcd-server).
use strict;
use warnings;
use Cwd 'abs_path';
use File::Path 'make_path';
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use POSIX ':sys_wait_h';
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

# ---- what is needed ----------------------------------------------------------

sub find_program
{
	my ($name) = @_;
	for my $dir (split /:/, $ENV{PATH} // '')
	{
		return "$dir/$name" if $dir ne '' && -x "$dir/$name";
	}
	return undef;
}

my %prog = map { $_ => find_program($_) } qw(patroni patronictl etcd pg_config);
for my $name (qw(patroni patronictl etcd))
{
	plan skip_all => "$name is not installed (Debian: apt-get install patroni etcd-server)"
	  unless $prog{$name};
}
{
	# Patroni talks to etcd through python3-etcd, in the interpreter it runs with
	open my $fh, '<', $prog{patroni} or plan skip_all => "cannot read $prog{patroni}";
	my ($python) = (<$fh> // '') =~ /^#!\s*(\S+)/;
	close $fh;
	plan skip_all => 'patroni cannot load python3-etcd'
	  unless $python && system($python, '-c', 'import etcd') == 0;
}

my $long = $ENV{PG_CHIME_HA_LONG} ? 1 : 0;
my $bindir = `$prog{pg_config} --bindir`;
chomp $bindir;
my $base = abs_path($PostgreSQL::Test::Utils::tmp_check) . '/ha';
my $logs = abs_path($PostgreSQL::Test::Utils::log_path);
make_path($base);
my ($zone) = midday_zone_conf() =~ /'([^']+)'/;
my $http = HTTP::Tiny->new(timeout => 3);
my $t_start = time;

# ---- processes this test starts (and only those are stopped) ---------------

my @members;
my $etcd_pid;
my %used_port;

# A free loopback port in [lo, hi]: nothing listens on it now.
sub free_port
{
	my ($lo, $hi) = @_;
	for (1 .. 500)
	{
		my $port = $lo + int(rand($hi - $lo + 1));
		next if $used_port{$port};
		my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
			Proto => 'tcp', Listen => 1) or next;
		close $probe;
		$used_port{$port} = 1;
		return $port;
	}
	die "no free port in $lo-$hi";
}

# Start a program with its output in a log file; returns its pid.
sub spawn
{
	my ($log, @cmd) = @_;
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $log or die "$log: $!";
		open STDERR, '>&', \*STDOUT;
		exec @cmd or POSIX::_exit(127);
	}
	return $pid;
}

sub alive { my ($pid) = @_; return $pid && waitpid($pid, WNOHANG) == 0; }

# Stop what this test started: Patroni first (each stops its PostgreSQL),
# then any postmaster left (by its data directory), then etcd.
sub stop_all
{
	for my $m (@members)
	{
		next unless alive($m->{pid});
		kill 'CONT', $m->{pid};
		kill 'TERM', $m->{pid};
	}
	my $until = time + 30;
	while (time < $until && grep { alive($_->{pid}) } @members)
	{
		sleep 0.1;
	}
	for my $m (@members)
	{
		if (alive($m->{pid}))
		{
			kill 'KILL', $m->{pid};
			waitpid($m->{pid}, 0);
		}
		$m->{pid} = undef;
		system("$bindir/pg_ctl", '-D', $m->{data}, '-m', 'immediate', 'stop')
		  if -f "$m->{data}/postmaster.pid";
	}
	if (alive($etcd_pid))
	{
		kill 'TERM', $etcd_pid;
		waitpid($etcd_pid, 0);
	}
	$etcd_pid = undef;
}

END
{
	local $?;
	stop_all() if @members || $etcd_pid;
}

# ---- SQL and Patroni's REST API ----------------------------------------------

my $last_error = '';

# Run SQL on a member's PostgreSQL; returns its output (-At), or undef with
# $last_error when it cannot.
sub sql_try
{
	my ($m, $sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run(
			[ "$bindir/psql", '-X', '-At', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1',
				'-p', $m->{pg_port}, '-U', 'postgres', '-d', 'postgres', '-c', $sql ],
			'<', \'', '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	};
	if (!$ok)
	{
		$last_error = $err || $@ || 'psql failed';
		return undef;
	}
	chomp $out;
	return $out;
}

sub sql
{
	my ($m, $sql) = @_;
	my $out = sql_try($m, $sql);
	die "on $m->{name}: $last_error\nin: $sql" unless defined $out;
	return $out;
}

# Poll a condition (a sub returning true) until a deadline; on timeout the
# test fails with the last value seen.
sub wait_for
{
	my ($what, $seconds, $cond) = @_;
	my $until = time + $seconds;
	my $last;
	while (1)
	{
		my $got = eval { $cond->() };
		return 1 if $got;
		$last = $@ || $last_error;
		last if time > $until;
		sleep 0.1;
	}
	diag("$what: not after $seconds s (last: " . ($last // 'nothing') . ')');
	return 0;
}

sub wait_sql
{
	my ($m, $what, $query, $seconds) = @_;
	return ok(wait_for($what, $seconds // 60, sub { (sql_try($m, $query) // '') eq 't' }), $what);
}

# Patroni's view of a member ('role', 'state', ...), undef when it does not answer
sub patroni_status
{
	my ($m) = @_;
	my $r = $http->get("http://127.0.0.1:$m->{rest_port}/patroni");
	return undef unless $r->{success} && $r->{content} =~ /^\{/;
	return decode_json($r->{content});
}

# The member that is primary for Patroni and for PostgreSQL (skipping one
# that is cut off), else undef
sub primary
{
	my (@skip) = @_;
	for my $m (@members)
	{
		next if grep { $_ == $m } @skip;
		my $s = patroni_status($m) or next;
		next unless ($s->{role} // '') =~ /^(master|primary)$/ && ($s->{state} // '') eq 'running';
		return $m if (sql_try($m, 'SELECT pg_is_in_recovery()') // '') eq 'f';
	}
	return undef;
}

sub patronictl
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $prog{patronictl}, '-c', $members[0]{yml}, @args ],
		'<', \'', '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	note("patronictl @args:\n$out$err");
	return $ok && $out =~ /Successfully/;
}

# ---- the cluster -----------------------------------------------------------

my $etcd_client = free_port(23800, 23899);
my $etcd_peer = free_port(23800, 23899);
my $namespace = sprintf('/pg_chime_test_%d_%d/', $$, int(rand(1_000_000)));

# What the test gives Patroni: the same for every member but names, ports
# and directories.  (The README's "High availability" shows this.)
sub patroni_yaml
{
	my ($m) = @_;
	return <<"EOF";
scope: chime
namespace: $namespace
name: $m->{name}
restapi:
  listen: 127.0.0.1:$m->{rest_port}
  connect_address: 127.0.0.1:$m->{rest_port}
etcd3:
  hosts: 127.0.0.1:$etcd_client
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    primary_start_timeout: 0
    synchronous_mode: true
    synchronous_node_count: 2
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_log_hints: 'on'
        max_worker_processes: 24
  initdb:
    - encoding: UTF8
    - no-sync
postgresql:
  listen: 127.0.0.1:$m->{pg_port}
  connect_address: 127.0.0.1:$m->{pg_port}
  data_dir: $m->{data}
  bin_dir: $bindir
  pgpass: $m->{dir}/pgpass
  authentication:
    superuser:
      username: postgres
      password: chime
    replication:
      username: replicator
      password: chime
  parameters:
    shared_preload_libraries: pg_chime
    cron.database_name: postgres
    cron.timezone: '$zone'
    unix_socket_directories: '$m->{dir}'
    fsync: 'off'
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
watchdog:
  mode: 'off'
EOF
}

for my $i (1 .. 3)
{
	my $m = { name => "m$i", dir => "$base/m$i" };
	$m->{data} = "$m->{dir}/data";
	$m->{yml} = "$m->{dir}/patroni.yml";
	$m->{log} = "$logs/patroni_m$i.log";
	$m->{pg_port} = free_port(5800, 5899);
	$m->{rest_port} = free_port(8800, 8899);
	make_path($m->{dir});
	chmod 0700, $m->{dir};
	open my $fh, '>', $m->{yml} or die "$m->{yml}: $!";
	print $fh patroni_yaml($m);
	close $fh;
	push @members, $m;
}
my ($m1, $m2, $m3) = @members;

sub start_member
{
	my ($m) = @_;
	$m->{pid} = spawn($m->{log}, $prog{patroni}, $m->{yml});
}

$etcd_pid = spawn("$logs/etcd.log", $prog{etcd}, '--name', 'chime', '--data-dir', "$base/etcd",
	'--listen-client-urls', "http://127.0.0.1:$etcd_client",
	'--advertise-client-urls', "http://127.0.0.1:$etcd_client",
	'--listen-peer-urls', "http://127.0.0.1:$etcd_peer",
	'--initial-advertise-peer-urls', "http://127.0.0.1:$etcd_peer",
	'--initial-cluster', "chime=http://127.0.0.1:$etcd_peer");
ok(wait_for('etcd answers', 30, sub {
	my $r = $http->get("http://127.0.0.1:$etcd_client/health");
	$r->{success} && $r->{content} =~ /"health":\s*"true"/;
}), 'etcd is up');

start_member($m1);
ok(wait_for('m1 bootstraps as the leader', 60, sub { my $p = primary(); $p && $p == $m1 }),
	'the first member bootstraps the cluster and leads it');
start_member($_) for ($m2, $m3);

# Both replicas stream, and both are synchronous standbys for PostgreSQL
# and for Patroni (which lets only those be promoted or switched to).
sub replicas_in_sync
{
	my ($leader) = @_;
	my @replicas = grep { $_ != $leader } @members;
	return ok(wait_for("the replicas of $leader->{name} are synchronous", 90, sub {
		(sql_try($leader, q{SELECT count(*) = 2 FROM pg_stat_replication
		                    WHERE state = 'streaming' AND sync_state = 'sync'}) // '') eq 't'
		  && !grep { !(patroni_status($_) // {})->{sync_standby} } @replicas;
	}), "both replicas stream from $leader->{name}, synchronous");
}
replicas_in_sync($m1) or BAIL_OUT('the cluster did not start');
note(sprintf('cluster up after %.1f s', time - $t_start));

sql($m1, q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE effects (job text, key text, port int, runid bigint, attempt int,
	                      at timestamptz DEFAULT clock_timestamp());
});

# A job's side effect: one row naming the job, the key (the once_per key, or
# the occurrence for other jobs), the port of the server that ran it, and the run.
sub effect_sql
{
	my ($job, $key) = @_;
	$key //= 'extract(epoch FROM scheduled_time)::bigint::text';
	return "INSERT INTO effects SELECT '$job', $key, current_setting('port')::int, runid, attempt FROM cron.current_run()";
}

# ---- jobs run on the leader only ---------------------------------------------

my $ticks = 4;
sql($m1, join(";\n", map { "SELECT cron.schedule('tick-$_', '* * * * * *', \$\$" . effect_sql("tick-$_") . "\$\$)" }
	  1 .. $ticks));
wait_sql($m1, 'every-second jobs run on the leader', "SELECT count(*) >= 3 * $ticks FROM effects");
for my $r ($m2, $m3)
{
	wait_sql($r, "$r->{name} has the leader's runs", "SELECT count(*) >= 3 * $ticks FROM effects");
	is(sql($r, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_chime%'}), '0',
		"no pg_chime process on the replica $r->{name}");
}
is(sql($m1, "SELECT string_agg(DISTINCT port::text, ',') FROM effects"), $m1->{pg_port},
	'every run so far was on the leader');
is(sql($m1, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'}), '1',
	'the leader has the scheduler');

# ---- kill -9 of the leader's postmaster in the middle of a burst -----------

# Jobs made in one transaction, each '* * * * * *' from start_at with the
# given command
sub schedule_jobs
{
	my ($m, $start_at, $opts, %cmd) = @_;
	sql($m, join(";\n", map {
		"SELECT cron.schedule('$_', '* * * * * *', \$\$$cmd{$_}\$\$, start_at => '$start_at', $opts)"
	} sort keys %cmd));
}

my $once_opts = q{once_per => 'day', max_attempts => 3, retry_delay => '1 second'};
my $burst_at = sql($m1, q{SELECT date_trunc('second', now()) + interval '2 seconds'});
my (%burst, %late);
for my $i (1 .. 8)
{
	# done before the kill, cut short by it, due while no leader runs jobs
	$burst{"quick-$i"} = effect_sql("quick-$i", 'run_key');
	$burst{"long-$i"} = effect_sql("long-$i", 'run_key') . '; SELECT pg_sleep(4)';
	$late{"late-$i"} = effect_sql("late-$i", 'run_key') if $i <= 6;
}
schedule_jobs($m1, $burst_at, $once_opts, %burst);
schedule_jobs($m1, sql($m1, "SELECT '$burst_at'::timestamptz + interval '3 seconds'"), $once_opts, %late);
my $once_jobs = keys(%burst) + keys(%late);
wait_sql($m1, 'the burst is going: the quick runs are done, the long ones running',
	q{SELECT (SELECT count(*) FROM effects WHERE job LIKE 'quick-%') = 8
	     AND (SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	          WHERE j.jobname LIKE 'long-%' AND r.status = 'running' AND r.job_pid IS NOT NULL) = 8});

# The postmaster's pid is the first line of postmaster.pid.
sub postmaster_pid
{
	my ($m) = @_;
	open my $fh, '<', "$m->{data}/postmaster.pid" or return undef;
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	return $pid;
}

# The first run started by the scheduler of a member, as epoch seconds
# (undef before one): the runs it started began after the scheduler did.
sub first_run_on
{
	my ($m, $after) = @_;
	my $t = sql_try($m, qq{
		SELECT extract(epoch FROM min(r.start_time))
		FROM cron.job_run_details r, pg_stat_activity s
		WHERE s.backend_type = 'pg_chime scheduler' AND r.start_time >= s.backend_start
		  AND r.start_time > to_timestamp($after)});
	return defined $t && $t ne '' ? $t : undef;
}

my $old = $m1;
my $t_kill = time;
kill 'KILL', postmaster_pid($old);
my $new;
ok(wait_for('a replica is promoted', 60, sub { $new = primary($old) }), 'Patroni promotes a replica')
  or BAIL_OUT('no failover');
my $t_first;
ok(wait_for('a run on the new leader', 30, sub { $t_first = first_run_on($new, $t_kill) }),
	"jobs run on the new leader $new->{name}");
my $failover = $t_first - $t_kill;
note(sprintf('failover: kill -9 of %s\'s postmaster to the first run on %s: %.2f s', $old->{name}, $new->{name}, $failover));
cmp_ok($failover, '<', 30, 'the first run on the new leader is within 30 s of the kill');

wait_sql($new, 'every once_per key of the burst ends succeeded',
	"SELECT count(*) = $once_jobs FROM cron.job_run_key WHERE state = 'succeeded'", 60);
is(sql($new, q{SELECT count(*) FROM (SELECT job, key FROM effects GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'no key ran twice: one committed effect per once_per key and per occurrence');
is(sql($new, q{SELECT count(DISTINCT job) FROM effects WHERE job ~ '^(quick|long|late)-'}), $once_jobs,
	'every once_per job of the burst took effect');
is(sql($new, q{SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
               WHERE j.jobname LIKE 'quick-%'}), '8',
	'a key that ran on the old leader is not started again on the new one');
my $interrupted = sql($new, q{
	SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname LIKE 'long-%' AND r.status = 'failed' AND r.return_message ~ '^(interrupted|crashed)'});
cmp_ok($interrupted, '>=', 1, "runs cut short by the kill are failed ($interrupted)");
is(sql($new, q{
	SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname LIKE 'long-%' AND r.status = 'succeeded' AND r.attempt > 1 AND r.trigger = 'retry'}),
	$interrupted, 'and each is retried in its key and succeeds');
wait_sql($new, 'no run row is left starting or running',
	q{SELECT count(*) = 0 FROM cron.job_run_details
	  WHERE status IN ('starting', 'running') AND start_time < now() - interval '5 seconds'});

# the old leader comes back as a replica (pg_rewind if it went further)
sub rejoined
{
	my ($m, $leader, $seconds) = @_;
	ok(wait_for("$m->{name} rejoins", $seconds, sub {
		my $s = patroni_status($m);
		$s && ($s->{role} // '') eq 'replica' && ($s->{state} // '') eq 'running'
		  && (sql_try($m, 'SELECT pg_is_in_recovery()') // '') eq 't';
	}), "$m->{name} rejoins as a replica");
	replicas_in_sync($leader);
	is(sql($m, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_chime%'}), '0',
		"the rejoined $m->{name} has no pg_chime process");
}
rejoined($old, $new, 90);
note('rewound: ' . (slurp_file($old->{log}) =~ /pg_rewind/ ? 'yes' : 'no'));

# ---- switchover, and failback to the first leader -----------------------------

# patronictl switchover from the leader to a candidate: returns the seconds
# from the command to the first run on the candidate
sub switchover
{
	my ($from, $to, $what) = @_;
	my $t0 = time;
	ok(patronictl('switchover', '--leader', $from->{name}, '--candidate', $to->{name}, '--force'),
		"$what: patronictl switchover to $to->{name}")
	  or BAIL_OUT("$what failed");
	ok(wait_for("$to->{name} leads", 60, sub { my $p = primary(); $p && $p == $to }),
		"$what: $to->{name} is the leader")
	  or BAIL_OUT("$what: no leader");
	my $t_first;
	ok(wait_for("a run on $to->{name}", 30, sub { $t_first = first_run_on($to, $t0) }),
		"$what: jobs run on $to->{name}");
	my $took = $t_first - $t0;
	note(sprintf('%s: patronictl switchover %s to %s, to the first run on %s: %.2f s',
		$what, $from->{name}, $to->{name}, $to->{name}, $took));
	rejoined($from, $to, 60);
	# every run since the demoted member rejoined is the new leader's
	my $rejoined_at = sql($to, 'SELECT now()');
	wait_sql($to, "$what: the ticks go on on $to->{name}",
		"SELECT count(*) >= 2 * $ticks FROM effects WHERE at > '$rejoined_at'", 30);
	is(sql($to, "SELECT count(*) FROM effects WHERE at > '$rejoined_at' AND port <> $to->{pg_port}"), '0',
		"$what: the demoted $from->{name} runs nothing");
	return $took;
}

my ($third) = grep { $_ != $old && $_ != $new } @members;
my $t_switch = switchover($new, $third, 'switchover');
my $t_failback = switchover($third, $m1, 'failback');
is(sql($m1, q{SELECT count(*) FROM (SELECT job, key FROM effects GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'through the failover, the switchover and the failback no occurrence ran twice');

# ---- job_pid of finished runs ---------------------------------------------

# (SPEC section 11: job_pid is the pid of the process that ran the attempt)
my $leader = primary();
note('finished runs with job_pid NULL: ' . sql($leader, q{
	SELECT count(*) || coalesce(': ' || string_agg(format('%s (%s, %s, attempt %s)', runid, jobid, status, attempt), ', '), '')
	FROM cron.job_run_details WHERE status IN ('succeeded', 'failed') AND job_pid IS NULL}));
note(sql($leader, q{SELECT string_agg(format('%s %s %s %s %s %s', runid, jobid, status, attempt, start_time, return_message), E'\n')
	FROM cron.job_run_details WHERE status IN ('succeeded', 'failed') AND job_pid IS NULL}));

done_testing();
