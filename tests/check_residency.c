/* check_residency.c - mmapfile_resident, mmapfile_lock and mmapfile_unlock.
 *
 * Oracles: the page cache is shared, so mincore(2) over the test's own
 * mapping of the same file sees the residency the handle's mapping sees;
 * mlock(2)/munlock(2) over the test's own mapping of the same bytes move
 * VmLck (/proc/self/status) as the handle's calls must.  Limits on locked
 * memory are checked in a forked child that drops to uid/gid 65534 when the
 * test runs as root, against mlock on the child's own mapping.
 *
 * The oracle calls mlock and munlock as system calls: the sanitizers
 * replace the C library's with calls that do nothing (the library does the
 * same for its own). */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define OFF_MAX_T ((off_t)INT64_MAX)

static off_t P; /* the page size */

static off_t round_up(off_t x)
{
	return (x + P - 1) / P * P;
}

/* The test's own mapping of the file's first size bytes. */
struct oracle {
	unsigned char *map;
	size_t len;
	off_t size;
	unsigned char *vec;
};

static void oracle_open(struct oracle *o, const char *p, off_t size)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	o->size = size;
	o->len = (size_t)round_up(size);
	o->map = o->len ? mmap(NULL, o->len, PROT_READ, MAP_SHARED, fd, 0) : NULL;
	ck_assert(o->map != MAP_FAILED);
	close(fd);
	o->vec = malloc(o->len / (size_t)P + 1);
	ck_assert_ptr_nonnull(o->vec);
}

static void oracle_close(struct oracle *o)
{
	if (o->len)
		munmap(o->map, o->len);
	free(o->vec);
}

/* Whether page i of the file is in the page cache now. */
static void oracle_scan(struct oracle *o)
{
	if (o->len)
		ck_assert_int_eq(mincore(o->map, o->len, o->vec), 0);
}

/* The bytes of the file held by the pages that meet [off, off + len) (len 0:
 * to the end): all of them, or only the resident ones. */
static off_t oracle_bytes(struct oracle *o, off_t off, size_t len, bool resident_only)
{
	off_t end = len == 0 || (off_t)len > o->size - off ? o->size : off + (off_t)len;
	off_t total = 0;
	for (off_t i = 0; i * P < o->size; i++) {
		off_t lo = i * P, hi = lo + P < o->size ? lo + P : o->size;
		if (lo < end && hi > off && (!resident_only || (o->vec[i] & 1)))
			total += hi - lo;
	}
	return total;
}

/* mmapfile_resident against the oracle's mincore at the same moment: asked
 * between two scans that agree (pages may come and go meanwhile). */
static void check_resident(mmapfile_t *f, struct oracle *o, off_t off, size_t len)
{
	for (int tries = 0; tries < 20; tries++) {
		oracle_scan(o);
		off_t want = oracle_bytes(o, off, len, true);
		off_t got = mmapfile_resident(f, off, len);
		oracle_scan(o);
		if (oracle_bytes(o, off, len, true) != want)
			continue;
		ck_assert_msg(got == want, "resident(%lld, %zu) = %lld, mincore says %lld", (long long)off,
		              len, (long long)got, (long long)want);
		return;
	}
	ck_abort_msg("the page cache never held still for resident(%lld, %zu)", (long long)off, len);
}

/* ------------------------------------------------------------------ */
/* Arguments and empty ranges */

START_TEST(test_invalid_arguments)
{
	const char *p = tu_path("f");
	free(tu_make_file(p, (size_t)(100 * KiB), 1, true));
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	struct { mmapfile_t *f; off_t off; size_t len; } bad[] = {
		{ NULL, 0, 0 }, { NULL, 0, 10 },
		{ f, -1, 0 }, { f, -1, 10 }, { f, INT64_MIN, 1 },
		{ f, OFF_MAX_T, 1 }, { f, 1, (size_t)OFF_MAX_T }, { f, 0, (size_t)OFF_MAX_T + 1 },
		{ f, 0, SIZE_MAX },
	};
	long locked = tu_vm_locked();
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		ck_assert_int_eq(mmapfile_resident(bad[i].f, bad[i].off, bad[i].len), -1);
		ck_assert_int_eq(errno, EINVAL);
		errno = 0;
		ck_assert_int_eq(mmapfile_lock(bad[i].f, bad[i].off, bad[i].len), -1);
		ck_assert_int_eq(errno, EINVAL);
		errno = 0;
		ck_assert_int_eq(mmapfile_unlock(bad[i].f, bad[i].off, bad[i].len), -1);
		ck_assert_int_eq(errno, EINVAL);
	}
	/* The largest range that does not overflow is valid. */
	struct oracle o;
	oracle_open(&o, p, 100 * KiB);
	check_resident(f, &o, 0, (size_t)OFF_MAX_T);
	check_resident(f, &o, 1, (size_t)OFF_MAX_T - 1);
	oracle_close(&o);
	ck_assert_int_eq(tu_vm_locked(), locked);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* A range that starts at or past the end holds nothing: 0 bytes resident,
 * and locking or unlocking it succeeds and changes nothing. */
START_TEST(test_range_past_end)
{
	const char *p = tu_path("f");
	off_t size = 3 * P + 100;
	free(tu_make_file(p, (size_t)size, 2, true));
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	long locked = tu_vm_locked();
	off_t offs[] = { size, size + 1, round_up(size), 10 * P, OFF_MAX_T - 1, OFF_MAX_T };
	size_t lens[] = { 0, 1, (size_t)P };
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
		for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
			if ((off_t)lens[j] > OFF_MAX_T - offs[i])
				continue;
			ck_assert_int_eq(mmapfile_resident(f, offs[i], lens[j]), 0);
			ck_assert_int_eq(mmapfile_lock(f, offs[i], lens[j]), 0);
			ck_assert_int_eq(tu_vm_locked(), locked);
			ck_assert_int_eq(mmapfile_unlock(f, offs[i], lens[j]), 0);
		}
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* An empty file: nothing to count or lock. */
	tu_write_file(p, "", 0);
	f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_resident(f, 0, 0), 0);
	ck_assert_int_eq(mmapfile_resident(f, 0, 100), 0);
	ck_assert_int_eq(mmapfile_lock(f, 0, 0), 0);
	ck_assert_int_eq(mmapfile_unlock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked(), locked);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Residency */

/* Evicted pages are not counted; pages pread brings back are, and the count
 * for any range is what mincore on another mapping of the file says. */
START_TEST(test_resident_evict_and_read)
{
	const char *p = tu_path("f");
	off_t size = 256 * P + 1234; /* a partial last page */
	free(tu_make_file(p, (size_t)size, 3, true));
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	struct oracle o;
	oracle_open(&o, p, size);

	/* Just written: the file is in the page cache. */
	check_resident(f, &o, 0, 0);
	off_t before = mmapfile_resident(f, 0, 0);

	tu_evict(p);
	check_resident(f, &o, 0, 0);
	off_t after = mmapfile_resident(f, 0, 0);
	bool evicts = after < before;
	if (!evicts)
		printf("SKIPPED (in part): the file system keeps evicted pages (%lld of %lld bytes resident)\n",
		       (long long)after, (long long)size);

	/* Read three pieces, without read-ahead. */
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
	struct { off_t off; size_t len; } pieces[] = {
		{ 5 * P + 100, 100 }, { 100 * P - 10, 20 }, { size - 10, 10 },
	};
	char buf[128];
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(pread(fd, buf, pieces[i].len, pieces[i].off), (ssize_t)pieces[i].len);
	close(fd);
	for (size_t i = 0; i < 3; i++) {
		check_resident(f, &o, pieces[i].off, pieces[i].len);
		/* Every page read is resident: the whole pages count. */
		ck_assert_int_eq(mmapfile_resident(f, pieces[i].off, pieces[i].len),
		                 oracle_bytes(&o, pieces[i].off, pieces[i].len, false));
	}
	check_resident(f, &o, 0, 0);
	if (evicts)
		ck_assert_int_gt(mmapfile_resident(f, 0, 0), after);

	/* Ranges of every kind. */
	uint64_t rng = 42;
	for (int i = 0; i < 150; i++) {
		off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(size + 2 * P));
		size_t len = i % 5 == 0 ? 0 : (size_t)(tu_rand(&rng) % (uint64_t)(i % 2 ? 3 * P : size));
		check_resident(f, &o, off, len);
	}
	/* Evicted again: the count drops with the page cache. */
	tu_evict(p);
	check_resident(f, &o, 0, 0);
	if (evicts)
		ck_assert_int_lt(mmapfile_resident(f, 0, 0), size);
	oracle_close(&o);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* A small file (not mapped until used), and a writable handle whose file
 * carries a reserve past its size: the count stops at the size. */
START_TEST(test_resident_small_and_reserve)
{
	const char *p = tu_path("small");
	off_t size = 2 * P + 1808;
	free(tu_make_file(p, (size_t)size, 4, true));
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	struct oracle o;
	oracle_open(&o, p, size);
	check_resident(f, &o, 0, 0);
	check_resident(f, &o, 0, 1);
	check_resident(f, &o, 2 * P, 0);
	check_resident(f, &o, size - 1, 5);
	check_resident(f, &o, P + 1, (size_t)(100 * P));
	tu_evict(p);
	check_resident(f, &o, 0, 0);
	check_resident(f, &o, P, 1);
	oracle_close(&o);
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* Appends leave a reserve on disk past the size. */
	p = tu_path("grown");
	f = mmapfile_create(p, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(f);
	unsigned char chunk[3000];
	tu_fill(chunk, sizeof chunk, 5);
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(mmapfile_write(f, chunk, sizeof chunk), (ssize_t)sizeof chunk);
	size = mmapfile_size(f);
	ck_assert_int_eq(size, 120000);
	ck_assert_int_gt(tu_file_size(p), size);
	oracle_open(&o, p, size);
	check_resident(f, &o, 0, 0);
	check_resident(f, &o, size - 1, 0);
	check_resident(f, &o, 0, (size_t)(2 * size));
	oracle_close(&o);
	/* Shrunk by the handle. */
	ck_assert_int_eq(mmapfile_truncate(f, 50001), 0);
	oracle_open(&o, p, 50001);
	check_resident(f, &o, 0, 0);
	check_resident(f, &o, 40000, 0);
	ck_assert_int_eq(mmapfile_resident(f, 50001, 0), 0);
	oracle_close(&o);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Locking */

struct op {
	bool lock;
	off_t off;  /* in pages, plus bytes */
	off_t add;
	size_t len;
};

/* [start, end): the pages of the file an operation covers, by the rule the
 * manual gives. */
static bool op_pages(const struct op *op, off_t size, off_t *start, off_t *end)
{
	off_t off = op->off * P + op->add;
	if (off >= size)
		return false;
	off_t e = op->len == 0 || (off_t)op->len > size - off ? size : off + (off_t)op->len;
	*start = off / P * P;
	*end = round_up(e);
	return true;
}

/* A sequence of locks and unlocks: VmLck after each step is what mlock and
 * munlock of the same pages of another mapping of the file give; locked
 * pages are resident, and stay so when the file is evicted. */
START_TEST(test_lock_unlock_against_mlock)
{
	const char *p = tu_path("f");
	off_t size = 64 * P + 100;
	if (!tu_may_lock(2 * (size_t)round_up(size)))
		return;
	free(tu_make_file(p, (size_t)size, 6, true));
	tu_evict(p);
	mmapfile_t *f = mmapfile_open(p, _i ? O_RDWR : O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	struct oracle o;
	oracle_open(&o, p, size);
	const struct op ops[] = {
		{ true, 0, 0, 1 },        /* one page */
		{ true, 3, 5, 2 * P },    /* three pages, from inside one */
		{ false, 3, 6, 1 },       /* a hole in them */
		{ true, 10, 0, 0 },       /* to the end */
		{ false, 0, 0, 0 },       /* everything */
		{ true, 64, 99, 100 },    /* the partial last page, past the end */
		{ true, 20, P - 1, 2 },   /* two pages for two bytes */
		{ false, 21, 0, 7 * P },
		{ true, 0, 0, (size_t)(1000 * P) },
		{ false, 30, 0, 1 },
	};
	enum { N = sizeof ops / sizeof ops[0] };
	long base = tu_vm_locked(), lib[N], sys[N];

	for (int i = 0; i < N; i++) {
		off_t off = ops[i].off * P + ops[i].add;
		if (ops[i].lock)
			ck_assert_int_eq(mmapfile_lock(f, off, ops[i].len), 0);
		else
			ck_assert_int_eq(mmapfile_unlock(f, off, ops[i].len), 0);
		lib[i] = tu_vm_locked() - base;
		if (ops[i].lock) {
			/* Locked pages are in RAM, whole. */
			ck_assert_int_eq(mmapfile_resident(f, off, ops[i].len),
			                 oracle_bytes(&o, off, ops[i].len, false));
		}
	}
	/* Locked pages survive eviction (all but page 30 are locked now). */
	tu_evict(p);
	check_resident(f, &o, 0, 0);
	ck_assert_int_eq(mmapfile_resident(f, 0, (size_t)(30 * P)), 30 * P);
	ck_assert_int_eq(mmapfile_resident(f, 31 * P, 0), size - 31 * P);
	ck_assert_int_eq(mmapfile_unlock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked(), base);

	for (int i = 0; i < N; i++) {
		off_t start, end;
		if (op_pages(&ops[i], size, &start, &end)) {
			int (*fn)(const void *, size_t) = ops[i].lock ? tu_sys_mlock : tu_sys_munlock;
			ck_assert_int_eq(fn(o.map + start, (size_t)(end - start)), 0);
		}
		sys[i] = tu_vm_locked() - base;
	}
	ck_assert_int_eq(tu_sys_munlock(o.map, o.len), 0);
	for (int i = 0; i < N; i++)
		ck_assert_msg(lib[i] == sys[i], "step %d: %ld KiB locked, mlock locks %ld KiB", i, lib[i], sys[i]);
	oracle_close(&o);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
}
END_TEST

/* mlock(2) fails over pages past the file's end (another process cut the
 * file, the handle has not learned it yet), after locking part of the range;
 * mmapfile_lock fails the same way but leaves nothing locked. */
START_TEST(test_failed_lock_leaves_nothing_locked)
{
	const char *p = tu_path("f");
	off_t size = 64 * P;
	if (!tu_may_lock(2 * (size_t)size))
		return;
	free(tu_make_file(p, (size_t)size, 7, true));
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	unsigned char *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(map != MAP_FAILED);
	ck_assert_int_eq(ftruncate(fd, 16 * P), 0);
	long base = tu_vm_locked();

	errno = 0;
	int want = tu_sys_mlock(map, (size_t)size), want_err = errno;
	long half = tu_vm_locked() - base;
	ck_assert_int_eq(tu_sys_munlock(map, (size_t)size), 0);
	ck_assert_int_eq(tu_vm_locked(), base);

	errno = 0;
	ck_assert_int_eq(mmapfile_lock(f, 0, 0), want);
	if (want != 0) {
		ck_assert_msg(errno == want_err, "mmapfile_lock: %s, mlock: %s", strerror(errno),
		              strerror(want_err));
		ck_assert_msg(tu_vm_locked() == base, "mmapfile_lock failed (%s) leaving %ld KiB locked",
		              strerror(want_err), tu_vm_locked() - base);
	} else {
		printf("SKIPPED (in part): mlock past the file's end succeeded (%ld KiB)\n", half);
		ck_assert_int_eq(mmapfile_unlock(f, 0, 0), 0);
	}
	ck_assert_int_eq(tu_vm_locked(), base);
	ck_assert_int_eq(mmapfile_unlock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked(), base);

	/* What is left of the file can be locked. */
	ck_assert_int_eq(mmapfile_lock(f, 0, (size_t)(16 * P)), 0);
	ck_assert_int_eq(tu_vm_locked() - base, 16 * P / 1024);
	ck_assert_int_eq(mmapfile_unlock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
	munmap(map, (size_t)size);
	close(fd);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* Pages locked stay locked when the mapping grows or moves, and
 * mmapfile_unlock(f, 0, 0) lets every one of them go, even after the file
 * shrank below them. */
START_TEST(test_unlock_after_growth_and_shrink)
{
	const char *p = tu_path("f");
	off_t size = 32 * P;
	if (!tu_may_lock((size_t)1100 * (size_t)P))
		return;
	free(tu_make_file(p, (size_t)size, 8, true));
	mmapfile_t *f = mmapfile_open(p, _i ? O_RDWR : O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	long base = tu_vm_locked();
	ck_assert_int_eq(mmapfile_lock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked() - base, size / 1024);

	/* Another process grows the file a little (the mapping can grow in
	 * place), then a lot (the file is mapped afresh); a read at the end
	 * makes the handle learn each. */
	char c;
	ck_assert_int_eq(ftruncate(fd, 40 * P), 0);
	ck_assert_int_eq(mmapfile_readat(f, &c, 1, 40 * P - 1), 1);
	ck_assert_int_ge(tu_vm_locked() - base, size / 1024);
	ck_assert_int_eq(ftruncate(fd, 1024 * P), 0);
	ck_assert_int_eq(mmapfile_readat(f, &c, 1, 1024 * P - 1), 1);
	ck_assert_int_eq(mmapfile_size(f), 1024 * P);
	ck_assert_int_ge(tu_vm_locked() - base, size / 1024);
	/* The first pages are still locked: eviction leaves them. */
	tu_evict(p);
	struct oracle o;
	oracle_open(&o, p, 1024 * P);
	oracle_scan(&o);
	ck_assert_int_eq(oracle_bytes(&o, 0, (size_t)size, true), size);
	check_resident(f, &o, 0, 0);
	oracle_close(&o);
	ck_assert_int_eq(mmapfile_unlock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked(), base);

	/* Lock it all, then cut the file: unlocking still reaches every page. */
	ck_assert_int_eq(mmapfile_lock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked() - base, 1024 * P / 1024);
	if (_i)
		ck_assert_int_eq(mmapfile_truncate(f, 3 * P), 0);
	else
		ck_assert_int_eq(ftruncate(fd, 3 * P), 0);
	ck_assert_int_eq(mmapfile_unlock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
	close(fd);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* Closing the handle lets its locks go (munmap does); a small file, not
 * mapped at open, is mapped to be locked. */
START_TEST(test_close_unlocks)
{
	const char *p = tu_path("f");
	if (!tu_may_lock(64 * (size_t)P))
		return;
	off_t pages = _i ? 3 : 21, size = (pages - 1) * P + 5;
	free(tu_make_file(p, (size_t)size, 9, true));
	long base = tu_vm_locked();
	mmapfile_t *f = mmapfile_open(p, _i ? O_RDONLY : O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_unlock(f, 0, 0), 0);
	ck_assert_int_eq(mmapfile_lock(f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked() - base, pages * P / 1024);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
}
END_TEST

/* ------------------------------------------------------------------ */
/* As an unprivileged user: RLIMIT_MEMLOCK, and a handle without a mapping */


/* Lock [off, off + len) through the handle and the same pages through the
 * child's own mapping: the same answer, and nothing left locked by a
 * failure. */
static void child_compare_lock(mmapfile_t *f, unsigned char *map, off_t size, off_t off, size_t len,
                               int expect)
{
	off_t end = len == 0 || (off_t)len > size - off ? size : off + (off_t)len;
	off_t start = off / P * P, stop = round_up(end);
	errno = 0;
	int want = tu_sys_mlock(map + start, (size_t)(stop - start)), want_err = errno;
	if (want == 0)
		TU_CCHECK(tu_sys_munlock(map + start, (size_t)(stop - start)) == 0, "munlock: %s", strerror(errno));
	if (expect && want == 0)
		tu_child_skip("mlock of %lld bytes succeeded below RLIMIT_MEMLOCK (CAP_IPC_LOCK?)",
		           (long long)(stop - start));
	TU_CCHECK(tu_vm_locked() == 0, "%ld KiB locked after the oracle", tu_vm_locked());
	errno = 0;
	int got = mmapfile_lock(f, off, len), got_err = errno;
	TU_CCHECK(got == want, "mmapfile_lock(%lld, %zu) = %d (%s), mlock %d (%s)", (long long)off, len, got,
	       strerror(got_err), want, strerror(want_err));
	if (got != 0) {
		TU_CCHECK(got_err == want_err, "mmapfile_lock(%lld, %zu): %s, mlock: %s", (long long)off, len,
		       strerror(got_err), strerror(want_err));
		TU_CCHECK(got_err == expect, "mmapfile_lock(%lld, %zu): %s, expected %s", (long long)off, len,
		       strerror(got_err), strerror(expect));
		TU_CCHECK(tu_vm_locked() == 0, "%ld KiB locked after a failed lock", tu_vm_locked());
	} else {
		TU_CCHECK(tu_vm_locked() == (stop - start) / 1024, "%ld KiB locked, want %lld",
		       tu_vm_locked(), (long long)(stop - start) / 1024);
		TU_CCHECK(mmapfile_unlock(f, off, len) == 0, "unlock: %s", strerror(errno));
		TU_CCHECK(tu_vm_locked() == 0, "%ld KiB locked after unlock", tu_vm_locked());
	}
}

static void child_limits(void *arg)
{
	const char *p = arg;
	off_t size = 64 * P + 10;
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	TU_CCHECK(f != NULL, "open %s: %s", p, strerror(errno));
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	TU_CCHECK(fd >= 0, "open: %s", strerror(errno));
	unsigned char *map = mmap(NULL, (size_t)round_up(size), PROT_READ, MAP_SHARED, fd, 0);
	TU_CCHECK(map != MAP_FAILED, "mmap: %s", strerror(errno));
	TU_CCHECK(tu_vm_locked() == 0, "%ld KiB locked at the start", tu_vm_locked());

	/* A low limit: ranges over it fail, ranges under it work. */
	off_t limit = 16 * P;
	struct rlimit rl = { (rlim_t)limit, (rlim_t)limit };
	TU_CCHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit: %s", strerror(errno));
	child_compare_lock(f, map, size, 0, 0, ENOMEM);
	child_compare_lock(f, map, size, P + 1, (size_t)(16 * P), ENOMEM); /* 17 pages */
	child_compare_lock(f, map, size, 60 * P, 0, 0);
	child_compare_lock(f, map, size, 2 * P + 7, (size_t)(14 * P - 7), 0);
	/* The limit counts what is locked already. */
	TU_CCHECK(mmapfile_lock(f, 0, (size_t)(10 * P)) == 0, "lock 10 pages: %s", strerror(errno));
	errno = 0;
	int want = tu_sys_mlock(map + 20 * P, (size_t)(10 * P)), want_err = errno;
	TU_CCHECK(want == -1, "mlock over the limit with 10 pages locked succeeded");
	TU_CCHECK(tu_vm_locked() == 10 * P / 1024, "%ld KiB locked", tu_vm_locked());
	errno = 0;
	TU_CCHECK(mmapfile_lock(f, 20 * P, (size_t)(10 * P)) == -1 && errno == want_err,
	       "lock over the limit: %s, mlock: %s", strerror(errno), strerror(want_err));
	TU_CCHECK(tu_vm_locked() == 10 * P / 1024, "%ld KiB locked", tu_vm_locked());
	TU_CCHECK(mmapfile_unlock(f, 0, 0) == 0, "unlock: %s", strerror(errno));
	TU_CCHECK(tu_vm_locked() == 0, "%ld KiB locked", tu_vm_locked());

	/* No locking at all. */
	rl.rlim_cur = rl.rlim_max = 0;
	TU_CCHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit: %s", strerror(errno));
	child_compare_lock(f, map, size, 0, 1, EPERM);
	child_compare_lock(f, map, size, 0, 0, EPERM);
	TU_CCHECK(mmapfile_unlock(f, 0, 0) == 0, "unlock: %s", strerror(errno));
	TU_CCHECK(mmapfile_resident(f, 0, 0) >= 0, "resident: %s", strerror(errno));
	munmap(map, (size_t)round_up(size));
	close(fd);
	TU_CCHECK(mmapfile_close(f) == 0, "close: %s", strerror(errno));
}

START_TEST(test_lock_limits)
{
	const char *p = tu_path("f");
	free(tu_make_file(p, (size_t)(64 * P + 10), 10, true));
	ck_assert_int_eq(chmod(tu_dir(), 0711), 0);
	ck_assert_int_eq(chmod(p, 0644), 0);
	tu_run_unprivileged("RLIMIT_MEMLOCK", p, F_OK, child_limits, (void *)p);
}
END_TEST

/* A write-only file the user may not read: the handle works without a
 * mapping, and has no pages to count or lock. */
static void child_mapless(void *arg)
{
	char p[4096];
	mmapfile_t *f = tu_child_open_write_only(arg, p, sizeof p);
	TU_CCHECK(mmapfile_write(f, "abc", 3) == 3, "write: %s", strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_resident(f, 0, 0) == -1 && errno == ENODEV, "resident: %s", strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_lock(f, 0, 0) == -1 && errno == ENODEV, "lock: %s", strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_unlock(f, 0, 0) == -1 && errno == ENODEV, "unlock: %s", strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_resident(f, 100, 0) == -1 && errno == ENODEV, "resident past the end: %s",
	       strerror(errno));
	/* The arguments are checked first. */
	errno = 0;
	TU_CCHECK(mmapfile_lock(f, -1, 0) == -1 && errno == EINVAL, "lock at -1: %s", strerror(errno));
	TU_CCHECK(mmapfile_close(f) == 0, "close: %s", strerror(errno));
}

START_TEST(test_mapless_handle)
{
	const char *d = tu_public_dir();
	tu_run_unprivileged("write-only handle", d, F_OK, child_mapless, (void *)d);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Threads */

struct shared {
	mmapfile_t *f;
	_Atomic bool done;
};

static void *appender(void *arg)
{
	struct shared *s = arg;
	unsigned char chunk[5000];
	tu_fill(chunk, sizeof chunk, 11);
	for (int i = 0; i < 120; i++)
		ck_assert_int_eq(mmapfile_write(s->f, chunk, sizeof chunk), (ssize_t)sizeof chunk);
	ck_assert_int_eq(mmapfile_truncate(s->f, 100000), 0);
	for (int i = 0; i < 60; i++)
		ck_assert_int_eq(mmapfile_writeat(s->f, chunk, sizeof chunk, 200000 + i * 7000),
		                 (ssize_t)sizeof chunk);
	s->done = true;
	return NULL;
}

/* Counting, locking and unlocking while another thread grows and cuts the
 * file: no call fails, and at the end nothing is locked and the count is
 * mincore's. */
START_TEST(test_threads)
{
	const char *p = tu_path("f");
	if (!tu_may_lock(2 << 20))
		return;
	long base = tu_vm_locked();
	struct shared s = { .f = mmapfile_create(p, 0, O_RDWR, 0644) };
	ck_assert_ptr_nonnull(s.f);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, appender, &s), 0);
	for (int i = 0; !s.done || i < 10; i++) {
		off_t r = mmapfile_resident(s.f, 0, 0);
		ck_assert_int_ge(r, 0);
		ck_assert_int_le(r, 200000 + 60 * 7000);
		ck_assert_int_eq(mmapfile_lock(s.f, (off_t)(i % 7) * P, (size_t)(i % 3) * 5000), 0);
		if (i % 2)
			ck_assert_int_eq(mmapfile_unlock(s.f, 0, 0), 0);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(mmapfile_unlock(s.f, 0, 0), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
	struct oracle o;
	oracle_open(&o, p, mmapfile_size(s.f));
	check_resident(s.f, &o, 0, 0);
	oracle_close(&o);
	ck_assert_int_eq(mmapfile_close(s.f), 0);
}
END_TEST

int main(void)
{
	P = (off_t)sysconf(_SC_PAGESIZE);
	Suite *s = suite_create("residency");
	TCase *tc = tu_tcase("arguments", 30);
	tcase_add_test(tc, test_invalid_arguments);
	tcase_add_test(tc, test_range_past_end);
	suite_add_tcase(s, tc);
	tc = tu_tcase("resident", 30);
	tcase_add_test(tc, test_resident_evict_and_read);
	tcase_add_test(tc, test_resident_small_and_reserve);
	suite_add_tcase(s, tc);
	tc = tu_tcase("lock", 30);
	tcase_add_loop_test(tc, test_lock_unlock_against_mlock, 0, 2);
	tcase_add_test(tc, test_failed_lock_leaves_nothing_locked);
	tcase_add_loop_test(tc, test_unlock_after_growth_and_shrink, 0, 2);
	tcase_add_loop_test(tc, test_close_unlocks, 0, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("unprivileged", 30);
	tcase_add_test(tc, test_lock_limits);
	tcase_add_test(tc, test_mapless_handle);
	suite_add_tcase(s, tc);
	tc = tu_tcase("threads", 60);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
