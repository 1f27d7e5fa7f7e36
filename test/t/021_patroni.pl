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

plan skip_all => 'PostgreSQL does not run as root (test/run.sh runs this as postgres)' if $> == 0;
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
# Patroni's etcd v2 client by default: 3.0.2's etcd3 client can give the
# leader key back to a leader whose lease expired (it puts the key without
# comparing it; fixed in Patroni 3.0.3), so that the old leader cut off
# here demotes the new one when it comes back.  PG_CHIME_HA_DCS=etcd3 shows it.
my $dcs = $ENV{PG_CHIME_HA_DCS} // 'etcd';
die "PG_CHIME_HA_DCS is etcd or etcd3" unless $dcs =~ /^etcd3?$/;
my $bindir = `$prog{pg_config} --bindir`;
chomp $bindir;
my $base = abs_path($PostgreSQL::Test::Utils::tmp_check) . '/ha';
my $logs = abs_path($PostgreSQL::Test::Utils::log_path);
make_path($base);
my ($zone) = midday_zone_conf() =~ /'([^']+)'/;
my $http = HTTP::Tiny->new(timeout => 3);
our $t_start = time;

# ---- processes this test starts (and only those are stopped) ---------------

my @members;
my $etcd_pid;
my $http_server;    # test/fault_server.py, for the HTTP jobs of the long form
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
		# (no die here: the child must not run this test's END block)
		open STDIN, '<', '/dev/null';
		open(STDOUT, '>>', $log) or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT;
		exec(@cmd) or POSIX::_exit(127);
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
	$http_server->kill_kill if $http_server;
	$http_server = undef;
}

END
{
	local $?;
	stop_all() if @members || $etcd_pid || $http_server;
	note(sprintf('wall time %.1f s', time - $t_start)) if $t_start;
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
	# its tables go to the test's log only (PostgreSQL::Test::Utils sends
	# STDERR there); a failure shows them
	print STDERR "patronictl @args:\n$out$err";
	diag("patronictl @args failed:\n$out$err") unless $ok;
	return $ok ? $out : undef;
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
$dcs:
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
	'--initial-cluster', "chime=http://127.0.0.1:$etcd_peer", '--enable-v2=true');
ok(wait_for('etcd answers', 30, sub {
	my $r = $http->get("http://127.0.0.1:$etcd_client/health");
	$r->{success} && $r->{content} =~ /"health":\s*"true"/;
}), 'etcd is up');

start_member($m1);
ok(wait_for('m1 bootstraps as the leader', 60, sub { my $p = primary(); $p && $p == $m1 }),
	'the first member bootstraps the cluster and leads it');
start_member($_) for ($m2, $m3);

# Both replicas stream; while synchronous_mode is on, both are synchronous
# standbys for PostgreSQL and for Patroni (which lets only those be
# promoted or switched to).
my $sync_mode = 1;

sub replicas_in_sync
{
	my ($leader) = @_;
	my @replicas = grep { $_ != $leader } @members;
	my $state = $sync_mode ? q{state = 'streaming' AND sync_state = 'sync'} : q{state = 'streaming'};
	return ok(wait_for("the replicas of $leader->{name} stream", 90, sub {
		(sql_try($leader, "SELECT count(*) = 2 FROM pg_stat_replication WHERE $state") // '') eq 't'
		  && !($sync_mode && grep { !(patroni_status($_) // {})->{sync_standby} } @replicas);
	}), "both replicas stream from $leader->{name}" . ($sync_mode ? ', synchronous' : ''));
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

# Where a member's Patroni log is now: rejoined() tells whether pg_rewind ran since.
sub mark_log { my ($m) = @_; $m->{log_mark} = -s $m->{log}; }

# A demoted member is back as a streaming replica, with no pg_chime process.
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
	my $since = substr(slurp_file($m->{log}), $m->{log_mark} // 0);
	note("$m->{name} rejoined " . ($since =~ /pg_rewind exit code=0/ ? 'through pg_rewind' : 'without pg_rewind'));
}

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

my $old = $m1;
mark_log($old);
my $t_kill = time;
kill 'KILL', postmaster_pid($old);
my $new;
ok(wait_for('a replica is promoted', 60, sub { $new = primary($old) }), 'Patroni promotes a replica')
  or BAIL_OUT('no failover');
my $t_first;
ok(wait_for('a run on the new leader', 30, sub { $t_first = first_run_on($new, $t_kill) }),
	"jobs run on the new leader $new->{name}")
  or BAIL_OUT('nothing runs after the failover');
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

# the old leader comes back as a replica (through pg_rewind if it went further)
rejoined($old, $new, 90);

# ---- switchover, and failback to the first leader -----------------------------

# patronictl switchover from the leader to a candidate: returns the seconds
# from the command to the first run on the candidate
sub switchover
{
	my ($from, $to, $what) = @_;
	mark_log($from);
	my $t0 = time;
	my $out = patronictl('switchover', '--leader', $from->{name}, '--candidate', $to->{name}, '--force') // '';
	ok($out =~ /Successfully switched over/, "$what: patronictl switchover to $to->{name}")
	  or BAIL_OUT("$what failed: $out");
	ok(wait_for("$to->{name} leads", 60, sub { my $p = primary(); $p && $p == $to }),
		"$what: $to->{name} is the leader")
	  or BAIL_OUT("$what: no leader");
	my $t_first;
	ok(wait_for("a run on $to->{name}", 30, sub { $t_first = first_run_on($to, $t0) }),
		"$what: jobs run on $to->{name}")
	  or BAIL_OUT("$what: nothing runs");
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
switchover($new, $third, 'switchover');
switchover($third, $m1, 'failback');
is(sql($m1, q{SELECT count(*) FROM (SELECT job, key FROM effects GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'through the failover, the switchover and the failback no occurrence ran twice');

# ---- the old leader cut off from etcd (PG_CHIME_HA_LONG=1) ----------------

# The leader's Patroni is stopped (SIGSTOP): its leader key expires after
# ttl while its PostgreSQL goes on as a primary, as when Patroni hangs or
# its host loses etcd without a watchdog to fence it.  Once a replica is
# promoted and has run jobs for $overlap seconds, Patroni is resumed: it
# demotes its PostgreSQL and rejoins through pg_rewind.  Runs on both sides
# are counted from their side effects: the old primary's are read on it
# before it is rewound; HTTP requests are counted where they arrive.
my $overlap = 6;
my ($http_port, $http_log);

# Rows of effects the old primary made itself, as "job|key|runid|epoch"
sub own_effects
{
	my ($m) = @_;
	my $rows = sql_try($m, "SELECT job || '|' || key || '|' || runid || '|' || extract(epoch FROM at)
	                        FROM effects WHERE port = $m->{pg_port}");
	return defined $rows ? [ split /\n/, $rows ] : undef;
}

sub partition
{
	my ($sync) = @_;
	my $tag = $sync ? 'sync' : 'async';
	my $old = primary() or BAIL_OUT('no leader');
	my @others = grep { $_ != $old } @members;

	# once_per jobs due one a second through the partition, SQL and HTTP
	my $t0 = sql($old, q{SELECT date_trunc('second', now()) + interval '2 seconds'});
	my $n = 24;
	sql($old, join(";\n", map {
		my $at = "'$t0'::timestamptz + interval '$_ seconds'";
		("SELECT cron.schedule('$tag-sql-$_', '* * * * * *', \$\$" . effect_sql("$tag-sql-$_", 'run_key')
		  . "\$\$, start_at => $at, $once_opts)",
		 "SELECT cron.schedule_http('$tag-http-$_', '* * * * * *', "
		  . "'http://127.0.0.1:$http_port/tag/$tag-http-$_?key={{run.key}}&run={{run.id}}&ik={{run.idempotency_key}}', "
		  . "method => 'GET', start_at => $at, $once_opts)")
	} 1 .. $n));
	wait_sql($old, "$tag: the first once_per jobs ran",
		"SELECT count(*) >= 2 FROM effects WHERE job LIKE '$tag-sql-%'", 30);

	mark_log($old);
	my $t_stop = time;
	kill 'STOP', $old->{pid};
	my ($new, $t_first);
	ok(wait_for("$tag: a replica is promoted", 60, sub { $new = primary($old) }),
		"$tag: with $old->{name}'s Patroni stopped, a replica is promoted")
	  or BAIL_OUT('no failover');
	ok(wait_for("$tag: a run on $new->{name}", 30, sub { $t_first = first_run_on($new, $t_stop) }),
		"$tag: jobs run on the new leader $new->{name}")
	  or BAIL_OUT("$tag: nothing runs after the failover");
	note(sprintf('%s: Patroni of %s stopped; first run on %s after %.2f s',
		$tag, $old->{name}, $new->{name}, $t_first - $t_stop));

	# both are primaries now: read the old one as it goes on
	my ($seen, $syncrep);
	my $t_cont = $t_first + $overlap;
	while (time < $t_cont)
	{
		$seen = own_effects($old) // $seen;
		$syncrep = sql_try($old, q{SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'}) // $syncrep;
		sleep 0.2;
	}
	ok(defined $seen, "$tag: the old primary $old->{name} answers while cut off");
	is(sql_try($old, 'SELECT pg_is_in_recovery()'), 'f', "$tag: and it is still a primary");
	note("$tag: transactions of the old primary waiting for its synchronous standbys: " . ($syncrep // '?'));
	kill 'CONT', $old->{pid};
	my $t_demoted;
	ok(wait_for("$tag: the old primary is demoted", 60, sub {
		my $rows = own_effects($old);
		$seen = $rows if $rows && (sql_try($old, 'SELECT pg_is_in_recovery()') // '') eq 'f';
		$t_demoted = time;
		!defined $rows || (sql_try($old, 'SELECT pg_is_in_recovery()') // 't') eq 't';
	}), "$tag: resumed, Patroni demotes the old primary");
	rejoined($old, $new, 120);

	wait_sql($new, "$tag: every once_per key of the partition has ended",
		"SELECT count(*) = 0 FROM cron.job_run_key k JOIN cron.job j USING (jobid)
		 WHERE j.jobname LIKE '$tag-%' AND k.state NOT IN ('succeeded', 'failed')", 60);
	is(sql($new, "SELECT count(*) FROM cron.job_run_key k JOIN cron.job j USING (jobid)
	              WHERE j.jobname LIKE '$tag-%' AND k.state = 'succeeded'"), 2 * $n,
		"$tag: each once_per job has run and succeeded in the new leader's history");
	wait_sql($new, "$tag: no run row is left starting or running",
		q{SELECT count(*) = 0 FROM cron.job_run_details
		  WHERE status IN ('starting', 'running') AND start_time < now() - interval '5 seconds'}, 30);

	# the new leader's history: its own runs, and what it had of the old one
	my %kept = map { $_ => 1 } split /\n/, sql($new, "SELECT job || '|' || key || '|' || runid FROM effects");
	my %new_keys = map { $_ => 1 } split /\n/, sql($new, "SELECT job || '|' || key FROM effects WHERE port <> $old->{pg_port}");
	my (@lost, @twice);
	my $t_last_old = 0;
	for my $row (@{ $seen // [] })
	{
		my ($job, $key, $runid, $at) = split /\|/, $row;
		$t_last_old = $at if $at > $t_last_old;
		next if $kept{"$job|$key|$runid"};
		push @lost, $job;
		push @twice, $job if $new_keys{"$job|$key"};
	}
	my $once_twice = grep { /^$tag-sql-/ } @twice;
	my $ticks_twice = grep { /^tick-/ } @twice;
	# HTTP: one idempotency key per once_per key in a history; two keys is
	# a second history's run
	my (%ik, %requests);
	open my $fh, '<', $http_log or die "$http_log: $!";
	while (my $line = <$fh>)
	{
		my $r = decode_json($line);
		next unless $r->{path} =~ m{^/tag/($tag-http-\d+)\?.*\bik=([^&]+)};
		$ik{$1}{$2} = 1;
		$requests{$1}++;
	}
	close $fh;
	my $http_twice = 0;
	my $http_repeats = 0;
	for my $job (keys %requests)
	{
		$http_twice += keys(%{ $ik{$job} }) - 1;
		$http_repeats += $requests{$job} - keys(%{ $ik{$job} });
	}
	is(scalar(keys %requests), $n, "$tag: every HTTP once_per key was requested");

	diag(sprintf("%s: the old leader's Patroni stopped for %.1f s; the new leader's first run %.2f s after "
		  . "the stop; the old primary's last committed run %+.2f s from the new leader's first; demoted %.1f s "
		  . "after Patroni was resumed",
		  $tag, $t_cont - $t_stop, $t_first - $t_stop, $t_last_old - $t_first, $t_demoted - $t_cont));
	diag(sprintf("%s: runs the old primary committed that the new leader does not have (rewound away): %d; "
		  . "run on both histories: %d once_per keys (SQL), %d HTTP once_per keys (requested under two "
		  . "idempotency keys), %d every-second occurrences; HTTP requests repeated under one idempotency key: %d",
		  $tag, scalar(@lost), $once_twice, $http_twice, $ticks_twice, $http_repeats));
	if ($sync)
	{
		is(scalar(@lost), 0, "$tag: the cut-off primary commits no run that the new leader does not have");
		is($once_twice + $ticks_twice, 0, "$tag: no occurrence ran on both histories");
		is($http_twice, 0, "$tag: no HTTP once_per key was sent by both primaries");
	}
	is(sql($new, q{SELECT count(*) FROM (SELECT job, key FROM effects GROUP BY 1, 2 HAVING count(*) > 1) d}),
		'0', "$tag: in the history that is kept, no key ran twice");
	return $new;
}

if ($long)
{
	($http_port, $http_log, $http_server) = start_fault_server('ha');
	partition(1);
	ok(defined patronictl('edit-config', '--set', 'synchronous_mode=false', '--force'),
		'patronictl edit-config turns synchronous_mode off');
	$sync_mode = 0;
	my $leader = primary();
	wait_sql($leader, 'the leader no longer waits for standbys',
		q{SELECT current_setting('synchronous_standby_names') = ''}, 30);
	partition(0);
}

# ---- job_pid of finished runs ---------------------------------------------

# (SPEC section 11: job_pid is the pid of the process that ran the attempt)
my $leader = primary();
my $no_pid = sql($leader, q{
	SELECT string_agg(format('run %s (job %s, %s, attempt %s, started %s): %s', runid, jobid, status, attempt,
	                         start_time, return_message), E'\n' ORDER BY runid)
	FROM cron.job_run_details WHERE status IN ('succeeded', 'failed') AND job_pid IS NULL});
note('finished runs with job_pid NULL: ' . ($no_pid eq '' ? 'none' : "\n$no_pid"));
# a run that succeeded ran somewhere (one that failed as interrupted may
# never have reached a process); an executor's first reply can come before
# the postmaster has told the scheduler its pid, so the pid travels with it
is(sql($leader, q{SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded' AND job_pid IS NULL}),
	'0', 'every run that succeeded has the pid of the process that ran it');

done_testing();
