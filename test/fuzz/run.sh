#!/usr/bin/env bash
# Build the schedule fuzzer and run it: "run.sh corpus" replays the saved
# corpus once (make test); "run.sh SECONDS" fuzzes for that long and adds
# new interesting inputs to the corpus (make fuzz).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/pg_chime_fuzz.XXXXXX")
trap 'rm -rf "$out"' EXIT

clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I"$top/src" -I"$top/test/unit" -o "$out/fuzz_schedule" \
	"$top/src/schedule.c" "$top/src/occurrence.c" \
	"$top/test/unit/zone_libc.c" "$here/fuzz_schedule.c"

if [ "${1:-60}" = corpus ]; then
	"$out/fuzz_schedule" -runs=0 "$here/corpus"
else
	"$out/fuzz_schedule" -max_total_time="${1:-60}" -max_len=200 \
		-dict="$here/schedule.dict" "$here/corpus"
fi
