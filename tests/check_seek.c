/* check_seek.c - mmapfile_seek and mmapfile_truncate.
 *
 * Every test drives a twin: a handle on one file and a plain descriptor,
 * opened with the same flags, on a second file with the same contents.  Each
 * operation is done on both and the results (return value, errno, cursor,
 * size, contents, and the bytes on disk after sync/close) must agree. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static off_t page(void)
{
	return (off_t)sysconf(_SC_PAGESIZE);
}

struct twin {
	mmapfile_t *m;
	int fd;
	int flags;
	char pm[PATH_MAX], pf[PATH_MAX];
};

/* Both files get data[0..n); both are opened with flags. */
static void twin_open(struct twin *t, const void *data, size_t n, int flags)
{
	snprintf(t->pm, sizeof t->pm, "%s/handle", tu_dir());
	snprintf(t->pf, sizeof t->pf, "%s/oracle", tu_dir());
	tu_write_file(t->pm, data, n);
	tu_write_file(t->pf, data, n);
	t->flags = flags;
	t->m = mmapfile_open(t->pm, flags, 0);
	ck_assert_msg(t->m != NULL, "mmapfile_open(%#x): %s", flags, strerror(errno));
	t->fd = open(t->pf, flags | O_CLOEXEC);
	ck_assert_msg(t->fd >= 0, "open oracle: %s", strerror(errno));
}

static void twin_open_random(struct twin *t, size_t n, uint64_t seed, int flags)
{
	unsigned char *d = tu_random_bytes(n, seed);
	twin_open(t, d, n, flags);
	free(d);
}

static off_t twin_seek_(struct twin *t, off_t off, int whence, int line)
{
	errno = 0;
	off_t a = mmapfile_seek(t->m, off, whence);
	int ea = errno;
	errno = 0;
	off_t b = lseek(t->fd, off, whence);
	int eb = errno;
	ck_assert_msg(a == b, "line %d: seek(%lld, %d) = %lld, lseek = %lld (%s)", line, (long long)off, whence,
		      (long long)a, (long long)b, b < 0 ? strerror(eb) : "ok");
	if (b < 0)
		ck_assert_msg(ea == eb, "line %d: seek(%lld, %d): errno %s, lseek %s", line, (long long)off,
			      whence, strerror(ea), strerror(eb));
	return a;
}
#define twin_seek(t, off, whence) twin_seek_((t), (off), (whence), __LINE__)

static int twin_truncate_(struct twin *t, off_t size, int line)
{
	errno = 0;
	int a = mmapfile_truncate(t->m, size);
	int ea = errno;
	errno = 0;
	int b = ftruncate(t->fd, size);
	int eb = errno;
	ck_assert_msg(a == b, "line %d: truncate(%lld) = %d (%s), ftruncate = %d (%s)", line, (long long)size, a,
		      strerror(ea), b, strerror(eb));
	if (b < 0)
		ck_assert_msg(ea == eb, "line %d: truncate(%lld): errno %s, ftruncate %s", line, (long long)size,
			      strerror(ea), strerror(eb));
	return a;
}
#define twin_truncate(t, size) twin_truncate_((t), (size), __LINE__)

static ssize_t twin_write_(struct twin *t, const void *buf, size_t n, int line)
{
	errno = 0;
	ssize_t a = mmapfile_write(t->m, buf, n);
	int ea = errno;
	errno = 0;
	ssize_t b = write(t->fd, buf, n);
	int eb = errno;
	ck_assert_msg(a == b, "line %d: write(%zu) = %zd (%s), write(2) = %zd", line, n, a, strerror(ea), b);
	if (b < 0)
		ck_assert_msg(ea == eb, "line %d: write errno %s vs %s", line, strerror(ea), strerror(eb));
	return a;
}
#define twin_write(t, buf, n) twin_write_((t), (buf), (n), __LINE__)

static ssize_t twin_writeat_(struct twin *t, const void *buf, size_t n, off_t off, int line)
{
	errno = 0;
	ssize_t a = mmapfile_writeat(t->m, buf, n, off);
	int ea = errno;
	errno = 0;
	ssize_t b = pwrite(t->fd, buf, n, off);
	int eb = errno;
	ck_assert_msg(a == b, "line %d: writeat(%zu, %lld) = %zd (%s), pwrite = %zd", line, n, (long long)off, a,
		      strerror(ea), b);
	if (b < 0)
		ck_assert_msg(ea == eb, "line %d: writeat errno %s vs %s", line, strerror(ea), strerror(eb));
	return a;
}
#define twin_writeat(t, buf, n, off) twin_writeat_((t), (buf), (n), (off), __LINE__)

static ssize_t twin_read_(struct twin *t, size_t n, int line)
{
	unsigned char *a = malloc(n + 1), *b = malloc(n + 1);
	ck_assert(a && b);
	errno = 0;
	ssize_t ra = mmapfile_read(t->m, a, n);
	int ea = errno;
	errno = 0;
	ssize_t rb = read(t->fd, b, n);
	int eb = errno;
	ck_assert_msg(ra == rb, "line %d: read(%zu) = %zd (%s), read(2) = %zd", line, n, ra, strerror(ea), rb);
	if (rb < 0)
		ck_assert_msg(ea == eb, "line %d: read errno %s vs %s", line, strerror(ea), strerror(eb));
	else
		ck_assert_msg(memcmp(a, b, (size_t)rb) == 0, "line %d: read(%zu) returned other bytes", line, n);
	free(a);
	free(b);
	return ra;
}
#define twin_read(t, n) twin_read_((t), (n), __LINE__)

static ssize_t twin_readat_(struct twin *t, size_t n, off_t off, int line)
{
	unsigned char *a = malloc(n + 1), *b = malloc(n + 1);
	ck_assert(a && b);
	errno = 0;
	ssize_t ra = mmapfile_readat(t->m, a, n, off);
	int ea = errno;
	errno = 0;
	ssize_t rb = pread(t->fd, b, n, off);
	int eb = errno;
	ck_assert_msg(ra == rb, "line %d: readat(%zu, %lld) = %zd (%s), pread = %zd", line, n, (long long)off, ra,
		      strerror(ea), rb);
	if (rb < 0)
		ck_assert_msg(ea == eb, "line %d: readat errno %s vs %s", line, strerror(ea), strerror(eb));
	else
		ck_assert_msg(memcmp(a, b, (size_t)rb) == 0, "line %d: readat returned other bytes", line);
	free(a);
	free(b);
	return ra;
}
#define twin_readat(t, n, off) twin_readat_((t), (n), (off), __LINE__)

static off_t oracle_size(struct twin *t)
{
	struct stat st;
	ck_assert_int_eq(fstat(t->fd, &st), 0);
	return st.st_size;
}

/* Size, cursor and (when the handle can read) every byte agree. */
static void twin_check_(struct twin *t, int line)
{
	off_t size = oracle_size(t);
	ck_assert_msg(mmapfile_size(t->m) == size, "line %d: size %lld, oracle %lld", line,
		      (long long)mmapfile_size(t->m), (long long)size);
	off_t ca = mmapfile_seek(t->m, 0, SEEK_CUR);
	off_t cb = lseek(t->fd, 0, SEEK_CUR);
	ck_assert_msg(ca == cb, "line %d: cursor %lld, oracle %lld", line, (long long)ca, (long long)cb);
	if ((t->flags & O_ACCMODE) == O_WRONLY)
		return;
	size_t n = (size_t)size;
	unsigned char *a = malloc(n + 1), *b = malloc(n + 1);
	ck_assert(a && b);
	ck_assert_msg(mmapfile_readat(t->m, a, n + 1, 0) == (ssize_t)n, "line %d: readat of the whole file", line);
	ck_assert_int_eq(pread(t->fd, b, n + 1, 0), (ssize_t)n);
	/* Check's assertions are costly when they pass: find the byte first. */
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			ck_abort_msg("line %d: byte %zu is %#x, oracle %#x", line, i, a[i], b[i]);
	free(a);
	free(b);
}
#define twin_check(t) twin_check_((t), __LINE__)

static void assert_same_file_(const char *x, const char *y, int line)
{
	size_t nx, ny;
	unsigned char *dx = tu_read_file(x, &nx);
	unsigned char *dy = tu_read_file(y, &ny);
	ck_assert_msg(nx == ny, "line %d: on disk %zu bytes, oracle %zu", line, nx, ny);
	for (size_t i = 0; i < nx; i++)
		if (dx[i] != dy[i])
			ck_abort_msg("line %d: on disk byte %zu is %#x, oracle %#x", line, i, dx[i], dy[i]);
	free(dx);
	free(dy);
}

/* After sync the file on disk is exactly the oracle's. */
static void twin_sync_check_(struct twin *t, int line)
{
	ck_assert_msg(mmapfile_sync(t->m) == 0, "line %d: sync: %s", line, strerror(errno));
	assert_same_file_(t->pm, t->pf, line);
}
#define twin_sync_check(t) twin_sync_check_((t), __LINE__)

static void twin_close_check_(struct twin *t, int line)
{
	ck_assert_msg(mmapfile_close(t->m) == 0, "line %d: close: %s", line, strerror(errno));
	ck_assert_int_eq(close(t->fd), 0);
	t->m = NULL;
	t->fd = -1;
	assert_same_file_(t->pm, t->pf, line);
}
#define twin_close_check(t) twin_close_check_((t), __LINE__)

static off_t cursor(mmapfile_t *m)
{
	return mmapfile_seek(m, 0, SEEK_CUR);
}

static void assert_zeros(mmapfile_t *m, off_t from, off_t to)
{
	unsigned char buf[4096];
	for (off_t off = from; off < to;) {
		size_t k = (size_t)(to - off) < sizeof buf ? (size_t)(to - off) : sizeof buf;
		ck_assert_int_eq(mmapfile_readat(m, buf, k, off), (ssize_t)k);
		for (size_t i = 0; i < k; i++)
			if (buf[i] != 0)
				ck_abort_msg("byte %lld is %#x, expected 0", (long long)(off + (off_t)i), buf[i]);
		off += (off_t)k;
	}
}

/* ================================================================== */
/* seek                                                                */

START_TEST(test_seek_set)
{
	struct twin t;
	off_t size = 3 * page() + 17;
	twin_open_random(&t, (size_t)size, 1, O_RDWR);
	const off_t offs[] = {0, 1, page() - 1, page(), page() + 1, size - 1, size, size + 1, 10 * page(),
			      (off_t)1 << 33, 5, 0};
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		ck_assert_int_eq(twin_seek(&t, offs[i], SEEK_SET), offs[i]);
		twin_read(&t, 50);
		twin_check(&t);
	}
	twin_close_check(&t);
}
END_TEST

START_TEST(test_seek_cur)
{
	struct twin t;
	off_t size = 3 * page() + 17;
	twin_open_random(&t, (size_t)size, 2, O_RDWR);
	const off_t deltas[] = {0, 10, -5, 0, page(), -(page() / 2), 2 * size, -(2 * size), 1, -1, size, 0};
	for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
		off_t before = cursor(t.m);
		ck_assert_int_eq(twin_seek(&t, deltas[i], SEEK_CUR), before + deltas[i]);
		twin_read(&t, 33);
		twin_check(&t);
	}
	twin_close_check(&t);
}
END_TEST

START_TEST(test_seek_end)
{
	const off_t sizes[] = {0, 1, page(), 3 * page() + 17};
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		struct twin t;
		off_t size = sizes[s];
		twin_open_random(&t, (size_t)size, 3 + s, O_RDWR);
		const off_t offs[] = {0, -1, -size, 1, page(), -page(), -(size / 2), 0};
		for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
			if (size + offs[i] < 0)
				continue;
			ck_assert_int_eq(twin_seek(&t, offs[i], SEEK_END), size + offs[i]);
			twin_read(&t, 20);
			twin_check(&t);
		}
		twin_close_check(&t);
	}
}
END_TEST

/* Seeking past the end and writing leaves a zero gap, for each whence. */
START_TEST(test_seek_past_end_write_gap)
{
	const off_t gaps[] = {1, page() - 3, page(), 3 * page() + 5, 200000};
	unsigned char w[100];
	tu_fill(w, sizeof w, 9);
	for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
		static const int whences[] = {SEEK_SET, SEEK_CUR, SEEK_END};
		for (size_t k = 0; k < 3; k++) {
			struct twin t;
			off_t size = page() + 3;
			twin_open_random(&t, (size_t)size, 10 + g, O_RDWR);
			twin_seek(&t, 7, SEEK_SET);
			off_t off = whences[k] == SEEK_SET ? size + gaps[g]
				  : whences[k] == SEEK_CUR ? size + gaps[g] - 7
							   : gaps[g];
			ck_assert_int_eq(twin_seek(&t, off, whences[k]), size + gaps[g]);
			/* Nothing grows until the write. */
			ck_assert_int_eq(mmapfile_size(t.m), size);
			ck_assert_int_eq(twin_write(&t, w, sizeof w), (ssize_t)sizeof w);
			ck_assert_int_eq(mmapfile_size(t.m), size + gaps[g] + (off_t)sizeof w);
			assert_zeros(t.m, size, size + gaps[g]);
			twin_check(&t);
			twin_close_check(&t);
		}
	}
}
END_TEST

/* A seek whose result would be negative: EINVAL, cursor unchanged. */
START_TEST(test_seek_negative_result)
{
	struct twin t;
	off_t size = 2 * page() + 1;
	twin_open_random(&t, (size_t)size, 4, O_RDWR);
	ck_assert_int_eq(twin_seek(&t, 1000, SEEK_SET), 1000);
	const struct { off_t off; int whence; } bad[] = {
		{-1, SEEK_SET}, {-page(), SEEK_SET}, {INT64_MIN, SEEK_SET},
		{-1001, SEEK_CUR}, {-2 * size, SEEK_CUR}, {INT64_MIN, SEEK_CUR},
		{-(size + 1), SEEK_END}, {INT64_MIN, SEEK_END},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		off_t r = twin_seek(&t, bad[i].off, bad[i].whence);
		ck_assert_msg(r == -1 && errno == EINVAL, "seek(%lld, %d): %lld, %s", (long long)bad[i].off,
			      bad[i].whence, (long long)r, strerror(errno));
		ck_assert_int_eq(cursor(t.m), 1000);
		twin_check(&t);
	}
	/* The edges that are fine: exactly 0. */
	ck_assert_int_eq(twin_seek(&t, -1000, SEEK_CUR), 0);
	ck_assert_int_eq(twin_seek(&t, -size, SEEK_END), 0);
	twin_read(&t, 10);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

START_TEST(test_seek_invalid_whence)
{
	struct twin t;
	twin_open_random(&t, 5000, 5, O_RDWR);
	ck_assert_int_eq(twin_seek(&t, 123, SEEK_SET), 123);
	const int bad[] = {SEEK_DATA, SEEK_HOLE, 42, -1, 5, INT_MAX, INT_MIN};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const off_t offs[] = {0, 10, 6000};
		for (size_t k = 0; k < 3; k++) {
			errno = 0;
			off_t r = mmapfile_seek(t.m, offs[k], bad[i]);
			ck_assert_msg(r == -1 && errno == EINVAL, "whence %d off %lld: %lld, %s", bad[i],
				      (long long)offs[k], (long long)r, strerror(errno));
			ck_assert_int_eq(cursor(t.m), 123);
		}
	}
	twin_read(&t, 10);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

/* offset + cursor (or size) past the largest off_t: EINVAL, as lseek. */
START_TEST(test_seek_overflow)
{
	struct twin t;
	twin_open_random(&t, 5000, 6, O_RDWR);
	ck_assert_int_eq(twin_seek(&t, 100, SEEK_SET), 100);
	const struct { off_t off; int whence; } bad[] = {
		{INT64_MAX, SEEK_CUR}, {INT64_MAX - 50, SEEK_CUR}, {INT64_MAX, SEEK_END},
		{INT64_MAX - 4999, SEEK_END},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		off_t r = mmapfile_seek(t.m, bad[i].off, bad[i].whence);
		ck_assert_msg(r == -1 && errno == EINVAL, "seek(%lld, %d): %lld, %s", (long long)bad[i].off,
			      bad[i].whence, (long long)r, strerror(errno));
		ck_assert_int_eq(cursor(t.m), 100);
		/* The oracle agrees. */
		errno = 0;
		ck_assert_int_eq(lseek(t.fd, bad[i].off, bad[i].whence), -1);
		ck_assert_int_eq(errno, EINVAL);
	}
	/* Past the largest offset the file system allows: as lseek says (EINVAL
	 * on most), and a failure leaves the cursor alone. */
	const off_t far[] = {INT64_MAX, (off_t)1 << 62, INT64_MAX - 100};
	for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
		ck_assert_int_eq(twin_seek(&t, 100, SEEK_SET), 100);
		if (twin_seek(&t, far[i], SEEK_SET) < 0)
			ck_assert_int_eq(cursor(t.m), 100);
		ck_assert_int_eq(twin_seek(&t, 100, SEEK_SET), 100);
		if (twin_seek(&t, far[i] - 100, SEEK_CUR) < 0)
			ck_assert_int_eq(cursor(t.m), 100);
		twin_check(&t);
	}
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

/* Seek works on read-only and write-only handles. */
START_TEST(test_seek_access_modes)
{
	unsigned char w[300];
	tu_fill(w, sizeof w, 7);
	struct twin t;
	twin_open_random(&t, 10000, 8, O_RDONLY);
	ck_assert_int_eq(twin_seek(&t, 4000, SEEK_SET), 4000);
	twin_read(&t, 500);
	ck_assert_int_eq(twin_seek(&t, -100, SEEK_END), 9900);
	twin_read(&t, 500);
	ck_assert_int_eq(twin_seek(&t, -5000, SEEK_CUR), 5000);
	twin_read(&t, 10);
	twin_check(&t);
	twin_close_check(&t);

	twin_open_random(&t, 10000, 8, O_WRONLY);
	ck_assert_int_eq(twin_seek(&t, 4000, SEEK_SET), 4000);
	twin_write(&t, w, sizeof w);
	ck_assert_int_eq(twin_seek(&t, 100, SEEK_END), 10100);
	twin_write(&t, w, sizeof w);
	ck_assert_int_eq(twin_seek(&t, -20000, SEEK_CUR), -1);
	ck_assert_int_eq(twin_seek(&t, -10000, SEEK_CUR), 400);
	twin_write(&t, w, 10);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

/* O_APPEND: a write goes to the end whatever the seek, and leaves the cursor
 * there, as on a descriptor opened O_APPEND. */
START_TEST(test_seek_append)
{
	unsigned char w[50];
	tu_fill(w, sizeof w, 12);
	struct twin t;
	twin_open_random(&t, 3000, 11, O_RDWR | O_APPEND);
	ck_assert_int_eq(twin_seek(&t, 0, SEEK_CUR), 0);
	ck_assert_int_eq(twin_seek(&t, 5, SEEK_SET), 5);
	twin_write(&t, w, sizeof w);
	ck_assert_int_eq(cursor(t.m), 3050);
	twin_check(&t);
	ck_assert_int_eq(twin_seek(&t, 10000, SEEK_SET), 10000);
	twin_write(&t, w, sizeof w);
	ck_assert_int_eq(cursor(t.m), 3100);
	ck_assert_int_eq(twin_seek(&t, 10, SEEK_SET), 10);
	twin_read(&t, 40);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

START_TEST(test_seek_empty_file)
{
	struct twin t;
	twin_open(&t, "", 0, O_RDWR);
	ck_assert_int_eq(twin_seek(&t, 0, SEEK_END), 0);
	ck_assert_int_eq(twin_seek(&t, 0, SEEK_CUR), 0);
	ck_assert_int_eq(twin_seek(&t, -1, SEEK_END), -1);
	ck_assert_int_eq(twin_seek(&t, -1, SEEK_CUR), -1);
	ck_assert_int_eq(twin_seek(&t, 100, SEEK_SET), 100);
	ck_assert_int_eq(twin_read(&t, 10), 0);
	ck_assert_int_eq(mmapfile_size(t.m), 0);
	ck_assert_int_eq(twin_write(&t, "tail", 4), 4);
	ck_assert_int_eq(twin_seek(&t, 0, SEEK_END), 104);
	assert_zeros(t.m, 0, 100);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

/* SEEK_END asks the file: growth by another descriptor is seen. */
START_TEST(test_seek_end_sees_external_growth)
{
	static const int modes[] = {O_RDONLY, O_RDWR};
	for (size_t k = 0; k < 2; k++) {
		const char *p = tu_path("f");
		unsigned char *data = tu_random_bytes(3000, 13);
		tu_write_file(p, data, 3000);
		mmapfile_t *m = mmapfile_open(p, modes[k], 0);
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(mmapfile_seek(m, 0, SEEK_END), 3000);

		/* Append with a plain descriptor. */
		int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		unsigned char more[5000];
		tu_fill(more, sizeof more, 14);
		ck_assert_int_eq(write(fd, more, sizeof more), (ssize_t)sizeof more);
		ck_assert_int_eq(mmapfile_seek(m, 0, SEEK_END), tu_file_size(p));
		ck_assert_int_eq(mmapfile_seek(m, 0, SEEK_END), 8000);
		ck_assert_int_eq(mmapfile_size(m), 8000);
		/* And the new bytes read back. */
		unsigned char got[5000];
		ck_assert_int_eq(mmapfile_seek(m, -5000, SEEK_END), 3000);
		ck_assert_int_eq(mmapfile_read(m, got, sizeof got), (ssize_t)sizeof got);
		ck_assert_mem_eq(got, more, sizeof more);

		/* Growth by ftruncate, past a page boundary. */
		ck_assert_int_eq(ftruncate(fd, 3 * page() + 1), 0);
		ck_assert_int_eq(mmapfile_seek(m, -1, SEEK_END), 3 * page());
		ck_assert_int_eq(mmapfile_read(m, got, 10), 1);
		ck_assert_int_eq(got[0], 0);
		close(fd);
		ck_assert_int_eq(mmapfile_close(m), 0);
		ck_assert_int_eq(tu_file_size(p), 3 * page() + 1);
		free(data);
	}
}
END_TEST

/* A handle that wrote (and so may hold a reserve) sees another descriptor's
 * append after its own sync trimmed the file to size. */
START_TEST(test_seek_end_external_growth_after_sync)
{
	const char *p = tu_path("f");
	mmapfile_t *m = mmapfile_create(p, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(m);
	unsigned char buf[1000];
	tu_fill(buf, sizeof buf, 15);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(mmapfile_write(m, buf, sizeof buf), (ssize_t)sizeof buf);
	/* The reserve the appends made is not part of the file. */
	ck_assert_int_eq(mmapfile_seek(m, 0, SEEK_END), 20000);
	ck_assert_int_eq(mmapfile_size(m), 20000);
	ck_assert_int_eq(mmapfile_read(m, buf, sizeof buf), 0);
	ck_assert_int_eq(mmapfile_sync(m), 0);
	ck_assert_int_eq(tu_file_size(p), 20000);
	int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "external", 8), 8);
	close(fd);
	ck_assert_int_eq(mmapfile_seek(m, 0, SEEK_END), 20008);
	char b[8];
	ck_assert_int_eq(mmapfile_readat(m, b, 8, 20000), 8);
	ck_assert_mem_eq(b, "external", 8);
	ck_assert_int_eq(mmapfile_close(m), 0);
	ck_assert_int_eq(tu_file_size(p), 20008);
}
END_TEST

/* ================================================================== */
/* truncate                                                            */

START_TEST(test_truncate_up)
{
	const off_t targets[] = {1001, page(), 3 * page() + 1, 1 << 20};
	for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
		struct twin t;
		twin_open_random(&t, 1000, 20 + i, O_RDWR);
		ck_assert_int_eq(twin_truncate(&t, targets[i]), 0);
		ck_assert_int_eq(mmapfile_size(t.m), targets[i]);
		assert_zeros(t.m, 1000, targets[i]);
		twin_check(&t);
		twin_sync_check(&t);
		twin_close_check(&t);
	}
}
END_TEST

/* Shrinking drops the tail: growing again reads zeros, not the old bytes. */
START_TEST(test_truncate_down_regrow)
{
	off_t size = 3 * page() + 100;
	const off_t cuts[] = {100, page(), page() - 1, 2 * page() + 1};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		struct twin t;
		twin_open_random(&t, (size_t)size, 30 + i, O_RDWR);
		ck_assert_int_eq(twin_truncate(&t, cuts[i]), 0);
		ck_assert_int_eq(mmapfile_size(t.m), cuts[i]);
		ck_assert_int_eq(twin_readat(&t, 100, cuts[i]), 0);
		twin_check(&t);
		ck_assert_int_eq(twin_truncate(&t, size), 0);
		assert_zeros(t.m, cuts[i], size);
		twin_check(&t);
		twin_close_check(&t);
	}
}
END_TEST

/* The same after many appends (the handle surely holds a reserve). */
START_TEST(test_truncate_after_appends)
{
	struct twin t;
	twin_open(&t, "", 0, O_RDWR);
	unsigned char buf[100];
	for (int i = 0; i < 1000; i++) {
		tu_fill(buf, sizeof buf, (uint64_t)i);
		twin_write(&t, buf, sizeof buf);
	}
	ck_assert_int_eq(twin_truncate(&t, 50001), 0);
	twin_check(&t);
	ck_assert_int_eq(twin_truncate(&t, 120000), 0);
	assert_zeros(t.m, 50001, 120000);
	twin_check(&t);
	twin_sync_check(&t);
	ck_assert_int_eq(twin_seek(&t, 0, SEEK_END), 120000);
	for (int i = 0; i < 300; i++)
		twin_write(&t, buf, sizeof buf);
	ck_assert_int_eq(twin_truncate(&t, 130000), 0);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

START_TEST(test_truncate_zero)
{
	struct twin t;
	twin_open_random(&t, 3 * (size_t)page(), 40, O_RDWR);
	ck_assert_int_eq(twin_seek(&t, 50, SEEK_SET), 50);
	ck_assert_int_eq(twin_truncate(&t, 0), 0);
	ck_assert_int_eq(mmapfile_size(t.m), 0);
	ck_assert_int_eq(twin_read(&t, 10), 0);
	ck_assert_int_eq(twin_readat(&t, 10, 0), 0);
	twin_check(&t);
	twin_sync_check(&t);
	ck_assert_int_eq(tu_file_size(t.pm), 0);
	/* Writing at the unchanged cursor leaves a gap of zeros. */
	twin_write(&t, "after", 5);
	ck_assert_int_eq(mmapfile_size(t.m), 55);
	assert_zeros(t.m, 0, 50);
	twin_check(&t);
	/* Truncating an empty file to 0 is fine too. */
	ck_assert_int_eq(twin_truncate(&t, 0), 0);
	ck_assert_int_eq(twin_truncate(&t, 0), 0);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

START_TEST(test_truncate_same_size)
{
	const size_t sizes[] = {0, 1, (size_t)page(), 5000};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		struct twin t;
		twin_open_random(&t, sizes[i], 41 + i, O_RDWR);
		twin_seek(&t, 3, SEEK_SET);
		ck_assert_int_eq(twin_truncate(&t, (off_t)sizes[i]), 0);
		ck_assert_int_eq(mmapfile_size(t.m), (off_t)sizes[i]);
		twin_check(&t);
		twin_close_check(&t);
	}
}
END_TEST

START_TEST(test_truncate_keeps_cursor)
{
	struct twin t;
	twin_open_random(&t, 20000, 42, O_RDWR);
	ck_assert_int_eq(twin_seek(&t, 7777, SEEK_SET), 7777);
	const off_t sizes[] = {30000, 8000, 7777, 7000, 0, 100000, 7778};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		ck_assert_int_eq(twin_truncate(&t, sizes[i]), 0);
		ck_assert_int_eq(cursor(t.m), 7777);
		twin_check(&t);
	}
	twin_read(&t, 10);
	ck_assert_int_eq(cursor(t.m), 7778);
	twin_close_check(&t);
}
END_TEST

/* Truncating below the cursor: reads return 0, a write lands at the cursor
 * and leaves a zero gap. */
START_TEST(test_truncate_below_cursor)
{
	struct twin t;
	twin_open_random(&t, 8000, 43, O_RDWR);
	ck_assert_int_eq(twin_seek(&t, 5000, SEEK_SET), 5000);
	ck_assert_int_eq(twin_truncate(&t, 1000), 0);
	ck_assert_int_eq(twin_read(&t, 100), 0);
	ck_assert_int_eq(cursor(t.m), 5000);
	ck_assert_int_eq(twin_readat(&t, 100, 4990), 0);
	ck_assert_int_eq(twin_readat(&t, 100, 990), 10);
	twin_write(&t, "abc", 3);
	ck_assert_int_eq(mmapfile_size(t.m), 5003);
	assert_zeros(t.m, 1000, 5000);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

START_TEST(test_truncate_rdonly)
{
	struct twin t;
	twin_open_random(&t, 5000, 44, O_RDONLY);
	const off_t sizes[] = {0, 100, 5000, 10000, -1};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		errno = 0;
		ck_assert_int_eq(twin_truncate(&t, sizes[i]), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(mmapfile_size(t.m), 5000);
	}
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

START_TEST(test_truncate_negative)
{
	struct twin t;
	twin_open_random(&t, 5000, 45, O_RDWR);
	twin_seek(&t, 10, SEEK_SET);
	const off_t bad[] = {-1, -page(), INT64_MIN};
	for (size_t i = 0; i < 3; i++) {
		errno = 0;
		ck_assert_int_eq(twin_truncate(&t, bad[i]), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(mmapfile_size(t.m), 5000);
	}
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

/* Sizes around page boundaries, rewriting the whole file in between so that
 * every shrink drops real bytes and every growth must read zeros. */
START_TEST(test_truncate_page_boundaries)
{
	off_t p = page();
	const off_t sizes[] = {p - 1, p, p + 1, 2 * p - 1, 2 * p, 2 * p + 1, 1, 0, p, 3 * p + 17,
			       p - 1, 4 * p, 2 * p + 1, p + 1, p};
	struct twin t;
	twin_open_random(&t, (size_t)p, 46, O_RDWR);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		off_t before = mmapfile_size(t.m);
		ck_assert_int_eq(twin_truncate(&t, sizes[i]), 0);
		if (sizes[i] > before)
			assert_zeros(t.m, before, sizes[i]);
		twin_check(&t);
		unsigned char *d = tu_random_bytes((size_t)sizes[i], 100 + i);
		twin_writeat(&t, d, (size_t)sizes[i], 0);
		free(d);
		twin_check(&t);
	}
	twin_sync_check(&t);
	twin_close_check(&t);
}
END_TEST

START_TEST(test_truncate_then_write)
{
	unsigned char w[3000];
	tu_fill(w, sizeof w, 47);
	struct twin t;
	twin_open_random(&t, 10000, 48, O_RDWR);
	/* Shrink, then write at the end. */
	ck_assert_int_eq(twin_truncate(&t, 4000), 0);
	ck_assert_int_eq(twin_seek(&t, 0, SEEK_END), 4000);
	twin_write(&t, w, sizeof w);
	ck_assert_int_eq(mmapfile_size(t.m), 7000);
	twin_check(&t);
	/* Grow, then write in the middle of the new zeros. */
	ck_assert_int_eq(twin_truncate(&t, 20000), 0);
	ck_assert_int_eq(twin_seek(&t, 12000, SEEK_SET), 12000);
	twin_write(&t, w, 500);
	assert_zeros(t.m, 7000, 12000);
	assert_zeros(t.m, 12500, 20000);
	twin_check(&t);
	/* Shrink into the middle of a write, then writeat across the new end. */
	ck_assert_int_eq(twin_truncate(&t, 12250), 0);
	twin_writeat(&t, w, 1000, 12000);
	twin_check(&t);
	twin_sync_check(&t);
	twin_close_check(&t);
}
END_TEST

START_TEST(test_truncate_wronly)
{
	unsigned char w[2000];
	tu_fill(w, sizeof w, 49);
	struct twin t;
	twin_open_random(&t, 9000, 50, O_WRONLY);
	ck_assert_int_eq(twin_truncate(&t, 3000), 0);
	ck_assert_int_eq(mmapfile_size(t.m), 3000);
	ck_assert_int_eq(twin_truncate(&t, 3 * page()), 0);
	twin_seek(&t, 5000, SEEK_SET);
	twin_write(&t, w, sizeof w);
	ck_assert_int_eq(twin_truncate(&t, 6000), 0);
	twin_check(&t);
	twin_sync_check(&t);
	twin_close_check(&t);
}
END_TEST

/* O_APPEND: after a truncate, writes go to the new end. */
START_TEST(test_truncate_append)
{
	struct twin t;
	twin_open_random(&t, 9000, 51, O_RDWR | O_APPEND);
	ck_assert_int_eq(twin_truncate(&t, 2000), 0);
	twin_write(&t, "appended", 8);
	ck_assert_int_eq(mmapfile_size(t.m), 2008);
	ck_assert_int_eq(cursor(t.m), 2008);
	ck_assert_int_eq(twin_truncate(&t, 5000), 0);
	twin_write(&t, "again", 5);
	ck_assert_int_eq(mmapfile_size(t.m), 5005);
	assert_zeros(t.m, 2008, 5000);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

/* A size past what the file system allows: whatever ftruncate says (EFBIG on
 * most file systems), and the handle keeps working. */
START_TEST(test_truncate_too_big)
{
	struct twin t;
	twin_open_random(&t, 5000, 52, O_RDWR);
	errno = 0;
	if (ftruncate(t.fd, INT64_MAX) == 0) {
		printf("SKIPPED truncate past the file system's limit: %s takes a size of INT64_MAX\n", tu_dir());
		ck_assert_int_eq(ftruncate(t.fd, 5000), 0);
	} else {
		int e = errno;
		ck_assert_int_eq(e, EFBIG);
		errno = 0;
		ck_assert_int_eq(mmapfile_truncate(t.m, INT64_MAX), -1);
		ck_assert_msg(errno == e, "truncate(INT64_MAX): %s, ftruncate gives %s", strerror(errno),
			      strerror(e));
		ck_assert_int_eq(mmapfile_size(t.m), 5000);
	}
	twin_write(&t, "still fine", 10);
	twin_check(&t);
	twin_close_check(&t);
}
END_TEST

/* A random mix of seek, truncate, read, write, readat, writeat and sync,
 * each checked against the descriptor as it happens. */
START_TEST(test_random_ops)
{
	off_t p = page();
	size_t bufsize = 2 * (size_t)p + 1;
	unsigned char *buf = malloc(bufsize);
	ck_assert_ptr_nonnull(buf);
	for (uint64_t seed = 1; seed <= 4; seed++) {
		uint64_t rs = seed * 1000003;
		struct twin t;
		twin_open_random(&t, (size_t)(tu_rand(&rs) % (uint64_t)(3 * p)), seed, O_RDWR);
		for (int i = 0; i < 300; i++) {
			uint64_t r = tu_rand(&rs);
			off_t size = mmapfile_size(t.m);
			off_t a = (off_t)(tu_rand(&rs) % (uint64_t)(4 * p + 1));
			switch (r % 8) {
			case 0: {
				static const int wh[] = {SEEK_SET, SEEK_CUR, SEEK_END};
				off_t off = a - (off_t)(tu_rand(&rs) % (uint64_t)(2 * p)) - ((r >> 8) % 2 ? size : 0);
				twin_seek(&t, off, wh[(r >> 4) % 3]);
				break;
			}
			case 1:
				/* Sizes cluster around page boundaries. */
				if ((r >> 8) % 2)
					a = (a / p) * p + (off_t)((r >> 12) % 3) - 1;
				if ((r >> 16) % 16 == 0)
					a = -a - 1;
				twin_truncate(&t, a);
				break;
			case 2:
			case 3: {
				size_t n = (size_t)(tu_rand(&rs) % bufsize);
				tu_fill(buf, n, r);
				twin_write(&t, buf, n);
				break;
			}
			case 4:
				twin_read(&t, (size_t)(tu_rand(&rs) % bufsize));
				break;
			case 5: {
				size_t n = (size_t)(tu_rand(&rs) % (uint64_t)p);
				tu_fill(buf, n, r);
				twin_writeat(&t, buf, n, a);
				break;
			}
			case 6:
				twin_readat(&t, (size_t)(tu_rand(&rs) % bufsize), a);
				break;
			case 7:
				if ((r >> 8) % 4 == 0)
					twin_sync_check(&t);
				else
					twin_check(&t);
				break;
			}
		}
		twin_check(&t);
		twin_sync_check(&t);
		twin_close_check(&t);
	}
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("seek");
	TCase *tc;

	tc = tu_tcase("seek", 10);
	tcase_add_test(tc, test_seek_set);
	tcase_add_test(tc, test_seek_cur);
	tcase_add_test(tc, test_seek_end);
	tcase_add_test(tc, test_seek_past_end_write_gap);
	tcase_add_test(tc, test_seek_negative_result);
	tcase_add_test(tc, test_seek_invalid_whence);
	tcase_add_test(tc, test_seek_overflow);
	tcase_add_test(tc, test_seek_access_modes);
	tcase_add_test(tc, test_seek_append);
	tcase_add_test(tc, test_seek_empty_file);
	tcase_add_test(tc, test_seek_end_sees_external_growth);
	tcase_add_test(tc, test_seek_end_external_growth_after_sync);
	suite_add_tcase(s, tc);

	tc = tu_tcase("truncate", 10);
	tcase_add_test(tc, test_truncate_up);
	tcase_add_test(tc, test_truncate_down_regrow);
	tcase_add_test(tc, test_truncate_after_appends);
	tcase_add_test(tc, test_truncate_zero);
	tcase_add_test(tc, test_truncate_same_size);
	tcase_add_test(tc, test_truncate_keeps_cursor);
	tcase_add_test(tc, test_truncate_below_cursor);
	tcase_add_test(tc, test_truncate_rdonly);
	tcase_add_test(tc, test_truncate_negative);
	tcase_add_test(tc, test_truncate_page_boundaries);
	tcase_add_test(tc, test_truncate_then_write);
	tcase_add_test(tc, test_truncate_wronly);
	tcase_add_test(tc, test_truncate_append);
	tcase_add_test(tc, test_truncate_too_big);
	suite_add_tcase(s, tc);

	tc = tu_tcase("mixed", 20);
	tcase_add_test(tc, test_random_ops);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
