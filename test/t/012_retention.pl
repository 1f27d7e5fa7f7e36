# cron.run_retention (SPEC §13): the scheduler deletes, in its idle time and
# a small batch at a time, the finished runs that ended longer ago than the
# setting, and the inactive @at jobs whose run is older.  Runs in flight,
# waiting for a retry, or recent stay; so do the runs of 20 jobs running
# every second meanwhile, which record every occurrence.  0 keeps every run.
#
# Runids follow time, as the scheduler writes them: the planted history
# takes its runids in the order of its times, before the recent rows and
# the live jobs' runs, with a gap kept for the rows planted later while
# retention is 0.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib $FindBin::Bin;
use ChimeTest;

my $deadline_s = 60;    # "within a minute of a row passing the limit"
my $njobs = 20;
my $nold = 20000;       # old finished rows planted
my $gap = 100000;       # runids kept free for the rows planted while retention is 0

my $node = PostgreSQL::Test::Cluster->new('retention');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
cron.log_statement = off
cron.run_retention = 0
timezone = 'UTC'
});
$node->append_conf('postgresql.conf', midday_zone_conf());
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime;
	CREATE TABLE ticks (jobid bigint, at timestamptz DEFAULT clock_timestamp());
});
ok($node->poll_query_until('postgres', "SELECT true FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'"),
	'the scheduler is up');

# poll until the query returns t, for at most $deadline_s; on failure, the last value
sub wait_for
{
	my ($query, $what) = @_;
	my $start = time;
	my $last = '';
	while (time < $start + $deadline_s)
	{
		my ($out, $err) = ('', '');
		my $r = $node->psql('postgres', $query, stdout => \$out, stderr => \$err);
		$last = $r == 0 ? $out : "error: $err";
		return pass(sprintf('%s (%.1f s)', $what, time - $start)) if $r == 0 && $out eq 't';
		usleep(100_000);
	}
	fail($what);
	diag("last value: $last\nquery: $query");
	return 0;
}

sub setting
{
	my ($value) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET cron.run_retention = '$value'; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres', "SELECT current_setting('cron.run_retention') = '$value'")
	  or die "cron.run_retention = '$value' not applied";
}

# the live jobs' runs so far, by job (ticks.jobid: 1 to $njobs)
sub live_runs
{
	my $counts = $node->safe_psql('postgres',
		q{SELECT string_agg(jobid || ':' || n, ' ') FROM (SELECT jobid, count(*) AS n FROM ticks GROUP BY jobid) s});
	return { map { split /:/ } split / /, $counts };
}

# until each live job has run n more times
sub wait_live_runs
{
	my ($n, $what) = @_;
	my $from = live_runs();
	my $cond = join(' AND ', map { "count(*) FILTER (WHERE jobid = $_) >= " . (($from->{$_} // 0) + $n) } 1 .. $njobs);
	return wait_for("SELECT $cond FROM ticks", $what);
}

# ---- the setting ------------------------------------------------------------

for my $bad ('-1 day', 'forever')
{
	my ($out, $err) = ('', '');
	$node->psql('postgres', "ALTER SYSTEM SET cron.run_retention = '$bad'", stdout => \$out, stderr => \$err);
	like($err, qr/invalid value for parameter "cron\.run_retention"/, "cron.run_retention = '$bad' is refused");
	like($err, qr/HINT:\s+Use an interval such as '30 days', or 0 to keep every run/, "  with a hint")
	  if $bad eq '-1 day';
}
is($node->safe_psql('postgres', 'SHOW cron.run_retention'), '0', 'the file says 0');
is($node->safe_psql('postgres', "SELECT boot_val FROM pg_settings WHERE name = 'cron.run_retention'"),
	'30 days', "the default is '30 days'");

# ---- the planted history, and the live jobs ---------------------------------

# one transaction: the live jobs' first runs come after every planted row
my $planted = $node->safe_psql('postgres', qq{
	BEGIN;
	SELECT count(cron.schedule('live-' || i, '* * * * * *', 'INSERT INTO public.ticks (jobid) VALUES (' || i || ')',
	                           overlap => 'allow'))
	FROM generate_series(1, $njobs) i;
	CREATE TEMP TABLE live AS SELECT jobid FROM cron.job WHERE jobname LIKE 'live-%';
	INSERT INTO cron.job (jobname, schedule, command, active) VALUES
	    ('at-old', '\@at ' || to_char(now() - interval '3 hours', 'YYYY-MM-DD HH24:MI:SS+00'), 'SELECT 1', false),
	    ('at-recent', '\@at ' || to_char(now() - interval '20 minutes', 'YYYY-MM-DD HH24:MI:SS+00'), 'SELECT 1', false);

	-- old history, from 400 days to 2 hours ago, in the order of time; with
	-- it the rows that must stay and the run of at-old
	CREATE TEMP TABLE old (kind text, jobid bigint, status text, start_time timestamptz,
	                       end_time timestamptz, retry_at timestamptz, message text);
	INSERT INTO old
	SELECT 'old', (SELECT jobid FROM live ORDER BY jobid OFFSET i % $njobs LIMIT 1),
	       (ARRAY['succeeded', 'failed', 'skipped', 'missed'])[1 + i % 4],
	       t, t + interval '5 milliseconds', NULL, 'INSERT 0 1'
	FROM generate_series(1, $nold) i,
	     LATERAL (SELECT now() - interval '400 days' + i * ((interval '400 days' - interval '2 hours') / $nold)) s(t);
	INSERT INTO old VALUES
	    ('stay', (SELECT min(jobid) FROM live), 'failed', now() - interval '3 hours',
	     now() - interval '3 hours', now() + interval '1 day', 'a retry is planned'),
	    ('stay', (SELECT min(jobid) FROM live), 'failed', now() - interval '300 days',
	     now() - interval '300 days', '-infinity', 'a retry is still to be planned'),
	    ('stay', (SELECT max(jobid) FROM live), 'running', now() - interval '3 hours', NULL, NULL, 'still running'),
	    ('stay', (SELECT max(jobid) FROM live), 'succeeded', now() - interval '3 hours',
	     now() - interval '10 minutes', NULL, 'a long run that ended lately'),
	    ('at-old', (SELECT jobid FROM cron.job WHERE jobname = 'at-old'), 'succeeded', now() - interval '3 hours',
	     now() - interval '3 hours', NULL, 'INSERT 0 1');
	INSERT INTO cron.job_run_details (jobid, database, username, command, status, return_message,
	                                  start_time, end_time, scheduled_time, retry_at, trigger)
	SELECT jobid, 'postgres', current_user, 'planted: ' || kind, status, message,
	       start_time, end_time, date_trunc('second', start_time), retry_at, 'schedule'
	FROM old ORDER BY start_time;

	-- the gap, then the recent rows (the last half hour) and at-recent's run
	SELECT 'gap after ' || setval('cron.runid_seq', nextval('cron.runid_seq') + $gap) - $gap;
	INSERT INTO cron.job_run_details (jobid, database, username, command, status, return_message,
	                                  start_time, end_time, scheduled_time, trigger)
	SELECT jobid, 'postgres', current_user, 'planted: ' || kind, 'succeeded', 'INSERT 0 1',
	       t, t + interval '5 milliseconds', date_trunc('second', t), 'schedule'
	FROM (SELECT 'recent' AS kind, (SELECT jobid FROM live ORDER BY jobid OFFSET i % $njobs LIMIT 1) AS jobid,
	             now() - interval '30 minutes' + i * interval '1 second' AS t
	      FROM generate_series(1, 200) i
	      UNION ALL
	      SELECT 'at-recent', jobid, now() - interval '20 minutes' FROM cron.job WHERE jobname = 'at-recent') s
	ORDER BY t;
	COMMIT;
});
my ($gap_from) = $planted =~ /^gap after (\d+)$/m or die "no gap in: $planted";

my %count = (
	old => "SELECT count(*) FROM cron.job_run_details WHERE command = 'planted: old'",
	stay => "SELECT count(*) FROM cron.job_run_details WHERE command = 'planted: stay'",
	recent => "SELECT count(*) FROM cron.job_run_details WHERE command = 'planted: recent'",
	at => "SELECT string_agg(jobname, ' ' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'at-%'",
	at_runs => "SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname LIKE 'at-%'");

# ---- 0: nothing is deleted ----------------------------------------------------

wait_live_runs(3, 'the live jobs run');
is($node->safe_psql('postgres', $count{old}), $nold, 'cron.run_retention = 0: the old rows stay');
is($node->safe_psql('postgres', $count{at}), 'at-old at-recent', '  and the inactive @at jobs');

# ---- '1 hour', under load -----------------------------------------------------

my $t0 = $node->safe_psql('postgres', "SELECT extract(epoch FROM date_trunc('second', now()))::bigint + 1");
setting('1 hour');
wait_for("SELECT ($count{old}) = 0", "cron.run_retention = '1 hour': the $nold old finished rows go");
wait_for("SELECT ($count{at}) = 'at-recent'", '  the inactive @at job whose run is older goes');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE command = 'planted: at-old'"),
	'0', '  with its run');
is($node->safe_psql('postgres', $count{at_runs}), '1', '  at-recent keeps its run');
is($node->safe_psql('postgres', "SELECT string_agg(return_message, ', ' ORDER BY return_message COLLATE \"C\") FROM cron.job_run_details WHERE command = 'planted: stay'"),
	'a long run that ended lately, a retry is planned, a retry is still to be planned, still running',
	'  rows waiting for a retry, running, or ended lately stay');
is($node->safe_psql('postgres', $count{recent}), '200', '  the recent rows stay');
# the scheduler reloads a deleted job, as any change to cron.job; it goes on
wait_live_runs(2, '  the live jobs go on');

# every occurrence of every live job since the setting changed is recorded, succeeded
my $t1 = $node->safe_psql('postgres', "SELECT extract(epoch FROM date_trunc('second', now()))::bigint - 1");
wait_for(qq{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')
            AND command NOT LIKE 'planted:%' AND scheduled_time < to_timestamp($t1)}, '  the runs up to now have ended');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM cron.job j WHERE j.jobname LIKE 'live-%' AND
	  (SELECT count(*) FROM cron.job_run_details r WHERE r.jobid = j.jobid AND r.status = 'succeeded'
	     AND r.command NOT LIKE 'planted:%'
	     AND r.scheduled_time >= to_timestamp($t0) AND r.scheduled_time < to_timestamp($t1))
	  <> $t1 - $t0}), '0',
	'  every live job recorded each of its ' . ($t1 - $t0) . ' runs while the old ones went, and none went with them')
  or diag($node->safe_psql('postgres', qq{SELECT jobid, status, count(*) FROM cron.job_run_details
	WHERE scheduled_time >= to_timestamp($t0) AND scheduled_time < to_timestamp($t1) GROUP BY 1, 2 ORDER BY 1, 2}));

# ---- 0 again: history planted in the gap stays, then goes at '1 hour' --------

setting('0');
wait_live_runs(2, 'cron.run_retention = 0 again');
$node->safe_psql('postgres', qq{
	INSERT INTO cron.job_run_details (runid, jobid, database, username, command, status, return_message,
	                                  start_time, end_time, scheduled_time, trigger)
	SELECT $gap_from + i, (SELECT min(jobid) FROM cron.job WHERE jobname LIKE 'live-%'), 'postgres', current_user,
	       'planted: late', 'succeeded', 'INSERT 0 1', t, t, t, 'schedule'
	FROM generate_series(1, 1000) i, LATERAL (SELECT now() - interval '2 hours' + i * interval '1 second') s(t)});
wait_live_runs(3, '  the scheduler goes on');
is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE command = 'planted: late'"),
	'1000', '  the old rows planted meanwhile stay');
setting('1 hour');
wait_for("SELECT count(*) = 0 FROM cron.job_run_details WHERE command = 'planted: late'",
	"  at '1 hour' they go");

is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler'"),
	'1', 'one scheduler all along');
unlike(slurp_file($node->logfile), qr/pg_chime: could not /, 'no batch of retention failed, nor any recording');

$node->safe_psql('postgres', "SELECT count(cron.unschedule(jobid)) FROM cron.job WHERE jobname LIKE 'live-%'");
$node->stop;
done_testing();
