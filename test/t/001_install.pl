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

# ALTER EXTENSION pg_chime UPDATE takes a 1.0 install to 1.1, jobs and runs
# kept, with the catalog of a fresh 1.1 install
my $catalog = q{
	SELECT string_agg(x, E'\n' ORDER BY x) FROM (
	  SELECT 'column ' || c.relname || '.' || a.attname || ' ' || a.attnum || ' ' ||
	         format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' ||
	         coalesce(pg_get_expr(d.adbin, d.adrelid), '')
	  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	  WHERE c.relnamespace = 'cron'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	  UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	  WHERE c.relnamespace = 'cron'::regnamespace
	  UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
	  FROM pg_constraint WHERE connamespace = 'cron'::regnamespace
	  UNION ALL SELECT 'function ' || oid::regprocedure || ' ' || md5(pg_get_functiondef(oid)) || ' ' ||
	         coalesce(proacl::text, '') FROM pg_proc WHERE pronamespace = 'cron'::regnamespace
	  UNION ALL SELECT 'relation ' || relname || ' ' || relkind::text || ' ' || relrowsecurity || ' ' || coalesce(relacl::text, '')
	  FROM pg_class WHERE relnamespace = 'cron'::regnamespace
	  UNION ALL SELECT 'policy ' || polrelid::regclass || ' ' || polname || ' ' || pg_get_expr(polqual, polrelid) FROM pg_policy
	  UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger
	  WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'cron'::regnamespace) AND NOT tgisinternal
	  UNION ALL SELECT 'dumped ' || extconfig::regclass[]::text FROM pg_extension WHERE extname = 'pg_chime'
	) s(x)};
$copy->safe_psql('postgres', q{DROP EXTENSION pg_chime; CREATE EXTENSION pg_chime});
my $fresh = $copy->safe_psql('postgres', $catalog);
$copy->safe_psql('postgres', q{DROP EXTENSION pg_chime; DROP SCHEMA cron; CREATE EXTENSION pg_chime VERSION '1.0';
	SELECT cron.schedule('kept', '0 3 * * *', 'SELECT 1');
	INSERT INTO cron.job_run_details (jobid, command, status) VALUES (1, 'SELECT 1', 'succeeded')});
is($copy->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_chime'}), '1.0',
	'version 1.0 installs');
$copy->safe_psql('postgres', 'ALTER EXTENSION pg_chime UPDATE');
is($copy->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'pg_chime'}), '1.1',
	'ALTER EXTENSION UPDATE goes to 1.1');
is($copy->safe_psql('postgres', q{SELECT (SELECT jobname FROM cron.job) || ' ' || (SELECT count(*) FROM cron.job_run_details)}),
	'kept 1', 'jobs and runs are kept');
is($copy->safe_psql('postgres', $catalog), $fresh, 'the upgraded catalog is that of a fresh 1.1 install');

$copy->stop;
$node->stop;
done_testing();
