# "pg_cron migration" in the README: jobs made in a pg_cron cluster
# (Debian's postgresql-15-cron), dumped with pg_dump --data-only --table=cron.job,
# copied into a pg_chime cluster by scripts/pg_cron_migrate.sh.
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
ok(-f "$pkglibdir/pg_cron.so", "pg_cron is installed (postgresql-15-cron; scripts/install-deps.sh installs it)")
  or BAIL_OUT('pg_cron is needed for this test');

# ---- the pg_cron cluster ----------------------------------------------------
my $cron = PostgreSQL::Test::Cluster->new('pg_cron');
$cron->init;
$cron->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '@{[$cron->host]}'
});
$cron->start;
$cron->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE ROLE app LOGIN;
	CREATE ROLE ghost LOGIN;
	SELECT cron.schedule('*/5 * * * *', 'VACUUM');
	SELECT cron.schedule('nightly', '0 3 * * *', $$DELETE FROM pg_temp.nothing WHERE ts < now() - interval '1 day'$$);
	SELECT cron.schedule_in_database('app-job', '0 4 * * 1-5', 'SELECT 2', 'postgres', 'app', false);
	SELECT cron.schedule('six-fields', '0 12 * * * 5', 'SELECT 4');
	SELECT cron.schedule_in_database('ghost-job', '0 5 * * *', 'SELECT 5', 'postgres', 'ghost');
});
my $version = $cron->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'});
like($version, qr/^1\./, "pg_cron $version made the jobs");
my $dump = PostgreSQL::Test::Utils::tempdir() . '/pg_cron_jobs.sql';
$cron->command_ok([ 'pg_dump', '--data-only', '--table=cron.job', '-h', $cron->host, '-p', $cron->port,
		'-d', 'postgres', '-f', $dump ], 'pg_dump --data-only --table=cron.job');
$cron->stop;

# ---- the pg_chime cluster ---------------------------------------------------
my $chime = PostgreSQL::Test::Cluster->new('pg_chime');
$chime->init;
$chime->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
});
$chime->start;
$chime->safe_psql('postgres', q{CREATE EXTENSION pg_chime; CREATE ROLE app LOGIN});

my $script = "$FindBin::Bin/../../scripts/pg_cron_migrate.sh";
my ($stdout, $stderr);
my $ok = IPC::Run::run([ 'bash', $script, $dump, '-h', $chime->host, '-p', $chime->port, '-d', 'postgres',
		'-A', '-t', '-F', '|' ], '>', \$stdout, '2>', \$stderr);
ok(!$ok, 'the migration script exits non-zero, as a job was not copied');
like($stderr, qr/1 of pg_cron's jobs were not copied \(listed above\); the others were/, 'saying how many');
is($stdout, join("\n",
	'1|1||*/5 * * * *|copied',
	'2|2|nightly|0 3 * * *|copied',
	'3|3|app-job|0 4 * * 1-5|copied',
	'4|4|six-fields|0 12 * * *|copied; sixth field dropped',
	'5||ghost-job|0 5 * * *|not copied: role "ghost" does not exist') . "\n",
	'it lists each job: copied, its sixth field dropped, or not copied and why');
my $me = $chime->safe_psql('postgres', 'SELECT current_user');
is($chime->safe_psql('postgres', q{
	SELECT string_agg(concat_ws(' ', coalesce(jobname, '-'), schedule, command, database, username, active), E'\n' ORDER BY jobid)
	FROM cron.job}),
	join("\n",
		"- */5 * * * * VACUUM postgres $me t",
		"nightly 0 3 * * * DELETE FROM pg_temp.nothing WHERE ts < now() - interval '1 day' postgres $me t",
		'app-job 0 4 * * 1-5 SELECT 2 postgres app f',
		"six-fields 0 12 * * * SELECT 4 postgres $me t"),
	'the jobs are pg_chime jobs with their names, schedules, commands, databases, owners and active flags');

# running it again replaces the named jobs (as pg_cron's cron.schedule does) and keeps the unnamed one
$ok = IPC::Run::run([ 'bash', $script, $dump, '-h', $chime->host, '-p', $chime->port, '-d', 'postgres',
		'-A', '-t', '-F', '|' ], '>', \$stdout, '2>', \$stderr);
like($stdout, qr/^1\|1\|\|\*\/5 \* \* \* \*\|copied before$/m, 'a second run says the unnamed job was copied before');
is($chime->safe_psql('postgres', q{SELECT count(*) || ' ' || count(jobname) FROM cron.job}), '4 3',
	'and doubles no job: the named ones are replaced');

# a copied job runs
$chime->safe_psql('postgres', q{SELECT cron.run_now(min(jobid)) FROM cron.job WHERE jobname IS NULL});
ok($chime->poll_query_until('postgres', q{SELECT count(*) = 1 FROM cron.job_run_details WHERE status = 'succeeded' AND command = 'VACUUM'}),
	'the copied VACUUM job runs in pg_chime');

# what the script refuses to read
my $bad = PostgreSQL::Test::Utils::tempdir() . '/empty.sql';
open(my $fh, '>', $bad) or die;
print $fh "SELECT 1;\n";
close($fh);
$ok = IPC::Run::run([ 'bash', $script, $bad, '-h', $chime->host, '-p', $chime->port, '-d', 'postgres' ],
	'>', \$stdout, '2>', \$stderr);
ok(!$ok, 'a file without cron.job data is refused');
like($stderr, qr/has no data of cron\.job; make it with pg_dump --data-only --table=cron\.job/, 'saying how to make one');

$chime->stop;
done_testing();
