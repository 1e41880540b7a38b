/* check_rw.c - mmapfile_read, mmapfile_write, mmapfile_readat,
 * mmapfile_writeat and mmapfile_sync.
 *
 * Wherever a Linux file descriptor defines the answer, the test runs the same
 * operation on a plain descriptor opened with the same flags on a twin file
 * (the oracle) and compares return values, errno, the bytes read, the cursor,
 * the size and the final contents.  Where the spec departs from read(2) and
 * friends (a NULL buffer, n > SSIZE_MAX, writeat on O_APPEND, sync), the
 * expected answer comes from SPEC.md / docs/DESIGN.md. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Run the library call and the oracle call; compare result and errno. */
#define SAME(mcall, fcall)                                                     \
	do {                                                                   \
		errno = 0;                                                     \
		ssize_t m_r_ = (ssize_t)(mcall);                               \
		int m_e_ = errno;                                              \
		errno = 0;                                                     \
		ssize_t f_r_ = (ssize_t)(fcall);                               \
		int f_e_ = errno;                                              \
		ck_assert_msg(m_r_ == f_r_,                                    \
			      "%s = %zd (%s); oracle %s = %zd (%s)", #mcall,   \
			      m_r_, strerror(m_e_), #fcall, f_r_,              \
			      strerror(f_e_));                                 \
		if (f_r_ < 0)                                                  \
			ck_assert_msg(m_e_ == f_e_,                            \
				      "%s: errno %s; oracle %s: errno %s",     \
				      #mcall, strerror(m_e_), #fcall,          \
				      strerror(f_e_));                         \
	} while (0)

/* Expect -1 with errno e. */
#define FAILS(call, e)                                                         \
	do {                                                                   \
		errno = 0;                                                     \
		ssize_t r_ = (ssize_t)(call);                                  \
		int e_ = errno;                                                \
		ck_assert_msg(r_ == -1 && e_ == (e),                           \
			      "%s = %zd (%s), expected -1 (%s)", #call, r_,    \
			      strerror(e_), strerror(e));                      \
	} while (0)

/* ---- the twin: a handle on one file, a plain descriptor on another ---- */

struct twin {
	mmapfile_t *m;
	int fd;
	int flags;
	char pm[4096]; /* the handle's file */
	char pf[4096]; /* the oracle's file */
};

static void twin_open(struct twin *t, const void *init, size_t n, int flags)
{
	snprintf(t->pm, sizeof t->pm, "%s", tu_path("handle.dat"));
	snprintf(t->pf, sizeof t->pf, "%s", tu_path("oracle.dat"));
	tu_write_file(t->pm, init, n);
	tu_write_file(t->pf, init, n);
	t->flags = flags;
	t->m = mmapfile_open(t->pm, flags, 0644);
	ck_assert_msg(t->m != NULL, "mmapfile_open(%s, %#x): %s", t->pm, flags, strerror(errno));
	t->fd = open(t->pf, flags | O_CLOEXEC, 0644);
	ck_assert_msg(t->fd >= 0, "open(%s): %s", t->pf, strerror(errno));
}

/* The first n bytes of path through a fresh plain descriptor (n may be less
 * than the file's length: a writable handle may keep a reserve). */
static unsigned char *read_prefix(const char *path, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_msg((size_t)tu_fd_size(fd) >= n, "%s has %lld bytes on disk, fewer than its size %zu",
		      path, (long long)tu_fd_size(fd), n);
	unsigned char *buf = tu_xmalloc(n);
	tu_pread_all(fd, buf, n, 0);
	close(fd);
	return buf;
}

static void assert_same_bytes(const unsigned char *a, const unsigned char *b, size_t n, const char *what)
{
	if (memcmp(a, b, n) == 0)
		return;
	size_t i = 0;
	while (a[i] == b[i])
		i++;
	ck_abort_msg("%s: first difference at byte %zu of %zu: %#x, oracle %#x", what, i, n, a[i], b[i]);
}

/* Cursor, size and contents of the handle's file equal the oracle's. */
static void twin_check(struct twin *t)
{
	off_t mc = mmapfile_seek(t->m, 0, SEEK_CUR);
	off_t fc = lseek(t->fd, 0, SEEK_CUR);
	ck_assert_msg(mc == fc, "cursor %lld, oracle %lld", (long long)mc, (long long)fc);
	off_t ms = mmapfile_size(t->m);
	off_t fs = tu_fd_size(t->fd);
	ck_assert_msg(ms == fs, "mmapfile_size %lld, oracle %lld", (long long)ms, (long long)fs);
	unsigned char *a = read_prefix(t->pm, (size_t)fs);
	unsigned char *b = read_prefix(t->pf, (size_t)fs);
	assert_same_bytes(a, b, (size_t)fs, "contents while open");
	free(a);
	free(b);
}

/* Close both; the files must then be identical, length included. */
static void twin_close(struct twin *t)
{
	errno = 0;
	int r = mmapfile_close(t->m);
	ck_assert_msg(r == 0, "mmapfile_close: %d (%s)", r, strerror(errno));
	ck_assert_int_eq(close(t->fd), 0);
	size_t na, nb;
	unsigned char *a = tu_read_file(t->pm, &na);
	unsigned char *b = tu_read_file(t->pf, &nb);
	ck_assert_msg(na == nb, "file has %zu bytes after close, oracle %zu", na, nb);
	assert_same_bytes(a, b, na, "contents after close");
	free(a);
	free(b);
}

/* read through both and compare the bytes, and that read touched nothing past
 * what it returned. */
static void twin_read(struct twin *t, size_t n)
{
	unsigned char *a = tu_xmalloc(n + 16), *b = tu_xmalloc(n + 16);
	memset(a, 0xA5, n + 16);
	memset(b, 0xA5, n + 16);
	errno = 0;
	ssize_t ra = mmapfile_read(t->m, a, n);
	int ea = errno;
	ssize_t rb = read(t->fd, b, n);
	ck_assert_msg(ra == rb, "mmapfile_read(%zu) = %zd (%s), oracle %zd", n, ra, strerror(ea), rb);
	assert_same_bytes(a, b, n + 16, "read buffer");
	free(a);
	free(b);
}

static void twin_readat(struct twin *t, size_t n, off_t off)
{
	unsigned char *a = tu_xmalloc(n + 16), *b = tu_xmalloc(n + 16);
	memset(a, 0x5A, n + 16);
	memset(b, 0x5A, n + 16);
	errno = 0;
	ssize_t ra = mmapfile_readat(t->m, a, n, off);
	int ea = errno;
	ssize_t rb = pread(t->fd, b, n, off);
	ck_assert_msg(ra == rb, "mmapfile_readat(%zu, %lld) = %zd (%s), oracle %zd", n, (long long)off, ra,
		      strerror(ea), rb);
	assert_same_bytes(a, b, n + 16, "readat buffer");
	free(a);
	free(b);
}

static void twin_write(struct twin *t, const void *buf, size_t n)
{
	SAME(mmapfile_write(t->m, buf, n), write(t->fd, buf, n));
}

static void twin_writeat(struct twin *t, const void *buf, size_t n, off_t off)
{
	SAME(mmapfile_writeat(t->m, buf, n, off), pwrite(t->fd, buf, n, off));
}

static void twin_seek(struct twin *t, off_t off, int whence)
{
	SAME(mmapfile_seek(t->m, off, whence), lseek(t->fd, off, whence));
}

/* ================================ read ================================= */

START_TEST(test_read_copies_min_and_advances)
{
	size_t n = 1000;
	unsigned char *data = tu_random_bytes(n, 1);
	struct twin t;
	twin_open(&t, data, n, O_RDONLY);
	twin_read(&t, 300);
	twin_check(&t);
	twin_read(&t, 300);
	twin_read(&t, 300);
	twin_check(&t);
	twin_read(&t, 300); /* only 100 left */
	twin_check(&t);
	ck_assert_int_eq(mmapfile_seek(t.m, 0, SEEK_CUR), (off_t)n);
	twin_read(&t, 300); /* EOF */
	twin_check(&t);
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_read_exact_bytes)
{
	/* Independent of the oracle: the bytes are the file's bytes. */
	size_t n = 3 * page() + 77;
	unsigned char *data = tu_random_bytes(n, 2);
	tu_write_file(tu_path("f"), data, n);
	mmapfile_t *m = mmapfile_open(tu_path("f"), O_RDONLY, 0);
	ck_assert_ptr_nonnull(m);
	unsigned char *buf = tu_xmalloc(n + 100);
	ck_assert_int_eq(mmapfile_read(m, buf, 10), 10);
	ck_assert_int_eq(mmapfile_read(m, buf + 10, n + 100), (ssize_t)(n - 10));
	ck_assert_int_eq(memcmp(buf, data, n), 0);
	ck_assert_int_eq(mmapfile_seek(m, 0, SEEK_CUR), (off_t)n);
	ck_assert_int_eq(mmapfile_size(m), (off_t)n);
	ck_assert_int_eq(mmapfile_close(m), 0);
	free(buf);
	free(data);
}
END_TEST

START_TEST(test_read_at_and_past_eof_returns_zero)
{
	size_t n = 5000;
	unsigned char *data = tu_random_bytes(n, 3);
	struct twin t;
	twin_open(&t, data, n, O_RDONLY);
	twin_seek(&t, 0, SEEK_END);
	twin_read(&t, 1);
	twin_read(&t, 4096);
	twin_check(&t);
	twin_seek(&t, (off_t)n + 12345, SEEK_SET); /* past the end */
	twin_read(&t, 10);
	twin_check(&t); /* cursor stays past the end, size unchanged */
	twin_seek(&t, (off_t)n - 1, SEEK_SET);
	twin_read(&t, 10); /* 1 byte */
	twin_read(&t, 10); /* 0 */
	twin_check(&t);
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_read_zero_n)
{
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 4);
	unsigned char buf[8];
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	twin_seek(&t, 40, SEEK_SET);
	SAME(mmapfile_read(t.m, NULL, 0), read(t.fd, NULL, 0));
	SAME(mmapfile_read(t.m, buf, 0), read(t.fd, buf, 0));
	SAME(mmapfile_readat(t.m, NULL, 0, 10), pread(t.fd, NULL, 0, 10));
	SAME(mmapfile_readat(t.m, NULL, 0, 1000), pread(t.fd, NULL, 0, 1000));
	twin_check(&t);
	twin_seek(&t, 0, SEEK_END);
	SAME(mmapfile_read(t.m, NULL, 0), read(t.fd, NULL, 0));
	twin_check(&t);
	/* and explicitly: 0, cursor unchanged */
	ck_assert_int_eq(mmapfile_seek(t.m, 7, SEEK_SET), 7);
	ck_assert_int_eq(mmapfile_read(t.m, NULL, 0), 0);
	ck_assert_int_eq(mmapfile_seek(t.m, 0, SEEK_CUR), 7);
	lseek(t.fd, 7, SEEK_SET);
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_read_small_files)
{
	/* empty, one byte, around a page boundary, chunk sizes around them */
	size_t p = page();
	size_t sizes[] = {0, 1, p - 1, p, p + 1, 2 * p};
	size_t chunks[] = {1, 7, p - 1, p, p + 1, 3 * p};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		for (size_t j = 0; j < sizeof chunks / sizeof *chunks; j++) {
			unsigned char *data = tu_random_bytes(sizes[i], 10 + i);
			struct twin t;
			twin_open(&t, data, sizes[i], O_RDONLY);
			if (chunks[j] < 16 && sizes[i] > 64) {
				/* small chunks: start just before the last page boundary */
				size_t b = (sizes[i] - 1) / p * p;
				twin_seek(&t, (off_t)(b >= 32 ? b - 32 : sizes[i] - 64), SEEK_SET);
			}
			for (int k = 0; k < 100 && mmapfile_seek(t.m, 0, SEEK_CUR) < (off_t)sizes[i]; k++)
				twin_read(&t, chunks[j]);
			while (mmapfile_seek(t.m, 0, SEEK_CUR) < (off_t)sizes[i])
				twin_read(&t, 3 * p);
			twin_read(&t, chunks[j]); /* 0: at the end */
			twin_check(&t);
			twin_close(&t);
			free(data);
		}
	}
}
END_TEST

START_TEST(test_readat_does_not_move_cursor)
{
	size_t p = page();
	size_t n = 3 * p + 123;
	unsigned char *data = tu_random_bytes(n, 5);
	struct twin t;
	twin_open(&t, data, n, O_RDONLY);
	twin_seek(&t, 17, SEEK_SET);
	off_t offs[] = {0, 1, (off_t)p - 1, (off_t)p, (off_t)n - 5, (off_t)n, (off_t)n + 1, (off_t)n + 100000};
	size_t lens[] = {1, 10, p, p + 1, 3 * p, n + 10};
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++)
		for (size_t j = 0; j < sizeof lens / sizeof *lens; j++) {
			twin_readat(&t, lens[j], offs[i]);
			ck_assert_int_eq(mmapfile_seek(t.m, 0, SEEK_CUR), 17);
		}
	twin_read(&t, 20); /* reads from 17, not from where readat stopped */
	twin_check(&t);
	twin_close(&t);
	free(data);
}
END_TEST

/* ================================ write ================================ */

START_TEST(test_write_at_cursor_advances)
{
	size_t n = 10000;
	unsigned char *data = tu_random_bytes(n, 6);
	unsigned char *w = tu_random_bytes(3000, 7);
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	twin_write(&t, w, 100); /* overwrites 0..100 */
	twin_check(&t);
	ck_assert_int_eq(mmapfile_seek(t.m, 0, SEEK_CUR), 100);
	twin_read(&t, 50);
	twin_write(&t, w + 100, 2900); /* crosses a page boundary in the middle */
	twin_check(&t);
	twin_seek(&t, (off_t)n - 10, SEEK_SET);
	twin_write(&t, w, 3000); /* straddles the end: grows */
	twin_check(&t);
	ck_assert_int_eq(mmapfile_size(t.m), (off_t)(n - 10 + 3000));
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

START_TEST(test_write_grows_from_empty)
{
	unsigned char *w = tu_random_bytes(20000, 8);
	struct twin t;
	twin_open(&t, NULL, 0, O_RDWR);
	size_t off = 0, k = 1;
	while (off + k <= 20000) {
		twin_write(&t, w + off, k);
		off += k;
		k = k * 3 + 1;
	}
	twin_check(&t);
	twin_close(&t);
	free(w);
}
END_TEST

START_TEST(test_write_wronly)
{
	size_t n = 4096;
	unsigned char *data = tu_random_bytes(n, 9);
	unsigned char *w = tu_random_bytes(10000, 10);
	struct twin t;
	twin_open(&t, data, n, O_WRONLY);
	twin_write(&t, w, 1000);
	twin_seek(&t, 4000, SEEK_SET);
	twin_write(&t, w + 1000, 9000);
	twin_writeat(&t, w, 333, 4095);
	twin_check(&t);
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

START_TEST(test_write_past_end_leaves_zero_gap)
{
	int modes[] = {O_RDWR, O_WRONLY};
	size_t p = page();
	for (size_t i = 0; i < 2; i++) {
		size_t n = 1000;
		unsigned char *data = tu_random_bytes(n, 11);
		unsigned char *w = tu_random_bytes(500, 12);
		struct twin t;
		twin_open(&t, data, n, modes[i]);
		off_t at = (off_t)(3 * p + 5);
		twin_seek(&t, at, SEEK_SET);
		twin_write(&t, w, 500);
		twin_check(&t);
		ck_assert_int_eq(mmapfile_size(t.m), at + 500);
		/* the gap, explicitly */
		unsigned char *all = read_prefix(t.pm, (size_t)at + 500);
		for (size_t k = n; k < (size_t)at; k++)
			ck_assert_msg(all[k] == 0, "gap byte %zu is %#x", k, all[k]);
		ck_assert_int_eq(memcmp(all, data, n), 0);
		ck_assert_int_eq(memcmp(all + at, w, 500), 0);
		free(all);
		twin_close(&t);
		free(data);
		free(w);
	}
}
END_TEST

START_TEST(test_write_big_gap)
{
	unsigned char *w = tu_random_bytes(100, 13);
	struct twin t;
	twin_open(&t, NULL, 0, O_RDWR);
	twin_seek(&t, (off_t)(3 * MiB + 17), SEEK_SET);
	twin_write(&t, w, 100);
	twin_check(&t);
	twin_seek(&t, 0, SEEK_SET);
	twin_read(&t, 5000);
	twin_readat(&t, 200, (off_t)(3 * MiB));
	twin_close(&t);
	free(w);
}
END_TEST

START_TEST(test_write_zero_n)
{
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 14);
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	twin_seek(&t, 50, SEEK_SET);
	SAME(mmapfile_write(t.m, NULL, 0), write(t.fd, NULL, 0));
	SAME(mmapfile_write(t.m, data, 0), write(t.fd, data, 0));
	twin_check(&t);
	/* past the end: a zero-length write does not extend the file */
	twin_seek(&t, 5000, SEEK_SET);
	SAME(mmapfile_write(t.m, NULL, 0), write(t.fd, NULL, 0));
	SAME(mmapfile_writeat(t.m, NULL, 0, 9000), pwrite(t.fd, NULL, 0, 9000));
	twin_check(&t);
	ck_assert_int_eq(mmapfile_size(t.m), (off_t)n);
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_writeat_does_not_move_cursor)
{
	size_t p = page();
	size_t n = 2 * p + 10;
	unsigned char *data = tu_random_bytes(n, 15);
	unsigned char *w = tu_random_bytes(3 * p, 16);
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	twin_seek(&t, 33, SEEK_SET);
	twin_writeat(&t, w, 10, 0);
	twin_writeat(&t, w, p + 2, (off_t)p - 1);    /* across a boundary */
	twin_writeat(&t, w, 100, (off_t)n - 50);     /* straddles the end */
	twin_writeat(&t, w, 3 * p, (off_t)(5 * p + 3)); /* gap */
	twin_check(&t);
	ck_assert_int_eq(mmapfile_seek(t.m, 0, SEEK_CUR), 33);
	twin_write(&t, w, 7); /* at 33 */
	twin_check(&t);
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

/* =============================== O_APPEND ============================== */

START_TEST(test_append_goes_to_end_after_seek)
{
	int modes[] = {O_WRONLY | O_APPEND, O_RDWR | O_APPEND};
	for (size_t i = 0; i < 2; i++) {
		size_t n = 3000;
		unsigned char *data = tu_random_bytes(n, 17);
		unsigned char *w = tu_random_bytes(5000, 18);
		struct twin t;
		twin_open(&t, data, n, modes[i]);
		twin_seek(&t, 0, SEEK_SET);
		twin_write(&t, w, 10);
		twin_check(&t);
		ck_assert_int_eq(mmapfile_seek(t.m, 0, SEEK_CUR), (off_t)n + 10);
		twin_seek(&t, 100, SEEK_SET);
		twin_write(&t, w + 10, 4990);
		twin_check(&t);
		ck_assert_int_eq(mmapfile_seek(t.m, 0, SEEK_CUR), (off_t)n + 5000);
		/* past the end: still at the end, no gap */
		twin_seek(&t, 100000, SEEK_SET);
		twin_write(&t, w, 1);
		twin_check(&t);
		ck_assert_int_eq(mmapfile_size(t.m), (off_t)n + 5001);
		twin_close(&t);
		free(data);
		free(w);
	}
}
END_TEST

START_TEST(test_append_zero_length_changes_nothing)
{
	size_t n = 300;
	unsigned char *data = tu_random_bytes(n, 19);
	struct twin t;
	twin_open(&t, data, n, O_RDWR | O_APPEND);
	twin_seek(&t, 5, SEEK_SET);
	SAME(mmapfile_write(t.m, data, 0), write(t.fd, data, 0));
	SAME(mmapfile_write(t.m, NULL, 0), write(t.fd, NULL, 0));
	twin_check(&t);
	ck_assert_int_eq(mmapfile_seek(t.m, 0, SEEK_CUR), 5);
	ck_assert_int_eq(mmapfile_size(t.m), (off_t)n);
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_append_read_and_readat)
{
	size_t n = 2000;
	unsigned char *data = tu_random_bytes(n, 20);
	unsigned char *w = tu_random_bytes(9000, 21);
	struct twin t;
	twin_open(&t, data, n, O_RDWR | O_APPEND);
	twin_read(&t, 100);
	twin_write(&t, w, 9000);
	twin_read(&t, 10); /* cursor at the end: 0 */
	twin_seek(&t, 1990, SEEK_SET);
	twin_read(&t, 100);
	twin_readat(&t, 5000, 1000);
	twin_check(&t);
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

START_TEST(test_writeat_append_einval)
{
	size_t n = 500;
	unsigned char *data = tu_random_bytes(n, 22);
	int modes[] = {O_WRONLY | O_APPEND, O_RDWR | O_APPEND};
	for (size_t i = 0; i < 2; i++) {
		struct twin t;
		twin_open(&t, data, n, modes[i]);
		twin_seek(&t, 7, SEEK_SET);
		FAILS(mmapfile_writeat(t.m, data, 10, 0), EINVAL);
		FAILS(mmapfile_writeat(t.m, data, 10, (off_t)n), EINVAL);
		FAILS(mmapfile_writeat(t.m, data, 10, 100000), EINVAL);
		/* DESIGN.md: the O_APPEND check comes before n == 0 */
		FAILS(mmapfile_writeat(t.m, NULL, 0, 0), EINVAL);
		twin_check(&t); /* nothing changed, cursor still 7 */
		twin_close(&t);
	}
	free(data);
}
END_TEST

/* ================================ errors =============================== */

START_TEST(test_read_wronly_ebadf)
{
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 23);
	unsigned char buf[64];
	struct twin t;
	twin_open(&t, data, n, O_WRONLY);
	SAME(mmapfile_read(t.m, buf, sizeof buf), read(t.fd, buf, sizeof buf));
	SAME(mmapfile_read(t.m, buf, 0), read(t.fd, buf, 0));
	FAILS(mmapfile_read(t.m, buf, 1), EBADF);
	twin_check(&t);
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_readat_wronly_ebadf)
{
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 24);
	unsigned char buf[64];
	int modes[] = {O_WRONLY, O_WRONLY | O_APPEND};
	for (size_t i = 0; i < 2; i++) {
		struct twin t;
		twin_open(&t, data, n, modes[i]);
		SAME(mmapfile_readat(t.m, buf, sizeof buf, 0), pread(t.fd, buf, sizeof buf, 0));
		SAME(mmapfile_readat(t.m, buf, 0, 0), pread(t.fd, buf, 0, 0));
		SAME(mmapfile_readat(t.m, buf, 10, 1000), pread(t.fd, buf, 10, 1000));
		FAILS(mmapfile_readat(t.m, buf, 1, 0), EBADF);
		twin_check(&t);
		twin_close(&t);
	}
	free(data);
}
END_TEST

START_TEST(test_write_rdonly_ebadf)
{
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 25);
	unsigned char *w = tu_random_bytes(64, 26);
	struct twin t;
	twin_open(&t, data, n, O_RDONLY);
	twin_seek(&t, 10, SEEK_SET);
	SAME(mmapfile_write(t.m, w, 64), write(t.fd, w, 64));
	SAME(mmapfile_write(t.m, w, 0), write(t.fd, w, 0));
	SAME(mmapfile_writeat(t.m, w, 64, 0), pwrite(t.fd, w, 64, 0));
	SAME(mmapfile_writeat(t.m, w, 64, 1000), pwrite(t.fd, w, 64, 1000));
	SAME(mmapfile_writeat(t.m, w, 0, 0), pwrite(t.fd, w, 0, 0));
	FAILS(mmapfile_write(t.m, w, 1), EBADF);
	FAILS(mmapfile_writeat(t.m, w, 1, 0), EBADF);
	twin_check(&t);
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

START_TEST(test_null_buffer_einval)
{
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 27);
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	twin_seek(&t, 3, SEEK_SET);
	FAILS(mmapfile_read(t.m, NULL, 1), EINVAL);
	FAILS(mmapfile_read(t.m, NULL, 4096), EINVAL);
	FAILS(mmapfile_write(t.m, NULL, 1), EINVAL);
	FAILS(mmapfile_write(t.m, NULL, 4096), EINVAL);
	FAILS(mmapfile_readat(t.m, NULL, 1, 0), EINVAL);
	FAILS(mmapfile_writeat(t.m, NULL, 1, 0), EINVAL);
	FAILS(mmapfile_writeat(t.m, NULL, 10, 1000), EINVAL);
	twin_check(&t); /* nothing moved or grew */
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_null_handle_einval)
{
	unsigned char buf[16] = {0};
	FAILS(mmapfile_read(NULL, buf, sizeof buf), EINVAL);
	FAILS(mmapfile_read(NULL, buf, 0), EINVAL);
	FAILS(mmapfile_write(NULL, buf, sizeof buf), EINVAL);
	FAILS(mmapfile_readat(NULL, buf, sizeof buf, 0), EINVAL);
	FAILS(mmapfile_writeat(NULL, buf, sizeof buf, 0), EINVAL);
	FAILS(mmapfile_sync(NULL), EINVAL);
}
END_TEST

START_TEST(test_negative_offset_einval)
{
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 28);
	unsigned char buf[16];
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	off_t offs[] = {-1, -4096, (off_t)INT64_MIN};
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
		SAME(mmapfile_readat(t.m, buf, sizeof buf, offs[i]), pread(t.fd, buf, sizeof buf, offs[i]));
		SAME(mmapfile_writeat(t.m, data, 16, offs[i]), pwrite(t.fd, data, 16, offs[i]));
		SAME(mmapfile_readat(t.m, buf, 0, offs[i]), pread(t.fd, buf, 0, offs[i]));
		SAME(mmapfile_writeat(t.m, data, 0, offs[i]), pwrite(t.fd, data, 0, offs[i]));
		FAILS(mmapfile_readat(t.m, buf, 1, offs[i]), EINVAL);
		FAILS(mmapfile_writeat(t.m, data, 1, offs[i]), EINVAL);
	}
	twin_check(&t);
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_offset_overflow_einval)
{
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 29);
	unsigned char buf[128];
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	const off_t max = (off_t)INT64_MAX;
	SAME(mmapfile_readat(t.m, buf, 100, max - 10), pread(t.fd, buf, 100, max - 10));
	SAME(mmapfile_writeat(t.m, data, 100, max - 10), pwrite(t.fd, data, 100, max - 10));
	SAME(mmapfile_readat(t.m, buf, 1, max), pread(t.fd, buf, 1, max));
	SAME(mmapfile_writeat(t.m, data, 1, max), pwrite(t.fd, data, 1, max));
	FAILS(mmapfile_readat(t.m, buf, 100, max - 10), EINVAL);
	FAILS(mmapfile_writeat(t.m, data, 1, max), EINVAL);
	/* exactly at the largest off_t with n == 0 is not past it */
	SAME(mmapfile_readat(t.m, buf, 0, max), pread(t.fd, buf, 0, max));
	SAME(mmapfile_writeat(t.m, data, 0, max), pwrite(t.fd, data, 0, max));
	twin_check(&t);
	twin_close(&t);
	free(data);
}
END_TEST

START_TEST(test_n_over_ssize_max_einval)
{
	/* read(2) would say EFAULT here (the range is not mapped); the spec
	 * (DESIGN.md, error 4) says EINVAL, checked before the buffer. */
	size_t n = 100;
	unsigned char *data = tu_random_bytes(n, 30);
	unsigned char buf[16];
	size_t bigs[] = {(size_t)SSIZE_MAX + 1, SIZE_MAX};
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	twin_seek(&t, 4, SEEK_SET);
	for (size_t i = 0; i < 2; i++) {
		FAILS(mmapfile_read(t.m, buf, bigs[i]), EINVAL);
		FAILS(mmapfile_write(t.m, buf, bigs[i]), EINVAL);
		FAILS(mmapfile_readat(t.m, buf, bigs[i], 0), EINVAL);
		FAILS(mmapfile_writeat(t.m, buf, bigs[i], 0), EINVAL);
	}
	twin_check(&t);
	twin_close(&t);
	free(data);
}
END_TEST

/* ============================= large writes ============================ */

static void large_write_at_end(size_t size)
{
	unsigned char *w = tu_random_bytes(size, size);
	struct twin t;
	twin_open(&t, NULL, 0, O_RDWR);
	twin_write(&t, w, size);
	twin_check(&t);
	twin_readat(&t, 4096, (off_t)size - 4000);
	twin_write(&t, w, size); /* and once more, onto the end of the first */
	twin_check(&t);
	twin_close(&t);
	free(w);
}

START_TEST(test_large_write_1m_at_end)
{
	large_write_at_end(MiB);
}
END_TEST

START_TEST(test_large_write_8m_at_end)
{
	large_write_at_end(8 * MiB);
}
END_TEST

START_TEST(test_large_unaligned_at_end)
{
	size_t p = page();
	size_t init = p + 1;
	size_t sizes[] = {64 * KiB - 1, 64 * KiB + 1, MiB + 3, 3 * p - 1, 2 * MiB + p + 7};
	size_t total = 0;
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		total += sizes[i];
	unsigned char *data = tu_random_bytes(init, 31);
	unsigned char *w = tu_random_bytes(total, 32);
	struct twin t;
	twin_open(&t, data, init, O_RDWR);
	twin_seek(&t, 0, SEEK_END);
	size_t off = 0;
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		twin_write(&t, w + off, sizes[i]);
		off += sizes[i];
	}
	twin_check(&t);
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

START_TEST(test_large_write_in_middle)
{
	size_t p = page();
	size_t n = 3 * MiB + 5;
	unsigned char *data = tu_random_bytes(n, 33);
	unsigned char *w = tu_random_bytes(2 * MiB + 16, 34);
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	twin_seek(&t, (off_t)p - 1, SEEK_SET);
	twin_write(&t, w, MiB + 13); /* cursor write inside */
	twin_check(&t);
	twin_writeat(&t, w + 1, MiB - 7, (off_t)(MiB + p / 2)); /* writeat inside */
	twin_writeat(&t, w + 2, 2 * MiB, (off_t)(n - MiB - 3)); /* straddles the end */
	twin_check(&t);
	twin_seek(&t, 12345, SEEK_SET);
	twin_write(&t, w + 3, 8 * p + 1);
	twin_check(&t);
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

START_TEST(test_large_writeat_past_end)
{
	size_t n = MiB;
	unsigned char *data = tu_random_bytes(n, 35);
	unsigned char *w = tu_random_bytes(MiB + 1, 36);
	struct twin t;
	twin_open(&t, data, n, O_RDWR);
	twin_writeat(&t, w, MiB + 1, (off_t)(5 * MiB + 7)); /* a 4 MiB gap */
	twin_check(&t);
	twin_seek(&t, (off_t)(7 * MiB + 3), SEEK_SET);
	twin_write(&t, w, 65536); /* a cursor write past the end */
	twin_check(&t);
	twin_readat(&t, 2 * MiB, (off_t)(MiB - 100));
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

static void many_small_appends(int flags)
{
	const size_t count = 100000, each = 17;
	unsigned char *expect = tu_random_bytes(count * each, 37);
	const char *path = tu_path("appends.dat");
	mmapfile_t *m = mmapfile_open(path, flags | O_CREAT, 0644);
	ck_assert_msg(m != NULL, "mmapfile_open: %s", strerror(errno));
	for (size_t i = 0; i < count; i++) {
		ssize_t r = mmapfile_write(m, expect + i * each, each);
		if (r != (ssize_t)each)
			ck_abort_msg("append %zu returned %zd (%s)", i, r, strerror(errno));
	}
	ck_assert_int_eq(mmapfile_size(m), (off_t)(count * each));
	ck_assert_int_eq(mmapfile_close(m), 0);
	size_t got;
	unsigned char *file = tu_read_file(path, &got);
	ck_assert_msg(got == count * each, "file has %zu bytes, expected %zu", got, count * each);
	assert_same_bytes(file, expect, got, "appended file");
	free(file);
	free(expect);
}

START_TEST(test_many_small_appends)
{
	many_small_appends(O_WRONLY);
}
END_TEST

START_TEST(test_many_small_appends_o_append)
{
	many_small_appends(O_RDWR | O_APPEND);
}
END_TEST

/* ========================= sync, O_SYNC, O_DSYNC ======================= */

/* With O_SYNC/O_DSYNC the file on disk is exactly the logical size after
 * every write, while the handle is open. */
static void exact_after_every_write(int flags)
{
	size_t p = page();
	size_t n = 1000;
	unsigned char *data = tu_random_bytes(n, 38);
	unsigned char *w = tu_random_bytes(MiB + 11, 39);
	struct twin t;
	twin_open(&t, data, n, flags);
	uint64_t rng = 40;
	for (int i = 0; i < 14; i++) {
		uint64_t r = tu_rand(&rng);
		size_t len;
		switch (i % 7) {
		case 0: len = 1 + r % 50; break;
		case 1: len = p + 1 + r % p; break;
		case 2: len = 64 * KiB + r % 1000; break;
		case 3: len = MiB + 11; break;
		default: len = 1 + r % (3 * p); break;
		}
		if (i % 5 == 4 && !(flags & O_APPEND)) {
			off_t size = mmapfile_size(t.m);
			off_t off = (off_t)(r % (uint64_t)(size + 3 * (off_t)p)); /* inside or past */
			twin_writeat(&t, w, len, off);
		} else {
			if (i % 3 == 2)
				twin_seek(&t, (off_t)(r % 5000) + mmapfile_size(t.m) / 2, SEEK_SET);
			if (i % 7 == 6)
				twin_seek(&t, 3 * (off_t)p, SEEK_END); /* gap */
			twin_write(&t, w, len);
		}
		off_t disk = tu_file_size(t.pm);
		off_t logical = mmapfile_size(t.m);
		off_t oracle = tu_fd_size(t.fd);
		ck_assert_msg(disk == oracle && logical == oracle,
			      "after write %d: on disk %lld, mmapfile_size %lld, oracle %lld", i,
			      (long long)disk, (long long)logical, (long long)oracle);
	}
	twin_check(&t);
	twin_close(&t);
	free(data);
	free(w);
}

START_TEST(test_osync_exact_size_every_write)
{
	exact_after_every_write(O_RDWR | O_SYNC);
}
END_TEST

START_TEST(test_odsync_exact_size_every_write)
{
	exact_after_every_write(O_RDWR | O_DSYNC);
}
END_TEST

START_TEST(test_osync_append_exact_size)
{
	exact_after_every_write(O_WRONLY | O_APPEND | O_SYNC);
}
END_TEST

START_TEST(test_odsync_wronly_exact_size)
{
	exact_after_every_write(O_WRONLY | O_DSYNC);
}
END_TEST

static void assert_exact_on_disk(struct twin *t, const char *when)
{
	off_t disk = tu_file_size(t->pm);
	off_t logical = mmapfile_size(t->m);
	off_t oracle = tu_fd_size(t->fd);
	ck_assert_msg(disk == oracle && logical == oracle, "%s: on disk %lld, mmapfile_size %lld, oracle %lld",
		      when, (long long)disk, (long long)logical, (long long)oracle);
}

START_TEST(test_sync_trims_while_open)
{
	unsigned char *w = tu_random_bytes(300000, 41);
	struct twin t;
	twin_open(&t, NULL, 0, O_RDWR);
	ck_assert_int_eq(mmapfile_sync(t.m), 0);
	assert_exact_on_disk(&t, "sync on an untouched handle");
	twin_write(&t, w, 100);
	ck_assert_int_eq(mmapfile_sync(t.m), 0);
	assert_exact_on_disk(&t, "after a 100-byte write");
	twin_write(&t, w, 200000);
	ck_assert_int_eq(mmapfile_sync(t.m), 0);
	assert_exact_on_disk(&t, "after a 200000-byte write");
	twin_writeat(&t, w, 1234, 500000);
	ck_assert_int_eq(mmapfile_sync(t.m), 0);
	assert_exact_on_disk(&t, "after a writeat past the end");
	twin_check(&t);
	/* writing on after a sync still works, and sync again is exact */
	for (int i = 0; i < 50; i++)
		twin_write(&t, w + i, 997);
	ck_assert_int_eq(mmapfile_sync(t.m), 0);
	ck_assert_int_eq(mmapfile_sync(t.m), 0);
	assert_exact_on_disk(&t, "after 50 writes and two syncs");
	twin_check(&t);
	twin_close(&t);
	free(w);
}
END_TEST

START_TEST(test_sync_other_modes)
{
	int modes[] = {O_RDONLY, O_WRONLY, O_WRONLY | O_APPEND, O_RDWR | O_APPEND};
	size_t n = 5000;
	unsigned char *data = tu_random_bytes(n, 42);
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
		struct twin t;
		twin_open(&t, data, n, modes[i]);
		SAME(mmapfile_sync(t.m), fsync(t.fd));
		if ((modes[i] & O_ACCMODE) != O_RDONLY) {
			twin_seek(&t, 10, SEEK_SET);
			twin_write(&t, data, 3000);
			twin_write(&t, data, n); /* grows past the old end */
			SAME(mmapfile_sync(t.m), fsync(t.fd));
		}
		assert_exact_on_disk(&t, "after sync");
		twin_check(&t);
		twin_close(&t);
	}
	free(data);
}
END_TEST

/* ============================== visibility ============================= */

START_TEST(test_writes_visible_to_plain_read)
{
	size_t p = page();
	unsigned char *w = tu_random_bytes(5 * p + 3, 43);
	const char *path = tu_path("vis.dat");
	mmapfile_t *m = mmapfile_open(path, O_RDWR | O_CREAT, 0644);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(mmapfile_write(m, w, 5 * p + 3), (ssize_t)(5 * p + 3));
	/* no sync: a plain read(2) sees the bytes at once */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	unsigned char *buf = tu_xmalloc(5 * p + 3);
	size_t got = 0;
	while (got < 5 * p + 3) {
		ssize_t r = read(fd, buf + got, 5 * p + 3 - got);
		ck_assert_msg(r > 0, "read(2) = %zd at %zu: the handle's bytes are not in the file", r, got);
		got += (size_t)r;
	}
	assert_same_bytes(buf, w, got, "plain read of the handle's write");
	/* an overwrite in the middle, seen through the open descriptor */
	ck_assert_int_eq(mmapfile_writeat(m, "XYZ", 3, (off_t)p - 1), 3);
	ck_assert_int_eq(pread(fd, buf, 3, (off_t)p - 1), 3);
	ck_assert_int_eq(memcmp(buf, "XYZ", 3), 0);
	ck_assert_int_eq(mmapfile_seek(m, 1, SEEK_SET), 1);
	ck_assert_int_eq(mmapfile_write(m, "ab", 2), 2);
	ck_assert_int_eq(pread(fd, buf, 2, 1), 2);
	ck_assert_int_eq(memcmp(buf, "ab", 2), 0);
	close(fd);
	ck_assert_int_eq(mmapfile_close(m), 0);
	free(buf);
	free(w);
}
END_TEST

START_TEST(test_append_visible_to_plain_read)
{
	const char *path = tu_path("vis.dat");
	tu_write_file(path, "head", 4);
	mmapfile_t *m = mmapfile_open(path, O_WRONLY | O_APPEND, 0);
	ck_assert_ptr_nonnull(m);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	char buf[64];
	ck_assert_int_eq(read(fd, buf, 4), 4);
	for (int i = 0; i < 20; i++) {
		char line[16];
		int len = snprintf(line, sizeof line, "line %d\n", i);
		ck_assert_int_eq(mmapfile_write(m, line, (size_t)len), len);
		/* read(2) at the reader's cursor returns exactly the new line;
		 * bytes beyond the logical size (a reserve) are not checked */
		ssize_t r = read(fd, buf, (size_t)len);
		ck_assert_msg(r == len, "read(2) after append %d: %zd", i, r);
		ck_assert_int_eq(memcmp(buf, line, (size_t)len), 0);
	}
	close(fd);
	ck_assert_int_eq(mmapfile_close(m), 0);
}
END_TEST

START_TEST(test_plain_pwrite_visible_to_handle)
{
	size_t p = page();
	size_t n = 4 * p;
	unsigned char *data = tu_random_bytes(n, 44);
	unsigned char *w = tu_random_bytes(2 * p, 45);
	int modes[] = {O_RDONLY, O_RDWR};
	for (size_t i = 0; i < 2; i++) {
		const char *path = tu_path("shared.dat");
		tu_write_file(path, data, n);
		mmapfile_t *m = mmapfile_open(path, modes[i], 0);
		ck_assert_ptr_nonnull(m);
		unsigned char *buf = tu_xmalloc(n);
		ck_assert_int_eq(mmapfile_readat(m, buf, n, 0), (ssize_t)n); /* fault the pages in */
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pwrite(fd, w, 2 * p, (off_t)p + 100), (ssize_t)(2 * p));
		ck_assert_int_eq(mmapfile_readat(m, buf, 2 * p, (off_t)p + 100), (ssize_t)(2 * p));
		assert_same_bytes(buf, w, 2 * p, "readat after a plain pwrite");
		ck_assert_int_eq(mmapfile_seek(m, (off_t)p + 50, SEEK_SET), (off_t)p + 50);
		ck_assert_int_eq(mmapfile_read(m, buf, 100), 100);
		assert_same_bytes(buf, data + p + 50, 50, "read before the pwritten range");
		assert_same_bytes(buf + 50, w, 50, "read of the pwritten range");
		close(fd);
		ck_assert_int_eq(mmapfile_close(m), 0);
		free(buf);
	}
	free(data);
	free(w);
}
END_TEST

/* A child process appends with write(2) on an O_APPEND descriptor. */
static void child_append(const char *path, const void *buf, size_t n)
{
	pid_t pid = tu_fork();
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (fd < 0)
			_exit(2);
		const char *p = buf;
		while (n > 0) {
			ssize_t w = write(fd, p, n);
			if (w <= 0)
				_exit(3);
			p += w;
			n -= (size_t)w;
		}
		_exit(close(fd) == 0 ? 0 : 4);
	}
	int st = tu_wait(pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "appending child failed: status %#x", st);
}

START_TEST(test_growth_by_child_visible_to_read)
{
	/* tail -f: the handle and a plain descriptor read the same file. */
	size_t p = page();
	size_t n = 3000, rounds = 5, each = p + 123;
	unsigned char *data = tu_random_bytes(n, 46);
	unsigned char *more = tu_random_bytes(rounds * each, 47);
	const char *path = tu_path("log.dat");
	tu_write_file(path, data, n);
	mmapfile_t *m = mmapfile_open(path, O_RDONLY, 0);
	ck_assert_ptr_nonnull(m);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	/* Static: the forked child exits with them allocated, and the compiler
	 * may have dropped the only pointer it had in that branch, which
	 * valgrind's leak check in the child would call lost. */
	static unsigned char *a, *b;
	a = tu_xmalloc(2 * each + n);
	b = tu_xmalloc(2 * each + n);
	SAME(mmapfile_read(m, a, 2 * each + n), read(fd, b, 2 * each + n));
	SAME(mmapfile_read(m, a, 10), read(fd, b, 10)); /* 0: at the end */
	for (size_t r = 0; r < rounds; r++) {
		child_append(path, more + r * each, each);
		memset(a, 0, 2 * each);
		memset(b, 0, 2 * each);
		SAME(mmapfile_read(m, a, 2 * each), read(fd, b, 2 * each));
		assert_same_bytes(a, b, 2 * each, "bytes another process appended");
		assert_same_bytes(a, more + r * each, each, "bytes another process appended");
		off_t want = (off_t)(n + (r + 1) * each);
		ck_assert_msg(mmapfile_size(m) == want, "round %zu: mmapfile_size %lld, file %lld", r,
			      (long long)mmapfile_size(m), (long long)want);
		SAME(mmapfile_read(m, a, 10), read(fd, b, 10)); /* 0 again */
	}
	close(fd);
	ck_assert_int_eq(mmapfile_close(m), 0);
	free(a);
	free(b);
	free(data);
	free(more);
}
END_TEST

START_TEST(test_growth_by_child_visible_to_readat)
{
	/* DESIGN.md: a readat that reaches the handle's end asks the file. */
	size_t n = 100, m_len = 3 * page() + 1;
	unsigned char *data = tu_random_bytes(n, 48);
	unsigned char *more = tu_random_bytes(m_len, 49);
	const char *path = tu_path("log.dat");
	tu_write_file(path, data, n);
	mmapfile_t *m = mmapfile_open(path, O_RDONLY, 0);
	ck_assert_ptr_nonnull(m);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char *a = tu_xmalloc(m_len + 10), *b = tu_xmalloc(m_len + 10);
	SAME(mmapfile_readat(m, a, 10, (off_t)n), pread(fd, b, 10, (off_t)n));
	child_append(path, more, m_len);
	SAME(mmapfile_readat(m, a, m_len + 10, (off_t)n), pread(fd, b, m_len + 10, (off_t)n));
	assert_same_bytes(a, more, m_len, "readat of bytes another process appended");
	ck_assert_int_eq(mmapfile_size(m), (off_t)(n + m_len));
	close(fd);
	ck_assert_int_eq(mmapfile_close(m), 0);
	free(a);
	free(b);
	free(data);
	free(more);
}
END_TEST

START_TEST(test_reopen_sees_same_data)
{
	size_t p = page();
	unsigned char *w = tu_random_bytes(200000, 50);
	struct twin t;
	twin_open(&t, NULL, 0, O_RDWR);
	twin_write(&t, w, 70000);
	twin_writeat(&t, w + 5, 3 * p, 1000);
	twin_seek(&t, 100000, SEEK_SET);
	twin_write(&t, w + 7, 5000);
	ck_assert_int_eq(mmapfile_sync(t.m), 0);
	/* a second handle while the first is still open (after its sync) */
	size_t size = (size_t)mmapfile_size(t.m);
	unsigned char *expect = read_prefix(t.pf, size);
	mmapfile_t *m2 = mmapfile_open(t.pm, O_RDONLY, 0);
	ck_assert_ptr_nonnull(m2);
	ck_assert_int_eq(mmapfile_size(m2), (off_t)size);
	unsigned char *buf = tu_xmalloc(size + 1);
	ck_assert_int_eq(mmapfile_read(m2, buf, size + 1), (ssize_t)size);
	assert_same_bytes(buf, expect, size, "second handle");
	ck_assert_int_eq(mmapfile_close(m2), 0);
	twin_close(&t);
	/* and a third after the first is closed */
	mmapfile_t *m3 = mmapfile_open(t.pm, O_RDWR, 0);
	ck_assert_ptr_nonnull(m3);
	ck_assert_int_eq(mmapfile_size(m3), (off_t)size);
	memset(buf, 0, size);
	ck_assert_int_eq(mmapfile_readat(m3, buf, size + 1, 0), (ssize_t)size);
	assert_same_bytes(buf, expect, size, "handle opened after close");
	ck_assert_int_eq(mmapfile_close(m3), 0);
	ck_assert_int_eq(tu_file_size(t.pm), (off_t)size); /* an untouched O_RDWR handle leaves it exact */
	free(buf);
	free(expect);
	free(w);
}
END_TEST

/* ============================ interleaved I/O ========================== */

static void random_ops(int flags, uint64_t seed, int nops)
{
	size_t p = page();
	size_t n = 2 * p + 333;
	unsigned char *data = tu_random_bytes(n, seed);
	unsigned char *w = tu_random_bytes(200 * KiB, seed + 1);
	struct twin t;
	twin_open(&t, data, n, flags);
	uint64_t rng = seed;
	for (int i = 0; i < nops; i++) {
		uint64_t r = tu_rand(&rng);
		uint64_t r2 = tu_rand(&rng);
		size_t len;
		switch (r2 % 8) {
		case 0: len = 0; break;
		case 1: len = 1; break;
		case 2: len = p; break;
		case 3: len = 70 * KiB + r2 % 999; break;
		default: len = 1 + (size_t)(r2 % (3 * p)); break;
		}
		off_t size = mmapfile_size(t.m);
		off_t off = (off_t)((r >> 8) % (uint64_t)(size + 2 * (off_t)p + 1));
		switch (r % 6) {
		case 0: twin_read(&t, len); break;
		case 1: twin_write(&t, w + (r2 % 1000), len); break;
		case 2: twin_readat(&t, len, off); break;
		case 3:
			if (flags & O_APPEND)
				FAILS(mmapfile_writeat(t.m, w, len, off), EINVAL);
			else
				twin_writeat(&t, w + (r2 % 1000), len, off);
			break;
		case 4: twin_seek(&t, off, SEEK_SET); break;
		case 5: twin_seek(&t, (off_t)(r2 % 200) - 100, (r2 >> 9) & 1 ? SEEK_CUR : SEEK_END);
			break;
		}
		off_t mc = mmapfile_seek(t.m, 0, SEEK_CUR);
		off_t fc = lseek(t.fd, 0, SEEK_CUR);
		ck_assert_msg(mc == fc, "op %d: cursor %lld, oracle %lld", i, (long long)mc, (long long)fc);
		ck_assert_msg(mmapfile_size(t.m) == tu_fd_size(t.fd), "op %d: size %lld, oracle %lld", i,
			      (long long)mmapfile_size(t.m), (long long)tu_fd_size(t.fd));
		if (i % 50 == 49)
			twin_check(&t);
	}
	twin_check(&t);
	twin_close(&t);
	free(data);
	free(w);
}

/* Every length a call copies inline (records of 1 to 64 bytes, each moved
 * in pieces that overlap) and a little past it, at offsets of every
 * alignment, ending inside the file, at its end and past it: the bytes, the
 * sizes and the cursor against a plain descriptor, and nothing written
 * outside the range (the twins' buffers carry canaries). */
START_TEST(test_every_record_length_matches_fd)
{
	size_t size = 3000;
	unsigned char *data = tu_random_bytes(size, 77);
	unsigned char *w = tu_random_bytes(200, 78);
	struct twin t;
	twin_open(&t, data, size, O_RDWR);
	for (size_t n = 1; n <= 70; n++) {
		off_t end = (off_t)(size + n);
		off_t offs[] = {0, 64, 1, 7, 33, (off_t)size - (off_t)n - 1, (off_t)size - (off_t)n, end - 2};
		for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
			off_t off = offs[k] < 0 ? 0 : offs[k];
			twin_readat(&t, n, off);
			twin_seek(&t, off, SEEK_SET);
			twin_read(&t, n);
			twin_read(&t, n);
			twin_writeat(&t, w + n, n, off + 1);
			twin_seek(&t, off, SEEK_SET);
			twin_write(&t, w + k, n);
			twin_readat(&t, n + 1, off);
		}
		size = (size_t)tu_fd_size(t.fd);
		twin_check(&t);
	}
	twin_close(&t);
	free(data);
	free(w);
}
END_TEST

START_TEST(test_interleaved_rdwr_matches_fd)
{
	random_ops(O_RDWR, 1001, 400);
	random_ops(O_RDWR, 2002, 400);
}
END_TEST

START_TEST(test_interleaved_append_matches_fd)
{
	random_ops(O_RDWR | O_APPEND, 3003, 400);
}
END_TEST

START_TEST(test_interleaved_dsync_matches_fd)
{
	random_ops(O_RDWR | O_DSYNC, 4004, 60);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rw");

	TCase *tc = tu_tcase("read", 30);
	tcase_add_test(tc, test_read_copies_min_and_advances);
	tcase_add_test(tc, test_read_exact_bytes);
	tcase_add_test(tc, test_read_at_and_past_eof_returns_zero);
	tcase_add_test(tc, test_read_zero_n);
	tcase_add_test(tc, test_read_small_files);
	tcase_add_test(tc, test_readat_does_not_move_cursor);
	suite_add_tcase(s, tc);

	tc = tu_tcase("write", 30);
	tcase_add_test(tc, test_write_at_cursor_advances);
	tcase_add_test(tc, test_write_grows_from_empty);
	tcase_add_test(tc, test_write_wronly);
	tcase_add_test(tc, test_write_past_end_leaves_zero_gap);
	tcase_add_test(tc, test_write_big_gap);
	tcase_add_test(tc, test_write_zero_n);
	tcase_add_test(tc, test_writeat_does_not_move_cursor);
	suite_add_tcase(s, tc);

	tc = tu_tcase("append", 30);
	tcase_add_test(tc, test_append_goes_to_end_after_seek);
	tcase_add_test(tc, test_append_zero_length_changes_nothing);
	tcase_add_test(tc, test_append_read_and_readat);
	tcase_add_test(tc, test_writeat_append_einval);
	suite_add_tcase(s, tc);

	tc = tu_tcase("errors", 30);
	tcase_add_test(tc, test_read_wronly_ebadf);
	tcase_add_test(tc, test_readat_wronly_ebadf);
	tcase_add_test(tc, test_write_rdonly_ebadf);
	tcase_add_test(tc, test_null_buffer_einval);
	tcase_add_test(tc, test_null_handle_einval);
	tcase_add_test(tc, test_negative_offset_einval);
	tcase_add_test(tc, test_offset_overflow_einval);
	tcase_add_test(tc, test_n_over_ssize_max_einval);
	suite_add_tcase(s, tc);

	tc = tu_tcase("large", 120);
	tcase_add_test(tc, test_large_write_1m_at_end);
	tcase_add_test(tc, test_large_write_8m_at_end);
	tcase_add_test(tc, test_large_unaligned_at_end);
	tcase_add_test(tc, test_large_write_in_middle);
	tcase_add_test(tc, test_large_writeat_past_end);
	tcase_add_test(tc, test_many_small_appends);
	tcase_add_test(tc, test_many_small_appends_o_append);
	suite_add_tcase(s, tc);

	tc = tu_tcase("sync", 60);
	tcase_add_test(tc, test_osync_exact_size_every_write);
	tcase_add_test(tc, test_odsync_exact_size_every_write);
	tcase_add_test(tc, test_osync_append_exact_size);
	tcase_add_test(tc, test_odsync_wronly_exact_size);
	tcase_add_test(tc, test_sync_trims_while_open);
	tcase_add_test(tc, test_sync_other_modes);
	suite_add_tcase(s, tc);

	tc = tu_tcase("visibility", 30);
	tcase_add_test(tc, test_writes_visible_to_plain_read);
	tcase_add_test(tc, test_append_visible_to_plain_read);
	tcase_add_test(tc, test_plain_pwrite_visible_to_handle);
	tcase_add_test(tc, test_growth_by_child_visible_to_read);
	tcase_add_test(tc, test_growth_by_child_visible_to_readat);
	tcase_add_test(tc, test_reopen_sees_same_data);
	suite_add_tcase(s, tc);

	tc = tu_tcase("interleaved", 60);
	tcase_add_test(tc, test_every_record_length_matches_fd);
	tcase_add_test(tc, test_interleaved_rdwr_matches_fd);
	tcase_add_test(tc, test_interleaved_append_matches_fd);
	tcase_add_test(tc, test_interleaved_dsync_matches_fd);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
