#!/usr/bin/env bash
# make test: build, install, and run every suite (C unit tests under
# valgrind, the fuzzer's saved corpus, pg_regress, pgTAP, TAP).  The last
# line is "N passed, M failed"; the exit status is non-zero on any failure.
#
# PostgreSQL refuses to run as root, so when started by root the servers run
# as the "postgres" user (PG_CHIME_TEST_USER to choose another); started by
# an ordinary user they run as that user, and installing uses sudo when the
# PostgreSQL directories are not writable.  PG_CONFIG chooses the PostgreSQL;
# PG_CHIME_TAP, a shell pattern of TAP test names, runs only those.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")/..
pg_regress=$pgxs/test/regress/pg_regress
perl_lib=$pgxs/test/perl

passed=0
failed=0
failures=()

# record NAME PASSED FAILED
record() {
	passed=$((passed + $2))
	failed=$((failed + $3))
	if [ "$3" -gt 0 ]; then
		failures+=("$1")
		echo "== $1: $2 passed, $3 FAILED"
	else
		echo "== $1: $2 passed"
	fi
}

if [ "$(id -u)" = 0 ]; then
	test_user=${PG_CHIME_TEST_USER:-postgres}
	id "$test_user" >/dev/null 2>&1 || useradd --system --create-home "$test_user"
	as_user() { runuser -u "$test_user" -- env PATH="$bindir:$PATH" "$@"; }
else
	test_user=$(id -un)
	as_user() { env PATH="$bindir:$PATH" "$@"; }
fi

work=$(mktemp -d /tmp/pg_chime_test.XXXXXX)
chmod 755 "$work"
pgtap_data=$work/pgtap/data
cleanup() {
	if [ -f "$pgtap_data/postmaster.pid" ]; then
		as_user pg_ctl -D "$pgtap_data" -m immediate stop >/dev/null 2>&1
	fi
	if [ "$failed" -eq 0 ] && [ -z "${PG_CHIME_KEEP:-}" ]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# ---- build and install ------------------------------------------------------
echo "== building"
if ! make -s -C "$top" WERROR=1 >"$work/build.log" 2>&1; then
	cat "$work/build.log"
	record build 0 1
	echo "$passed passed, $failed failed"
	exit 1
fi
pkglibdir=$("$PG_CONFIG" --pkglibdir)
if [ -w "$pkglibdir" ]; then
	make -s -C "$top" install >"$work/install.log" 2>&1
else
	sudo -n make -s -C "$top" install >"$work/install.log" 2>&1
fi || {
	cat "$work/install.log"
	record install 0 1
	echo "$passed passed, $failed failed"
	exit 1
}

# src/ and extension/ too: test/t/009_planted.pl reads the SQL pg_chime runs
cp -r "$top/sql" "$top/expected" "$top/test" "$top/src" "$top/extension" "$top/README.md" "$top/scripts" "$work/"
chown -R "$test_user" "$work" 2>/dev/null

# ---- counting TAP output ----------------------------------------------------
# tap_count FILE: "PASSED FAILED" from TAP lines; a short run counts the
# missing tests as failed.
tap_count() {
	local plan ok notok
	plan=$(grep -m1 -oE '^1\.\.[0-9]+' "$1" | cut -d. -f3)
	ok=$(grep -cE '^ok ' "$1")
	notok=$(grep -cE '^not ok ' "$1")
	if [ -n "$plan" ] && [ $((ok + notok)) -lt "$plan" ]; then
		notok=$((plan - ok))
	fi
	[ -z "$plan" ] && [ "$ok" -eq 0 ] && notok=$((notok + 1))
	echo "$ok $notok"
}

# ---- the version has one source; META.json is what PGXN takes --------------
version=$(make -s -C "$top" print-EXTVERSION)
v_ok=1
grep -q "^default_version = '$version'" "$top/pg_chime.control" || v_ok=0
[ -f "$top/extension/pg_chime--$version.sql" ] || v_ok=0
if [ $v_ok = 1 ]; then record "version $version" 1 0; else record "version $version" 0 1; fi
perl "$top/test/meta_check.pl" "$top" >"$work/meta.tap" 2>&1
read -r p f < <(tap_count "$work/meta.tap")
grep -E '^not ok' "$work/meta.tap"
record "META.json (test/meta_check.pl)" "$p" "$f"

# ---- the code's format (.clang-format) --------------------------------------
if command -v clang-format >/dev/null; then
	unformatted=""
	for f in "$top"/src/*.c "$top"/src/*.h; do
		clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted="$unformatted ${f#"$top"/}"
	done
	if [ -z "$unformatted" ]; then
		record "format (.clang-format)" 1 0
	else
		echo "not formatted as .clang-format says:$unformatted"
		echo "(clang-format -i src/*.[ch] formats them)"
		record "format (.clang-format)" 0 1
	fi
else
	echo "clang-format not installed: the format is not checked"
	record "format (clang-format missing)" 0 1
fi

# ---- C unit tests of the parser and time engine, under valgrind ------------
unit_bin=$work/test_engine
if gcc -std=gnu99 -O1 -g -Wall -Wextra -Werror -I"$top/src" -I"$top/test/unit" -o "$unit_bin" \
	"$top/src/schedule.c" "$top/src/occurrence.c" \
	"$top/test/unit/zone_libc.c" "$top/test/unit/test_engine.c" 2>"$work/unit_build.log"; then
	if command -v valgrind >/dev/null; then
		valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
			"$unit_bin" >"$work/unit.tap" 2>"$work/unit.valgrind"
		rc=$?
	else
		echo "valgrind not installed: unit tests run without it" >"$work/unit.valgrind"
		"$unit_bin" >"$work/unit.tap" 2>&1
		rc=$?
	fi
	read -r p f < <(tap_count "$work/unit.tap")
	grep -E '^not ok|^#' "$work/unit.tap"
	if [ "$rc" = 99 ] || [ -s "$work/unit.valgrind" ]; then
		cat "$work/unit.valgrind"
		f=$((f + 1))
	fi
	record "unit (valgrind)" "$p" "$f"
else
	cat "$work/unit_build.log"
	record "unit build" 0 1
fi

# ---- the same unit tests built with AddressSanitizer and UBSan --------------
if command -v clang >/dev/null; then
	if clang -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
		-I"$top/src" -I"$top/test/unit" -o "$work/test_engine_asan" \
		"$top/src/schedule.c" "$top/src/occurrence.c" \
		"$top/test/unit/zone_libc.c" "$top/test/unit/test_engine.c" 2>"$work/asan_build.log"; then
		"$work/test_engine_asan" >"$work/unit_asan.tap" 2>"$work/unit_asan.err"
		rc=$?
		read -r p f < <(tap_count "$work/unit_asan.tap")
		if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			cat "$work/unit_asan.err"
			f=1
		fi
		record "unit (ASan+UBSan)" "$p" "$f"
	else
		cat "$work/asan_build.log"
		record "unit (ASan+UBSan) build" 0 1
	fi
fi

# ---- the fuzzer's saved corpus ----------------------------------------------
if command -v clang >/dev/null; then
	if bash "$top/test/fuzz/run.sh" corpus >"$work/fuzz.log" 2>&1; then
		record "fuzz corpus ($(ls "$top/test/fuzz/corpus" | wc -l) inputs)" 1 0
	else
		tail -30 "$work/fuzz.log"
		record "fuzz corpus" 0 1
	fi
else
	echo "clang not installed: fuzz corpus not run"
	record "fuzz corpus (clang missing)" 0 1
fi

# ---- pg_regress -------------------------------------------------------------
regress_tests=$(make -s -C "$top" print-REGRESS)
(cd "$work" && as_user "$pg_regress" \
	--temp-instance="$work/tmp_check" \
	--temp-config="$work/test/regress.conf" \
	--inputdir="$work" --outputdir="$work/regress" \
	--bindir="$bindir" --dbname=contrib_regression \
	--load-extension=pg_chime \
	$regress_tests) >"$work/regress.log" 2>&1
cat "$work/regress.log" | grep -E '\.\.\. |tests|^ *(test|ok|not ok)' | head -50
p=$(grep -cE '\.\.\. ok' "$work/regress.log")
# every test that did not say ok failed, whatever pg_regress printed for it
f=$(($(echo $regress_tests | wc -w) - p))
if [ "$p" -eq 0 ]; then
	tail -20 "$work/regress.log"
fi
record pg_regress "$p" "$f"

# ---- pgTAP ------------------------------------------------------------------
pgtap_port=$((55000 + RANDOM % 5000))
mkdir -p "$work/pgtap" && chown "$test_user" "$work/pgtap" 2>/dev/null
if as_user initdb -D "$pgtap_data" -A trust --no-sync >"$work/pgtap/initdb.log" 2>&1; then
	cat >>"$pgtap_data/postgresql.conf" <<-EOF
		shared_preload_libraries = 'pg_chime'
		cron.database_name = 'pgtap'
		port = $pgtap_port
		unix_socket_directories = '$work/pgtap'
		listen_addresses = ''
		fsync = off
		timezone = 'UTC'
	EOF
	as_user pg_ctl -D "$pgtap_data" -l "$work/pgtap/server.log" -w start >/dev/null
	psql_tap() { as_user psql -X -h "$work/pgtap" -p "$pgtap_port" "$@"; }
	psql_tap -q -d postgres -c "CREATE DATABASE pgtap" &&
		psql_tap -q -d pgtap -c "CREATE EXTENSION pgtap; CREATE EXTENSION pg_chime;"
	for f_sql in "$work"/test/pgtap/*.sql; do
		name=$(basename "$f_sql" .sql)
		psql_tap -q -At -d pgtap -v ON_ERROR_STOP=1 -f "$f_sql" >"$work/pgtap/$name.tap" 2>&1
		read -r p f < <(tap_count "$work/pgtap/$name.tap")
		grep -E '^not ok|^#|ERROR' "$work/pgtap/$name.tap"
		record "pgtap $name" "$p" "$f"
	done
	as_user pg_ctl -D "$pgtap_data" -w stop >/dev/null
else
	cat "$work/pgtap/initdb.log"
	record pgtap 0 1
fi

# ---- TAP (PostgreSQL::Test::Cluster) ----------------------------------------
mkdir -p "$work/tap" && chown "$test_user" "$work/tap" 2>/dev/null
for t in "$work"/test/t/*.pl; do
	name=$(basename "$t" .pl)
	# PG_CHIME_TAP (a shell pattern, e.g. '00[68]_*') runs only those
	case $name in ${PG_CHIME_TAP:-*}) ;; *) continue ;; esac
	as_user mkdir -p "$work/tap/$name"
	(cd "$work" && as_user env PG_REGRESS="$pg_regress" TESTDIR="$work/tap/$name" \
		PERL5LIB="$perl_lib" prove -I "$perl_lib" -v "$t") >"$work/tap/$name.log" 2>&1
	rc=$?
	sed -E 's/^ *//' "$work/tap/$name.log" >"$work/tap/$name.tap"
	read -r p f < <(tap_count "$work/tap/$name.tap")
	# a script that died (no plan line with done_testing) failed, whatever it passed
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	grep -E '^not ok|^#|Dubious|Bad plan' "$work/tap/$name.log" | head -40
	record "tap $name" "$p" "$f"
done

# ---- on failure: what the next reader needs ---------------------------------
if [ "$failed" -gt 0 ]; then
	echo
	echo "== failed: ${failures[*]}"
	if [ -f "$work/regress/regression.diffs" ]; then
		echo "== regression.diffs"
		cat "$work/regress/regression.diffs"
	fi
	for log in "$work/regress/log/postmaster.log" "$work/pgtap/server.log" \
		"$work"/tap/*/tmp_check/log/*.log; do
		[ -f "$log" ] || continue
		echo "== tail of $log"
		tail -40 "$log"
	done
	echo "== test files kept in $work"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
