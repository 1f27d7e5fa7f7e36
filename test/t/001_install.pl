# Installing pg_chime: refused without preloading and outside
# cron.database_name; settings checked on reload; pg_dump keeps jobs but
# not run history or secret values.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Without shared_preload_libraries: CREATE EXTENSION explains what is missing
my $bare = PostgreSQL::Test::Cluster->new('bare');
$bare->init;
$bare->start;
my ($ret, $stdout, $stderr) = $bare->psql('postgres', 'CREATE EXTENSION pg_chime');
isnt($ret, 0, 'CREATE EXTENSION fails without preloading');
like($stderr, qr/pg_chime must be loaded via shared_preload_libraries/, 'the error says why');
like($stderr, qr/HINT:  Add pg_chime to shared_preload_libraries/, 'and how to fix it');
$bare->stop;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
});
$node->start;

# Only in cron.database_name
$node->safe_psql('postgres', 'CREATE DATABASE other');
($ret, $stdout, $stderr) = $node->psql('other', 'CREATE EXTENSION pg_chime');
isnt($ret, 0, 'CREATE EXTENSION fails outside cron.database_name');
like($stderr, qr/can only create extension in database postgres/, 'the error names the right database');
like($stderr, qr/HINT:  Add cron.database_name = 'other' in postgresql.conf/, 'the hint shows the setting');
is($node->safe_psql('other', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'cron'}),
	'0', 'nothing was left behind');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_chime');
pass('CREATE EXTENSION works in cron.database_name');

# cron.timezone is checked: a bad value on reload keeps the old one
$node->append_conf('postgresql.conf', "cron.timezone = 'America/New_York'");
$node->reload;
is($node->safe_psql('postgres', 'SHOW cron.timezone'), 'America/New_York', 'cron.timezone reloads');
is($node->safe_psql('postgres',
		q{SELECT cron.next_runs('0 3 * * *', after => '2026-01-01 00:00+00', count => 1)::text}),
	'2026-01-01 08:00:00+00', 'next_runs without a zone uses cron.timezone');
$node->append_conf('postgresql.conf', "cron.timezone = 'Mars/Base'");
$node->reload;
is($node->safe_psql('postgres', 'SHOW cron.timezone'), 'America/New_York',
	'an unknown zone in cron.timezone is refused on reload');
$node->append_conf('postgresql.conf', "cron.timezone = 'UTC'");
$node->reload;

# cron.enable_superuser_jobs = off refuses jobs that run as a superuser
$node->append_conf('postgresql.conf', 'cron.enable_superuser_jobs = off');
$node->reload;
($ret, $stdout, $stderr) = $node->psql('postgres', q{SELECT cron.schedule('su', '@daily', 'SELECT 1')});
like($stderr, qr/cannot schedule jobs as superuser/, 'superuser jobs refused when disabled');
$node->append_conf('postgresql.conf', 'cron.enable_superuser_jobs = on');
$node->reload;

# pg_dump keeps the jobs, not the run history or the secret values
$node->safe_psql('postgres', q{
	SELECT cron.set_secret('api_token', 'dump-must-not-contain-this');
	SELECT cron.schedule('dumped', '0 3 * * *', 'SELECT 42', timezone => 'Europe/London', run_window => '03:00-05:00');
	SELECT cron.schedule_http('dumped-http', '@hourly', 'https://example.com/hook',
	                          headers => '{"authorization": "Bearer {{secret.api_token}}"}');
	INSERT INTO cron.job_run_details (jobid, command, status, return_message)
	    VALUES (1, 'SELECT 42', 'succeeded', 'history-must-not-be-dumped');
});
my $dump = $node->safe_psql('postgres', 'SELECT 1') && `pg_dump -h @{[$node->host]} -p @{[$node->port]} postgres`;
like($dump, qr/SELECT 42/, 'the dump has the SQL job');
like($dump, qr/\{\{secret\.api_token\}\}/, 'the dump has the HTTP job with its secret reference');
unlike($dump, qr/dump-must-not-contain-this/, 'the dump has no secret value');
unlike($dump, qr/history-must-not-be-dumped/, 'the dump has no run history');

# ... and restores into a fresh cluster with the same job ids
my $copy = PostgreSQL::Test::Cluster->new('copy');
$copy->init;
$copy->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
});
$copy->start;
my $dumpfile = PostgreSQL::Test::Utils::tempdir() . '/dump.sql';
open(my $fh, '>', $dumpfile) or die;
print $fh $dump;
close($fh);
$copy->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $copy->host, '-p', $copy->port,
		'-d', 'postgres', '-f', $dumpfile ], 'the dump restores');
is($copy->safe_psql('postgres', q{SELECT jobid || ' ' || jobname || ' ' || timezone FROM cron.job WHERE jobname = 'dumped'}),
	'1 dumped Europe/London', 'the restored job keeps its id and options');
is($copy->safe_psql('postgres', q{SELECT cron.schedule('after-restore', '@daily', 'SELECT 1')}),
	'3', 'new job ids continue after the restored ones');

$copy->stop;
$node->stop;
done_testing();
