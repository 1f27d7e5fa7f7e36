#!/usr/bin/env perl
# planted.pl: every name pg_chime's own SQL resolves, and a stand-in for each.
#
#   perl test/planted.pl [--src DIR] --list        what was found, and where
#   perl test/planted.pl [--src DIR] --statements  the statements: place, SPI function, text
#   perl test/planted.pl [--src DIR] --sql         SQL that plants the stand-ins
#
# DIR (default: the directory above this script's) holds src/*.c and
# extension/pg_chime--*.sql.  The statements are read from the code, so
# that a new statement cannot escape test/t/009_planted.pl:
#
#  - in src/*.c, the SQL text given to every SPI function that takes SQL
#    (SPI_execute, SPI_prepare, SPI_cursor_open_with_args, ...), followed
#    through string literals and macros, psprintf() and StringInfo
#    appends, ?: choices, and a function's parameter back to its callers
#    (so chime_plan(&plan, "...") and job_fetch("jobid = $1") are read);
#  - in extension/pg_chime--*.sql, what runs later than CREATE EXTENSION
#    or was bound by it: column defaults, CHECK constraints, policies,
#    trigger conditions, index predicates, views, SQL and PL/pgSQL
#    function bodies, and the script's own top-level statements.
#
# The scan stops with an error, rather than passing over anything, on: an
# SPI function it does not know, a C name lookup that goes through
# search_path, SQL built from something it cannot follow, a function name,
# operator or type it does not know how to plant, and a SECURITY DEFINER
# function without SET search_path.
#
# The stand-ins go into schema public.  Each function, operator, aggregate,
# domain (a type's name) and view (an unqualified relation's name) first
# calls public.planted_hit(what), which counts the call in the sequence
# public.planted_hits (not undone by a rollback, usable by any role) and
# logs WARNING "planted <what> called by <role>"; then it does what the
# pg_catalog object would do, so that a run goes on and every stand-in it
# reaches is seen.  Overloads are made for the argument types pg_chime's
# statements pass and for those an attacker would pick to win overload
# resolution: an exact type where pg_catalog's candidate is polymorphic or
# needs a cast (unnest(bigint[]), array_agg(text), numeric * integer),
# text for an unknown literal (nextval(text)), and exact twins of
# pg_catalog's own, which win where public comes before pg_catalog in the
# path.  Casts cannot be planted (CREATE CAST needs to own a type, and a
# cast to a domain is ignored), nor operator classes (superuser only), nor
# collations that run code; they are listed, not planted.
use strict;
use warnings;
use File::Basename;
use Getopt::Long;

my $src = dirname(__FILE__) . '/..';
my $mode = '';
GetOptions(
	'src=s' => \$src,
	'list' => sub { $mode = 'list' },
	'statements' => sub { $mode = 'statements' },
	'sql' => sub { $mode = 'sql' })
  or die "usage: $0 [--src DIR] --list|--statements|--sql\n";
die "usage: $0 [--src DIR] --list|--statements|--sql\n" unless $mode;

my @errors;

sub fail_scan { push @errors, join('', @_); }

# ---------------------------------------------------------------------------
# C: files, comments, macros, functions
# ---------------------------------------------------------------------------

my %macro = (INT64_FORMAT => '%lld', UINT64_FORMAT => '%llu');
my @cfiles = sort glob("$src/src/*.c");
my @hfiles = sort glob("$src/src/*.h");
die "planted.pl: no C files under $src/src\n" unless @cfiles;

my %text;        # file => text with comments and preprocessor lines blanked
my @functions;   # { name, file, params => [...], body, body_at }
my %initializer; # static array name => initializer text
my %function_named;

# Blank comments (keeping newlines, so offsets keep their line numbers)
sub strip_comments
{
	my ($s) = @_;
	my $out = '';
	my $i = 0;
	my $n = length $s;
	while ($i < $n)
	{
		my $c = substr($s, $i, 1);
		my $two = substr($s, $i, 2);
		if ($two eq '/*')
		{
			my $end = index($s, '*/', $i + 2);
			$end = $n - 2 if $end < 0;
			(my $blank = substr($s, $i, $end + 2 - $i)) =~ s/[^\n]/ /g;
			$out .= $blank;
			$i = $end + 2;
		}
		elsif ($two eq '//')
		{
			my $end = index($s, "\n", $i);
			$end = $n if $end < 0;
			$out .= ' ' x ($end - $i);
			$i = $end;
		}
		elsif ($c eq '"' || $c eq "'")
		{
			my $j = $i + 1;
			while ($j < $n && substr($s, $j, 1) ne $c)
			{
				$j++ if substr($s, $j, 1) eq '\\';
				$j++;
			}
			$out .= substr($s, $i, $j + 1 - $i);
			$i = $j + 1;
		}
		else
		{
			$out .= $c;
			$i++;
		}
	}
	return $out;
}

# The C string literal "..." starting at $i: (value, index after it)
sub c_string_at
{
	my ($s, $i) = @_;
	my $j = $i + 1;
	my $v = '';
	while (substr($s, $j, 1) ne '"')
	{
		my $c = substr($s, $j, 1);
		if ($c eq '\\')
		{
			my $e = substr($s, $j + 1, 1);
			if ($e eq 'n') { $v .= "\n"; $j += 2 }
			elsif ($e eq 't') { $v .= "\t"; $j += 2 }
			elsif ($e eq 'x')
			{
				substr($s, $j + 2) =~ /^([0-9a-fA-F]+)/;
				$v .= chr(hex($1));
				$j += 2 + length($1);
			}
			elsif ($e =~ /[0-7]/)
			{
				substr($s, $j + 1) =~ /^([0-7]{1,3})/;
				$v .= chr(oct($1));
				$j += 1 + length($1);
			}
			else { $v .= $e; $j += 2 }
		}
		else { $v .= $c; $j++ }
		die "planted.pl: unterminated string literal\n" if $j > length $s;
	}
	return ($v, $j + 1);
}

# Index of the bracket matching the one at $i (skipping literals)
sub matching
{
	my ($s, $i) = @_;
	my %close = ('(' => ')', '[' => ']', '{' => '}');
	my @stack;
	my $n = length $s;
	for (my $j = $i; $j < $n; $j++)
	{
		my $c = substr($s, $j, 1);
		if ($c eq '"' || $c eq "'")
		{
			my $k = $j + 1;
			while ($k < $n && substr($s, $k, 1) ne $c)
			{
				$k++ if substr($s, $k, 1) eq '\\';
				$k++;
			}
			$j = $k;
		}
		elsif (exists $close{$c}) { push @stack, $close{$c} }
		elsif ($c eq ')' || $c eq ']' || $c eq '}')
		{
			return -1 unless @stack && pop(@stack) eq $c;
			return $j unless @stack;
		}
	}
	return -1;
}

# Split at top-level commas
sub split_args
{
	my ($s) = @_;
	my @args;
	my $depth = 0;
	my $cur = '';
	my $n = length $s;
	for (my $j = 0; $j < $n; $j++)
	{
		my $c = substr($s, $j, 1);
		if ($c eq '"' || $c eq "'")
		{
			my $k = $j + 1;
			while ($k < $n && substr($s, $k, 1) ne $c)
			{
				$k++ if substr($s, $k, 1) eq '\\';
				$k++;
			}
			$cur .= substr($s, $j, $k + 1 - $j);
			$j = $k;
			next;
		}
		$depth++ if $c =~ /[(\[{]/;
		$depth-- if $c =~ /[)\]}]/;
		if ($c eq ',' && $depth == 0)
		{
			push @args, $cur;
			$cur = '';
			next;
		}
		$cur .= $c;
	}
	push @args, $cur if $cur =~ /\S/ || @args;
	s/^\s+|\s+$//g for @args;
	return @args;
}

sub line_of
{
	my ($file, $at) = @_;
	return 1 + (substr($text{$file}, 0, $at) =~ tr/\n//);
}

sub short { my ($f) = @_; $f =~ s{^.*/(src|extension)/}{$1/}; return $f }

for my $file (@hfiles, @cfiles)
{
	open(my $fh, '<', $file) or die "planted.pl: $file: $!\n";
	local $/;
	my $s = strip_comments(<$fh>);
	close $fh;

	# string macros (continued lines joined); then blank every preprocessor line
	(my $joined = $s) =~ s/\\\n/ /g;
	while ($joined =~ /^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+((?:"(?:[^"\\]|\\.)*"[ \t]*)+)$/mg)
	{
		my ($name, $body) = ($1, $2);
		my $v = '';
		while ($body =~ /"/g)
		{
			my ($lit, $after) = c_string_at($body, pos($body) - 1);
			$v .= $lit;
			pos($body) = $after;
		}
		$macro{$name} = $v;
	}
	$s =~ s/^([ \t]*#(?:[^\n]*\\\n)*[^\n]*)/(my $b = $1) =~ s![^\n]! !g; $b/mge;
	$text{$file} = $s;
	next if $file =~ /\.h$/;

	# top-level braces: function bodies and initializers
	my $depth = 0;
	my $last_end = 0;
	my $n = length $s;
	for (my $i = 0; $i < $n; $i++)
	{
		my $c = substr($s, $i, 1);
		if ($c eq '"' || $c eq "'")
		{
			my $k = $i + 1;
			while ($k < $n && substr($s, $k, 1) ne $c)
			{
				$k++ if substr($s, $k, 1) eq '\\';
				$k++;
			}
			$i = $k;
			next;
		}
		if ($c eq ';') { $last_end = $i + 1; next }
		next unless $c eq '{';
		my $end = matching($s, $i);
		die "planted.pl: " . short($file) . ": unbalanced braces\n" if $end < 0;
		my $head = substr($s, $last_end, $i - $last_end);
		if ($head =~ /(\w+)\s*\(([^{};]*)\)\s*$/s && $head !~ /=\s*$/)
		{
			my ($name, $params) = ($1, $2);
			my @params = map { /(\w+)\s*(?:\[[^\]]*\])*\s*$/ ? $1 : '' } split_args($params);
			my $f = { name => $name, file => $file, params => \@params,
					  body => substr($s, $i, $end + 1 - $i), body_at => $i };
			push @functions, $f;
			$function_named{$name} = $f;
		}
		elsif ($head =~ /(\w+)\s*(?:\[[^\]]*\])*\s*=\s*$/s)
		{
			$initializer{$1} = substr($s, $i, $end + 1 - $i);
		}
		$i = $end;
		$last_end = $end + 1;
	}
}

# Calls of $callee inside function bodies: { func, at (file offset), args }
sub calls_of
{
	my ($callee, $only) = @_;
	my @found;
	for my $f ($only ? ($only) : @functions)
	{
		my $b = $f->{body};
		while ($b =~ /(?<![\w.>])\Q$callee\E\s*\(/g)
		{
			my $open = pos($b) - 1;
			my $close = matching($b, $open);
			next if $close < 0;
			push @found, { func => $f, at => $f->{body_at} + $-[0],
						   args => [ split_args(substr($b, $open + 1, $close - $open - 1)) ] };
			pos($b) = $open + 1;
		}
	}
	return @found;
}

sub where_in
{
	my ($f, $at) = @_;
	return short($f->{file}) . ':' . line_of($f->{file}, $at) . " ($f->{name})";
}

# ---------------------------------------------------------------------------
# C: what SQL text an expression holds
# ---------------------------------------------------------------------------

my $MAX_ALTERNATIVES = 16;
my %origin_of;    # SQL text => the callers that passed it to a function's parameter

# Alternatives of a list of alternative lists concatenated in order: all
# combinations while there are few, else each part's alternatives joined
sub combine
{
	my @parts = @_;
	my $count = 1;
	$count *= scalar(@$_) || 1 for @parts;
	if ($count > $MAX_ALTERNATIVES)
	{
		return (join('', map { join(' ', @$_) } @parts));
	}
	my @out = ('');
	for my $p (@parts)
	{
		@out = map { my $o = $_; map { $o . $_ } @$p } @out;
	}
	return @out;
}

# printf-style format alternatives with their arguments
sub expand_format
{
	my ($fmts, $args, $ctx, $depth) = @_;
	my @out;
	for my $fmt (@$fmts)
	{
		my @parts;
		my @rest = @$args;
		my $lit = '';
		while ($fmt =~ /\G(.*?)%([-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?)([a-zA-Z%])/gcs)
		{
			$lit .= $1;
			my ($flags, $conv) = ($2, $3);
			if ($conv eq '%') { $lit .= '%'; next }
			push @parts, [$lit];
			$lit = '';
			my $arg = shift @rest;
			if (!defined $arg)
			{
				fail_scan("$ctx->{where}: a format has more conversions than arguments");
				next;
			}
			if ($conv eq 's')
			{
				push @parts, [ sql_of($arg, $ctx, $depth + 1) ];
			}
			elsif ($conv =~ /^[diuxX]$/) { push @parts, ['1'] }
			else
			{
				fail_scan("$ctx->{where}: cannot tell what %$flags$conv puts into SQL");
				push @parts, [''];
			}
		}
		pos($fmt) = 0 unless defined pos($fmt);
		push @parts, [ $lit . substr($fmt, pos($fmt)) ];
		push @out, combine(@parts);
	}
	return @out;
}

# The fragments appended to StringInfo $var in function $f, in order
sub stringinfo_text
{
	my ($var, $ctx, $depth) = @_;
	my $f = $ctx->{func};
	my $b = $f->{body};
	my @parts;
	while ($b =~ /(?<![\w.>])(\w+)\s*\(\s*(&\s*)?\Q$var\E\s*[,)]/g)
	{
		my ($fn, $amp) = ($1, $2);
		my $open = index($b, '(', $-[0]);
		my $close = matching($b, $open);
		my @args = split_args(substr($b, $open + 1, $close - $open - 1));
		my $at = where_in($f, $f->{body_at} + $-[0]);
		my $sub = { %$ctx, where => $at };
		if ($fn eq 'initStringInfo' || $fn eq 'resetStringInfo') { }
		elsif ($fn eq 'appendStringInfoString') { push @parts, [ sql_of($args[1], $sub, $depth + 1) ] }
		elsif ($fn eq 'appendStringInfo')
		{
			my @fmts = sql_of($args[1], $sub, $depth + 1);
			push @parts, [ expand_format(\@fmts, [ @args[ 2 .. $#args ] ], $sub, $depth) ];
		}
		elsif ($fn eq 'appendStringInfoChar')
		{
			if ($args[1] =~ /^'(\\?.)'$/) { push @parts, [ $1 eq '\\x1f' ? ' ' : $1 ] }
			else { fail_scan("$at: cannot tell what $fn adds to $var") }
		}
		elsif ($fn eq 'appendStringInfoSpaces') { push @parts, [' '] }
		else { fail_scan("$at: $var is passed to $fn: cannot tell what SQL it gets") }
		pos($b) = $open + 1;
	}
	fail_scan("$ctx->{where}: nothing is appended to $var") unless @parts;
	return combine(@parts) if @parts == 1;
	# appends in branches and loops: one text with every fragment, in order
	return (join(' ', map { join(' ', @$_) } @parts));
}

# The SQL text alternatives a C expression holds, in context $ctx
sub sql_of
{
	my ($e, $ctx, $depth) = @_;
	$e =~ s/^\s+|\s+$//g;
	if ($depth > 8)
	{
		fail_scan("$ctx->{where}: SQL passed through too many functions to follow");
		return ('');
	}
	# (cast) and outer parentheses
	$e =~ s/^\(\s*(?:const\s+)?char\s*\*\s*\)\s*//;
	while ($e =~ /^\(/ && matching($e, 0) == length($e) - 1)
	{
		$e = substr($e, 1, -1);
		$e =~ s/^\s+|\s+$//g;
	}
	# string literals and string macros, concatenated
	if ($e =~ /^(?:"(?:[^"\\]|\\.)*"|\s+|[A-Z][A-Z0-9_]*)+$/s && $e =~ /"|^[A-Z]/)
	{
		my $v = '';
		my $ok = 1;
		while ($e =~ /\G\s*(?:(")|([A-Z][A-Z0-9_]*))/gc)
		{
			if (defined $1)
			{
				my ($lit, $after) = c_string_at($e, pos($e) - 1);
				$v .= $lit;
				pos($e) = $after;
			}
			elsif (exists $macro{$2}) { $v .= $macro{$2} }
			else { $ok = 0; last }
		}
		return ($v) if $ok;
	}
	# cond ? a : b
	{
		my ($q, $colon) = (-1, -1);
		my $d = 0;
		for (my $j = 0; $j < length $e; $j++)
		{
			my $c = substr($e, $j, 1);
			if ($c eq '"' || $c eq "'")
			{
				my $k = $j + 1;
				while ($k < length $e && substr($e, $k, 1) ne $c)
				{
					$k++ if substr($e, $k, 1) eq '\\';
					$k++;
				}
				$j = $k;
				next;
			}
			$d++ if $c =~ /[(\[{]/;
			$d-- if $c =~ /[)\]}]/;
			$q = $j if $c eq '?' && $d == 0 && $q < 0;
			$colon = $j if $c eq ':' && $d == 0 && $q >= 0 && $colon < 0;
		}
		if ($q >= 0 && $colon > $q)
		{
			return (sql_of(substr($e, $q + 1, $colon - $q - 1), $ctx, $depth + 1),
					sql_of(substr($e, $colon + 1), $ctx, $depth + 1));
		}
	}
	# psprintf(fmt, ...)
	if ($e =~ /^psprintf\s*\(/ && matching($e, index($e, '(')) == length($e) - 1)
	{
		my @args = split_args(substr($e, index($e, '(') + 1, -1));
		my @fmts = sql_of(shift @args, $ctx, $depth + 1);
		return expand_format(\@fmts, \@args, $ctx, $depth);
	}
	# a StringInfo's text
	if ($e =~ /^(\w+)\s*(?:\.|->)\s*data$/)
	{
		return stringinfo_text($1, $ctx, $depth);
	}
	# a static array's strings: job_columns[c].name
	if ($e =~ /^(\w+)\s*\[[^\]]*\](?:\s*\.\s*\w+)?$/ && exists $initializer{$1})
	{
		my $init = $initializer{$1};
		my @names;
		while ($init =~ /"/g)
		{
			my ($lit, $after) = c_string_at($init, pos($init) - 1);
			push @names, $lit;
			pos($init) = $after;
		}
		return (join(', ', @names));
	}
	# a parameter of the enclosing function: what its callers pass
	if ($e =~ /^\w+$/)
	{
		my $f = $ctx->{func};
		my ($index) = grep { $f->{params}[$_] eq $e } 0 .. $#{ $f->{params} };
		if (defined $index)
		{
			my @calls = calls_of($f->{name});
			if (!@calls)
			{
				fail_scan("$ctx->{where}: SQL comes from parameter $e of $f->{name}, which nothing in src/ calls");
				return ('');
			}
			my @out;
			for my $call (@calls)
			{
				my $arg = $call->{args}[$index];
				my $where = where_in($call->{func}, $call->{at});
				if (!defined $arg)
				{
					fail_scan("$where: $f->{name} called with too few arguments");
					next;
				}
				my @texts = sql_of($arg, { func => $call->{func}, where => $where }, $depth + 1);
				push @{ $origin_of{$_} }, $where for @texts;
				push @out, @texts;
			}
			return @out;
		}
		# a local variable: what it is set to
		my @sets;
		while ($f->{body} =~ /(?<![\w.>])\Q$e\E\s*=(?!=)\s*([^;]+);/g)
		{
			push @sets, $1;
		}
		if (@sets)
		{
			return map { sql_of($_, $ctx, $depth + 1) } @sets;
		}
	}
	fail_scan("$ctx->{where}: cannot tell what SQL `$e` holds (add a rule to test/planted.pl)");
	return ('');
}

# ---------------------------------------------------------------------------
# C: where pg_chime runs SQL, and name lookups done in C
# ---------------------------------------------------------------------------

# SPI functions taking SQL text => index of that argument
my %SPI_SQL = (
	SPI_execute => 0, SPI_exec => 0, SPI_execute_with_args => 0, SPI_execute_extended => 0,
	SPI_execute_with_receiver => 0, SPI_prepare => 0, SPI_prepare_cursor => 0,
	SPI_prepare_params => 0, SPI_prepare_extended => 0, SPI_cursor_open_with_args => 1,
	SPI_cursor_parse_open => 1);
# SPI functions that take no SQL text
my %SPI_OTHER = map { $_ => 1 } qw(
  SPI_connect SPI_connect_ext SPI_finish SPI_getvalue SPI_getbinval SPI_gettype SPI_gettypeid
  SPI_getrelname SPI_getnspname SPI_fname SPI_fnumber SPI_keepplan SPI_saveplan SPI_freeplan
  SPI_freetuptable SPI_freetuple SPI_cursor_fetch SPI_cursor_move SPI_scroll_cursor_fetch
  SPI_scroll_cursor_move SPI_cursor_close SPI_cursor_find SPI_cursor_open
  SPI_cursor_open_with_paramlist SPI_execute_plan SPI_execute_plan_extended
  SPI_execute_plan_with_paramlist SPI_execp SPI_execute_snapshot SPI_result_code_string
  SPI_palloc SPI_repalloc SPI_pfree SPI_copytuple SPI_returntuple SPI_modifytuple SPI_commit
  SPI_rollback SPI_start_transaction SPI_commit_and_chain SPI_rollback_and_chain
  SPI_is_cursor_plan SPI_plan_is_valid SPI_plan_get_plan_sources SPI_plan_get_cached_plan
  SPI_getargcount SPI_getargtypeid SPI_register_relation SPI_unregister_relation
  SPI_register_trigger_data SPI_datumTransfer);
# C functions that parse SQL or look a name up through search_path
my @C_LOOKUPS = qw(
  pg_parse_query raw_parser exec_simple_query pg_analyze_and_rewrite_fixedparams
  pg_analyze_and_rewrite_varparams pg_analyze_and_rewrite_withcb parse_analyze_fixedparams
  LookupFuncName LookupFuncWithArgs FuncnameGetCandidates OpernameGetOprid OpernameGetCandidates
  LookupOperName LookupOperWithArgs TypenameGetTypid TypenameGetTypidExtended typenameTypeId
  LookupTypeName LookupTypeNameOid parseTypeString typeStringToTypeName RangeVarGetRelid
  RangeVarGetRelidExtended RelnameGetRelid makeRangeVarFromNameList stringToQualifiedNameList
  textToQualifiedNameList regclassin regprocin regprocedurein regoperin regoperatorin regtypein
  regnamespacein to_regclass to_regproc to_regprocedure to_regtype to_regoper get_collation_oid
  CollationGetCollid ConversionGetConid OpclassnameGetOpcid OpfamilynameGetOpfid
  get_ts_config_oid);
# The reviewed ones: function => why its lookups are not pg_chime's
my %C_LOOKUP_OK = (
	'exec_statements/pg_parse_query' =>
	  "parses a job's own command, which runs as the job's role with that role's settings",
	'exec_statements/pg_analyze_and_rewrite_fixedparams' =>
	  "analyses a job's own command, as the job's role with that role's settings",
);

my @statements;  # { where, text, origin => 'c' | 'script', tokens... }
my %spi_calls;

for my $f (@functions)
{
	my $b = $f->{body};
	while ($b =~ /(?<![\w.>])(SPI_\w+)\s*\(/g)
	{
		my $fn = $1;
		$spi_calls{$fn}++;
		my $where = where_in($f, $f->{body_at} + $-[0]);
		if (exists $SPI_SQL{$fn})
		{
			my $open = pos($b) - 1;
			my $close = matching($b, $open);
			my @args = split_args(substr($b, $open + 1, $close - $open - 1));
			my $ctx = { func => $f, where => $where };
			my @texts = sql_of($args[ $SPI_SQL{$fn} ], $ctx, 0);
			# a text a caller passed on: that caller is where the statement is
			for my $t (@texts)
			{
				my @from = @{ $origin_of{$t} // [] };
				push @statements, { where => $_, text => $t, origin => 'c', spi => $fn } for @from ? @from : ($where);
			}
		}
		elsif (!exists $SPI_OTHER{$fn})
		{
			fail_scan("$where: $fn is an SPI function test/planted.pl does not know: does it take SQL?");
		}
	}
	for my $lookup (@C_LOOKUPS)
	{
		while ($b =~ /(?<![\w.>])\Q$lookup\E\s*\(/g)
		{
			my $where = where_in($f, $f->{body_at} + $-[0]);
			fail_scan("$where: $lookup resolves names through search_path; review it and list it in "
				  . "%C_LOOKUP_OK of test/planted.pl")
			  unless exists $C_LOOKUP_OK{"$f->{name}/$lookup"};
		}
	}
}
# one statement per distinct text and place
{
	my %seen;
	@statements = grep { !$seen{"$_->{where}\0$_->{text}"}++ } @statements;
}

# ---------------------------------------------------------------------------
# Extension scripts: SQL that is bound at CREATE EXTENSION or runs later
# ---------------------------------------------------------------------------

my %script_counts;

sub sql_split_statements
{
	my ($s) = @_;
	my @out;
	my $cur = '';
	my $depth = 0;
	while (length $s)
	{
		if ($s =~ s/^(--[^\n]*)//) { next }
		if ($s =~ s/^('(?:[^']|'')*')//) { $cur .= $1; next }
		if ($s =~ s/^("(?:[^"]|"")*")//) { $cur .= $1; next }
		if ($s =~ s/^(\$(\w*)\$.*?\$\2\$)//s) { $cur .= $1; next }
		my $c = substr($s, 0, 1, '');
		$depth++ if $c eq '(';
		$depth-- if $c eq ')';
		if ($c eq ';' && $depth == 0)
		{
			push @out, $cur if $cur =~ /\S/;
			$cur = '';
			next;
		}
		$cur .= $c;
	}
	push @out, $cur if $cur =~ /\S/;
	return @out;
}

# ---------------------------------------------------------------------------
# SQL: tokens
# ---------------------------------------------------------------------------

sub sql_tokens
{
	my ($s) = @_;
	my @t;
	pos($s) = 0;
	while (pos($s) < length $s)
	{
		if ($s =~ /\G\s+/gc) { next }
		if ($s =~ /\G--[^\n]*/gc) { next }
		if ($s =~ m{\G/\*.*?\*/}gcs) { next }
		if ($s =~ /\G[eE]'((?:[^'\\]|''|\\.)*)'/gc) { push @t, { k => 'str', v => $1 }; next }
		if ($s =~ /\G(?:[bBxX]|[uU]&)'((?:[^']|'')*)'/gc) { push @t, { k => 'str', v => $1 }; next }
		if ($s =~ /\G'((?:[^']|'')*)'/gc) { push @t, { k => 'str', v => $1 }; next }
		if ($s =~ /\G\$(\d+)/gc) { push @t, { k => 'param', v => $1 }; next }
		if ($s =~ /\G(\$(\w*)\$)(.*?)\$\2\$/gcs) { push @t, { k => 'str', v => $3, dollar => 1 }; next }
		if ($s =~ /\G"((?:[^"]|"")*)"/gc) { (my $v = $1) =~ s/""/"/g; push @t, { k => 'id', v => $v, q => 1 }; next }
		if ($s =~ /\G([A-Za-z_\x80-\xff][A-Za-z0-9_\$\x80-\xff]*)/gc)
		{
			push @t, { k => 'id', v => lc $1, u => uc $1 };
			next;
		}
		if ($s =~ /\G(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)/gc) { push @t, { k => 'num', v => $1 }; next }
		if ($s =~ /\G(::|:=|=>)/gc) { push @t, { k => 'punct', v => $1 }; next }
		if ($s =~ /\G([-+*\/<>=~!@#%^&|`?]+)/gc)
		{
			my $op = $1;
			my $len = length $op;
			# as PostgreSQL's lexer: a comment start ends the operator, and a
			# multi-character operator ends in + or - only if it has one of ~!@#%^&|`?
			$op = $1 if $op =~ m{^(.+?)(--|/\*)};
			chop $op while length($op) > 1 && $op =~ /[-+]$/ && $op !~ /[~!@#%^&|`?]/;
			pos($s) -= $len - length($op);
			$op = '<>' if $op eq '!=';
			push @t, { k => 'op', v => $op } if length $op;
			next;
		}
		if ($s =~ /\G([(),;\[\].:])/gc) { push @t, { k => 'punct', v => $1 }; next }
		$s =~ /\G(.)/gcs;
		push @t, { k => 'bad', v => $1 };
	}
	return @t;
}

# ---------------------------------------------------------------------------
# SQL: the names a statement resolves
# ---------------------------------------------------------------------------

# Keywords that a '(' may follow without naming a function
my %NOT_A_CALL = map { $_ => 1 } qw(
  IN ANY SOME ALL EXISTS VALUES ARRAY ROW AS USING ON CONFLICT OVER FILTER WITHIN AND OR NOT
  WHEN THEN ELSE CASE SELECT FROM WHERE JOIN LATERAL SET RETURNING DO KEY CHECK UNIQUE
  REFERENCES PRIMARY DEFAULT IF ELSIF WHILE RETURN FOR BY IS LIKE ILIKE BETWEEN INTO TABLE WITH
  RECURSIVE MATERIALIZED ROWS ORDINALITY GROUP ORDER HAVING LIMIT OFFSET UNION INTERSECT EXCEPT
  EXCLUDE INCLUDE TO END QUERY EXECUTE PERFORM RAISE LOOP FOREACH DISTINCT ONLY);
# Syntax that looks like a call and is not a function lookup (or whose
# lookup the grammar writes as pg_catalog.<name>)
my %SYNTAX_CALL = (
	COALESCE => 'CoalesceExpr', NULLIF => 'NullIfExpr (operator =)', GREATEST => 'MinMaxExpr',
	LEAST => 'MinMaxExpr', CAST => 'cast', EXTRACT => 'pg_catalog.extract',
	POSITION => 'pg_catalog.position', TRIM => 'pg_catalog.btrim/ltrim/rtrim',
	NORMALIZE => 'pg_catalog.normalize', TREAT => 'cast', XMLELEMENT => 'XmlExpr',
	XMLFOREST => 'XmlExpr', XMLCONCAT => 'XmlExpr', XMLPARSE => 'XmlExpr', XMLPI => 'XmlExpr',
	XMLROOT => 'XmlExpr', XMLSERIALIZE => 'XmlExpr', XMLEXISTS => 'pg_catalog.xmlexists',
	GROUPING => 'GroupingFunc', COLLATION => 'pg_catalog.pg_collation_for');
# Type names the grammar writes as pg_catalog.<type>
my %KEYWORD_TYPE = map { $_ => 1 } qw(
  BIGINT INT INTEGER SMALLINT REAL FLOAT DOUBLE NUMERIC DECIMAL DEC BOOLEAN CHAR CHARACTER
  VARCHAR NCHAR NATIONAL BIT TIMESTAMP TIME INTERVAL);
# Identifiers that a string literal may follow without being a type name
my %NOT_A_TYPE = map { $_ => 1 } qw(
  AS THEN ELSE WHEN IN LIKE ILIKE SIMILAR TO ESCAPE IS AND OR NOT SELECT VALUES DEFAULT RETURN
  BY FROM ON USING WHERE INTO SET COLLATE ZONE ANY ALL SOME CASE END RETURNING LIMIT OFFSET
  HAVING WITH IF ELSIF RAISE NOTICE WARNING EXCEPTION INFO LOG DEBUG MESSAGE DETAIL HINT ERRCODE
  PERFORM EXECUTE QUERY BEGIN LANGUAGE COMMENT OWNER FUNCTION);
# Clause keywords that end a FROM list item
my %CLAUSE = map { $_ => 1 } qw(
  WHERE GROUP ORDER HAVING LIMIT OFFSET UNION INTERSECT EXCEPT RETURNING FOR ON USING JOIN INNER
  LEFT RIGHT FULL CROSS NATURAL WINDOW SET VALUES SELECT DO WITH);

my %found;  # kind => name => { where => {...}, qualified => n, unqualified => n }

sub note
{
	my ($kind, $name, $qual, $where) = @_;
	my $e = $found{$kind}{$name} //= { where => {}, qualified => 0, unqualified => 0 };
	$e->{where}{$where}++;
	$e->{ defined $qual ? 'qualified' : 'unqualified' }++;
	$e->{quals}{ $qual // '' }++;
	if (defined $qual && $qual ne 'pg_catalog' && $qual ne 'cron' && $qual ne '(grammar)')
	{
		fail_scan("$where: $kind $qual.$name: pg_chime's SQL names schema $qual");
	}
}

# The type name starting at token $i: (name, qualifier, index after it)
sub type_at
{
	my ($t, $i) = @_;
	return () unless $t->[$i] && $t->[$i]{k} eq 'id';
	my ($qual, $name) = (undef, $t->[$i]{v});
	my $u = $t->[$i]{u} // '';
	my $j = $i + 1;
	if ($t->[$j] && $t->[$j]{v} eq '.' && $t->[ $j + 1 ] && $t->[ $j + 1 ]{k} eq 'id')
	{
		($qual, $name) = ($name, $t->[ $j + 1 ]{v});
		$j += 2;
	}
	elsif (!$t->[$i]{q} && $KEYWORD_TYPE{$u})
	{
		$qual = '(grammar)';
		# double precision, character varying, timestamp with time zone ...
		while ($t->[$j] && $t->[$j]{k} eq 'id' && ($t->[$j]{u} // '') =~ /^(PRECISION|VARYING|WITH|WITHOUT|TIME|ZONE)$/)
		{
			$name .= ' ' . $t->[$j]{v};
			$j++;
		}
	}
	if ($t->[$j] && $t->[$j]{v} eq '(')    # typmod
	{
		my $d = 0;
		for (; $j < @$t; $j++)
		{
			$d++ if $t->[$j]{v} eq '(';
			$d-- if $t->[$j]{v} eq ')';
			last if $d == 0;
		}
		$j++;
	}
	$j += 2 while $t->[$j] && $t->[$j]{v} eq '[' && $t->[ $j + 1 ] && $t->[ $j + 1 ]{v} eq ']';
	return ($name, $qual, $j);
}

sub analyze
{
	my ($stmt) = @_;
	my @t = sql_tokens($stmt->{text});
	my $where = $stmt->{where};
	for (grep { $_->{k} eq 'bad' } @t)
	{
		fail_scan("$where: cannot read SQL at '$_->{v}'");
	}
	# CTE names (not relations)
	my %cte;
	for my $i (0 .. $#t - 2)
	{
		next unless $t[$i]{k} eq 'id' && ($t[ $i + 1 ]{u} // '') eq 'AS';
		my $p = $i > 0 ? ($t[ $i - 1 ]{u} // $t[ $i - 1 ]{v}) : '';
		next unless $p eq 'WITH' || $p eq 'RECURSIVE' || $p eq ',';
		my $n = $t[ $i + 2 ];
		$n = $t[ $i + 3 ] if ($n->{u} // '') =~ /^(MATERIALIZED|NOT)$/;
		$n = $t[ $i + 4 ] if ($n->{u} // '') eq 'MATERIALIZED';
		$cte{ $t[$i]{v} } = 1 if $n && $n->{v} eq '(';
	}
	my @parens;          # for each open '(': the name of the call it opens, or ''
	my $expect_rel = 0;  # the next item is a FROM/JOIN/INTO/UPDATE target
	for (my $i = 0; $i < @t; $i++)
	{
		my $tk = $t[$i];
		my $prev = $i > 0 ? $t[ $i - 1 ] : { k => '', v => '' };
		my $pu = $prev->{u} // $prev->{v};
		my $next = $t[ $i + 1 ] // { k => '', v => '' };
		my $u = $tk->{u} // '';
		my $in = @parens ? $parens[-1] : '';

		if ($tk->{v} eq '(' && $tk->{k} eq 'punct')
		{
			my $name = ($prev->{k} eq 'id') ? ($prev->{u} // uc $prev->{v}) : '';
			push @parens, $name;
			$expect_rel = 0 if $expect_rel;    # a subquery in FROM
			next;
		}
		if ($tk->{v} eq ')' && $tk->{k} eq 'punct')
		{
			pop @parens;
			next;
		}
		if ($tk->{k} eq 'punct' && $tk->{v} eq '::')
		{
			my ($name, $qual, $j) = type_at(\@t, $i + 1);
			if (defined $name)
			{
				note('type', $name, $qual, $where);
				$i = $j - 1;
			}
			next;
		}
		if ($tk->{k} eq 'op')
		{
			# OPERATOR(schema.op)
			my $sym = $tk->{v};
			my $star = $sym eq '*' && ($prev->{v} =~ /^[(,.]$/ || $pu =~ /^(SELECT|RETURNING|DISTINCT)$/
									   || $next->{v} =~ /^[),]$/ || ($next->{u} // '') eq 'FROM');
			next if $star;
			my $prefix = $i == 0 || $prev->{v} =~ /^[(,\[]$/ || $prev->{k} eq 'op'
			  || ($prev->{k} eq 'id' && !$prev->{q} && $pu =~ /^(SELECT|WHERE|AND|OR|NOT|WHEN|THEN|ELSE|RETURNING|SET|BY|ON|HAVING|IN|IS|CASE|RETURN|LIMIT|OFFSET)$/);
			# a negative numeric constant is folded by the grammar, not looked up
			next if $prefix && $sym eq '-' && $next->{k} eq 'num';
			note('operator', ($prefix ? 'prefix ' : '') . $sym, undef, $where);
			next;
		}
		next unless $tk->{k} eq 'id';

		# OPERATOR(pg_catalog.=)
		if (!$tk->{q} && $u eq 'OPERATOR' && $next->{v} eq '(')
		{
			my $j = $i + 2;
			my $qual;
			if ($t[$j]{k} eq 'id' && $t[ $j + 1 ]{v} eq '.')
			{
				$qual = $t[$j]{v};
				$j += 2;
			}
			my $sym = $t[$j]{v};
			my $prefix = $i == 0 || $prev->{v} =~ /^[(,]$/ || $prev->{k} eq 'op'
			  || ($prev->{k} eq 'id' && $pu =~ /^(SELECT|WHERE|AND|OR|NOT|WHEN|THEN|ELSE|RETURNING)$/);
			note('operator', ($prefix ? 'prefix ' : '') . $sym, $qual, $where);
			$i = $j + 1;
			next;
		}
		# operators the grammar makes from keywords
		if (!$tk->{q})
		{
			my $neg = $pu eq 'NOT';
			if ($u eq 'IN' && $in ne 'POSITION') { note('operator', $neg ? '<>' : '=', undef, $where) }
			if ($u eq 'BETWEEN')
			{
				note('operator', $_, undef, $where) for ('>=', '<=');
			}
			if ($u eq 'LIKE') { note('operator', $neg ? '!~~' : '~~', undef, $where) }
			if ($u eq 'ILIKE') { note('operator', $neg ? '!~~*' : '~~*', undef, $where) }
			if ($u eq 'SIMILAR') { note('operator', $neg ? '!~' : '~', undef, $where) }
			if ($u eq 'DISTINCT' && $pu =~ /^(IS|NOT)$/) { note('operator', '=', undef, $where) }
			if ($u eq 'NULLIF' || $u eq 'NATURAL') { note('operator', '=', undef, $where) }
			if ($u eq 'USING' && $next->{v} eq '(') { note('operator', '=', undef, $where) }
			if ($u eq 'CASE' && ($next->{u} // '') ne 'WHEN') { note('operator', '=', undef, $where) }
			if ($u eq 'OVERLAPS') { note('function', 'overlaps', '(grammar)', $where) }
			if ($u eq 'AT' && ($next->{u} // '') eq 'TIME') { note('function', 'timezone', '(grammar)', $where) }
			if ($u eq 'COLLATE')
			{
				my ($name, $qual) = type_at(\@t, $i + 1);
				note('collation', $name, $qual, $where) if defined $name;
			}
		}
		# FROM lists and other relation targets
		if (!$tk->{q} && ($u eq 'FROM' && $in !~ /^(EXTRACT|SUBSTRING|TRIM|OVERLAY|POSITION)$/))
		{
			$expect_rel = 1;
			next;
		}
		if (!$tk->{q} && ($u eq 'JOIN' || $u eq 'INTO' || ($u eq 'USING' && $next->{v} ne '(')
						 || ($u eq 'UPDATE' && $pu !~ /^(FOR|DO|KEY)$/ && ($next->{u} // '') ne 'SET')
						 || ($u eq 'TABLE' && $pu !~ /^(CREATE|ALTER|DROP|RETURNS|LOCK)$/)))
		{
			$expect_rel = 1;
			next;
		}
		if (!$tk->{q} && $u eq 'ONLY' && $expect_rel) { next }
		# ROWS FROM (f(...), g(...)): the functions follow
		if (!$tk->{q} && $u eq 'ROWS' && $expect_rel && ($next->{u} // '') eq 'FROM') { $expect_rel = 0; next }
		if (!$tk->{q} && $u eq 'LATERAL' && $expect_rel) { next }

		# a qualified name
		my ($qual, $name, $j) = (undef, $tk->{v}, $i + 1);
		if ($next->{v} eq '.' && $t[ $i + 2 ] && $t[ $i + 2 ]{k} eq 'id')
		{
			($qual, $name) = ($tk->{v}, $t[ $i + 2 ]{v});
			$j = $i + 3;
		}
		my $after = $t[$j] // { k => '', v => '' };

		if ($expect_rel)
		{
			$expect_rel = 0;
			if ($after->{v} eq '(' && $pu ne 'INTO')
			{
				# a function in FROM; multi-argument unnest(a, b, ...) is
				# expanded by the parser into pg_catalog.unnest(a), ...
				# when unqualified (transformRangeFunction)
				my $close = $j;
				my ($d, $commas) = (0, 0);
				for (; $close < @t; $close++)
				{
					$d++ if $t[$close]{v} eq '(';
					$d-- if $t[$close]{v} eq ')';
					$commas++ if $d == 1 && $t[$close]{v} eq ',';
					last if $d == 0;
				}
				if (!defined $qual && $name eq 'unnest' && $commas > 0)
				{
					note('function', 'unnest', '(grammar)', $where);
					$i = $j - 1;
					next;
				}
				if (defined $qual && $name eq 'unnest' && $commas > 0)
				{
					fail_scan("$where: $qual.unnest with several arguments: only an unqualified unnest(a, b, ...) "
						  . "in FROM is expanded (into pg_catalog.unnest(a), ...); $qual.unnest(a, b) does not "
						  . "exist.  Write ROWS FROM ($qual.unnest(\$1), $qual.unnest(\$2), ...)");
				}
				# handled as a call below
			}
			elsif ($pu eq 'INTO' || $after->{v} ne '(')
			{
				note('relation', $name, $qual, $where) unless !defined $qual && $cte{$name};
				$i = $j - 1;
				next;
			}
		}
		if ($after->{v} eq '(' && $after->{k} eq 'punct')
		{
			if (!defined $qual && !$tk->{q})
			{
				next if $NOT_A_CALL{$u};
				next if $pu eq 'AS' || $pu eq 'WITH' || $pu eq 'RECURSIVE' || $pu eq 'INTO';
				next if $prev->{v} eq ',' && $cte{$name};
				if (exists $SYNTAX_CALL{$u})
				{
					note('syntax', lc($u) . " ($SYNTAX_CALL{$u})", '(grammar)', $where);
					next;
				}
				if ($u eq 'SUBSTRING' || $u eq 'OVERLAY')
				{
					# the SQL forms (FROM/FOR/SIMILAR/PLACING) are pg_catalog.*;
					# the comma form is an ordinary lookup
					my ($d, $sql_form) = (0, 0);
					for (my $k = $j; $k < @t; $k++)
					{
						$d++ if $t[$k]{v} eq '(';
						$d-- if $t[$k]{v} eq ')';
						last if $d == 0;
						$sql_form = 1 if $d == 1 && ($t[$k]{u} // '') =~ /^(FROM|FOR|SIMILAR|PLACING)$/;
					}
					if ($sql_form)
					{
						note('syntax', lc($u) . ' (pg_catalog.' . lc($u) . ')', '(grammar)', $where);
						next;
					}
				}
			}
			if (defined $qual || !$KEYWORD_TYPE{$u} || $tk->{q})
			{
				note('function', $name, $qual, $where);
			}
			$i = $j - 1;
			next;
		}
		# typed literal: type 'string'
		if ($after->{k} eq 'str' && !$after->{dollar} && ($tk->{q} || !$NOT_A_TYPE{$u}))
		{
			my ($tname, $tqual) = type_at(\@t, $i);
			note('type', $tname, $tqual, $where) if defined $tname;
			$i = $j - 1;
			next;
		}
		# CAST(x AS type)
		if (!$tk->{q} && $u eq 'AS' && $in eq 'CAST')
		{
			my ($tname, $tqual, $k) = type_at(\@t, $i + 1);
			if (defined $tname)
			{
				note('type', $tname, $tqual, $where);
				$i = $k - 1;
			}
			next;
		}
	}
	# FROM a, b: every item after a comma at the FROM's depth
	{
		my @fd;
		my $depth = 0;
		for (my $i = 0; $i < @t; $i++)
		{
			my $v = $t[$i]{v};
			my $u = $t[$i]{u} // '';
			if ($v eq '(' && $t[$i]{k} eq 'punct') { $depth++; next }
			if ($v eq ')' && $t[$i]{k} eq 'punct') { $depth--; @fd = grep { $_ <= $depth } @fd; next }
			if ($u eq 'FROM') { push @fd, $depth; next }
			if ($CLAUSE{$u}) { @fd = grep { $_ < $depth } @fd; next }
			next unless $v eq ',' && @fd && $fd[-1] == $depth;
			my $n = $t[ $i + 1 ] or next;
			next unless $n->{k} eq 'id';
			my ($qual, $name, $j) = (undef, $n->{v}, $i + 2);
			if ($t[$j] && $t[$j]{v} eq '.' && $t[ $j + 1 ]) { ($qual, $name) = ($name, $t[ $j + 1 ]{v}); $j += 2 }
			next if $t[$j] && $t[$j]{v} eq '(';
			note('relation', $name, $qual, $stmt->{where}) unless !defined $qual && $cte{$name};
		}
	}
}

# the expressions of an extension script statement that are bound or run later
sub script_parts
{
	my ($stmt, $where) = @_;
	my @parts;
	(my $flat = $stmt) =~ s/\s+/ /g;
	my $u = uc $flat;
	$u =~ s/^\s+//;
	if ($u =~ /^CREATE (OR REPLACE )?(FUNCTION|PROCEDURE)/)
	{
		my ($lang) = $u =~ /LANGUAGE\s+(\w+)/;
		$lang //= 'SQL';
		$script_counts{ lc("function in LANGUAGE $lang") }++;
		if ($u =~ /SECURITY DEFINER/ && $u !~ /SET SEARCH_PATH/)
		{
			fail_scan("$where: a SECURITY DEFINER function without SET search_path");
		}
		if ($lang ne 'C' && $lang ne 'INTERNAL')
		{
			$script_counts{'function body (runs at call time)'}++;
			my @t = sql_tokens($stmt);
			for my $tk (grep { $_->{k} eq 'str' } @t)
			{
				push @parts, $tk->{v} if $tk->{dollar} || $lang eq 'SQL' || $lang eq 'PLPGSQL';
			}
			push @parts, $1 if $stmt =~ /BEGIN\s+ATOMIC(.*)END\s*$/is;
		}
	}
	elsif ($u =~ /^(SELECT|WITH|INSERT|UPDATE|DELETE|DO|CALL|VALUES)\b/)
	{
		$script_counts{'top-level statement (runs at CREATE EXTENSION)'}++;
		if ($u =~ /^DO\b/) { my @t = sql_tokens($stmt); push @parts, map { $_->{v} } grep { $_->{k} eq 'str' } @t }
		else { push @parts, $stmt }
	}
	elsif ($u =~ /^CREATE (OR REPLACE )?(MATERIALIZED )?VIEW .*? AS (.*)$/)
	{
		$script_counts{'view'}++;
		push @parts, substr($stmt, index(uc $stmt, ' AS ') + 4);
	}
	if ($u =~ /^CREATE (UNIQUE )?INDEX .* WHERE (.*)$/)
	{
		$script_counts{'index predicate'}++;
		push @parts, substr($stmt, rindex(uc $stmt, 'WHERE') + 5);
	}
	# DEFAULT expr, CHECK (expr), USING (expr), WITH CHECK (expr), WHEN (expr)
	if ($u =~ /^(CREATE|ALTER) (TABLE|POLICY|TRIGGER|DOMAIN)/)
	{
		my @t = sql_tokens($stmt);
		for (my $i = 0; $i < @t; $i++)
		{
			my $k = $t[$i]{u} // '';
			if ($k =~ /^(CHECK|USING|WHEN)$/ && $t[ $i + 1 ] && $t[ $i + 1 ]{v} eq '(')
			{
				my ($d, $j) = (0, $i + 1);
				my @sub;
				for (; $j < @t; $j++)
				{
					$d++ if $t[$j]{v} eq '(';
					$d-- if $t[$j]{v} eq ')';
					push @sub, $t[$j];
					last if $d == 0;
				}
				$script_counts{ lc("$k expression") }++;
				push @parts, \@sub;
				$i = $j;
			}
			elsif ($k eq 'DEFAULT')
			{
				my ($d, $j) = (0, $i + 1);
				my @sub;
				for (; $j < @t; $j++)
				{
					my $v = $t[$j]{v};
					my $w = $t[$j]{u} // '';
					last if $d == 0 && ($v eq ',' || $v eq ')' || $w =~ /^(NOT|NULL|CHECK|PRIMARY|UNIQUE|REFERENCES|CONSTRAINT|GENERATED|COLLATE)$/ && @sub);
					$d++ if $v eq '(';
					$d-- if $v eq ')';
					push @sub, $t[$j];
				}
				$script_counts{'column default'}++;
				push @parts, \@sub;
				$i = $j - 1;
			}
		}
	}
	elsif ($u =~ /^CREATE (OR REPLACE )?(FUNCTION|PROCEDURE)/)
	{
		# argument defaults
		my @t = sql_tokens($stmt);
		for (my $i = 0; $i < @t; $i++)
		{
			next unless ($t[$i]{u} // '') eq 'DEFAULT';
			my ($d, $j) = (0, $i + 1);
			my @sub;
			for (; $j < @t; $j++)
			{
				my $v = $t[$j]{v};
				last if $d == 0 && ($v eq ',' || $v eq ')');
				$d++ if $v eq '(';
				$d-- if $v eq ')';
				push @sub, $t[$j];
			}
			$script_counts{'argument default'}++;
			push @parts, \@sub;
			$i = $j - 1;
		}
	}
	return @parts;
}

# Token lists back to text, for analyze()
sub tokens_text
{
	my ($t) = @_;
	return join(' ', map {
		$_->{k} eq 'str' ? ($_->{dollar} ? "\$planted\$$_->{v}\$planted\$" : "'" . ($_->{v} =~ s/'/''/gr) . "'")
		  : $_->{k} eq 'param' ? "\$$_->{v}"
		  : ($_->{k} eq 'id' && $_->{q}) ? '"' . ($_->{v} =~ s/"/""/gr) . '"'
		  : $_->{v}
	} @$t);
}

my @scripts = sort glob("$src/extension/pg_chime--*.sql");
fail_scan("no extension/pg_chime--*.sql under $src") unless @scripts;
for my $script (@scripts)
{
	open(my $fh, '<', $script) or die "planted.pl: $script: $!\n";
	local $/;
	my $s = <$fh>;
	close $fh;
	$s =~ s/^\\[^\n]*$//mg;    # psql meta-commands (\echo ... \quit)
	my $n = 0;
	for my $stmt (sql_split_statements($s))
	{
		$n++;
		my $where = short($script) . " statement $n";
		for my $part (script_parts($stmt, $where))
		{
			# constants (DEFAULT NULL, DEFAULT 'POST') resolve nothing
			next if ref $part && !grep { $_->{k} eq 'id' && ($_->{u} // '') !~ /^(NULL|TRUE|FALSE)$/ || $_->{k} eq 'op' } @$part;
			my $text = ref $part ? tokens_text($part) : $part;
			push @statements, { where => $where, text => $text, origin => 'script', spi => 'script' };
		}
	}
}

analyze($_) for @statements;

# ---------------------------------------------------------------------------
# What to plant for each name
# ---------------------------------------------------------------------------

# Functions: name => [ [ [argument types], result, kind, body ] ]
#   kind: f (function), srf (RETURNS SETOF/TABLE), agg (aggregate)
#   body: the value returned after the call is counted (default: the
#   pg_catalog function on the same arguments).  Bodies run with search_path
#   pinned, but for those reading a relation name from text, which must
#   resolve it as the caller would (so they name everything with its schema)
my @NUM = qw(int4 int8 numeric float8);
my %FUNCS = (
	nextval => [ [ ['text'], 'int8', 'f', 'pg_catalog.nextval($1::pg_catalog.regclass)' ],
				 [ ['regclass'], 'int8' ] ],
	currval => [ [ ['text'], 'int8', 'f', 'pg_catalog.currval($1::pg_catalog.regclass)' ],
				 [ ['regclass'], 'int8' ] ],
	setval => [ [ [ 'text', 'int8' ], 'int8', 'f', 'pg_catalog.setval($1::pg_catalog.regclass, $2)' ],
				[ [ 'regclass', 'int8' ], 'int8' ] ],
	lastval => [ [ [], 'int8' ] ],
	row_number => [ [ [], 'int8' ] ],
	now => [ [ [], 'timestamptz' ] ],
	clock_timestamp => [ [ [], 'timestamptz' ] ],
	statement_timestamp => [ [ [], 'timestamptz' ] ],
	transaction_timestamp => [ [ [], 'timestamptz' ] ],
	extract => [ map { [ [ 'text', $_ ], 'numeric' ] } qw(timestamptz timestamp interval date) ],
	date_part => [ map { [ [ 'text', $_ ], 'float8' ] } qw(timestamptz timestamp interval) ],
	date_trunc => [ [ [ 'text', 'timestamptz' ], 'timestamptz' ], [ [ 'text', 'interval' ], 'interval' ],
					[ [ 'text', 'timestamptz', 'text' ], 'timestamptz' ] ],
	to_timestamp => [ [ ['float8'], 'timestamptz' ],
					  map({ [ [$_], 'timestamptz', 'f', 'pg_catalog.to_timestamp($1::pg_catalog.float8)' ] } qw(numeric int8 int4)),
					  [ [ 'text', 'text' ], 'timestamptz' ] ],
	to_char => [ map { [ [ $_, 'text' ], 'text' ] } qw(timestamptz interval numeric int8 int4 float8) ],
	timezone => [ [ [ 'text', 'timestamptz' ], 'timestamp' ], [ [ 'text', 'timestamp' ], 'timestamptz' ] ],
	age => [ [ [ 'timestamptz', 'timestamptz' ], 'interval' ], [ ['timestamptz'], 'interval' ] ],
	overlaps => [ [ [qw(timestamptz timestamptz timestamptz timestamptz)], 'bool' ] ],
	pg_xact_status => [ [ ['xid8'], 'text' ] ],
	pg_current_xact_id => [ [ [], 'xid8' ] ],
	txid_current => [ [ [], 'int8' ] ],
	current_setting => [ [ ['text'], 'text' ], [ [ 'text', 'bool' ], 'text' ] ],
	set_config => [ [ [ 'text', 'text', 'bool' ], 'text' ] ],
	current_database => [ [ [], 'name' ] ],
	current_schema => [ [ [], 'name' ] ],
	pg_extension_config_dump => [ [ [ 'text', 'text' ], 'void', 'f', 'pg_catalog.pg_extension_config_dump($1::pg_catalog.regclass, $2)' ],
								  [ [ 'regclass', 'text' ], 'void' ] ],
	pg_backend_pid => [ [ [], 'int4' ] ],
	pg_sleep => [ [ ['float8'], 'void' ], [ ['numeric'], 'void', 'f', 'pg_catalog.pg_sleep($1::pg_catalog.float8)' ] ],
	pg_notify => [ [ [ 'text', 'text' ], 'void' ] ],
	pg_is_in_recovery => [ [ [], 'bool' ] ],
	pg_terminate_backend => [ [ ['int4'], 'bool' ], [ [ 'int4', 'int8' ], 'bool' ] ],
	pg_cancel_backend => [ [ ['int4'], 'bool' ] ],
	(map { my $f = $_; ($f => [ [ ['int8'], $f =~ /try/ ? 'bool' : $f =~ /unlock/ ? 'bool' : 'void' ],
								 [ [ 'int4', 'int4' ], $f =~ /try/ ? 'bool' : $f =~ /unlock/ ? 'bool' : 'void' ] ]) }
	  qw(pg_advisory_lock pg_advisory_unlock pg_try_advisory_lock pg_advisory_xact_lock pg_try_advisory_xact_lock)),
	length => [ [ ['text'], 'int4' ] ],
	octet_length => [ [ ['text'], 'int4' ] ],
	lower => [ [ ['text'], 'text' ] ],
	upper => [ [ ['text'], 'text' ] ],
	btrim => [ [ ['text'], 'text' ], [ [ 'text', 'text' ], 'text' ] ],
	ltrim => [ [ ['text'], 'text' ], [ [ 'text', 'text' ], 'text' ] ],
	rtrim => [ [ ['text'], 'text' ], [ [ 'text', 'text' ], 'text' ] ],
	left => [ [ [ 'text', 'int4' ], 'text' ] ],
	right => [ [ [ 'text', 'int4' ], 'text' ] ],
	substr => [ [ [ 'text', 'int4' ], 'text' ], [ [ 'text', 'int4', 'int4' ], 'text' ] ],
	substring => [ [ [ 'text', 'int4' ], 'text' ], [ [ 'text', 'int4', 'int4' ], 'text' ] ],
	overlay => [ [ [ 'text', 'text', 'int4' ], 'text' ], [ [ 'text', 'text', 'int4', 'int4' ], 'text' ] ],
	replace => [ [ [ 'text', 'text', 'text' ], 'text' ] ],
	strpos => [ [ [ 'text', 'text' ], 'int4' ] ],
	split_part => [ [ [ 'text', 'text', 'int4' ], 'text' ] ],
	starts_with => [ [ [ 'text', 'text' ], 'bool' ] ],
	regexp_replace => [ [ [ 'text', 'text', 'text' ], 'text' ], [ [ 'text', 'text', 'text', 'text' ], 'text' ] ],
	regexp_match => [ [ [ 'text', 'text' ], 'text[]' ] ],
	md5 => [ [ ['text'], 'text' ] ],
	quote_ident => [ [ ['text'], 'text' ] ],
	quote_literal => [ [ ['text'], 'text' ] ],
	quote_nullable => [ [ ['text'], 'text' ] ],
	concat => [ map { [ [ 'text', $_ ], 'text', 'f', 'pg_catalog.concat($1, $2)' ] } qw(text int8 int4 numeric) ],
	concat_ws => [ [ [ 'text', 'text', 'text' ], 'text', 'f', 'pg_catalog.concat_ws($1, $2, $3)' ] ],
	format => [ [ ['text'], 'text' ],
				map({ [ [ 'text', $_ ], 'text', 'f', 'pg_catalog.format($1, $2)' ] } qw(text int8 int4 numeric timestamptz interval)),
				[ [ 'text', 'text', 'text' ], 'text', 'f', 'pg_catalog.format($1, $2, $3)' ] ],
	string_to_array => [ [ [ 'text', 'text' ], 'text[]' ] ],
	array_to_string => [ map { [ [ $_, 'text' ], 'text' ] } qw(text[] int8[] anyarray) ],
	array_length => [ map { [ [ $_, 'int4' ], 'int4' ] } qw(text[] int8[] int4[] anyarray) ],
	cardinality => [ map { [ [$_], 'int4' ] } qw(text[] int8[] int4[] anyarray) ],
	array_append => [ [ [ 'text[]', 'text' ], 'text[]' ], [ [ 'int8[]', 'int8' ], 'int8[]' ] ],
	array_position => [ [ [ 'text[]', 'text' ], 'int4' ], [ [ 'int8[]', 'int8' ], 'int4' ] ],
	abs => [ map { [ [$_], $_ ] } @NUM ],
	floor => [ [ ['numeric'], 'numeric' ], [ ['float8'], 'float8' ] ],
	ceil => [ [ ['numeric'], 'numeric' ], [ ['float8'], 'float8' ] ],
	round => [ [ ['numeric'], 'numeric' ], [ ['float8'], 'float8' ], [ [ 'numeric', 'int4' ], 'numeric' ] ],
	trunc => [ [ ['numeric'], 'numeric' ], [ ['float8'], 'float8' ] ],
	mod => [ [ [ 'int8', 'int8' ], 'int8' ], [ [ 'int4', 'int4' ], 'int4' ], [ [ 'numeric', 'numeric' ], 'numeric' ] ],
	random => [ [ [], 'float8' ] ],
	hashtext => [ [ ['text'], 'int4' ] ],
	gen_random_uuid => [ [ [], 'uuid' ] ],
	to_jsonb => [ map { [ [$_], 'jsonb' ] } qw(text int8 timestamptz jsonb anyelement) ],
	jsonb_typeof => [ [ ['jsonb'], 'text' ] ],
	jsonb_array_length => [ [ ['jsonb'], 'int4' ] ],
	jsonb_extract_path_text => [ [ [ 'jsonb', 'text' ], 'text', 'f', 'pg_catalog.jsonb_extract_path_text($1, $2)' ] ],
	jsonb_build_object => [ map { [ [ 'text', $_ ], 'jsonb', 'f', 'pg_catalog.jsonb_build_object($1, $2)' ] } qw(text int8 jsonb) ],
	# set-returning
	unnest => [ (map { [ ["$_\[]"], $_, 'srf' ] } qw(int8 int4 text timestamptz bool jsonb interval)),
				[ ['anyarray'], 'anyelement', 'srf' ] ],
	jsonb_each_text => [ [ ['jsonb'], 'TABLE(key pg_catalog.text, value pg_catalog.text)', 'srf' ] ],
	jsonb_each => [ [ ['jsonb'], 'TABLE(key pg_catalog.text, value pg_catalog.jsonb)', 'srf' ] ],
	jsonb_array_elements => [ [ ['jsonb'], 'jsonb', 'srf' ] ],
	jsonb_array_elements_text => [ [ ['jsonb'], 'text', 'srf' ] ],
	jsonb_object_keys => [ [ ['jsonb'], 'text', 'srf' ] ],
	generate_series => [ [ [ 'int4', 'int4' ], 'int4', 'srf' ], [ [ 'int8', 'int8' ], 'int8', 'srf' ],
						 [ [ 'numeric', 'numeric' ], 'numeric', 'srf' ],
						 [ [ 'timestamptz', 'timestamptz', 'interval' ], 'timestamptz', 'srf' ] ],
	regexp_split_to_table => [ [ [ 'text', 'text' ], 'text', 'srf' ] ],
	# aggregates
	max => [ map { [ [$_], $_, 'agg' ] } qw(int4 int8 numeric float8 text timestamptz interval) ],
	min => [ map { [ [$_], $_, 'agg' ] } qw(int4 int8 numeric float8 text timestamptz interval) ],
	sum => [ [ ['int4'], 'int8', 'agg' ], [ ['int8'], 'numeric', 'agg' ], [ ['numeric'], 'numeric', 'agg' ],
			 [ ['float8'], 'float8', 'agg' ], [ ['interval'], 'interval', 'agg' ] ],
	avg => [ [ ['int4'], 'numeric', 'agg' ], [ ['int8'], 'numeric', 'agg' ], [ ['numeric'], 'numeric', 'agg' ],
			 [ ['float8'], 'float8', 'agg' ], [ ['interval'], 'interval', 'agg' ] ],
	count => [ [ ['*'], 'int8', 'agg' ], map({ [ [$_], 'int8', 'agg' ] } qw(int4 int8 text timestamptz bool)) ],
	array_agg => [ (map { [ [$_], "$_\[]", 'agg' ] } qw(text int8 int4 timestamptz jsonb)),
				   [ ['anynonarray'], 'anyarray', 'agg' ] ],
	string_agg => [ [ [ 'text', 'text' ], 'text', 'agg' ] ],
	bool_and => [ [ ['bool'], 'bool', 'agg' ] ],
	bool_or => [ [ ['bool'], 'bool', 'agg' ] ],
	every => [ [ ['bool'], 'bool', 'agg' ] ],
	jsonb_agg => [ map { [ [$_], 'jsonb', 'agg' ] } qw(text int8 jsonb) ],
);

# Operators: symbol => [ [left (undef = prefix), right, result] ]
my @CMP = qw(int4 int8 numeric float8 text name bool timestamptz interval xid8 jsonb);
my %RANK = (int4 => 1, int8 => 2, numeric => 3, float8 => 4);

sub arith
{
	my ($op) = @_;
	my @pairs;
	for my $l (@NUM, qw(timestamptz interval))
	{
		for my $r (@NUM, qw(timestamptz interval))
		{
			my $res;
			if ($RANK{$l} && $RANK{$r})
			{
				next if $op eq '%' && ($l eq 'float8' || $r eq 'float8');
				$res = $RANK{$l} > $RANK{$r} ? $l : $r;
			}
			elsif ($op eq '+' && (($l eq 'timestamptz' && $r eq 'interval') || ($l eq 'interval' && $r eq 'timestamptz')))
			{
				$res = 'timestamptz';
			}
			elsif ($op eq '-' && $l eq 'timestamptz' && $r eq 'interval') { $res = 'timestamptz' }
			elsif ($op eq '-' && $l eq 'timestamptz' && $r eq 'timestamptz') { $res = 'interval' }
			elsif (($op eq '+' || $op eq '-') && $l eq 'interval' && $r eq 'interval') { $res = 'interval' }
			elsif ($op eq '*' && (($l eq 'interval' && $RANK{$r}) || ($RANK{$l} && $r eq 'interval'))) { $res = 'interval' }
			elsif ($op eq '/' && $l eq 'interval' && $RANK{$r}) { $res = 'interval' }
			next unless $res;
			push @pairs, [ $l, $r, $res ];
		}
	}
	push @pairs, [ 'jsonb', 'text', 'jsonb' ], [ 'jsonb', 'int4', 'jsonb' ] if $op eq '-';
	return \@pairs;
}

my %OPS = (
	(map { my $op = $_; ($op => [ map { my $l = $_; map { [ $l, $_, 'bool' ] } @CMP } @CMP ]) } qw(= <> < <= > >=)),
	(map { $_ => arith($_) } qw(+ - * / %)),
	'||' => [ (map { ([ 'text', $_, 'text' ], $_ eq 'text' ? () : [ $_, 'text', 'text' ]) } qw(text name int4 int8 numeric timestamptz interval bool jsonb)),
			  [ 'jsonb', 'jsonb', 'jsonb' ],
			  (map { ([ "$_\[]", "$_\[]", "$_\[]" ], [ "$_\[]", $_, "$_\[]" ], [ $_, "$_\[]", "$_\[]" ]) } qw(text int8)) ],
	(map { my $op = $_; ($op => [ [ 'text', 'text', 'bool' ], [ 'name', 'text', 'bool' ] ]) } ('~', '~*', '!~', '!~*', '~~', '~~*', '!~~', '!~~*')),
	'->' => [ [ 'jsonb', 'text', 'jsonb' ], [ 'jsonb', 'int4', 'jsonb' ] ],
	'->>' => [ [ 'jsonb', 'text', 'text' ], [ 'jsonb', 'int4', 'text' ] ],
	'#>' => [ [ 'jsonb', 'text[]', 'jsonb' ] ],
	'#>>' => [ [ 'jsonb', 'text[]', 'text' ] ],
	'#-' => [ [ 'jsonb', 'text[]', 'jsonb' ] ],
	'?' => [ [ 'jsonb', 'text', 'bool' ] ],
	'?|' => [ [ 'jsonb', 'text[]', 'bool' ] ],
	'?&' => [ [ 'jsonb', 'text[]', 'bool' ] ],
	(map { my $op = $_; ($op => [ [ 'jsonb', 'jsonb', 'bool' ], map { [ "$_\[]", "$_\[]", 'bool' ] } qw(int8 int4 text) ]) } qw(@> <@)),
	'&&' => [ map { [ "$_\[]", "$_\[]", 'bool' ] } qw(int8 int4 text) ],
	(map { my $op = $_; ($op => [ [ 'int4', 'int4', 'int4' ], [ 'int8', 'int8', 'int8' ] ]) } ('&', '|', '#')),
	(map { my $op = $_; ($op => [ [ 'int4', 'int4', 'int4' ], [ 'int8', 'int4', 'int8' ] ]) } qw(<< >>)),
	'^' => [ [ 'numeric', 'numeric', 'numeric' ], [ 'float8', 'float8', 'float8' ] ],
	(map { my $op = $_; ("prefix $op" => [ map { [ undef, $_, $_ ] } @NUM, 'interval' ]) } qw(- +)),
	'prefix ~' => [ [ undef, 'int4', 'int4' ], [ undef, 'int8', 'int8' ] ],
	'prefix @' => [ map { [ undef, $_, $_ ] } @NUM ],
);

# Base types a domain of the same name can stand in for
my %DOMAIN_OK = map { $_ => 1 } qw(
  int2 int4 int8 float4 float8 numeric text varchar bpchar name bool timestamptz timestamp date
  time timetz interval jsonb json xid xid8 regclass regproc regprocedure regtype regnamespace
  regrole oid bytea uuid inet cidr);

# What the control in 009_planted.pl relies on, planted whatever the code uses
my %CONTROL = (function => [qw(nextval unnest array_agg)], operator => [ '*', '=' ], type => ['int8']);

for my $kind (keys %CONTROL)
{
	for my $name (@{ $CONTROL{$kind} })
	{
		$found{$kind}{$name} //= { where => {}, qualified => 0, unqualified => 0 };
		$found{$kind}{$name}{control} = 1;
	}
}

# pg_chime's own objects (cron.*) are not planted
sub own_only
{
	my ($e) = @_;
	my @q = keys %{ $e->{quals} // {} };
	return @q && !grep { $_ ne 'cron' } @q;
}

for my $name (sort keys %{ $found{function} })
{
	next if exists $FUNCS{$name} || own_only($found{function}{$name});
	fail_scan("function $name (" . join(', ', sort keys %{ $found{function}{$name}{where} })
		  . "): test/planted.pl does not know how to plant it; add it to %FUNCS");
}
for my $name (sort keys %{ $found{operator} })
{
	next if exists $OPS{$name};
	fail_scan("operator $name (" . join(', ', sort keys %{ $found{operator}{$name}{where} })
		  . "): test/planted.pl does not know how to plant it; add it to %OPS");
}
for my $name (sort keys %{ $found{type} })
{
	my $e = $found{type}{$name};
	next if $e->{qualified} && !$e->{unqualified} && $KEYWORD_TYPE{ uc((split ' ', $name)[0]) };
	next if $DOMAIN_OK{$name};
	next if $KEYWORD_TYPE{ uc((split ' ', $name)[0]) };
	fail_scan("type $name (" . join(', ', sort keys %{ $e->{where} })
		  . "): test/planted.pl does not know how to plant it; add it to %DOMAIN_OK");
}

if (@errors)
{
	print STDERR "planted.pl: ERROR: $_\n" for @errors;
	exit 1;
}

# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

sub places
{
	my ($e) = @_;
	my @w = sort keys %{ $e->{where} };
	return $e->{control} && !@w ? '(control only)' : join(', ', @w);
}

if ($mode eq 'list')
{
	printf "statements %d (%d from src/*.c, %d from extension scripts)\n", scalar @statements,
	  scalar(grep { $_->{origin} eq 'c' } @statements), scalar(grep { $_->{origin} eq 'script' } @statements);
	printf "spi %s\n", join(', ', map { "$_ x$spi_calls{$_}" } sort keys %spi_calls);
	printf "script %s: %d\n", $_, $script_counts{$_} for sort keys %script_counts;
	for my $kind (qw(function operator type relation syntax collation))
	{
		for my $name (sort keys %{ $found{$kind} // {} })
		{
			my $e = $found{$kind}{$name};
			my $how = join(', ', map { $_ eq '' ? 'unqualified' : $_ } sort keys %{ $e->{quals} // {} }) || 'control';
			printf "%s %s [%s] %s\n", $kind, $name, $how, places($e);
		}
	}
	exit 0;
}

if ($mode eq 'statements')
{
	for my $s (@statements)
	{
		(my $t = $s->{text}) =~ s/\s+/ /g;
		print "$s->{where}\t$s->{spi}\t$t\n";
	}
	exit 0;
}

# --sql
my @sql;
my $n = 0;
my $PIN = "SET search_path = pg_catalog, pg_temp";

sub q_lit { my ($s) = @_; $s =~ s/'/''/g; return "'$s'" }

sub qt
{
	my ($t) = @_;
	return $t if $t =~ /^(TABLE\(|any|void$)/;
	return $t =~ /^(\w+)(\[\])?$/ ? "pg_catalog.$1" . ($2 // '') : $t;
}

push @sql, "-- generated by test/planted.pl: stand-ins in public for the names pg_chime's SQL uses",
  "$PIN;",
  "CREATE SEQUENCE public.planted_hits;",
  "GRANT USAGE, SELECT, UPDATE ON SEQUENCE public.planted_hits TO PUBLIC;",
  "CREATE FUNCTION public.planted_hit(what pg_catalog.text) RETURNS pg_catalog.bool LANGUAGE plpgsql",
  "  $PIN AS \$planted\$",
  "BEGIN",
  "  PERFORM pg_catalog.nextval('public.planted_hits'::pg_catalog.regclass);",
  "  RAISE WARNING 'planted % called by %', what, current_user;",
  "  RETURN true;",
  "END \$planted\$;";

sub plpgsql
{
	my ($name, $args, $ret, $hit, $body) = @_;
	my $sig = join(', ', map { qt($_) } @$args);
	my $pin = $body =~ /::pg_catalog\.regclass\b/ ? '' : " $PIN";
	return "CREATE FUNCTION $name($sig) RETURNS $ret LANGUAGE plpgsql$pin AS \$planted\$"
	  . "BEGIN PERFORM public.planted_hit(" . q_lit($hit) . "); $body END \$planted\$;";
}

for my $fname (sort keys %{ $found{function} })
{
	next if own_only($found{function}{$fname});
	for my $sig (@{ $FUNCS{$fname} })
	{
		my ($args, $ret, $kind, $body) = @$sig;
		$kind //= 'f';
		my $what = ($kind eq 'agg' ? 'aggregate' : 'function') . " $fname(" . join(', ', @$args) . ")";
		my $call_args = join(', ', map { "\$$_" } 1 .. @$args);
		if ($kind eq 'f')
		{
			$body //= "pg_catalog.$fname($call_args)";
			my $r = qt($ret);
			push @sql, plpgsql("public.$fname", $args, $r, $what,
							   $ret eq 'void' ? "PERFORM $body;" : "RETURN $body;");
		}
		elsif ($kind eq 'srf')
		{
			my $r = $ret =~ /^TABLE/ ? $ret : 'SETOF ' . qt($ret);
			push @sql, plpgsql("public.$fname", $args, $r, $what,
							   "RETURN QUERY SELECT * FROM pg_catalog.$fname($call_args);");
		}
		elsif ($args->[0] eq '*')
		{
			$n++;
			push @sql, plpgsql("public.planted_${n}_s", ['int8'], 'pg_catalog.int8', $what, 'RETURN $1 OPERATOR(pg_catalog.+) 1;'),
			  plpgsql("public.planted_${n}_f", ['int8'], 'pg_catalog.int8', $what, 'RETURN $1;'),
			  "CREATE AGGREGATE public.$fname(*) (SFUNC = public.planted_${n}_s, STYPE = pg_catalog.int8, "
			  . "INITCOND = '0', FINALFUNC = public.planted_${n}_f);";
		}
		elsif ($fname eq 'string_agg')
		{
			$n++;
			push @sql, plpgsql("public.planted_${n}_s", [qw(text text text)], 'pg_catalog.text', $what,
							   'RETURN CASE WHEN $2 IS NULL THEN $1 WHEN $1 IS NULL THEN $2 '
							   . 'ELSE $1 OPERATOR(pg_catalog.||) $3 OPERATOR(pg_catalog.||) $2 END;'),
			  plpgsql("public.planted_${n}_f", ['text'], 'pg_catalog.text', $what, 'RETURN $1;'),
			  "CREATE AGGREGATE public.$fname(pg_catalog.text, pg_catalog.text) (SFUNC = public.planted_${n}_s, "
			  . "STYPE = pg_catalog.text, FINALFUNC = public.planted_${n}_f);";
		}
		else
		{
			# collect the inputs; at the end, pg_catalog's aggregate over them
			$n++;
			my $in = $args->[0];
			my $state = $in eq 'anynonarray' ? 'anyarray' : "$in\[]";
			push @sql, plpgsql("public.planted_${n}_s", [ $state, $in ], qt($state), $what,
							   'RETURN pg_catalog.array_append($1, $2);'),
			  plpgsql("public.planted_${n}_f", [$state], qt($ret), $what,
					  "RETURN (SELECT pg_catalog.$fname(x) FROM pg_catalog.unnest(\$1) AS x);"),
			  "CREATE AGGREGATE public.$fname(" . qt($in) . ") (SFUNC = public.planted_${n}_s, "
			  . "STYPE = " . qt($state) . ", FINALFUNC = public.planted_${n}_f);";
		}
	}
}

for my $op (sort keys %{ $found{operator} })
{
	my ($prefix, $sym) = $op =~ /^(prefix )?(.*)$/;
	for my $pair (@{ $OPS{$op} })
	{
		my ($l, $r, $res) = @$pair;
		$n++;
		my $what = 'operator ' . (defined $l ? "$l $sym $r" : "$sym $r");
		my $fn = "public.planted_$n";
		if (defined $l)
		{
			push @sql, plpgsql($fn, [ $l, $r ], qt($res), $what, "RETURN \$1 OPERATOR(pg_catalog.$sym) \$2;"),
			  "CREATE OPERATOR public.$sym (LEFTARG = " . qt($l) . ", RIGHTARG = " . qt($r) . ", FUNCTION = $fn);";
		}
		else
		{
			push @sql, plpgsql($fn, [$r], qt($res), $what, "RETURN OPERATOR(pg_catalog.$sym) \$1;"),
			  "CREATE OPERATOR public.$sym (RIGHTARG = " . qt($r) . ", FUNCTION = $fn);";
		}
	}
}

for my $type (sort keys %{ $found{type} })
{
	next unless $DOMAIN_OK{$type};
	push @sql, "CREATE DOMAIN public.$type AS pg_catalog.$type CHECK (public.planted_hit("
	  . q_lit("type $type") . "));";
}

for my $rel (sort keys %{ $found{relation} // {} })
{
	my $e = $found{relation}{$rel};
	next unless $e->{unqualified};
	push @sql, "CREATE VIEW public.\"$rel\" AS SELECT NULL::pg_catalog.text AS planted WHERE public.planted_hit("
	  . q_lit("relation $rel") . ");";
}

print "$_\n" for @sql;
