/* check_fault.c - every system call the library makes, failing in turn.
 *
 * The library reaches the kernel through one table (mmf_sys, sys.c).  This
 * program replaces each entry with a wrapper that fails the Nth call with a
 * chosen errno, and runs every operation once for each N until the
 * operation makes fewer than N such calls.  After each run:
 *   - a failed call reported the injected errno;
 *   - the handle's size and cursor are what the calls reported, and its
 *     bytes are those of a plain-descriptor twin that did the same
 *     successful operations;
 *   - the handle still works: a further write, sync and close succeed, and
 *     the file on disk is then byte for byte the twin;
 *   - no descriptor leaked.
 * Linked with the library's objects (libmmapfile_core) to reach the table. */
#define _GNU_SOURCE
#include "internal.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the injector ---- */

enum sys_kind {
	S_OPEN, S_CLOSE, S_FSTAT, S_FCNTL, S_LSEEK, S_FTRUNCATE, S_FALLOCATE,
	S_MMAP, S_MREMAP, S_MUNMAP, S_MSYNC, S_FSYNC, S_FDATASYNC, S_RING,
	S_MADVISE, S_PREAD, S_PWRITE, S_SFR, S_RING_NEW, S_SUBMIT, S_REAP, S_WRITE, S_FSTATFS,
	S_MINCORE, S_COUNT
};

static const char *const kind_name[S_COUNT] = {
	"open", "close", "fstat", "fcntl", "lseek", "ftruncate", "fallocate",
	"mmap", "mremap", "munmap", "msync", "fsync", "fdatasync", "io_uring fsync",
	"madvise", "pread", "pwrite", "sync_file_range", "io_uring setup", "io_uring submit",
	"io_uring completion", "write", "fstatfs", "mincore",
};

/* The failures tried: each call with the errors the kernel gives it. */
static const struct fault {
	enum sys_kind kind;
	int err;
} faults[] = {
	{ S_OPEN, EMFILE }, { S_CLOSE, EIO }, { S_FSTAT, EIO }, { S_FCNTL, EPERM },
	{ S_LSEEK, EOVERFLOW }, { S_FTRUNCATE, EIO }, { S_FTRUNCATE, ENOSPC },
	{ S_FALLOCATE, ENOSPC }, { S_FALLOCATE, EIO }, { S_MMAP, ENOMEM },
	{ S_MREMAP, ENOMEM }, { S_MUNMAP, ENOMEM }, { S_MSYNC, EIO }, { S_FSYNC, EIO },
	{ S_FDATASYNC, EIO }, { S_RING, EIO }, { S_MADVISE, EAGAIN }, { S_PREAD, EIO },
	{ S_PWRITE, ENOSPC }, { S_PWRITE, EIO }, { S_SFR, EIO }, { S_RING_NEW, ENOMEM },
	{ S_SUBMIT, EAGAIN }, { S_REAP, EIO }, { S_WRITE, ENOSPC }, { S_WRITE, EIO },
	{ S_FSTATFS, EIO }, { S_MINCORE, ENOMEM },
};
#define NFAULTS (sizeof faults / sizeof faults[0])

static struct mmf_syscalls real;
static int armed_kind = -1;
static int armed_err;
static long armed_at;
static long calls[S_COUNT];
static long injected; /* faults injected in this test */

#define ANY_KIND (-2) /* arm the Nth call of whatever kind */
static long total_calls;
static enum sys_kind failed_kind; /* the last call made to fail */

/* The first error the table gives a kind: what an ANY_KIND fault returns. */
static int kind_errno(enum sys_kind k)
{
	for (size_t i = 0; i < NFAULTS; i++)
		if (faults[i].kind == k)
			return faults[i].err;
	return EIO;
}

static bool paused; /* the checks' own calls are not counted or failed */

static bool hit(enum sys_kind k)
{
	if (paused)
		return false;
	calls[k]++;
	total_calls++;
	if (armed_kind == ANY_KIND && total_calls == armed_at)
		armed_err = kind_errno(k);
	else if ((int)k != armed_kind || calls[k] != armed_at)
		return false;
	failed_kind = k;
	injected++;
	errno = armed_err;
	return true;
}

static int w_open(const char *p, int fl, mode_t m) { return hit(S_OPEN) ? -1 : real.open(p, fl, m); }
static int w_close(int fd)
{
	/* close(2) releases the descriptor even when it reports an error. */
	if (hit(S_CLOSE)) {
		real.close(fd);
		errno = armed_err;
		return -1;
	}
	return real.close(fd);
}
static int w_fstat(int fd, struct stat *st) { return hit(S_FSTAT) ? -1 : real.fstat(fd, st); }
static int w_fcntl(int fd, int fl) { return hit(S_FCNTL) ? -1 : real.fcntl_setfl(fd, fl); }
static off_t w_lseek(int fd, off_t o, int wh) { return hit(S_LSEEK) ? -1 : real.lseek(fd, o, wh); }
static int w_ftruncate(int fd, off_t l) { return hit(S_FTRUNCATE) ? -1 : real.ftruncate(fd, l); }
static int w_fallocate(int fd, int m, off_t o, off_t l)
{
	if (!hit(S_FALLOCATE))
		return real.fallocate(fd, m, o, l);
	/* A full disk can fail fallocate(2) after it allocated, and extended
	 * the file by, part of the range. */
	if (armed_err == ENOSPC && l > 1)
		real.fallocate(fd, m, o, l / 2);
	errno = armed_err;
	return -1;
}
static void *w_mmap(void *a, size_t l, int p, int fl, int fd, off_t o)
{
	return hit(S_MMAP) ? MAP_FAILED : real.mmap(a, l, p, fl, fd, o);
}
static void *w_mremap(void *a, size_t ol, size_t nl, int fl)
{
	return hit(S_MREMAP) ? MAP_FAILED : real.mremap(a, ol, nl, fl);
}
static int w_munmap(void *a, size_t l) { return hit(S_MUNMAP) ? -1 : real.munmap(a, l); }
static int w_msync(void *a, size_t l, int fl) { return hit(S_MSYNC) ? -1 : real.msync(a, l, fl); }
static int w_fsync(int fd) { return hit(S_FSYNC) ? -1 : real.fsync(fd); }
static int w_fdatasync(int fd) { return hit(S_FDATASYNC) ? -1 : real.fdatasync(fd); }
static int w_ring(void *r, int fd) { return hit(S_RING) ? -1 : real.ring_datasync(r, fd); }
static int w_madvise(void *a, size_t l, int adv) { return hit(S_MADVISE) ? -1 : real.madvise(a, l, adv); }
static ssize_t w_pread(int fd, void *b, size_t n, off_t o)
{
	return hit(S_PREAD) ? -1 : real.pread(fd, b, n, o);
}
static ssize_t w_pwrite(int fd, const void *b, size_t n, off_t o)
{
	return hit(S_PWRITE) ? -1 : real.pwrite(fd, b, n, o);
}
static ssize_t w_write(int fd, const void *b, size_t n)
{
	return hit(S_WRITE) ? -1 : real.write(fd, b, n);
}
static int w_mincore(void *a, size_t l, unsigned char *v) { return hit(S_MINCORE) ? -1 : real.mincore(a, l, v); }
static int w_fstatfs(int fd, struct statfs *sfs) { return hit(S_FSTATFS) ? -1 : real.fstatfs(fd, sfs); }
static int w_sfr(int fd, off_t o, off_t l, unsigned int fl)
{
	return hit(S_SFR) ? -1 : real.sync_file_range(fd, o, l, fl);
}
static void *w_ring_new(unsigned int n) { return hit(S_RING_NEW) ? NULL : real.ring_new(n); }
static int w_submit(void *r) { return hit(S_SUBMIT) ? -1 : real.ring_submit(r); }
static int w_reap(void *r, uint64_t *tag, int *res)
{
	/* The request completed, with the error a failed writeback reports. */
	int rc = real.ring_reap(r, tag, res);
	if (rc == 0 && *res >= 0 && hit(S_REAP))
		*res = -armed_err;
	return rc;
}

static void injector_install(void)
{
	real = mmf_sys;
	mmf_sys = (struct mmf_syscalls){
		.open = w_open, .close = w_close, .fstat = w_fstat, .fcntl_setfl = w_fcntl,
		.lseek = w_lseek, .ftruncate = w_ftruncate, .fallocate = w_fallocate,
		.mmap = w_mmap, .mremap = w_mremap, .munmap = w_munmap, .msync = w_msync,
		.fsync = w_fsync, .fdatasync = w_fdatasync, .ring_datasync = w_ring,
		.madvise = w_madvise, .pread = w_pread, .pwrite = w_pwrite,
		.sync_file_range = w_sfr, .ring_new = w_ring_new, .ring_submit = w_submit,
		.ring_reap = w_reap, .write = w_write, .fstatfs = w_fstatfs,
		.mincore = w_mincore,
	};
}

static void arm(const struct fault *ft, long n)
{
	memset(calls, 0, sizeof calls);
	total_calls = 0;
	armed_kind = (int)ft->kind;
	armed_err = ft->err;
	armed_at = n;
}

static void disarm(void)
{
	armed_kind = -1;
}

/* ---- the twin and the checks ---- */

struct ctx {
	mmapfile_t *f;
	int twin;              /* plain descriptor on the twin file */
	off_t cursor;          /* where the handle's cursor must be */
	const char *path, *twin_path;
};

/* The same bytes at the same offsets on both files (a plain descriptor
 * standing for another process on the handle's file). */
static void both_pwrite(struct ctx *c, const void *buf, size_t n, off_t off)
{
	int fd = open(c->path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, buf, n, off), (ssize_t)n);
	close(fd);
	ck_assert_int_eq(pwrite(c->twin, buf, n, off), (ssize_t)n);
}

static void both_ftruncate(struct ctx *c, off_t len)
{
	int fd = open(c->path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, len), 0);
	close(fd);
	ck_assert_int_eq(ftruncate(c->twin, len), 0);
}

static void twin_write(struct ctx *c, const void *buf, size_t n, off_t off)
{
	ck_assert_int_eq(pwrite(c->twin, buf, n, off), (ssize_t)n);
}

static void require_same_files(const char *a, const char *b, bool exact)
{
	size_t na, nb;
	unsigned char *da = tu_read_file(a, &na);
	unsigned char *db = tu_read_file(b, &nb);
	if (exact)
		ck_assert_uint_eq(na, nb);
	ck_assert_uint_ge(na, nb);
	ck_assert_msg(memcmp(da, db, nb) == 0, "file differs from its twin");
	for (size_t i = nb; i < na; i++)
		ck_assert_msg(da[i] == 0, "byte %zu past the size is not zero", i);
	free(da);
	free(db);
}

/* The handle agrees with the twin and still works; then it is closed and
 * the file must be the twin exactly. */
static void verify_and_close(struct ctx *c)
{
	off_t size = tu_fd_size(c->twin);
	unsigned char *want = malloc((size_t)size + 1), *got = malloc((size_t)size + 1);
	ck_assert(want && got);
	ck_assert_int_eq(pread(c->twin, want, (size_t)size, 0), size);
	/* A read to the end first: a handle learns what another process did
	 * to the length when a call reaches the end. */
	if (mmapfile_readat(c->f, got, 1, 0) >= 0 || errno != EBADF) {
		ck_assert_int_eq(mmapfile_readat(c->f, got, (size_t)size + 1, 0), size);
		ck_assert_msg(memcmp(want, got, (size_t)size) == 0, "handle's bytes differ from the twin");
	}
	free(want);
	free(got);
	ck_assert_int_eq(mmapfile_size(c->f), size);
	ck_assert_int_eq(mmapfile_seek(c->f, 0, SEEK_CUR), c->cursor);
	static const char mark[] = "still usable";
	off_t at = size + 5;
	ssize_t w = mmapfile_writeat(c->f, mark, sizeof mark, at);
	if (w < 0 && errno == EINVAL) { /* an O_APPEND handle */
		at = size;
		w = mmapfile_write(c->f, mark, sizeof mark);
	}
	if (w >= 0 || errno != EBADF) {
		ck_assert_int_eq(w, (ssize_t)sizeof mark);
		twin_write(c, mark, sizeof mark, at);
	}
	ck_assert_int_eq(mmapfile_sync(c->f), 0);
	ck_assert_int_eq(mmapfile_close(c->f), 0);
	c->f = NULL;
	require_same_files(c->path, c->twin_path, true);
}

/* ---- the operations ---- */

/* The file every run starts from: one the library maps at open, and one
 * small enough to be read with pread(2) until it is used more (neither a
 * whole number of pages). */
#define BIG_INITIAL ((off_t)100000)
#define SMALL_INITIAL ((off_t)10000)
static off_t INITIAL = BIG_INITIAL;

struct scenario {
	const char *name;
	int flags;                               /* the handle's open flags */
	void (*prepare)(struct ctx *c);          /* done before arming, on both */
	long (*op)(struct ctx *c, int *err);     /* the operation under test */
	void (*apply)(struct ctx *c, long r);    /* its effect on the twin, after success */
	void (*on_fail)(struct ctx *c, enum sys_kind k); /* what a failure still did */
	bool opens, closes;                      /* the op makes or ends the handle */
};

static unsigned char payload[256 << 10];

/* Opening. */
static long op_open(struct ctx *c, int flags)
{
	c->f = mmapfile_open(c->path, flags, 0644);
	return c->f ? 0 : -1;
}
static long op_open_rdwr(struct ctx *c, int *e) { (void)e; return op_open(c, O_RDWR); }
static long op_open_rdonly(struct ctx *c, int *e) { (void)e; return op_open(c, O_RDONLY | O_NOATIME); }
static long op_open_wronly(struct ctx *c, int *e) { (void)e; return op_open(c, O_WRONLY); }
static long op_open_trunc(struct ctx *c, int *e) { (void)e; return op_open(c, O_RDWR | O_TRUNC); }
static void apply_trunc(struct ctx *c, long r) { (void)r; ck_assert_int_eq(ftruncate(c->twin, 0), 0); }
static void fail_trunc(struct ctx *c, enum sys_kind k)
{
	if (k != S_OPEN) /* open(2) itself truncated; what failed came after */
		apply_trunc(c, 0);
}

#define CREATE_SIZE ((off_t)200000)
static long op_create(struct ctx *c, int *e)
{
	(void)e;
	c->f = mmapfile_create(c->path, CREATE_SIZE, O_RDWR, 0644);
	return c->f ? 0 : -1;
}
static void apply_create(struct ctx *c, long r)
{
	apply_trunc(c, r);
	ck_assert_int_eq(ftruncate(c->twin, CREATE_SIZE), 0);
}

/* Reading. */
static unsigned char readbuf[64 << 10];
static long read_check(struct ctx *c, ssize_t r, off_t off)
{
	if (r > 0) {
		unsigned char *want = malloc((size_t)r);
		ck_assert_int_eq(pread(c->twin, want, (size_t)r, off), r);
		ck_assert_msg(memcmp(want, readbuf, (size_t)r) == 0, "read bytes differ");
		free(want);
	}
	return r;
}
static void prep_near_end(struct ctx *c)
{
	c->cursor = mmapfile_seek(c->f, INITIAL - 100, SEEK_SET);
	ck_assert_int_eq(c->cursor, INITIAL - 100);
}
static long op_read_to_end(struct ctx *c, int *e)
{
	(void)e;
	return read_check(c, mmapfile_read(c->f, readbuf, 300), c->cursor);
}
static void apply_read(struct ctx *c, long r) { c->cursor += r; }

static void prep_grown_by_other(struct ctx *c) { both_pwrite(c, payload, 20000, INITIAL + 5000); }
static long op_readat_grown(struct ctx *c, int *e)
{
	(void)e;
	return read_check(c, mmapfile_readat(c->f, readbuf, 40000, INITIAL - 100), INITIAL - 100);
}

/* Another process cut the file under the mapping: the copy faults, and the
 * library repairs the mapping and answers from the file. */
static void prep_shrunk_by_other(struct ctx *c) { both_ftruncate(c, 4096); }
static long op_readat_shrunk(struct ctx *c, int *e)
{
	(void)e;
	return read_check(c, mmapfile_readat(c->f, readbuf, 100, 6000), 6000);
}
static long op_writeat_shrunk(struct ctx *c, int *e)
{
	(void)e;
	return mmapfile_writeat(c->f, payload, 100, 6000);
}
static void apply_writeat_6000(struct ctx *c, long r) { twin_write(c, payload, (size_t)r, 6000); }

/* Writing. */
static void prep_at_end(struct ctx *c)
{
	c->cursor = mmapfile_seek(c->f, 0, SEEK_END);
	ck_assert_int_eq(c->cursor, INITIAL);
}
static long op_write_small(struct ctx *c, int *e) { (void)e; return mmapfile_write(c->f, payload, 100); }
static long op_write_large(struct ctx *c, int *e)
{
	(void)e;
	return mmapfile_write(c->f, payload, 64 << 10);
}
static void apply_write(struct ctx *c, long r)
{
	twin_write(c, payload, (size_t)r, c->cursor);
	c->cursor += r;
}
static void fail_synced_write(struct ctx *c, enum sys_kind k)
{
	/* As write(2) on an O_SYNC descriptor: the bytes are in the file and
	 * only the flush failed. */
	if (k == S_MSYNC || k == S_FSYNC || k == S_FDATASYNC || k == S_RING)
		twin_write(c, payload, 100, c->cursor);
}

#define SPARSE_AT (((off_t)1 << 20) + 123)
static long op_writeat_sparse(struct ctx *c, int *e)
{
	(void)e;
	return mmapfile_writeat(c->f, payload, 100, SPARSE_AT);
}
static void apply_writeat_sparse(struct ctx *c, long r) { twin_write(c, payload, (size_t)r, SPARSE_AT); }

static long op_append(struct ctx *c, int *e)
{
	(void)e;
	return mmapfile_write(c->f, payload, 3000);
}
static void apply_append(struct ctx *c, long r)
{
	off_t end = tu_fd_size(c->twin);
	twin_write(c, payload, (size_t)r, end);
	c->cursor = end + r;
}
static void prep_appended(struct ctx *c)
{
	ck_assert_int_eq(mmapfile_seek(c->f, 0, SEEK_END), INITIAL);
	ck_assert_int_eq(mmapfile_write(c->f, payload, 5000), 5000);
	twin_write(c, payload, 5000, INITIAL);
	c->cursor = INITIAL + 5000;
}

/* Advice, kept across growth. */
static void prep_advised(struct ctx *c)
{
	ck_assert_int_eq(mmapfile_madvise(c->f, 0, 0, MMAPFILE_MADV_RANDOM), 0);
	ck_assert_int_eq(mmapfile_madvise(c->f, 0, 0, MMAPFILE_MADV_DONTDUMP), 0);
	prep_at_end(c);
}
static long op_write_grow_many(struct ctx *c, int *e)
{
	(void)e;
	return mmapfile_write(c->f, payload, 200 << 10);
}
static long op_madvise(struct ctx *c, int *e)
{
	(void)e;
	return mmapfile_madvise(c->f, 0, 0, MMAPFILE_MADV_SEQUENTIAL);
}

/* Sizing. */
#define UP_SIZE ((off_t)300000)
static long op_truncate_up(struct ctx *c, int *e) { (void)e; return mmapfile_truncate(c->f, UP_SIZE); }
static void apply_truncate_up(struct ctx *c, long r)
{
	(void)r;
	ck_assert_int_eq(ftruncate(c->twin, UP_SIZE), 0);
}
static void prep_big(struct ctx *c)
{
	ck_assert_int_eq(mmapfile_writeat(c->f, payload, 200 << 10, INITIAL), 200 << 10);
	twin_write(c, payload, 200 << 10, INITIAL);
}
static long op_truncate_down(struct ctx *c, int *e) { (void)e; return mmapfile_truncate(c->f, 3000); }
static void apply_truncate_down(struct ctx *c, long r)
{
	(void)r;
	ck_assert_int_eq(ftruncate(c->twin, 3000), 0);
}
static long op_truncate_zero(struct ctx *c, int *e) { (void)e; return mmapfile_truncate(c->f, 0); }

/* The cursor. */
static long op_seek_end(struct ctx *c, int *e) { (void)e; return mmapfile_seek(c->f, -10, SEEK_END); }
static long op_seek_past(struct ctx *c, int *e)
{
	(void)e;
	return mmapfile_seek(c->f, (off_t)1 << 20, SEEK_SET);
}
static void apply_seek(struct ctx *c, long r) { c->cursor = r; }

/* Durability. */
static long op_sync(struct ctx *c, int *e) { (void)e; return mmapfile_sync(c->f); }
static long op_flush(struct ctx *c, int *e)
{
	(void)e;
	if (mmapfile_flush_start(c->f) != 0)
		return -1;
	return mmapfile_flush_wait(c->f);
}
static long op_flush_twice(struct ctx *c, int *e)
{
	(void)e;
	if (mmapfile_flush_start(c->f) != 0)
		return -1;
	/* Inside the file: a copy, no system call to fail. */
	ck_assert_int_eq(mmapfile_writeat(c->f, payload + 7, 100, 1000), 100);
	twin_write(c, payload + 7, 100, 1000);
	if (mmapfile_flush_start(c->f) != 0)
		return -1;
	return mmapfile_flush_wait(c->f);
}
static void prep_flush_started(struct ctx *c)
{
	prep_appended(c);
	ck_assert_int_eq(mmapfile_flush_start(c->f), 0);
}
static long op_close(struct ctx *c, int *e)
{
	(void)e;
	int r = mmapfile_close(c->f);
	c->f = NULL;
	return r;
}

static const struct scenario scenarios[] = {
	{ "open O_RDWR", 0, NULL, op_open_rdwr, NULL, NULL, true, false },
	{ "open O_RDONLY|O_NOATIME", 0, NULL, op_open_rdonly, NULL, NULL, true, false },
	{ "open O_WRONLY", 0, NULL, op_open_wronly, NULL, NULL, true, false },
	{ "open O_TRUNC", 0, NULL, op_open_trunc, apply_trunc, fail_trunc, true, false },
	{ "create with a size", 0, NULL, op_create, apply_create, fail_trunc, true, false },
	{ "read reaching the end", O_RDWR, prep_near_end, op_read_to_end, apply_read, NULL, false, false },
	{ "read after another grew it", O_RDONLY, prep_grown_by_other, op_readat_grown, NULL, NULL, false, false },
	{ "read after another cut it", O_RDWR, prep_shrunk_by_other, op_readat_shrunk, NULL, NULL, false, false },
	{ "write after another cut it", O_RDWR, prep_shrunk_by_other, op_writeat_shrunk, apply_writeat_6000, NULL, false, false },
	{ "append 100 B", O_RDWR, prep_at_end, op_write_small, apply_write, NULL, false, false },
	{ "append 64 KiB", O_RDWR, prep_at_end, op_write_large, apply_write, NULL, false, false },
	{ "write-only append", O_WRONLY, prep_at_end, op_write_small, apply_write, NULL, false, false },
	{ "writeat past a hole", O_RDWR, NULL, op_writeat_sparse, apply_writeat_sparse, NULL, false, false },
	{ "O_APPEND write", O_RDWR | O_APPEND, NULL, op_append, apply_append, NULL, false, false },
	{ "O_APPEND write into the reserve", O_RDWR | O_APPEND, prep_appended, op_append, apply_append, NULL, false, false },
	{ "growth keeps advice", O_RDWR, prep_advised, op_write_grow_many, apply_write, NULL, false, false },
	{ "O_SYNC write", O_RDWR | O_SYNC, prep_at_end, op_write_small, apply_write, fail_synced_write, false, false },
	{ "O_DSYNC write", O_RDWR | O_DSYNC, prep_at_end, op_write_small, apply_write, fail_synced_write, false, false },
	{ "madvise", O_RDWR, NULL, op_madvise, NULL, NULL, false, false },
	{ "truncate up", O_RDWR, NULL, op_truncate_up, apply_truncate_up, NULL, false, false },
	{ "truncate down", O_RDWR, prep_big, op_truncate_down, apply_truncate_down, NULL, false, false },
	{ "truncate to 0", O_RDWR, prep_big, op_truncate_zero, apply_trunc, NULL, false, false },
	{ "seek from the end", O_RDWR, prep_grown_by_other, op_seek_end, apply_seek, NULL, false, false },
	{ "seek past the end", O_RDWR, NULL, op_seek_past, apply_seek, NULL, false, false },
	{ "sync after growth", O_RDWR, prep_appended, op_sync, NULL, NULL, false, false },
	{ "sync with nothing written", O_RDWR, NULL, op_sync, NULL, NULL, false, false },
	{ "close after growth", O_RDWR, prep_appended, op_close, NULL, NULL, false, true },
	{ "flush after growth", O_RDWR, prep_appended, op_flush, NULL, NULL, false, false },
	{ "flush with nothing written", O_RDWR, NULL, op_flush, NULL, NULL, false, false },
	{ "two flushes, one wait", O_RDWR, prep_appended, op_flush_twice, NULL, NULL, false, false },
	{ "O_SYNC flush", O_RDWR | O_SYNC, prep_appended, op_flush, NULL, NULL, false, false },
	{ "close with a flush started", O_RDWR, prep_flush_started, op_close, NULL, NULL, false, true },
};
#define NSCENARIOS ((int)(sizeof scenarios / sizeof scenarios[0]))

/* The file and its twin, INITIAL bytes of the same content; the twin open.
 * Returns the descriptors open before, for files_end to compare. */
static int files_begin(struct ctx *c, uint64_t seed)
{
	*c = (struct ctx){ .path = tu_path("f"), .twin_path = tu_path("twin") };
	unsigned char *init = malloc((size_t)INITIAL);
	tu_fill(init, (size_t)INITIAL, seed);
	tu_write_file(c->path, init, (size_t)INITIAL);
	tu_write_file(c->twin_path, init, (size_t)INITIAL);
	free(init);
	int fds = tu_count_fds();
	c->twin = open(c->twin_path, O_RDWR);
	ck_assert_int_ge(c->twin, 0);
	return fds;
}

/* No descriptor leaked; the files go. */
static void files_end(struct ctx *c, int fds)
{
	close(c->twin);
	ck_assert_int_eq(tu_count_fds(), fds);
	unlink(c->path);
	unlink(c->twin_path);
}

/* One run: fresh files, the handle, the operation with the Nth call of a
 * kind failing, the checks.  Returns whether the fault was injected. */
static bool run_once(const struct scenario *sc, const struct fault *ft, long n)
{
	struct ctx c;
	int fds = files_begin(&c, (uint64_t)n * 7919 + ft->kind);
	if (!sc->opens) {
		c.f = mmapfile_open(c.path, sc->flags, 0644);
		ck_assert_ptr_nonnull(c.f);
		if (sc->prepare)
			sc->prepare(&c);
	}

	int unused = 0;
	arm(ft, n);
	long r = sc->op(&c, &unused);
	int err = errno;
	disarm();
	bool fired = calls[ft->kind] >= n;

	if (r < 0) {
		ck_assert_msg(fired, "%s failed (%s) with no fault injected", sc->name, strerror(err));
		ck_assert_msg(err == ft->err, "%s, %s call %ld failing with %s: errno %s",
		              sc->name, kind_name[ft->kind], n, strerror(ft->err), strerror(err));
		if (sc->on_fail)
			sc->on_fail(&c, ft->kind);
	} else if (sc->apply) {
		sc->apply(&c, r);
	}
	if (sc->closes)
		require_same_files(c.path, c.twin_path, r == 0);
	else if (c.f)
		verify_and_close(&c);
	else
		require_same_files(c.path, c.twin_path, true);
	files_end(&c, fds);
	return fired;
}

START_TEST(every_fault)
{
	const struct scenario *sc = &scenarios[_i % NSCENARIOS];
	INITIAL = _i < NSCENARIOS ? BIG_INITIAL : SMALL_INITIAL;
	injector_install();
	tu_fill(payload, sizeof payload, 42);
	long runs = 0;
	for (size_t i = 0; i < NFAULTS; i++) {
		/* The Nth call, for every N the operation reaches. */
		for (long n = 1; run_once(sc, &faults[i], n); n++)
			runs++;
		runs++;
	}
	mmf_sys = real;
	printf("%s (%lld bytes): %ld runs, %ld faults injected\n", sc->name, (long long)INITIAL, runs,
	       injected);
	fflush(stdout);
}
END_TEST

/* ---- random sequences, the Nth call of the whole sequence failing ---- */

#define SEQ_OPS 40
#define SEQ_SEEDS 40

static const int seq_advice[] = {
	MMAPFILE_MADV_NORMAL, MMAPFILE_MADV_RANDOM, MMAPFILE_MADV_SEQUENTIAL,
	MMAPFILE_MADV_WILLNEED, MMAPFILE_MADV_DONTDUMP,
};

/* One operation of a sequence on the handle; its effect on the twin when it
 * succeeds.  Sizes stay under 512 KiB so that thousands of runs are quick. */
static void seq_step(struct ctx *c, uint64_t *rng)
{
	uint64_t op = tu_rand(rng) % 9;
	size_t n = (size_t)(tu_rand(rng) % 3 == 0 ? tu_rand(rng) % (40 << 10) : tu_rand(rng) % 600);
	off_t off = (off_t)(tu_rand(rng) % (300 << 10));
	off_t before = tu_fd_size(c->twin);
	long injected_before = injected;
	long r;
	errno = 0;
	switch (op) {
	case 0: /* read at the cursor */
		r = mmapfile_read(c->f, readbuf, n < sizeof readbuf ? n : sizeof readbuf);
		if (r > 0) {
			read_check(c, r, c->cursor);
			c->cursor += r;
		}
		break;
	case 1: /* write at the cursor */
		r = mmapfile_write(c->f, payload, n);
		if (r > 0) {
			twin_write(c, payload, (size_t)r, c->cursor);
			c->cursor += r;
		}
		break;
	case 2:
		r = mmapfile_readat(c->f, readbuf, n < sizeof readbuf ? n : sizeof readbuf, off);
		if (r > 0)
			read_check(c, r, off);
		break;
	case 3:
		r = mmapfile_writeat(c->f, payload, n, off);
		if (r > 0)
			twin_write(c, payload, (size_t)r, off);
		break;
	case 4: {
		int whence = (int)(tu_rand(rng) % 3);
		off_t to = whence == SEEK_SET ? off : (off_t)(tu_rand(rng) % 2000) - 1000;
		r = mmapfile_seek(c->f, to, whence);
		/* The twin's lseek from the same cursor is the oracle. */
		ck_assert_int_eq(lseek(c->twin, c->cursor, SEEK_SET), c->cursor);
		off_t want = lseek(c->twin, to, whence);
		if (r >= 0) {
			ck_assert_int_eq(r, want);
			c->cursor = r;
		} else if (want < 0 && injected == injected_before) {
			return; /* refused as lseek refuses: not a fault */
		}
		break;
	}
	case 5:
		r = mmapfile_truncate(c->f, off + (off_t)n);
		if (r == 0)
			ck_assert_int_eq(ftruncate(c->twin, off + (off_t)n), 0);
		break;
	case 6:
		r = mmapfile_sync(c->f);
		break;
	case 7: /* advice over a range inside the file (past it is ENOMEM) */
		r = before ? mmapfile_madvise(c->f, off % before, n, seq_advice[tu_rand(rng) % 5]) : 0;
		break;
	default: /* a read that reaches the end, which looks at the file */
		r = mmapfile_readat(c->f, readbuf, 16, before > 8 ? before - 8 : 0);
		if (r > 0)
			read_check(c, r, before > 8 ? before - 8 : 0);
		break;
	}
	int err = errno;
	if (r < 0) {
		/* Only the injected fault may make a call fail, with its errno, and
		 * a failed call changes nothing. */
		ck_assert_msg(injected > injected_before, "op %d failed (%s) with no fault",
		              (int)op, strerror(err));
		ck_assert_msg(err == armed_err, "op %d: %s call failed with %s, errno %s",
		              (int)op, kind_name[failed_kind], strerror(armed_err), strerror(err));
	}
	paused = true;
	ck_assert_int_eq(mmapfile_size(c->f), tu_fd_size(c->twin));
	ck_assert_int_eq(mmapfile_seek(c->f, 0, SEEK_CUR), c->cursor);
	paused = false;
}

/* Runs the sequence of seed with the Nth call failing (n 0: none); returns
 * the number of calls the sequence made. */
static long run_sequence(uint64_t seed, long n)
{
	struct ctx c;
	int fds = files_begin(&c, seed);
	c.f = mmapfile_open(c.path, O_RDWR, 0644);
	ck_assert_ptr_nonnull(c.f);
	const struct fault any = { (enum sys_kind)ANY_KIND, 0 };
	arm(&any, n ? n : -1);
	armed_kind = ANY_KIND;
	uint64_t rng = seed;
	for (int i = 0; i < SEQ_OPS; i++)
		seq_step(&c, &rng);
	long made = total_calls;
	disarm();
	verify_and_close(&c);
	files_end(&c, fds);
	return made;
}

START_TEST(sequence_faults)
{
	INITIAL = _i ? BIG_INITIAL : SMALL_INITIAL;
	injector_install();
	tu_fill(payload, sizeof payload, 43);
	long runs = 0;
	for (uint64_t seed = 1; seed <= SEQ_SEEDS; seed++) {
		long made = run_sequence(seed * 0x9e3779b97f4a7c15u, 0);
		for (long n = 1; n <= made; n++, runs++)
			run_sequence(seed * 0x9e3779b97f4a7c15u, n);
	}
	mmf_sys = real;
	printf("sequences (%lld bytes): %d seeds x %d operations, %ld runs, %ld faults injected\n",
	       (long long)INITIAL, SEQ_SEEDS, SEQ_OPS, runs, injected);
	fflush(stdout);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fault");
	TCase *tc = tu_tcase("every system call failing", 120);
	tcase_add_loop_test(tc, every_fault, 0, 2 * NSCENARIOS);
	suite_add_tcase(s, tc);
	tc = tu_tcase("random sequences with the Nth call failing", 240);
	tcase_add_loop_test(tc, sequence_faults, 0, 2);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
