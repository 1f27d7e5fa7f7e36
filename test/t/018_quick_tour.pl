# The README's quick tour, run as it is written in a fresh database: every
# statement succeeds, and the jobs it schedules then succeed when they run.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

open(my $fh, '<', "$FindBin::Bin/../../README.md") or die "README.md: $!";
my $readme = do { local $/; <$fh> };
close($fh);
my ($tour) = $readme =~ /^## A quick tour in psql\n.*?^```sql\n(.*?)^```$/ms;
ok(defined $tour && $tour =~ /cron\.schedule/, 'the README has the quick tour');

my $node = PostgreSQL::Test::Cluster->new('tour');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_chime');

my $file = PostgreSQL::Test::Utils::tempdir() . '/tour.sql';
open(my $out, '>', $file) or die;
print $out $tour;
close($out);
my ($stdout, $stderr);
my $ok = IPC::Run::run([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres', '-f', $file ], '>', \$stdout, '2>', \$stderr);
ok($ok, 'every statement of the tour succeeds');
is($stderr, '', 'with nothing on stderr');
like($stdout, qr/2027-03-14 07:30:00\+00/, 'next_runs prints what the tour says it prints');

# what the tour left: its jobs, its secret, its change
is($node->safe_psql('postgres', q{SELECT string_agg(coalesce(jobname, '-') || ' ' || max_attempts, ',' ORDER BY jobid) FROM cron.job}),
	'- 1,rollup 3', 'the tour leaves the unnamed VACUUM job and rollup (purge unscheduled, rollup altered)');
is($node->safe_psql('postgres', q{SELECT name FROM cron.secret}), 'cron_secret', 'and its secret');

# the jobs it schedules work: rollup ran from the tour, and the VACUUM job runs too
ok($node->poll_query_until('postgres', q{
	SELECT status = 'succeeded' FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'rollup'}),
	'the rollup run started in the tour succeeds');
$node->safe_psql('postgres', q{SELECT cron.run_now(jobid) FROM cron.job WHERE jobname IS NULL});
ok($node->poll_query_until('postgres', q{
	SELECT status = 'succeeded' FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname IS NULL}),
	'the VACUUM ANALYZE job succeeds');
is($node->safe_psql('postgres', q{SELECT count(*) FROM rollups}), '1', 'rollup() wrote its row');

$node->stop;
done_testing();
