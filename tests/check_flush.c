/* check_flush.c - the asynchronous durable flush: mmapfile_flush_start and
 * mmapfile_flush_wait.
 *
 * Oracles:
 *   - the file read back with a plain descriptor, against a twin file that
 *     received the same bytes through pwrite(2); its size on disk, exact once
 *     a flush was started (the reserve is trimmed);
 *   - the page cache's own dirty state: the test maps the bytes it wrote
 *     (MAP_SHARED, read-only) and reads Shared_Dirty/Private_Dirty of that
 *     mapping in /proc/self/smaps, which counts a page dirty until its
 *     writeback is done.  Written through the handle, the pages are dirty;
 *     after the wait they are clean.  Needs a file system with writeback
 *     (not tmpfs), else that test is left out with a message;
 *   - the requests themselves: the program links the library's objects and
 *     wraps entries of its system-call table (mmf_sys) to see every
 *     sync_file_range(2), msync(2), fdatasync(2) and each io_uring request
 *     submitted (its opcode, range and flags), and to make them fail.
 *
 * Every test that can runs twice: with the handle's io_uring, and with the
 * ring refused (the path without liburing); the program runs the same way
 * in a build without liburing, where only the second exists. */
#define _GNU_SOURCE
#include "internal.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifdef MMF_HAVE_LIBURING
#include <liburing.h>
#else
/* The kernel's values, for the checks the ring's tests share. */
#define IORING_OP_FSYNC 3
#define IORING_OP_SYNC_FILE_RANGE 8
#define IORING_FSYNC_DATASYNC 1u
#define IOSQE_IO_LINK 4u
#endif

#ifndef SYNC_FILE_RANGE_WRITE
#define SYNC_FILE_RANGE_WRITE 2
#endif

#define KiB ((off_t)1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)

static off_t P; /* the page size */
static bool have_ring; /* io_uring works here (and the library is built with it) */

/* ---- the spy: the library's system calls, seen and made to fail ---- */

enum kind { K_SFR, K_MSYNC, K_FSYNC, K_FDATASYNC, K_RING_NEW, K_SUBMIT, K_REAP, K_RING_SYNC, K_N };

static struct mmf_syscalls real;
static _Atomic long calls[K_N];
static bool refuse_ring;  /* ring_new fails: the path without io_uring */

/* Failures: the Nth call of a kind (0: none) fails with err; for K_REAP the
 * Nth completion instead carries -err as its result, as a failed writeback
 * reports it, and reap_fail_at makes the Nth wait itself fail. */
static long fail_at[K_N];
static int fail_err[K_N];
static long reap_fail_at;
static int reap_fail_err;
static long reap_res_at2; /* a second completion to rewrite, with ECANCELED */

struct range {
	off_t off, len;
	unsigned int flags;
};
#define LOG_MAX 512
static struct range sfr_log[LOG_MAX];  /* sync_file_range(2) calls */
static struct range msync_log[LOG_MAX]; /* msync(2): offset from the handle's base */
static _Atomic int sfr_n, msync_n;
static char *spy_base; /* the handle's mapping, for msync offsets */

/* Requests handed to the ring, in order. */
struct request {
	int op;
	unsigned int sqe_flags, op_flags;
	off_t off, len;
	uint64_t tag;
};
static struct request sqe_log[LOG_MAX];
static _Atomic int sqe_n;
static _Atomic long outstanding, max_outstanding; /* flush requests in the kernel */

static bool fail_now(enum kind k)
{
	long n = ++calls[k];
	if (fail_at[k] && n == fail_at[k]) {
		errno = fail_err[k];
		return true;
	}
	return false;
}

/* The nth call of kind k (counted from the spy's install) fails with err. */
static void fail_nth(enum kind k, long n, int err)
{
	fail_at[k] = n;
	fail_err[k] = err;
}

/* The flush's writeback fails with EIO: with a ring the fsync's
 * completion (the second), without one the next fdatasync(2). */
static void fail_writeback(bool ring)
{
	if (ring)
		fail_nth(K_REAP, 2, EIO);
	else
		fail_nth(K_FDATASYNC, calls[K_FDATASYNC] + 1, EIO);
}

static int w_sfr(int fd, off_t off, off_t len, unsigned int flags)
{
	if (fail_now(K_SFR))
		return -1;
	int i = sfr_n++;
	if (i < LOG_MAX)
		sfr_log[i] = (struct range){ off, len, flags };
	return real.sync_file_range(fd, off, len, flags);
}

static int w_msync(void *addr, size_t len, int flags)
{
	if (fail_now(K_MSYNC))
		return -1;
	int i = msync_n++;
	if (i < LOG_MAX)
		msync_log[i] = (struct range){ (char *)addr - spy_base, (off_t)len, (unsigned int)flags };
	return real.msync(addr, len, flags);
}

static int w_fsync(int fd) { return fail_now(K_FSYNC) ? -1 : real.fsync(fd); }
static int w_fdatasync(int fd) { return fail_now(K_FDATASYNC) ? -1 : real.fdatasync(fd); }
static int w_ring_sync(void *r, int fd) { return fail_now(K_RING_SYNC) ? -1 : real.ring_datasync(r, fd); }

static void *w_ring_new(unsigned int entries)
{
	if (fail_now(K_RING_NEW))
		return NULL;
	if (refuse_ring) {
		errno = ENOSYS;
		return NULL;
	}
	return real.ring_new(entries);
}

static int w_submit(void *r)
{
	if (fail_now(K_SUBMIT))
		return -1;
#ifdef MMF_HAVE_LIBURING
	/* The requests prepared since the last submission. */
	struct io_uring *ring = r;
	unsigned int mask = *ring->sq.kring_mask;
	for (unsigned int i = ring->sq.sqe_head; i != ring->sq.sqe_tail; i++) {
		const struct io_uring_sqe *sqe = &ring->sq.sqes[i & mask];
		int k = sqe_n++;
		if (k < LOG_MAX)
			sqe_log[k] = (struct request){ sqe->opcode, sqe->flags, sqe->fsync_flags,
			                               (off_t)sqe->off, (off_t)sqe->len, sqe->user_data };
		if (sqe->user_data < MMF_RING_TAG_SYNC) {
			long o = ++outstanding, m = max_outstanding;
			while (o > m && !atomic_compare_exchange_weak(&max_outstanding, &m, o))
				;
		}
	}
#endif
	return real.ring_submit(r);
}

static int w_reap(void *r, uint64_t *tag, int *res)
{
	long n = ++calls[K_REAP];
	if (reap_fail_at && n == reap_fail_at) {
		errno = reap_fail_err;
		return -1;
	}
	int rc = real.ring_reap(r, tag, res);
	if (rc == 0 && *tag < MMF_RING_TAG_SYNC)
		outstanding--;
	if (rc == 0 && fail_at[K_REAP] && n == fail_at[K_REAP])
		*res = -fail_err[K_REAP];
	if (rc == 0 && reap_res_at2 && n == reap_res_at2)
		*res = -ECANCELED;
	return rc;
}

/* Replace the entries; `ring` false refuses the ring (the path without
 * io_uring).  Counters and failures start from nothing. */
static void spy_install(bool ring)
{
	real = mmf_sys;
	for (int k = 0; k < K_N; k++) {
		calls[k] = 0;
		fail_at[k] = 0;
	}
	reap_fail_at = reap_res_at2 = 0;
	sfr_n = msync_n = sqe_n = 0;
	outstanding = max_outstanding = 0;
	refuse_ring = !ring;
	mmf_sys.sync_file_range = w_sfr;
	mmf_sys.msync = w_msync;
	mmf_sys.fsync = w_fsync;
	mmf_sys.fdatasync = w_fdatasync;
	mmf_sys.ring_datasync = w_ring_sync;
	mmf_sys.ring_new = w_ring_new;
	mmf_sys.ring_submit = w_submit;
	mmf_sys.ring_reap = w_reap;
}

static void spy_remove(void)
{
	mmf_sys = real;
}

static void spy_clear(void)
{
	for (int k = 0; k < K_N; k++)
		calls[k] = 0;
	sfr_n = msync_n = sqe_n = 0;
}

static long total_calls(void)
{
	long n = 0;
	for (int k = 0; k < K_N; k++)
		n += calls[k];
	return n;
}

/* The test's variant: _i even with the ring (where there is one), odd
 * without. */
static bool variant_ring(int i)
{
	return have_ring && i % 2 == 0;
}

static bool handle_has_ring(mmapfile_t *f)
{
	return ((struct mmapfile *)f)->ring != NULL;
}

/* The writeback start of a flush, whichever way it went: the ring's
 * SYNC_FILE_RANGE request, or sync_file_range(2).  Returns how many. */
static int started_ranges(struct range *out, int max)
{
	int n = 0;
	for (int i = 0; i < sqe_n && i < LOG_MAX; i++)
		if (sqe_log[i].op == IORING_OP_SYNC_FILE_RANGE && n < max)
			out[n++] = (struct range){ sqe_log[i].off, sqe_log[i].len, sqe_log[i].op_flags };
	for (int i = 0; i < sfr_n && i < LOG_MAX; i++)
		if (n < max)
			out[n++] = sfr_log[i];
	return n;
}

static int fsync_requests(unsigned int *flags, int max)
{
	int n = 0;
	for (int i = 0; i < sqe_n && i < LOG_MAX; i++)
		if (sqe_log[i].op == IORING_OP_FSYNC && sqe_log[i].tag < MMF_RING_TAG_SYNC) {
			if (n < max)
				flags[n] = sqe_log[i].op_flags;
			n++;
		}
	return n;
}

/* ---- files ---- */

/* A file of size random bytes, and its twin. */
static void make_pair(const char *p, const char *twin, off_t size, uint64_t seed)
{
	unsigned char *buf = tu_make_file(p, (size_t)size, seed, false);
	tu_write_file(twin, buf, (size_t)size);
	free(buf);
}

static void require_same(const char *p, const char *twin)
{
	size_t na, nb;
	unsigned char *a = tu_read_file(p, &na);
	unsigned char *b = tu_read_file(twin, &nb);
	ck_assert_uint_eq(na, nb);
	ck_assert_msg(memcmp(a, b, na) == 0, "the file differs from its twin");
	free(a);
	free(b);
}

static void twin_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	ck_assert_int_eq(pwrite(fd, buf, n, off), (ssize_t)n);
}

/* A test's file with a handle on it, and its twin with a plain descriptor. */
struct pair {
	mmapfile_t *f;
	int twin;
	const char *p, *tp;
};

/* The spy installed (ring or not), a pair of size random bytes from seed,
 * the handle opened with flags, the twin read-write. */
static void pair_open(struct pair *c, bool ring, int flags, off_t size, uint64_t seed)
{
	spy_install(ring);
	c->p = tu_path("f");
	c->tp = tu_path("twin");
	make_pair(c->p, c->tp, size, seed);
	c->f = mmapfile_open(c->p, flags, 0);
	ck_assert_ptr_nonnull(c->f);
	c->twin = open(c->tp, O_RDWR);
	ck_assert_int_ge(c->twin, 0);
}

/* Both closed; the file is its twin; the spy removed. */
static void pair_close(struct pair *c)
{
	ck_assert_int_eq(mmapfile_close(c->f), 0);
	close(c->twin);
	require_same(c->p, c->tp);
	spy_remove();
}

/* ---- data and size after the wait ---- */

static const int data_flags[] = {
	O_RDWR, O_RDWR | O_APPEND, O_RDWR | O_DSYNC, O_RDWR | O_SYNC, O_WRONLY,
};
#define NDATA (int)(sizeof data_flags / sizeof data_flags[0])

/* Random writes (appends growing the reserve among them), then start and
 * wait: the file on disk is the twin, byte for byte and in length, while
 * the handle is still open.  Four rounds on one handle. */
START_TEST(test_data_after_wait)
{
	int flags = data_flags[_i / 2];
	struct pair c;
	pair_open(&c, variant_ring(_i), flags, 20000, 1 + (uint64_t)_i);
	static unsigned char buf[40000];
	uint64_t rng = 99 + (uint64_t)_i;
	off_t cursor = 0;
	for (int round = 0; round < 4; round++) {
		for (int k = 0; k < 12; k++) {
			size_t n = (size_t)(tu_rand(&rng) % sizeof buf) + 1;
			tu_fill(buf, n, tu_rand(&rng));
			struct stat st;
			ck_assert_int_eq(fstat(c.twin, &st), 0);
			if (flags & O_APPEND) {
				ck_assert_int_eq(mmapfile_write(c.f, buf, n), (ssize_t)n);
				twin_pwrite(c.twin, buf, n, st.st_size);
			} else if (tu_rand(&rng) % 2) {
				ck_assert_int_eq(mmapfile_write(c.f, buf, n), (ssize_t)n);
				twin_pwrite(c.twin, buf, n, cursor);
				cursor += (off_t)n;
			} else {
				off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(st.st_size + 30000));
				ck_assert_int_eq(mmapfile_writeat(c.f, buf, n, off), (ssize_t)n);
				twin_pwrite(c.twin, buf, n, off);
			}
		}
		ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
		ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
		/* The reserve is gone and the bytes are the twin's. */
		ck_assert_int_eq(tu_file_size(c.p), tu_file_size(c.tp));
		ck_assert_int_eq(mmapfile_size(c.f), tu_file_size(c.tp));
		require_same(c.p, c.tp);
	}
	ck_assert_int_eq(handle_has_ring(c.f), variant_ring(_i));
	pair_close(&c);
}
END_TEST

/* ---- arguments and handles with nothing to do ---- */

START_TEST(test_null_and_idle)
{
	spy_install(variant_ring(_i));
	errno = 0;
	ck_assert_int_eq(mmapfile_flush_start(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_flush_wait(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);

	const char *p = tu_path("f"), *tp = tu_path("twin");
	make_pair(p, tp, 100000, 5);
	/* A wait with no flush started returns at once, asking the kernel
	 * nothing. */
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	spy_clear();
	ck_assert_int_eq(mmapfile_flush_wait(f), 0);
	ck_assert_int_eq(total_calls(), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* A read-only handle has nothing to flush: no request at all. */
	f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	char b[100];
	ck_assert_int_eq(mmapfile_readat(f, b, sizeof b, 500), (ssize_t)sizeof b);
	spy_clear();
	ck_assert_int_eq(mmapfile_flush_start(f), 0);
	ck_assert_int_eq(mmapfile_flush_wait(f), 0);
	ck_assert_int_eq(total_calls(), 0);
	ck_assert(!handle_has_ring(f));
	ck_assert_int_eq(mmapfile_close(f), 0);
	require_same(p, tp);

	/* Nor has a private handle: its writes never reach the file. */
	struct mmapfile_options o = { .size = sizeof o, .flags = MMAPFILE_OPT_PRIVATE };
	f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_writeat(f, "private", 7, 1000), 7);
	spy_clear();
	ck_assert_int_eq(mmapfile_flush_start(f), 0);
	ck_assert_int_eq(mmapfile_flush_wait(f), 0);
	ck_assert_int_eq(total_calls(), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	require_same(p, tp);
	spy_remove();
}
END_TEST

/* ---- only what was written is flushed ---- */

static void require_one_start(off_t off, off_t len)
{
	struct range r[4];
	int n = started_ranges(r, 4);
	ck_assert_msg(n == 1, "%d writeback starts, expected one", n);
	ck_assert_int_eq(r[0].off, off);
	ck_assert_int_eq(r[0].len, len);
	ck_assert_uint_eq(r[0].flags, SYNC_FILE_RANGE_WRITE);
}

/* With a ring: each flush is one FSYNC (datasync), linked after the range's
 * start when there is one. */
static void require_ring_flushes(int expected, bool linked_range)
{
	unsigned int fl[8] = { 0 };
	ck_assert_int_eq(fsync_requests(fl, 8), expected);
	for (int i = 0; i < expected && i < 8; i++)
		ck_assert_uint_eq(fl[i], IORING_FSYNC_DATASYNC);
	if (linked_range) {
		ck_assert_int_ge(sqe_n, 2);
		ck_assert_int_eq(sqe_log[0].op, IORING_OP_SYNC_FILE_RANGE);
		ck_assert_msg(sqe_log[0].sqe_flags & IOSQE_IO_LINK, "the range's start is not linked to the fsync");
		ck_assert_int_eq(sqe_log[1].op, IORING_OP_FSYNC);
	}
}

/* A 1 GiB sparse file, 4 KiB written in its middle: the flush starts
 * writeback of those 4 KiB and nothing else; a sync msyncs only what was
 * written since; with nothing written, neither names a range. */
START_TEST(test_dirty_range)
{
	bool ring = variant_ring(_i);
	spy_install(ring);
	const char *p = tu_path("sparse");
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, GiB), 0);
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	spy_base = ((struct mmapfile *)f)->base;
	ck_assert_ptr_nonnull(spy_base);

	static unsigned char data[4096];
	tu_fill(data, sizeof data, 11);
	const off_t x = 512 * MiB + 12345;
	ck_assert_int_eq(mmapfile_writeat(f, data, sizeof data, x), (ssize_t)sizeof data);
	ck_assert_int_eq(mmapfile_flush_start(f), 0);
	require_one_start(x, (off_t)sizeof data);
	ck_assert_int_eq(msync_n, 0);
	long datasyncs = calls[K_FDATASYNC];
	ck_assert_int_eq(mmapfile_flush_wait(f), 0);
	if (handle_has_ring(f)) {
		require_ring_flushes(1, true);
		ck_assert_int_eq(calls[K_FDATASYNC], 0);
	} else {
		ck_assert_int_eq(calls[K_FDATASYNC], datasyncs + 1); /* at the wait */
	}

	/* A sync after 100 bytes at 7: msync of their page, nothing more. */
	spy_clear();
	ck_assert_int_eq(mmapfile_writeat(f, data, 100, 7), 100);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(msync_n, 1);
	ck_assert_int_le(msync_log[0].off, 7);
	ck_assert_int_ge(msync_log[0].off + msync_log[0].len, 107);
	ck_assert_int_ge(msync_log[0].off, 0);
	ck_assert_int_le(msync_log[0].off + msync_log[0].len, P);
	ck_assert_int_eq(sfr_n, 0);
	ck_assert_int_eq(calls[K_FDATASYNC] + calls[K_RING_SYNC], 1);

	/* Nothing written: no msync, no range; the fsync still goes (the
	 * size and metadata). */
	spy_clear();
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(msync_n, 0);
	ck_assert_int_eq(calls[K_FDATASYNC] + calls[K_RING_SYNC], 1);
	spy_clear();
	ck_assert_int_eq(mmapfile_flush_start(f), 0);
	ck_assert_int_eq(mmapfile_flush_wait(f), 0);
	struct range r[2];
	ck_assert_int_eq(started_ranges(r, 2), 0);
	if (handle_has_ring(f))
		require_ring_flushes(1, false);
	else
		ck_assert_int_eq(calls[K_FDATASYNC], 1);

	/* Two writes far apart: one range from the first to the end of the
	 * last. */
	spy_clear();
	ck_assert_int_eq(mmapfile_writeat(f, data, 50, 900 * MiB), 50);
	ck_assert_int_eq(mmapfile_writeat(f, data, 50, 100 * MiB + 1), 50);
	ck_assert_int_eq(mmapfile_flush_start(f), 0);
	require_one_start(100 * MiB + 1, 800 * MiB - 1 + 50);
	ck_assert_int_eq(mmapfile_flush_wait(f), 0);

	ck_assert_int_eq(handle_has_ring(f), ring);
	ck_assert_int_eq(mmapfile_close(f), 0);
	/* What was written is in the file. */
	unsigned char back[4096];
	ck_assert_int_eq(pread(fd, back, sizeof back, x), (ssize_t)sizeof back);
	ck_assert(memcmp(back, data, sizeof back) == 0);
	ck_assert_int_eq(pread(fd, back, 50, 900 * MiB), 50);
	ck_assert(memcmp(back, data, 50) == 0);
	close(fd);
	ck_assert_int_eq(tu_file_size(p), GiB);
	spy_remove();
}
END_TEST

/* O_SYNC handles flush with a full fsync, O_DSYNC with a datasync. */
START_TEST(test_sync_modes)
{
	bool ring = variant_ring(_i);
	int flags = _i / 2 ? O_RDWR | O_SYNC : O_RDWR | O_DSYNC;
	struct pair c;
	pair_open(&c, ring, flags, 70000, 3);
	static unsigned char data[5000];
	tu_fill(data, sizeof data, 4);
	ck_assert_int_eq(mmapfile_writeat(c.f, data, sizeof data, 1000), (ssize_t)sizeof data);
	twin_pwrite(c.twin, data, sizeof data, 1000);
	spy_clear();
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	require_one_start(1000, (off_t)sizeof data);
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	if (handle_has_ring(c.f)) {
		unsigned int fl[4] = { 0 };
		ck_assert_int_eq(fsync_requests(fl, 4), 1);
		ck_assert_uint_eq(fl[0], (flags & O_SYNC) == O_SYNC ? 0u : IORING_FSYNC_DATASYNC);
	} else if ((flags & O_SYNC) == O_SYNC) {
		ck_assert_int_eq(calls[K_FSYNC], 1);
		ck_assert_int_eq(calls[K_FDATASYNC], 0);
	} else {
		ck_assert_int_eq(calls[K_FDATASYNC], 1);
	}
	/* A write while a flush is pending: its own flush waits for it. */
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	ck_assert_int_eq(mmapfile_write(c.f, data, 300), 300);
	twin_pwrite(c.twin, data, 300, 0);
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	ck_assert_int_eq(outstanding, 0);
	ck_assert_int_eq(tu_file_size(c.p), tu_file_size(c.tp));
	require_same(c.p, c.tp);
	pair_close(&c);
}
END_TEST

/* ---- several flushes, and others sharing the ring ---- */

/* Twenty starts before one wait: each is queued (the oldest collected when
 * the ring is full, never more owed than the ring can complete), the wait
 * collects the rest, and every request came back. */
START_TEST(test_many_starts)
{
	struct pair c;
	pair_open(&c, variant_ring(_i), O_RDWR, 300000, 8);
	static unsigned char data[3000];
	for (int i = 0; i < 20; i++) {
		tu_fill(data, sizeof data, (uint64_t)i);
		off_t off = (off_t)i * 14000 + 77;
		ck_assert_int_eq(mmapfile_writeat(c.f, data, sizeof data, off), (ssize_t)sizeof data);
		twin_pwrite(c.twin, data, sizeof data, off);
		ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	}
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	struct range r[32];
	ck_assert_int_eq(started_ranges(r, 32), 20);
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(r[i].off, (off_t)i * 14000 + 77);
		ck_assert_int_eq(r[i].len, (off_t)sizeof data);
	}
#ifdef MMF_HAVE_LIBURING
	if (handle_has_ring(c.f)) {
		struct io_uring *ring = ((struct mmapfile *)c.f)->ring;
		ck_assert_int_eq(outstanding, 0);
		ck_assert_int_le(max_outstanding, (long)*ring->cq.kring_entries);
		ck_assert_uint_eq(*ring->cq.koverflow, 0);
		ck_assert_int_eq(fsync_requests(NULL, 0), 20);
	} else
#endif
	{
		ck_assert_int_eq(calls[K_FDATASYNC], 1);
	}
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0); /* nothing left */
	pair_close(&c);
}
END_TEST

/* A sync while a flush is pending collects it first; the flush's own wait
 * then has nothing left; close collects a flush still pending. */
START_TEST(test_sync_and_close_while_pending)
{
	struct pair c;
	pair_open(&c, variant_ring(_i), O_RDWR, 90000, 9);
	static unsigned char data[20000];
	tu_fill(data, sizeof data, 10);
	ck_assert_int_eq(mmapfile_writeat(c.f, data, sizeof data, 85000), (ssize_t)sizeof data);
	twin_pwrite(c.twin, data, sizeof data, 85000);
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	ck_assert_int_eq(mmapfile_writeat(c.f, data, 100, 3), 100);
	twin_pwrite(c.twin, data, 100, 3);
	ck_assert_int_eq(mmapfile_sync(c.f), 0);
	ck_assert_int_eq(outstanding, 0);
	ck_assert_int_eq(tu_file_size(c.p), tu_file_size(c.tp));
	require_same(c.p, c.tp);
	spy_clear();
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	ck_assert_int_eq(total_calls(), 0);

	/* Close with a flush started: collected before the ring goes. */
	ck_assert_int_eq(mmapfile_writeat(c.f, data, 5000, 50), 5000);
	twin_pwrite(c.twin, data, 5000, 50);
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	bool ring = handle_has_ring(c.f);
	spy_clear();
	ck_assert_int_eq(mmapfile_close(c.f), 0);
	if (ring) {
		ck_assert_int_eq(outstanding, 0);
		ck_assert_int_eq(calls[K_REAP], 2);
	} else {
		ck_assert_int_eq(calls[K_FDATASYNC], 1);
	}
	close(c.twin);
	require_same(c.p, c.tp);
	spy_remove();
}
END_TEST

/* ---- errors ---- */


static void err_write(struct pair *c, off_t off, size_t n)
{
	static unsigned char data[16384];
	tu_fill(data, n, (uint64_t)off);
	ck_assert_int_eq(mmapfile_writeat(c->f, data, n, off), (ssize_t)n);
	twin_pwrite(c->twin, data, n, off);
}

/* One flush of 8 KiB written at 4096 on a fresh handle of 100000 bytes. */
static void err_begin(struct pair *c, int i)
{
	pair_open(c, variant_ring(i), O_RDWR, 100000, 12);
	err_write(c, 4096, 8192);
}

/* After an error the handle works: another write, flush and wait succeed,
 * and the file is the twin. */
static void err_end(struct pair *c)
{
	for (int k = 0; k < K_N; k++)
		fail_at[k] = 0;
	reap_fail_at = reap_res_at2 = 0;
	err_write(c, 30000, 777);
	ck_assert_int_eq(mmapfile_flush_start(c->f), 0);
	ck_assert_int_eq(mmapfile_flush_wait(c->f), 0);
	require_same(c->p, c->tp);
	pair_close(c);
}

static void require_fails(int rc, int err)
{
	int e = errno;
	ck_assert_int_eq(rc, -1);
	ck_assert_msg(e == err, "errno %s, expected %s", strerror(e), strerror(err));
}

/* A writeback error (the ring's completion, or fdatasync(2) without one)
 * comes back from the wait, once. */
START_TEST(test_writeback_error)
{
	struct pair c;
	err_begin(&c, _i);
	fail_writeback(variant_ring(_i));
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	require_fails(mmapfile_flush_wait(c.f), EIO);
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0); /* reported once */
	err_end(&c);
}
END_TEST

/* The start of writeback fails: without a ring sync_file_range(2) at the
 * start, with one the range's completion (and the fsync linked to it is
 * cancelled): the wait reports the start's error, not the cancellation. */
START_TEST(test_range_error)
{
	struct pair c;
	err_begin(&c, _i);
	if (variant_ring(_i)) {
		fail_nth(K_REAP, 1, EIO);
		reap_res_at2 = 2;
	} else {
		fail_nth(K_SFR, 1, EIO);
	}
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	require_fails(mmapfile_flush_wait(c.f), EIO);
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	err_end(&c);
}
END_TEST

/* A sync after a flush that failed and was not waited for reports its
 * error (the kernel reported it to the ring's fsync, and will not again);
 * the wait then has nothing to report. */
START_TEST(test_sync_reports_pending_error)
{
	struct pair c;
	err_begin(&c, _i);
	if (variant_ring(_i))
		fail_nth(K_REAP, 2, EIO);
	else
		fail_nth(K_SFR, 1, EIO);
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	require_fails(mmapfile_sync(c.f), EIO);
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	ck_assert_int_eq(mmapfile_sync(c.f), 0);
	err_end(&c);
}
END_TEST

/* Close with a failed flush pending reports its error, as any other close
 * error; the handle is freed all the same. */
START_TEST(test_close_reports_pending_error)
{
	struct pair c;
	pair_open(&c, variant_ring(_i), O_RDWR, 100000, 13);
	static unsigned char data[6000];
	tu_fill(data, sizeof data, 14);
	ck_assert_int_eq(mmapfile_writeat(c.f, data, sizeof data, 500), (ssize_t)sizeof data);
	fail_writeback(variant_ring(_i));
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	require_fails(mmapfile_close(c.f), EIO);
	/* The bytes are in the file all the same (the page cache has them). */
	twin_pwrite(c.twin, data, sizeof data, 500);
	close(c.twin);
	require_same(c.p, c.tp);
	spy_remove();
}
END_TEST

#ifdef MMF_HAVE_LIBURING
/* The kernel refuses the submission (EAGAIN): the start says so, the
 * flush stays queued, and the wait submits it and collects it. */
START_TEST(test_submit_refused)
{
	struct pair c;
	err_begin(&c, 0);
	fail_nth(K_SUBMIT, 1, EAGAIN);
	require_fails(mmapfile_flush_start(c.f), EAGAIN);
	ck_assert_int_eq(sqe_n, 0);
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	ck_assert_int_eq(calls[K_SUBMIT], 2);
	require_one_start(4096, 8192);
	ck_assert_int_eq(fsync_requests(NULL, 0), 1);
	ck_assert_int_eq(outstanding, 0);
	/* And a sync with a refused flush queued submits it first. */
	err_write(&c, 20000, 100);
	fail_nth(K_SUBMIT, calls[K_SUBMIT] + 1, EAGAIN);
	require_fails(mmapfile_flush_start(c.f), EAGAIN);
	ck_assert_int_eq(mmapfile_sync(c.f), 0);
	ck_assert_int_eq(outstanding, 0);
	ck_assert_int_eq(calls[K_RING_SYNC], 1);
	err_end(&c);
}
END_TEST

/* Waiting for a completion fails (the kernel cannot be asked): the wait
 * reports it, the completions stay owed, and the next wait collects them;
 * a sync meanwhile flushes with fdatasync(2) rather than take a flush's
 * completion for its own. */
START_TEST(test_reap_fails)
{
	struct pair c;
	err_begin(&c, 0);
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	reap_fail_at = 1;
	reap_fail_err = EBUSY;
	require_fails(mmapfile_flush_wait(c.f), EBUSY);
	ck_assert_int_eq(outstanding, 2);
	reap_fail_at = calls[K_REAP] + 1;
	long datasyncs = calls[K_FDATASYNC];
	ck_assert_int_eq(mmapfile_sync(c.f), 0);
	ck_assert_int_eq(calls[K_FDATASYNC], datasyncs + 1);
	ck_assert_int_eq(calls[K_RING_SYNC], 0);
	ck_assert_int_eq(outstanding, 2);
	reap_fail_at = 0;
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	ck_assert_int_eq(outstanding, 0);
	err_end(&c);
}
END_TEST

/* The kernel gives a flush's fsync up (ECANCELED with nothing failed
 * before it, as io_uring does when it cannot start a worker under a storm
 * of signals): the wait makes the file durable by fdatasync(2) itself and
 * succeeds. */
START_TEST(test_cancelled_fsync_done_by_syscall)
{
	struct pair c;
	err_begin(&c, 0);
	reap_res_at2 = 2;
	ck_assert_int_eq(mmapfile_flush_start(c.f), 0);
	long datasyncs = calls[K_FDATASYNC];
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	ck_assert_int_eq(calls[K_REAP], 2);
	ck_assert_int_eq(calls[K_FDATASYNC], datasyncs + 1);
	ck_assert_int_eq(mmapfile_flush_wait(c.f), 0);
	ck_assert_int_eq(calls[K_FDATASYNC], datasyncs + 1); /* owed once */
	err_end(&c);
}
END_TEST

/* The same for the ring's datasync of mmapfile_sync: given up, it is done
 * by the system call, and the sync succeeds. */
START_TEST(test_cancelled_sync_done_by_syscall)
{
	struct pair c;
	err_begin(&c, 0);
	fail_nth(K_RING_SYNC, calls[K_RING_SYNC] + 1, ECANCELED);
	long datasyncs = calls[K_FDATASYNC];
	ck_assert_int_eq(mmapfile_sync(c.f), 0);
	ck_assert_int_eq(calls[K_RING_SYNC], 1);
	ck_assert_int_eq(calls[K_FDATASYNC], datasyncs + 1);
	err_end(&c);
}
END_TEST
#endif

/* ---- threads ---- */

#define T_THREADS 2
#define T_ROUNDS 25
#define T_CHUNK 3000

struct worker {
	mmapfile_t *f;
	int id;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	unsigned char data[T_CHUNK];
	for (int i = 0; i < T_ROUNDS; i++) {
		tu_fill(data, sizeof data, (uint64_t)(w->id * 1000 + i));
		off_t off = (off_t)w->id * MiB + (off_t)i * T_CHUNK;
		if (mmapfile_writeat(w->f, data, sizeof data, off) != (ssize_t)sizeof data)
			w->failures++;
		if (mmapfile_flush_start(w->f) != 0)
			w->failures++;
		if (i % 8 == 7 && mmapfile_sync(w->f) != 0)
			w->failures++;
		if (mmapfile_flush_wait(w->f) != 0)
			w->failures++;
	}
	return NULL;
}

/* Threads writing, starting and waiting on one handle (and syncing now and
 * then): every call succeeds and the file is what they wrote. */
START_TEST(test_threads)
{
	struct pair c;
	pair_open(&c, variant_ring(_i), O_RDWR, 5000, 15);
	pthread_t th[T_THREADS];
	struct worker w[T_THREADS];
	for (int t = 0; t < T_THREADS; t++) {
		w[t] = (struct worker){ c.f, t + 1, 0 };
		ck_assert_int_eq(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
	}
	for (int t = 0; t < T_THREADS; t++) {
		ck_assert_int_eq(pthread_join(th[t], NULL), 0);
		ck_assert_int_eq(w[t].failures, 0);
	}
	ck_assert_int_eq(outstanding, 0);
	unsigned char data[T_CHUNK];
	for (int t = 1; t <= T_THREADS; t++)
		for (int i = 0; i < T_ROUNDS; i++) {
			tu_fill(data, sizeof data, (uint64_t)(t * 1000 + i));
			twin_pwrite(c.twin, data, sizeof data, (off_t)t * MiB + (off_t)i * T_CHUNK);
		}
	ck_assert_int_eq(tu_file_size(c.p), tu_file_size(c.tp)); /* no reserve after the last wait */
	require_same(c.p, c.tp);
	pair_close(&c);
}
END_TEST

/* ---- writeback really happened: the page cache's dirty pages ---- */

/* Dirty bytes (Shared_Dirty + Private_Dirty) of the test's mapping at
 * addr, from /proc/self/smaps: pages whose data is newer than the disk's,
 * whoever wrote them. */
static long mapping_dirty_bytes(const void *addr)
{
	struct tu_vma v;
	ck_assert_msg(tu_find_vma(addr, &v) && v.start == (uintptr_t)addr, "mapping %p not in /proc/self/smaps",
	              addr);
	return v.dirty_kb * 1024;
}

/* Touch every page of the test's mapping, so that smaps counts them. */
static unsigned touch(const unsigned char *m, off_t len)
{
	unsigned s = 0;
	for (off_t o = 0; o < len; o += P)
		s += ((const volatile unsigned char *)m)[o];
	return s;
}

/* The file starts clean on disk (written and fsync'd by the test); 40 KiB
 * written through the handle (by copies, or, _i >= 2, through a zero-copy
 * view) leave its pages dirty; start and wait leave them clean. */
START_TEST(test_writeback_done)
{
	spy_install(variant_ring(_i));
	const char *p = tu_path("f");
	const off_t size = 64 * P;
	unsigned char *init = malloc((size_t)size);
	ck_assert_ptr_nonnull(init);
	tu_fill(init, (size_t)size, 16);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, init, (size_t)size, 0), (ssize_t)size);
	ck_assert_int_eq(fsync(fd), 0);
	free(init);

	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	const off_t at = 8 * P + 100, len = 40 * KiB;
	unsigned char *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	touch(m, size);
	ck_assert_int_eq(mapping_dirty_bytes(m), 0);

	static unsigned char data[40 * 1024];
	tu_fill(data, sizeof data, 17);
	if (_i >= 2) {
		unsigned char *v = mmapfile_view(f, at, (size_t)len);
		ck_assert_ptr_nonnull(v);
		memcpy(v, data, (size_t)len);
		ck_assert_int_eq(mmapfile_release(f, v), 0);
	} else {
		ck_assert_int_eq(mmapfile_writeat(f, data, (size_t)len, at), (ssize_t)len);
	}
	touch(m, size);
	/* The oracle sees the pages the handle wrote as dirty (unless the
	 * kernel's own writeback got there first, which would not be the
	 * flush's doing: then the check below proves nothing, so say so). */
	long before = mapping_dirty_bytes(m);
	ck_assert_msg(before >= len, "only %ld bytes dirty after writing %lld: background writeback?",
	              before, (long long)len);
	ck_assert(memcmp(m + at, data, (size_t)len) == 0);

	ck_assert_int_eq(mmapfile_flush_start(f), 0);
	ck_assert_int_eq(mmapfile_flush_wait(f), 0);
	touch(m, size);
	ck_assert_int_eq(mapping_dirty_bytes(m), 0);
	ck_assert_int_eq(handle_has_ring(f), variant_ring(_i));

	ck_assert_int_eq(munmap(m, (size_t)size), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
	spy_remove();
}
END_TEST

/* ---- main ---- */

/* Whether the test directory's file system writes pages back (tmpfs and
 * ramfs keep them in memory: never dirty in the sense tested here). */
static bool disk_backed(const char **why)
{
	struct statfs sf;
	if (statfs(tu_tmpdir(), &sf) != 0) {
		*why = "statfs of the test directory failed";
		return false;
	}
	if (sf.f_type == 0x01021994 /* TMPFS_MAGIC */ || sf.f_type == 0x858458f6 /* RAMFS_MAGIC */) {
		*why = "the test directory is on tmpfs or ramfs, which has no writeback";
		return false;
	}
	return true;
}

/* Whether the library gets an io_uring here: a handle's first flush on a
 * scratch file says so. */
static bool ring_works(void)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/mmapfile-flush-probe-XXXXXX", tu_tmpdir());
	int fd = mkstemp(path);
	if (fd < 0)
		return false;
	close(fd);
	bool works = false;
	mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
	if (f) {
		works = mmapfile_flush_start(f) == 0 && handle_has_ring(f);
		mmapfile_flush_wait(f);
		mmapfile_close(f);
	}
	unlink(path);
	return works;
}

int main(void)
{
	P = (off_t)sysconf(_SC_PAGESIZE);
	have_ring = ring_works();
#ifdef MMF_HAVE_LIBURING
	if (!have_ring)
		printf("check_flush: io_uring is not available here: the ring's tests are left out\n");
#else
	printf("check_flush: built without liburing: the flush through system calls only\n");
#endif
	/* Loops run [first, n): even with the ring, odd without. */
	int first = have_ring ? 0 : 1;
	Suite *s = suite_create("flush");
	TCase *tc = tu_tcase("data and size", 60);
	tcase_add_loop_test(tc, test_data_after_wait, first, 2 * NDATA);
	tcase_add_loop_test(tc, test_null_and_idle, first, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("dirty range", 60);
	tcase_add_loop_test(tc, test_dirty_range, first, 2);
	tcase_add_loop_test(tc, test_sync_modes, first, 4);
	tcase_add_loop_test(tc, test_many_starts, first, 2);
	tcase_add_loop_test(tc, test_sync_and_close_while_pending, first, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("errors", 60);
	tcase_add_loop_test(tc, test_writeback_error, first, 2);
	tcase_add_loop_test(tc, test_range_error, first, 2);
	tcase_add_loop_test(tc, test_sync_reports_pending_error, first, 2);
	tcase_add_loop_test(tc, test_close_reports_pending_error, first, 2);
#ifdef MMF_HAVE_LIBURING
	if (have_ring) {
		tcase_add_test(tc, test_submit_refused);
		tcase_add_test(tc, test_reap_fails);
		tcase_add_test(tc, test_cancelled_fsync_done_by_syscall);
		tcase_add_test(tc, test_cancelled_sync_done_by_syscall);
	}
#endif
	suite_add_tcase(s, tc);
	tc = tu_tcase("threads", 120);
	tcase_add_loop_test(tc, test_threads, first, 2);
	suite_add_tcase(s, tc);
	const char *why;
	if (disk_backed(&why)) {
		tc = tu_tcase("writeback", 60);
		tcase_add_loop_test(tc, test_writeback_done, first, 4);
		suite_add_tcase(s, tc);
	} else {
		printf("check_flush: the writeback test is skipped: %s\n", why);
	}
	return tu_run(s);
}
