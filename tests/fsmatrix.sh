#!/bin/bash
# fsmatrix.sh - the test programs that touch the file system, on every kind
# of file system the library is used on: ext4, xfs and btrfs (each on a loop
# device over a sparse image file), tmpfs, and overlayfs (what container
# root file systems are).
#
# Usage (as root, from the top of a configured and built tree):
#   tests/fsmatrix.sh [-o RESULTS] [-t "PROGRAMS"] [FS ...]
#
#   FS        ext4 xfs btrfs tmpfs overlay (the default: all of them)
#   -o        where the results go (default: fsmatrix-results in the tree):
#             RESULTS/<fs>/tests/<program>.log and .trs, as make check
#             leaves them, so that a tally of tests/*.trs (.ci/run) counts
#             every file system's results under its name
#   -t        the programs (default: check_oracle check_fault check_fulldisk
#             check_crash check_shrink check_threads)
#
# For each file system: a large one (4 GiB image, sparse) for the programs'
# fixtures (TMPDIR points into it) and a small one of the same type (64 MiB;
# btrfs 128 MiB, its least without mixed block groups) that check_fulldisk
# fills to the last block (MMAPFILE_FULLDISK_DIR).  On the small one the
# script then times a fill with write(2) of 64-byte records against the
# same fill with mmapfile_write (tests/fillfs): the entry "fill" fails when
# the mmapfile fill is wrong or takes more than 3 times write(2)'s.
#
# Everything happens in a mount namespace of its own when unshare(1) can
# make one, under a temporary directory (FSMATRIX_IMAGES, else /var/tmp),
# and is taken down at the end, on failure and on a signal too: unmounted,
# loop devices detached, images removed.  A file system that cannot be set
# up (not root, no loop device, a module or mkfs missing) is reported as
# "SKIPPED: <fs>: reason" and recorded as a skipped entry, never as a pass.
# Exit status: 0 when nothing that ran failed.
set -u

usage() { sed -n '5,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

results=
programs="check_oracle check_fault check_fulldisk check_crash check_shrink check_threads"
while getopts o:t:h opt; do
	case $opt in
	o) results=$OPTARG ;;
	t) programs=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
all_fs="ext4 xfs btrfs tmpfs overlay"
fslist=${*:-$all_fs}
for fs in $fslist; do
	case " $all_fs " in *" $fs "*) ;; *) echo "fsmatrix: unknown file system $fs" >&2; usage ;; esac
done

top=$PWD
[ -f "$top/tests/Makefile" ] || { echo "fsmatrix: run from the top of a configured tree" >&2; exit 2; }
results=${results:-$top/fsmatrix-results}
case $results in /*) ;; *) results=$top/$results ;; esac

# A mount namespace of our own: the mounts are never seen outside, and go
# with the namespace whatever happens to this script.
if [ "$(id -u)" = 0 ] && [ -z "${FSMATRIX_IN_NS:-}" ] &&
   unshare -m --propagation private true 2>/dev/null; then
	FSMATRIX_IN_NS=1 exec unshare -m --propagation private "$0" -o "$results" -t "$programs" $fslist
fi

images_root=${FSMATRIX_IMAGES:-/var/tmp}
small_mib=64
fill_ratio_max=3

mounts=()  # mounted directories, in mount order
loops=()   # attached loop devices
work=

cleanup() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null
	done
	mounts=()
	for i in "${loops[@]}"; do
		losetup -d "$i" 2>/dev/null
	done
	loops=()
	if [ -n "$work" ] && [ -d "$work" ]; then
		rm -rf --one-file-system "$work"
	fi
	work=
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM HUP

# Why the current set-up failed, for the SKIPPED line.
why=

# mount_fs DIR ARGS...: mount, and remember it for the clean-up.
mount_fs() {
	local dir=$1 out
	shift
	mkdir -p "$dir"
	if ! out=$(mount "$@" "$dir" 2>&1); then
		why="mount $*: ${out:-failed}"
		return 1
	fi
	mounts+=("$dir")
	chmod 0755 "$dir"
}

# loop_fs TYPE SIZE_MIB DIR: a sparse image, a loop device over it, a new
# file system of TYPE on it, mounted on DIR.
loop_fs() {
	local type=$1 mib=$2 dir=$3 img dev out
	img=$work/$(basename "$dir").img
	if ! command -v "mkfs.$type" >/dev/null; then
		why="mkfs.$type is not installed"
		return 1
	fi
	if ! grep -qw "$type" /proc/filesystems && ! modprobe "$type" 2>/dev/null; then
		why="the kernel has no $type (not in /proc/filesystems, modprobe failed)"
		return 1
	fi
	truncate -s "${mib}M" "$img" || { why="truncate $img"; return 1; }
	case $type in
	ext4) out=$(mkfs.ext4 -q -F "$img" 2>&1) ;;
	# mkfs.xfs refuses less than 300 MB unless run by the kernel's test
	# suite (these variables tell it so); a small one is what we want.
	xfs) out=$(TEST_DIR=1 TEST_DEV=1 QA_CHECK_FS=1 mkfs.xfs -q -f "$img" 2>&1) ;;
	btrfs) out=$(mkfs.btrfs -q -f "$img" 2>&1) ;;
	esac || { why="mkfs.$type: $(tail -n 1 <<<"$out")"; return 1; }
	if ! dev=$(losetup -f --show "$img" 2>&1); then
		why="losetup: $dev"
		return 1
	fi
	loops+=("$dev")
	mount_fs "$dir" -t "$type" "$dev"
}

# setup FS: mount the large file system on $work/big and the small one on
# $work/small.
setup() {
	local fs=$1
	case $fs in
	ext4 | xfs | btrfs)
		local small=$small_mib
		[ "$fs" = btrfs ] && small=128
		loop_fs "$fs" 4096 "$work/big" && loop_fs "$fs" "$small" "$work/small"
		;;
	tmpfs)
		mount_fs "$work/big" -t tmpfs -o size=2g,mode=0755 fsmatrix &&
			mount_fs "$work/small" -t tmpfs -o size=${small_mib}m,mode=0755 fsmatrix
		;;
	overlay)
		# The large one: lower, upper and work directories on the file
		# system the images go on (the root file system as a rule),
		# else on a tmpfs (an upper directory on an overlay, as in a
		# container, is refused); the small one over a small ext4.
		mkdir -p "$work/ov/lower/d" "$work/ov/upper" "$work/ov/work"
		echo "a file of the lower layer" >"$work/ov/lower/d/lower.txt"
		if ! mount_fs "$work/big" -t overlay fsmatrix \
			-o "lowerdir=$work/ov/lower,upperdir=$work/ov/upper,workdir=$work/ov/work"; then
			mount_fs "$work/ovt" -t tmpfs -o size=2g,mode=0755 fsmatrix || return 1
			mkdir -p "$work/ovt/lower/d" "$work/ovt/upper" "$work/ovt/work"
			mount_fs "$work/big" -t overlay fsmatrix \
				-o "lowerdir=$work/ovt/lower,upperdir=$work/ovt/upper,workdir=$work/ovt/work" || return 1
		fi
		loop_fs ext4 "$small_mib" "$work/ovs" || return 1
		mkdir -p "$work/ovs/lower" "$work/ovs/upper" "$work/ovs/work"
		mount_fs "$work/small" -t overlay fsmatrix \
			-o "lowerdir=$work/ovs/lower,upperdir=$work/ovs/upper,workdir=$work/ovs/work"
		;;
	esac
}

# A result file pair in the form make check leaves: name, PASS/FAIL/SKIP,
# log text.
record() {
	local dir=$1 name=$2 result=$3 text=$4
	printf '%s\n' "$text" >"$dir/$name.log"
	printf ':test-result: %s\n:global-test-result: %s\n' "$result" "$result" >"$dir/$name.trs"
}

# fillfs's figure KEY from its output line.
field() { sed -n "s/^fillfs: .*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# The write(2) fill against the mmapfile fill on the small file system.
# The mmapfile fill stops at 3 times write(2)'s time (and fails), so that
# a slow library does not hold the matrix up.
fill_timing() {
	local fs=$1 out=$2 w m ws ms wrc=0 mrc=0 failures=0 text cap
	rm -f "$work"/small/check_fulldisk-fill-* "$work"/small/fillfs-*
	sync -f "$work/small"
	w=$("$top/tests/fillfs" write "$work/small" 120 2>&1) || wrc=$?
	sync -f "$work/small"
	ws=$(field seconds "$w")
	cap=$(awk -v b="${ws:-0}" -v k=$fill_ratio_max 'BEGIN { printf "%.3f", k * b + 0.2 }')
	m=$("$top/tests/fillfs" mmapfile "$work/small" "$cap" 2>&1) || mrc=$?
	sync -f "$work/small"
	ms=$(field seconds "$m")
	text="fill of the $fs file system of $(df -B1M --output=size "$work/small" | tail -n 1 | tr -d ' ') MiB with 64-byte records
$w
$m"
	if [ $wrc != 0 ] || [ -z "$ws" ]; then
		text+=$'\n'"FAIL: $fs: the write(2) fill failed (above)"
		failures=2
	elif [ $mrc = 3 ]; then
		text+=$'\n'"fill: $fs: write(2) $ws s, mmapfile_write stopped after $ms s unfinished: more than ${fill_ratio_max}x"
		text+=$'\n'"FAIL: $fs: the mmapfile fill takes more than ${fill_ratio_max}x write(2)'s time"
		failures=1
	elif [ $mrc != 0 ] || [ -z "$ms" ]; then
		text+=$'\n'"FAIL: $fs: the mmapfile fill failed (above)"
		failures=2
	else
		local ratio ok
		ratio=$(awk -v a="$ms" -v b="$ws" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
		ok=$(awk -v a="$ms" -v b="$ws" -v k=$fill_ratio_max 'BEGIN { print (a <= k * b) ? 1 : 0 }')
		text+=$'\n'"fill: $fs: write(2) $ws s, mmapfile_write $ms s: ${ratio}x (at most ${fill_ratio_max}x)"
		if [ "$ok" != 1 ]; then
			text+=$'\n'"FAIL: $fs: the mmapfile fill took ${ratio}x write(2)'s time (at most ${fill_ratio_max}x)"
			failures=1
		fi
	fi
	text+=$'\n'"100%: Checks: 2, Failures: $failures, Errors: 0"
	record "$out" fill "$([ $failures = 0 ] && echo PASS || echo FAIL)" "$text"
	grep -E '^(fill|FAIL):' <<<"$text" | sed 's/^/   /'
	[ $failures = 0 ]
}

# Build what the runs need once.
rm -rf "$results"
mkdir -p "$results"
if ! make -C "$top/tests" -j2 fillfs $programs >"$results/build.log" 2>&1; then
	tail -n 30 "$results/build.log"
	echo "fsmatrix: the build failed"
	exit 1
fi

status=0
for fs in $fslist; do
	start=$SECONDS
	out=$results/$fs/tests
	mkdir -p "$out"
	echo "== fsmatrix: $fs"
	why=
	if [ "$(id -u)" != 0 ]; then
		why="not root (mounting and loop devices need root)"
	else
		work=$(mktemp -d "$images_root/mmapfile-fsmatrix.XXXXXX") && chmod 0755 "$work" ||
			why="mktemp in $images_root failed"
		[ -z "$why" ] && { setup "$fs" || why=${why:-set-up failed}; }
	fi
	if [ -n "$why" ]; then
		echo "SKIPPED: $fs: $why"
		record "$out" setup SKIP "SKIPPED: $fs: $why"
		cleanup
		continue
	fi
	fstype=$(findmnt -n -o FSTYPE --target "$work/big")
	smalltype=$(findmnt -n -o FSTYPE --target "$work/small")
	echo "   $fs: fixtures on $fstype, full disk on $smalltype ($(df -B1M --output=size "$work/small" | tail -n 1 | tr -d ' ') MiB)"
	mkdir -p "$work/big/tmp"
	chmod 1777 "$work/big/tmp"
	for t in $programs; do rm -f "$top/tests/$t.log" "$top/tests/$t.trs"; done
	(cd "$top" && env TMPDIR="$work/big/tmp" MMAPFILE_FULLDISK_DIR="$work/small" \
		make -j2 check TESTS="$programs" >"$results/$fs/check.log" 2>&1) || status=1
	for t in $programs; do
		if [ -f "$top/tests/$t.trs" ]; then
			cp "$top/tests/$t.trs" "$top/tests/$t.log" "$out/"
			printf '   %-15s %s\n' "$t" "$(sed -n 's/^:test-result: //p' "$out/$t.trs" | head -n 1)"
		else
			record "$out" "$t" FAIL "$t did not run: see $results/$fs/check.log"
			echo "   $t did not run"
		fi
	done
	grep -h '^fill_dir' "$out/check_fulldisk.log" 2>/dev/null | sed 's/^/   /'
	tests_s=$((SECONDS - start))
	fill_timing "$fs" "$out" || status=1
	cleanup
	echo "   $fs took $((SECONDS - start)) s (the programs $tests_s s)"
done
exit $status
