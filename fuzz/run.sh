#!/bin/sh
# run.sh - build the libFuzzer oracle harness and run it for a while.
#
#   fuzz/run.sh SRCDIR BUILDDIR SECONDS
#
# SRCDIR is the source tree, BUILDDIR a configured build directory (its
# config.h is used).  Builds BUILDDIR/fuzz/fuzz_oracle with clang
# (-fsanitize=fuzzer,address,undefined) from the library's sources and the
# harness, copies the seed corpus to BUILDDIR/fuzz/corpus-work (the source
# tree is never written), fuzzes in one process for SECONDS seconds and
# prints "fuzz: N execs, C crashes".  Exits non-zero when a crash or an
# oracle mismatch was found; the input is saved as BUILDDIR/fuzz/crash-*.
#
# Environment: CC (default clang), FUZZ_ARGS (more libFuzzer flags),
# FUZZ_ORACLE_LAX (see fuzz/README.md), TMPDIR.
set -eu

if [ "$#" -ne 3 ]; then
	echo "usage: $0 SRCDIR BUILDDIR SECONDS" >&2
	exit 2
fi
src=$1
build=$2
secs=$3
case $secs in
'' | *[!0-9]*)
	echo "$0: SECONDS must be a whole number, not '$secs'" >&2
	exit 2
	;;
esac
if [ ! -f "$build/config.h" ]; then
	echo "$0: $build/config.h not found: configure the build directory first" >&2
	exit 2
fi
if [ ! -f "$src/mmapfile.c" ] || [ ! -f "$src/fuzz/fuzz_oracle.c" ]; then
	echo "$0: $src does not look like the libmmapfile source tree" >&2
	exit 2
fi

cc=${CC:-clang}
out=$build/fuzz
mkdir -p "$out"

libs="-pthread"
if grep -q '^#define MMF_HAVE_LIBURING 1' "$build/config.h"; then
	libs="-luring $libs"
fi

# The library's sources: the .c files of libmmapfile_core_la_SOURCES in
# Makefile.am (continuation lines joined), or the known list.
srcs=$(sed -n '/^libmmapfile_core_la_SOURCES[[:space:]]*=/,/[^\\]$/p' "$src/Makefile.am" |
	sed 's/^[^=]*=//; s/\\$//' | tr -s '[:space:]' '\n' | grep '\.c$' || true)
if [ -z "$srcs" ]; then
	srcs="mmapfile.c seek.c sync.c madvise.c truncate.c map.c guard.c sys.c"
fi
set --
for f in $srcs; do
	set -- "$@" "$src/$f"
done

echo "fuzz: building $out/fuzz_oracle with $cc"
# shellcheck disable=SC2086 # $libs is a list of flags
"$cc" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1 \
	-Wall -Wextra -DHAVE_CONFIG_H -I"$build" -I"$src" \
	"$src/fuzz/fuzz_oracle.c" "$@" -o "$out/fuzz_oracle" $libs

rm -rf "$out/corpus-work"
mkdir -p "$out/corpus-work"
if [ -d "$src/fuzz/corpus" ]; then
	for f in "$src/fuzz/corpus"/*; do
		[ -f "$f" ] && cp "$f" "$out/corpus-work/"
	done
fi

log=$out/fuzz.log
stamp=$out/.run-start
: >"$stamp"
echo "fuzz: running for $secs s (log: $log)"
status=0
# One process (libFuzzer's -jobs would fork workers and hide their output in
# fuzz-N.log files); the library's SIGBUS guard needs user handlers.
# shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
ASAN_OPTIONS=${ASAN_OPTIONS:-allow_user_segv_handler=1:detect_leaks=1} \
	"$out/fuzz_oracle" -max_total_time="$secs" -print_final_stats=1 -timeout=60 \
	-artifact_prefix="$out/" ${FUZZ_ARGS:-} "$out/corpus-work" >"$log" 2>&1 || status=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
if [ -z "$execs" ]; then
	execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
fi
crashes=$(find "$out" -maxdepth 1 -newer "$stamp" \( -name 'crash-*' -o -name 'leak-*' \
	-o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
crashes=$((crashes + 0))
if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
	crashes=1
fi
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n 1 || true)
echo "fuzz: ${cov:-cov: ?}, ${corp:-corp: ?}"
echo "fuzz: ${execs:-0} execs, $crashes crashes"
if [ "$status" -ne 0 ]; then
	echo "fuzz: libFuzzer exited with status $status; the end of $log:" >&2
	grep -A40 'fuzz_oracle: MISMATCH' "$log" >&2 || tail -n 60 "$log" >&2
	find "$out" -maxdepth 1 -newer "$stamp" -name '*-*' -type f | sed 's/^/fuzz: saved /' >&2
	echo "fuzz: replay with: $out/fuzz_oracle FILE (FUZZ_ORACLE_TRACE=1 to see every operation)" >&2
	exit 1
fi
exit 0
