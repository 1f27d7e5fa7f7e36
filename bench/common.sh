# Sourced by the benchmark scripts (after setting top and PG_CONFIG).
# bench_setup NAME: a scratch directory $out owned by the user that runs
# PostgreSQL (postgres when started as root), and as_user to run as it.
# install_pg_chime: build and install this tree.
bindir=$("$PG_CONFIG" --bindir)
pkglibdir=$("$PG_CONFIG" --pkglibdir)

bench_setup() {
	out=$(mktemp -d "${TMPDIR:-/tmp}/pg_chime_$1.XXXXXX")
	chmod 755 "$out"
	if [ "$(id -u)" = 0 ]; then
		bench_user=postgres
		id "$bench_user" >/dev/null 2>&1 || useradd --system --create-home "$bench_user"
		as_user() { runuser -u "$bench_user" -- "$@"; }
		chown "$bench_user" "$out"
	else
		bench_user=$(id -un)
		as_user() { "$@"; }
	fi
}

install_pg_chime() {
	make -s -C "$top" >/dev/null
	if [ -w "$pkglibdir" ]; then make -s -C "$top" install >/dev/null; else sudo make -s -C "$top" install >/dev/null; fi
}
