#!/usr/bin/env bash
# Install the Debian 12 packages pg_chime builds, tests and demos with,
# skipping those already there.  As root it calls apt-get directly;
# otherwise through sudo.
set -eu

packages="make gcc postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev
postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libipc-run-perl
clang libclang-rt-14-dev clang-format valgrind python3 postgresql-15-cron"

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
