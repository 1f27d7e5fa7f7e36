# A start with many jobs: the scheduler reads cron.job a batch at a time
# and starts what is due among the jobs read so far while it reads the
# rest; the jobs it had next due when it stopped are read first.  A crash
# while it reads runs nothing twice and loses no catch-up.  The downtime
# is simulated with cron.clock_skew, as in 003_downtime.pl.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $idle = 100000;
my $node = PostgreSQL::Test::Cluster->new('large_start');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
timezone = 'UTC'
});
$node->start;
# 'first' has the lowest jobid and 'last' the highest: read in the first
# and in the last batch when nothing says otherwise
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_chime;
	CREATE TABLE ran (job text, at timestamptz DEFAULT clock_timestamp());
	SELECT cron.schedule('first', '*/10 * * * * *', \$\$INSERT INTO ran VALUES ('first')\$\$, catchup => '2 hours');
	INSERT INTO cron.job (jobname, schedule, command)
	SELECT 'idle-' || i, (i % 60) || ' ' || (i / 60 % 24) || ' ' || (1 + i / 1440 % 28) || ' '
	       || ((extract(month FROM now())::int + 4) % 12 + 1) || ' *', 'SELECT 1'
	FROM generate_series(1, $idle) i;
	SELECT cron.schedule('last', '*/10 * * * * *', \$\$INSERT INTO ran VALUES ('last')\$\$, catchup => '2 hours');
	SELECT cron.schedule('last-daily', '0 3 * * *', \$\$INSERT INTO ran VALUES ('last-daily')\$\$,
	                     once_per => 'day', catchup => '1 day');
	SELECT cron.schedule('last-boot', '\@reboot', \$\$INSERT INTO ran VALUES ('last-boot')\$\$);
});
ok($node->poll_query_until('postgres', q{SELECT count(DISTINCT job) = 2 FROM ran}),
	'jobs run before the restarts');

my $skew = 0;
my $offset = 0;

# restart HOW: stop (fast or immediate), start "three hours" later
sub restart
{
	my ($how) = @_;
	$node->stop($how);
	$skew += 3 * 3600;
	$node->append_conf('postgresql.conf', "cron.clock_skew = '$skew seconds'\n");
	$offset = -s $node->logfile;
	$node->start;
}

# the time of the log line saying every job is loaded, once it is there
sub loaded_at
{
	my $line;
	$node->poll_query_until('postgres', 'SELECT true') or return undef;
	for (my $i = 0; $i < 600; $i++)
	{
		my $log = slurp_file($node->logfile, $offset);
		if ($log =~ /^(\S+ \S+ \S+) \[\d+\] LOG:  pg_chime: every job is loaded: (\d+) in/m)
		{
			return ($1, $2);
		}
		usleep(100_000);
	}
	return undef;
}

# caught_up JOB: it has a catch-up run since the server started
sub caught_up
{
	my ($job) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT count(*) > 0 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
		WHERE j.jobname = '$job' AND r.trigger = 'catchup' AND r.status = 'succeeded'
		  AND r.start_time > pg_postmaster_start_time() + current_setting('cron.clock_skew')::interval});
}

# started_before JOB TIME: that run began before TIME (the server's clock,
# not pg_chime's skewed one)
sub started_before
{
	my ($job, $time) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT r.start_time - current_setting('cron.clock_skew')::interval < '$time'::timestamptz FROM cron.job_run_details r JOIN cron.job j USING (jobid)
		WHERE j.jobname = '$job' AND r.trigger = 'catchup'
		  AND r.start_time > pg_postmaster_start_time() + current_setting('cron.clock_skew')::interval});
}

# a clean stop writes down the jobs next due; while the jobs are read, an
# @reboot job not read yet is changed, the configuration reloaded (a full
# reload), and an hourly job made with a catchup longer than the downtime
restart('fast');
$node->safe_psql('postgres', q{
	SELECT cron.alter_job(jobid, command => $$INSERT INTO ran VALUES ('last-boot')$$ || ' ')
	FROM cron.job WHERE jobname = 'last-boot';
	SELECT pg_reload_conf();
	SELECT cron.schedule('made-while-reading', '0 * * * *', $$INSERT INTO ran VALUES ('made-while-reading')$$,
	                     catchup => '5 hours');
});
my $hint = $node->data_dir . '/pg_stat/pg_chime_next_due';
my ($at, $count) = loaded_at();
ok(defined $count, 'every job is loaded after a clean restart');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM ran WHERE job = 'last-boot'}),
	'the @reboot job changed while the jobs were read runs at this start');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'made-while-reading'}),
	'0', 'a job made while the jobs were read does not catch up the downtime before it existed');
ok(caught_up('first') && caught_up('last'), 'both frequent jobs catch up the downtime');
is(started_before('last', $at), 't',
	'the job next due when the scheduler stopped starts before the last batch is read, though its jobid is the highest');
ok(!-e $hint, 'the list of jobs next due is used once');

# without that list (a crash): in jobid order, the first batch's jobs
# start while the others are read
$node->stop('fast');
unlink $hint;
$offset = -s $node->logfile;
$skew += 3 * 3600;
$node->append_conf('postgresql.conf', "cron.clock_skew = '$skew seconds'\n");
$node->start;
($at, $count) = loaded_at();
ok(caught_up('first'), 'the first job catches up');
is(started_before('first', $at), 't', 'the first batch starts before the last batch is read');
ok(caught_up('last'), 'the job read last catches up too');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM ran WHERE job = 'last-boot'}),
	'the @reboot job read in the last batch runs once at this start too');

# a crash while the jobs are read: nothing runs twice, nothing is lost
restart('immediate');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM ran WHERE at > pg_postmaster_start_time()}),
	'a run starts after the crash restart');
my $crashed_start = $node->safe_psql('postgres',
	q{SELECT pg_postmaster_start_time() + current_setting('cron.clock_skew')::interval});
my $read_all = slurp_file($node->logfile, $offset) =~ /every job is loaded/;
$node->stop('immediate');
note($read_all ? 'the crash came after every job was loaded' : 'the crash came while the jobs were read');
$offset = -s $node->logfile;
$node->start;
($at, $count) = loaded_at();
is($count, $idle + 5, 'every job is loaded after the second crash');
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) > 0 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'last' AND r.trigger = 'catchup' AND r.status = 'succeeded'
	  AND r.start_time > '$crashed_start'}),
	'the job read last catches up the downtime before the first crash');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT jobid, scheduled_time FROM cron.job_run_details
	                      WHERE trigger IN ('schedule', 'catchup')
	                      GROUP BY 1, 2 HAVING count(*) > 1) d}), '0',
	'no occurrence has two runs');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT run_key FROM cron.job_run_details WHERE run_key IS NOT NULL
	                      AND status = 'succeeded' GROUP BY 1 HAVING count(*) > 1) d}), '0',
	'no once_per key ran twice');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ran WHERE job = 'last-daily'}),
	$node->safe_psql('postgres', q{SELECT count(DISTINCT run_key) FROM cron.job_run_details WHERE run_key IS NOT NULL AND status = 'succeeded'}),
	'the daily keyed job ran once per key it claimed');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM cron.job_run_details WHERE status IN ('starting', 'running')
	  AND start_time < now() - interval '1 minute'}), '0', 'no run is left starting or running');

$node->stop;
done_testing();
