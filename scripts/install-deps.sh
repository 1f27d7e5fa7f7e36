#!/usr/bin/env bash
# Install the Debian 12 packages pg_chime builds, tests and demos with,
# skipping those already there.  As root it calls apt-get directly;
# otherwise through sudo.
set -eu

packages="make gcc postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev
postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
clang libclang-rt-14-dev clang-format valgrind python3 postgresql-15-cron
patroni python3-etcd etcd-server"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null

# test/t/021_patroni.pl starts its own etcd on ports of its own; the one the
# package starts as a service (on 2379 and 2380) serves nothing here.  It is
# stopped and disabled only when this script has just installed it: an etcd
# that was there before is someone else's.  (The patroni package's service
# starts only with an /etc/patroni/config.yml, which it does not ship.)
case " $missing " in
*" etcd-server "*)
	if [ -d /run/systemd/system ]; then
		$sudo systemctl disable --now etcd.service >/dev/null 2>&1 || true
	elif [ -x /etc/init.d/etcd ]; then
		$sudo /etc/init.d/etcd stop >/dev/null 2>&1 || true
		$sudo update-rc.d etcd disable >/dev/null 2>&1 || true
	fi
	;;
esac
