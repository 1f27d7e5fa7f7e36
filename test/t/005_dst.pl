# Daylight saving end to end: cron.clock_skew places the scheduler seconds
# before the New York transitions of 2026, and the jobs must start exactly
# at the instants cron.next_runs predicted, and never twice for a key.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dst');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
cron.log_statement = off
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', q{CREATE EXTENSION pg_chime});

# pg_chime's clock reads 'utc' (epoch seconds) now; a new session seeing the
# setting means the scheduler has been signalled too
sub set_clock
{
	my ($utc) = @_;
	my $skew = $utc - time();
	$node->safe_psql('postgres', "ALTER SYSTEM SET cron.clock_skew = '$skew seconds'; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres', "SELECT current_setting('cron.clock_skew')::interval = '$skew seconds'::interval")
	  or die "cron.clock_skew not applied";
}

sub wait_clock
{
	my ($utc, $what) = @_;
	ok($node->poll_query_until('postgres',
		"SELECT now() + current_setting('cron.clock_skew')::interval >= to_timestamp($utc)"), $what);
}

# schedule(name, schedule, options): the job id
sub schedule
{
	my ($name, $schedule, $options) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT cron.schedule('$name', '$schedule', 'SELECT 1', timezone => 'America/New_York'$options)});
}

# predicted(job, n): its next n instants, as cron.next_runs lists them now
sub predicted
{
	my ($job, $n) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(extract(epoch FROM t)::bigint::text, ' ') FROM cron.next_runs($job, $n) t});
}

# fired(job): the instants it ran for, in order
sub fired
{
	my ($job) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(string_agg(extract(epoch FROM scheduled_time)::bigint::text, ' ' ORDER BY scheduled_time), '')
		FROM cron.job_run_details WHERE jobid = $job AND status = 'succeeded'});
}

sub settle
{
	ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM cron.job_run_details WHERE status IN ('starting', 'running')}),
		'runs are recorded');
}

# ---- spring forward: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z) -----------
set_clock(1772953187);    # 06:59:47Z
my $end = schedule('gap-end', '30 2 * * *', q{, dst_gap => 'end'});
my $skip = schedule('gap-skip', '30 2 * * *', q{, dst_gap => 'skip'});
my $shift = schedule('gap-shift', '30 2 * * *', q{, dst_gap => 'shift'});
my $wild = schedule('wild-15s', '*/15 * * * * *', '');
my $daily = schedule('window-daily', '*/5 * * * * *', q{, run_window => '03:00-06:00', once_per => 'day'});
my ($p_end) = split / /, predicted($end, 1);
my ($p_skip) = split / /, predicted($skip, 1);
my ($p_shift) = split / /, predicted($shift, 1);
my @p_wild = split / /, predicted($wild, 2);
my ($p_daily) = split / /, predicted($daily, 1);
is($p_end, 1772953200, "dst_gap 'end': 02:30 that does not exist is predicted at 03:00 EDT (07:00Z)");
is($p_shift, 1772955000, "dst_gap 'shift': predicted at 07:30Z");
is($p_skip, 1773037800, "dst_gap 'skip': the next is the 9th");
is($p_daily, 1772953200, 'the windowed job: predicted when the window opens, 07:00Z');

wait_clock(1772953222, 'the clock passes 07:00:22Z');
settle();
is(fired($end), $p_end, "'end' ran at the predicted instant");
is(fired($skip), '', "'skip' did not run");
is(fired($wild), "@p_wild", 'the wildcard job ran at the predicted instants across the change');
is(fired($daily), $p_daily, 'the windowed once-per-day job ran once, when its window opened');

$node->safe_psql('postgres', "SELECT cron.unschedule($wild)");
set_clock(1772954990);    # 07:29:50Z
wait_clock(1772955005, 'the clock passes 07:30:05Z');
settle();
is(fired($shift), $p_shift, "'shift' ran at the predicted instant");
is(fired($end), $p_end, "'end' did not run again");
is($node->safe_psql('postgres', qq{SELECT count(*) || ' ' || string_agg(run_key, ',') FROM cron.job_run_details WHERE jobid = $daily}),
	'1 2026-03-08', 'the windowed job: one row for the day, its occurrences since start nothing');
$node->safe_psql('postgres', 'SELECT count(cron.unschedule(jobid)) FROM cron.job');

# ---- fall back: 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z) -----------------
set_clock(1793511000 - 10);    # 05:29:50Z = 01:29:50 EDT
my $fixed = schedule('fixed-0130', '30 1 * * *', '');
my $hourly = schedule('wild-hourly', '30 * * * *', '');
my $night = schedule('window-night', '*/10 * * * * *', q{, run_window => '01:00-02:00', once_per => 'day'});
my @p_fixed = split / /, predicted($fixed, 2);
my @p_hourly = split / /, predicted($hourly, 2);
my ($p_night) = split / /, predicted($night, 1);
is("@p_fixed", '1793511000 1793601000', 'fixed 01:30: predicted at the first reading only (05:30Z), then the 2nd');
is("@p_hourly", '1793511000 1793514600', 'wildcard minute 30: predicted at both readings (05:30Z, 06:30Z)');

wait_clock(1793511005, 'the clock passes 05:30:05Z');
set_clock(1793514600 - 10);    # 06:29:50Z = 01:29:50 EST, the hour again
wait_clock(1793514605, 'the clock passes 06:30:05Z');
settle();
is(fired($fixed), $p_fixed[0], 'the fixed-time job ran once, at 05:30Z');
is(fired($hourly), "@p_hourly", 'the wildcard job ran at both readings');
is(fired($night), $p_night, 'the windowed once-per-day job ran once, though its window came round twice');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT jobid, run_key FROM cron.job_run_details WHERE run_key IS NOT NULL
	                      GROUP BY 1, 2 HAVING count(*) > 1) d}), '0', 'no key has two runs');

$node->stop;
done_testing();
