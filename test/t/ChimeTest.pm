# Shared by the TAP tests in this directory.
package ChimeTest;
use strict;
use warnings;
use Exporter 'import';

our @EXPORT = qw(midday_zone_conf);

# A cron.timezone line naming a zone where it is about noon now, so that no
# local midnight (no new once_per day key) falls while a test runs.
# Etc/GMT+N is N hours behind UTC.
sub midday_zone_conf
{
	return sprintf("cron.timezone = 'Etc/GMT%+d'\n", (gmtime)[2] - 12);
}

1;
