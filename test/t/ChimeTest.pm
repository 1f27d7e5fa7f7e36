# Shared by the TAP tests in this directory.
package ChimeTest;
use strict;
use warnings;
use Exporter 'import';
use Cwd 'abs_path';
use File::Basename;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(midday_zone_conf start_fault_server);

# A cron.timezone line naming a zone where it is about noon now, so that no
# local midnight (no new once_per day key) falls while a test runs.
# Etc/GMT+N is N hours behind UTC.
sub midday_zone_conf
{
	return sprintf("cron.timezone = 'Etc/GMT%+d'\n", (gmtime)[2] - 12);
}

# Start test/fault_server.py on a free loopback port, logging requests to
# tmp_check/NAME.log; returns (port, log file, the IPC::Run handle) once it
# accepts connections (dies if it never does).
sub start_fault_server
{
	my ($name) = @_;
	my $script = dirname(abs_path(__FILE__)) . '/../fault_server.py';
	my $log = "${PostgreSQL::Test::Utils::tmp_check}/$name.log";
	my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die;
	my $port = $probe->sockport;
	close $probe;
	my $server = IPC::Run::start(['python3', $script, $port, $log], '>', "$log.out", '2>', "$log.err");
	for (1 .. 100)
	{
		return ($port, $log, $server) if IO::Socket::INET->new("127.0.0.1:$port");
		select(undef, undef, undef, 0.1);
	}
	die "the fault server on port $port did not start";
}

1;
