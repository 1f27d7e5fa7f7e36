# Release 1.1 as a DBA meets it: a 1.0 install updated in place (jobs,
# runs, keys and secrets kept, the catalog that of a fresh 1.1 install as
# pg_dump --schema-only shows it, the jobs still running); the extension in
# schema cron (DROP SCHEMA public CASCADE keeps it); a dump restored into a
# new cluster (jobs and claimed keys back, no second run of a claimed day;
# an HTTP job whose secret the dump does not have fails without claiming
# its key, says how to set the secret, and runs once it is set).
use strict;
use warnings;
use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use lib $FindBin::Bin;
use ChimeTest;

my $conf = qq{
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
timezone = 'UTC'
log_statement = none
} . midday_zone_conf();

sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', $conf);
	$node->start;
	return $node;
}

# the catalog as pg_dump sees it, extension members included
# (--binary-upgrade), without what differs between any two clusters: oids,
# frozen xids, sequence values, and where an added column keeps its default
sub schema_of
{
	my ($node) = @_;
	my $dump = `pg_dump --schema-only --binary-upgrade -h @{[$node->host]} -p @{[$node->port]} -d postgres`;
	die "pg_dump failed" if $?;
	my @lines = grep {
		!/^--/ && !/^\\(un)?restrict/ && !/binary_upgrade_set_next/ && !/binary_upgrade_set_missing_value/
		  && !/relfrozenxid/ && !/^WHERE oid = / && !/^SELECT pg_catalog.setval/ && !/^$/
	} split /\n/, $dump;
	s/'\{[0-9,]+\}'/'{oids}'/ for @lines;
	return join("\n", @lines);
}

# ---- a fresh 1.1 install ----------------------------------------------------
my $fresh = new_node('fresh');
$fresh->safe_psql('postgres', 'CREATE EXTENSION pg_chime');
is($fresh->safe_psql('postgres', q{SELECT extversion || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_chime'}),
	'1.1 cron', 'CREATE EXTENSION installs 1.1 in schema cron');
is($fresh->safe_psql('postgres', q{
	SELECT string_agg(what, ', ' ORDER BY what) FROM (
	  SELECT c.relname || '.' || a.attname AS what FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	  WHERE c.relnamespace = 'cron'::regnamespace AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped
	    AND col_description(c.oid, a.attnum) IS NULL
	  UNION ALL SELECT relname FROM pg_class WHERE relnamespace = 'cron'::regnamespace AND relkind IN ('r', 'v', 'S')
	    AND obj_description(oid, 'pg_class') IS NULL
	  UNION ALL SELECT oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'cron'::regnamespace
	    AND obj_description(oid, 'pg_proc') IS NULL) s}),
	'', 'every table, view, sequence, column and function has a COMMENT');
my $fresh_schema = schema_of($fresh);
like($fresh_schema, qr/CREATE TABLE cron\.job_run_key/, 'the schema dump lists the extension\'s tables');

# ---- 1.0, with jobs, runs, keys and secrets, updated -----------------------
my $old = new_node('old');
$old->safe_psql('postgres', q{
	CREATE EXTENSION pg_chime VERSION '1.0';
	SELECT cron.schedule('beat', '1 seconds', 'INSERT INTO app.beats DEFAULT VALUES');
	SELECT cron.schedule('nightly', '* * * * * *', 'INSERT INTO app.nightly DEFAULT VALUES',
	                     once_per => 'day', run_window => '00:00-23:59');
	SELECT cron.set_secret('api_token', 'kept-across-the-update');
});
is($old->safe_psql('postgres', q{SELECT extversion || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_chime'}),
	'1.0 public', '1.0 installs as it did (recorded in schema public)');
# the day's key of 'nightly' claimed and its run recorded, as 1.0 would have
$old->safe_psql('postgres', q{
	INSERT INTO cron.job_run_details (jobid, command, status, return_message, start_time, end_time, run_key)
	SELECT jobid, command, 'succeeded', 'INSERT 0 1', now(), now(),
	       to_char(now() AT TIME ZONE current_setting('cron.timezone'), 'YYYY-MM-DD')
	FROM cron.job WHERE jobname = 'nightly';
	INSERT INTO cron.job_run_key (jobid, run_key, runid, state, claimed_at, finished_at)
	SELECT jobid, run_key, runid, 'succeeded', now(), now() FROM cron.job_run_details;
});
my $key = $old->safe_psql('postgres', 'SELECT run_key FROM cron.job_run_key');
# a dump of the 1.0 install, for later
my $dump10 = `pg_dump -h @{[$old->host]} -p @{[$old->port]} -d postgres`;
die "pg_dump failed" if $?;
$old->safe_psql('postgres', 'ALTER EXTENSION pg_chime UPDATE');
is($old->safe_psql('postgres', q{SELECT extversion || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_chime'}),
	'1.1 cron', 'ALTER EXTENSION UPDATE takes it to 1.1, in schema cron');
is($old->safe_psql('postgres', q{
	SELECT (SELECT string_agg(jobname, ',' ORDER BY jobid) FROM cron.job) || ' ' ||
	       (SELECT count(*) FROM cron.job_run_details) || ' ' ||
	       (SELECT string_agg(run_key || ':' || state, ',') FROM cron.job_run_key) || ' ' ||
	       (SELECT string_agg(name, ',') FROM cron.secret)}),
	"beat,nightly 1 $key:succeeded api_token", 'jobs, runs, keys and secrets are kept');
my $upgraded_schema = schema_of($old);
is($upgraded_schema, $fresh_schema, 'pg_dump --schema-only of the updated install equals that of a fresh 1.1 install');
$old->safe_psql('postgres', q{
	CREATE SCHEMA app;
	CREATE TABLE app.beats (at timestamptz DEFAULT clock_timestamp());
	CREATE TABLE app.nightly (at timestamptz DEFAULT clock_timestamp());
});

# the jobs run after the update, and the claimed day is not run again
ok($old->poll_query_until('postgres', 'SELECT count(*) >= 3 FROM app.beats'), 'the updated jobs run');
is($old->safe_psql('postgres', q{SELECT count(*) FROM app.nightly}), '0',
	'the day claimed before the update is not run again');
is($old->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details WHERE run_key = '} . $key . q{' AND jobid = (SELECT jobid FROM cron.job WHERE jobname = 'nightly')}),
	'1', 'no run of the claimed key was recorded');

# DROP SCHEMA public CASCADE does not touch pg_chime
$old->safe_psql('postgres', 'DROP SCHEMA public CASCADE');
is($old->safe_psql('postgres', q{SELECT count(*) FROM cron.job}), '2', 'DROP SCHEMA public CASCADE keeps the extension and its jobs');
my $beats = $old->safe_psql('postgres', 'SELECT count(*) FROM app.beats');
ok($old->poll_query_until('postgres', "SELECT count(*) > $beats FROM app.beats"), 'and they still run');
$old->stop;

# a 1.0 dump restores into 1.1 with its CREATE EXTENSION line changed, as "Dump and restore" says
my $from10 = new_node('from10');
like($dump10, qr/^CREATE EXTENSION IF NOT EXISTS pg_chime WITH SCHEMA public;$/m, 'a 1.0 dump names schema public');
(my $edited = $dump10) =~ s/^CREATE EXTENSION IF NOT EXISTS pg_chime WITH SCHEMA public;$/CREATE EXTENSION IF NOT EXISTS pg_chime;/m;
my ($rout, $rerr);
ok(IPC::Run::run([ 'psql', '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-h', $from10->host, '-p', $from10->port, '-d', 'postgres' ],
		'<', \$edited, '>', \$rout, '2>', \$rerr), 'the edited 1.0 dump restores into 1.1') or diag($rerr);
is($from10->safe_psql('postgres', q{SELECT extversion || ' ' || extnamespace::regnamespace || ' ' ||
	(SELECT string_agg(jobname, ',' ORDER BY jobid) FROM cron.job) FROM pg_extension WHERE extname = 'pg_chime'}),
	'1.1 cron beat,nightly', 'with its jobs, as 1.1 in schema cron');
$from10->stop;

# ---- dump and restore ----------------------------------------------------------
my ($port, $log, $server) = start_fault_server('release_http');
my $src = $fresh;
$src->safe_psql('postgres', q{
	CREATE TABLE nightly_done (at timestamptz DEFAULT clock_timestamp());
	SELECT cron.schedule('nightly', '* * * * * *', 'INSERT INTO nightly_done DEFAULT VALUES',
	                     once_per => 'day', run_window => '00:00-23:59');
});
ok($src->poll_query_until('postgres', q{SELECT count(*) = 1 FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'nightly' AND k.state = 'succeeded'}),
	'the nightly job ran and claimed its day');

# cron.launch_active_jobs = off: nothing starts (here: the HTTP job
# scheduled next, until after the dump)
my $offset = -s $src->logfile;
$src->safe_psql('postgres', q{ALTER SYSTEM SET cron.launch_active_jobs = off; SELECT pg_reload_conf()});
ok($src->wait_for_log(qr/cron.launch_active_jobs is off: no run starts/, $offset), 'the scheduler sees cron.launch_active_jobs off');
$src->safe_psql('postgres', qq{
	SELECT cron.set_secret('notify_token', 'not-in-any-dump');
	SELECT cron.schedule_http('notify', '* * * * * *', 'http://127.0.0.1:$port/ok',
	                          headers => '{"authorization": "Bearer {{secret.notify_token}}"}',
	                          once_per => 'day', run_window => '00:00-23:59');
});
my $nightly_key = $src->safe_psql('postgres', q{SELECT run_key FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'nightly'});

my $last_runid = $src->safe_psql('postgres', 'SELECT max(runid) FROM cron.job_run_details');
my $dumpfile = PostgreSQL::Test::Utils::tempdir() . '/release.dump';
$src->command_ok([ 'pg_dump', '-Fc', '-h', $src->host, '-p', $src->port, '-d', 'postgres', '-f', $dumpfile ],
	'pg_dump of the cluster');
is($src->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'notify'}),
	'0', 'while cron.launch_active_jobs is off the HTTP job has not started');
like($src->safe_psql('postgres', q{SELECT string_agg(e, ' ') FROM cron.explain((SELECT jobid FROM cron.job WHERE jobname = 'notify')) e}),
	qr/cron\.launch_active_jobs is off: no run starts/, 'cron.explain says why');
$src->safe_psql('postgres', q{ALTER SYSTEM RESET cron.launch_active_jobs; SELECT pg_reload_conf()});
ok($src->poll_query_until('postgres', q{SELECT count(*) = 1 FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'notify' AND k.state = 'succeeded'}),
	'set back on, it runs (with its secret) and claims its day');

my $dst = new_node('restored');
# the restore in one transaction: the scheduler sees the jobs and their keys together
$dst->command_ok([ 'pg_restore', '--single-transaction', '--exit-on-error', '-h', $dst->host, '-p', $dst->port,
		'-d', 'postgres', $dumpfile ], 'pg_restore into a new cluster');
is($dst->safe_psql('postgres', q{SELECT string_agg(jobname, ',' ORDER BY jobid) FROM cron.job}),
	$src->safe_psql('postgres', q{SELECT string_agg(jobname, ',' ORDER BY jobid) FROM cron.job}),
	'the jobs come back with their ids');
is($dst->safe_psql('postgres', q{SELECT string_agg(j.jobname || ' ' || k.run_key || ' ' || k.state, ',') FROM cron.job_run_key k JOIN cron.job j USING (jobid)}),
	"nightly $nightly_key succeeded", 'the claimed key comes back');
# (the restored jobs may have run already: their runs come after the restored run ids)
is($dst->safe_psql('postgres', qq{SELECT count(*) FROM cron.job_run_details WHERE runid <= $last_runid}), '0',
	'the run history does not');
ok($dst->safe_psql('postgres', q{SELECT last_value FROM cron.runid_seq}) >= $last_runid,
	'the run ids go on from the dumped ones');
is($dst->safe_psql('postgres', q{SELECT count(*) FROM cron.secret}), '0', 'nor do the secrets');

# the restored HTTP job fails for its secret, unclaimed; the nightly job does not run again
ok($dst->poll_query_until('postgres', q{SELECT count(*) >= 2 FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'notify' AND r.status = 'failed' AND r.return_message LIKE '%cron.set_secret%'}),
	'after the restore, the HTTP job fails saying how to set its secret');
is($dst->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'nightly' AND r.run_key = '} . $nightly_key . q{'}),
	'0', 'the claimed day is not run a second time');
is($dst->safe_psql('postgres', 'SELECT count(*) FROM nightly_done'), '1', 'its effect is there once, from the dump');
is($dst->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'notify'}),
	'0', 'the failures without the secret claim no key');
like($dst->safe_psql('postgres', q{SELECT return_message FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'notify' LIMIT 1}),
	qr/secret "notify_token" of role \w+ does not exist .*SELECT cron.set_secret\('notify_token', '<value>'\)/,
	'the failure names the secret and says how to set it');

# cron.run_now without the secret is refused before it claims the day
my ($rc, $o, $e) = $dst->psql('postgres', q{SELECT cron.run_now('notify')});
like($e, qr/secret "notify_token" does not exist.*\n.*HINT:.*cron\.set_secret\('notify_token'/s,
	'cron.run_now of the HTTP job without its secret is refused, saying how to set it');
is($dst->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'notify'}),
	'0', 'and claims no key');

# with the secret set, the next occurrence runs and claims the day
$dst->safe_psql('postgres', q{SELECT cron.set_secret('notify_token', 'set-after-restore')});
ok($dst->poll_query_until('postgres', q{SELECT count(*) = 1 FROM cron.job_run_key k JOIN cron.job j USING (jobid) WHERE j.jobname = 'notify' AND k.state = 'succeeded'}),
	'once the secret is set, the HTTP job runs and claims its day');
is($dst->safe_psql('postgres', q{SELECT count(*) FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'notify' AND r.status = 'succeeded'}),
	'1', 'once');

# a hook run of the HTTP job, its secret gone again, in the period it has had its run: skipped
# as a second run of the period is, not failed for the secret
$dst->safe_psql('postgres', q{
	SELECT cron.drop_secret('notify_token');
	SELECT cron.schedule('then-notify', format('@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
	                     'SELECT 1', on_success => 'notify');
});
ok($dst->poll_query_until('postgres', q{SELECT count(*) = 1 FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'notify' AND r.trigger = 'hook' AND r.status NOT IN ('starting', 'running')}),
	'the hook run of the HTTP job ends');
like($dst->safe_psql('postgres', q{SELECT status || ': ' || return_message FROM cron.job_run_details r JOIN cron.job j USING (jobid)
	WHERE j.jobname = 'notify' AND r.trigger = 'hook'}),
	qr/^skipped: not started: key \S+ has had its run$/, 'skipped for its claimed period, whatever its secret');

$server->kill_kill;
$src->stop;
$dst->stop;
done_testing();
