#!/bin/sh
# Quick start: install the build dependencies that are missing (Debian or
# Ubuntu; needs root or sudo for that step only), build, and run the demo.
# Extra arguments go to ./configure, e.g. ./setup.sh --without-liburing.
set -e
cd "$(dirname "$0")"

deps="autoconf automake libtool pkg-config make gcc check liburing-dev"
missing=""
if command -v dpkg >/dev/null 2>&1; then
	for p in $deps; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
fi
if [ -n "$missing" ]; then
	echo "setup: installing$missing"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -q
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

autoreconf -fi
./configure "$@"
make -j"$(nproc 2>/dev/null || echo 2)"
make demo
