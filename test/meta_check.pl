#!/usr/bin/perl
# META.json as PGXN reads it (meta-spec 1.0.0), against the control file
# and the extension scripts: required keys, SemVer versions, and versions
# equal to the control file's.  Prints TAP.
#
#   perl test/meta_check.pl TOP
use strict;
use warnings;
use JSON::PP;

my $top = shift // '.';
my @results;
sub check { my ($ok, $name) = @_; push @results, [ $ok ? 1 : 0, $name ]; return $ok; }

my $semver = qr/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

sub is_semver { my ($v) = @_; return (defined $v && $v =~ $semver) ? 1 : 0; }

sub slurp { my ($f) = @_; open(my $fh, '<', $f) or return undef; local $/; my $t = <$fh>; close($fh); return $t; }

my $text = slurp("$top/META.json");
my $meta = eval { JSON::PP->new->decode($text // '') };
if (ref $meta ne 'HASH') {
	print "1..1\nnot ok 1 - META.json is a JSON object\n";
	exit 1;
}
check(1, 'META.json is a JSON object');

for my $key (qw(name abstract version maintainer license provides meta-spec)) {
	check(defined $meta->{$key} && $meta->{$key} ne '', "META.json has \"$key\"");
}
check(($meta->{'meta-spec'}{version} // '') eq '1.0.0', 'meta-spec version is 1.0.0');
check(($meta->{name} // '') eq 'pg_chime', 'name is pg_chime');
check(is_semver($meta->{version}), "version \"" . ($meta->{version} // '') . "\" is SemVer");

# the control file's version, X.Y, is X.Y.0 here
my $control = slurp("$top/pg_chime.control") // '';
my ($default) = $control =~ /^default_version\s*=\s*'([^']*)'/m;
check(defined $default, 'pg_chime.control has default_version');
$default //= '';
my $default_semver = $default =~ /^\d+\.\d+$/ ? "$default.0" : $default;
check(($meta->{version} // '') eq $default_semver,
	"version equals default_version ($default, as SemVer $default_semver)");

my $provides = ref $meta->{provides} eq 'HASH' ? $meta->{provides} : {};
check(exists $provides->{pg_chime}, 'provides pg_chime');
for my $ext (sort keys %$provides) {
	my $p = $provides->{$ext};
	check(is_semver($p->{version}), "provides.$ext.version \"" . ($p->{version} // '') . "\" is SemVer");
	check(($p->{version} // '') eq ($meta->{version} // ''), "provides.$ext.version equals version");
	check(defined $p->{file} && -f "$top/$p->{file}", "provides.$ext.file exists");
	check(defined $p->{abstract} && $p->{abstract} ne '', "provides.$ext has an abstract");
}
check(($provides->{pg_chime}{file} // '') eq "extension/pg_chime--$default.sql",
	"provides.pg_chime.file is the script of version $default");

# prereqs: phase -> relation -> name -> version
my $prereqs = $meta->{prereqs} // {};
for my $phase (sort keys %$prereqs) {
	for my $rel (sort keys %{ $prereqs->{$phase} }) {
		for my $name (sort keys %{ $prereqs->{$phase}{$rel} }) {
			my $v = $prereqs->{$phase}{$rel}{$name};
			check($v eq '0' || is_semver($v), "prereqs.$phase.$rel.$name \"$v\" is SemVer");
		}
	}
}
check(!ref $meta->{license} && ($meta->{license} // '') =~ /^[a-z_0-9]+$/ ? 1 : 0,
	'license is one of the spec\'s license strings');

# every version from 1.0 up has its script or an update path to the default
check(-f "$top/extension/pg_chime--1.0.sql", 'version 1.0 keeps its script');
check(-f "$top/extension/pg_chime--1.0--$default.sql" || $default eq '1.0',
	"an update script takes 1.0 to $default");

print "1..", scalar(@results), "\n";
for my $i (0 .. $#results) {
	printf "%s %d - %s\n", $results[$i][0] ? 'ok' : 'not ok', $i + 1, $results[$i][1];
}
exit((grep { !$_->[0] } @results) ? 1 : 0);
