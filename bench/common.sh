# Sourced by the benchmark scripts (after setting top and PG_CONFIG).
# bench_setup NAME: a scratch directory $out owned by the user that runs
# PostgreSQL (postgres when started as root), and as_user to run as it.
# install_pg_chime: build and install this tree.
# bench_cluster DIR PORT [SETTING...]: a pg_chime cluster in DIR on PORT
# (socket in $out, fsync off, UTC, log DIR.log) with the settings given,
# started.
# start_nginx PORT: Debian's nginx-light (installed if missing) on
# 127.0.0.1:PORT, a small fixed answer, keep-alive; stopped by stop_nginx.
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

start_nginx() {
	if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
		echo "installing nginx-light for the HTTP benchmark"
		if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
		$sudo apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
	fi
	mkdir -p "$out/nginx"
	cat >"$out/nginx.conf" <<CONF
worker_processes 1;
pid $out/nginx.pid;
error_log $out/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $out/nginx;
    proxy_temp_path $out/nginx;
    fastcgi_temp_path $out/nginx;
    uwsgi_temp_path $out/nginx;
    scgi_temp_path $out/nginx;
    server {
        listen 127.0.0.1:$1;
        location / { return 200 "ok\n"; }
    }
}
CONF
	/usr/sbin/nginx -c "$out/nginx.conf"
}

stop_nginx() {
	if [ -f "$out/nginx.pid" ]; then kill "$(cat "$out/nginx.pid")" 2>/dev/null || true; fi
}

bench_cluster() {
	local d=$1 port=$2
	shift 2
	as_user "$bindir/initdb" -D "$d" -A trust --no-sync >/dev/null
	{
		cat <<CONF
shared_preload_libraries = 'pg_chime'
cron.database_name = 'postgres'
cron.log_statement = off
port = $port
unix_socket_directories = '$out'
listen_addresses = ''
fsync = off
timezone = 'UTC'
CONF
		printf '%s\n' "$@"
	} >>"$d/postgresql.conf"
	as_user "$bindir/pg_ctl" -D "$d" -l "$d.log" -w start >/dev/null
}
