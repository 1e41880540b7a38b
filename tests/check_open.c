/* check_open.c - mmapfile_open, mmapfile_create, mmapfile_close,
 * mmapfile_name, mmapfile_fd and mmapfile_size.
 *
 * The oracle is a plain descriptor: open(2) with the same flags on the same
 * (or a twin) file, read(2)/write(2)/pread(2)/pwrite(2) doing the same work.
 * Checks that need an unprivileged user run in a forked child that drops to
 * uid/gid 65534 when the test runs as root. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>


static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* A path inside the fixture directory, in the caller's buffer (tu_path's
 * ring of 8 is too short for some tests). */
static const char *pathbuf(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tu_dir(), name);
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Read the handle from its cursor to the end with mmapfile_read, in odd-sized
 * chunks. */
static unsigned char *handle_read_all(mmapfile_t *m, size_t *n)
{
	size_t cap = 4096, got = 0;
	unsigned char *buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	for (;;) {
		if (cap - got < 777) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		ssize_t r = mmapfile_read(m, buf + got, 777);
		ck_assert_msg(r >= 0, "mmapfile_read: %s", strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*n = got;
	return buf;
}

static void assert_same_file(const char *a, const char *b)
{
	size_t na, nb;
	unsigned char *da = tu_read_file(a, &na);
	unsigned char *db = tu_read_file(b, &nb);
	ck_assert_msg(na == nb, "%s has %zu bytes, %s has %zu", a, na, b, nb);
	ck_assert_msg(memcmp(da, db, na) == 0, "%s and %s differ", a, b);
	free(da);
	free(db);
}

static void assert_zeros(const unsigned char *p, size_t n, const char *what)
{
	/* Check's assertions are costly when they pass: find the byte first. */
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			ck_abort_msg("%s: byte %zu is %#x, not 0", what, i, p[i]);
}

/* Expect mmapfile_open to fail exactly as open(2) does with the same flags
 * (and that open(2) does fail, with want). */
static void expect_open_errno_like_kernel(const char *path, int flags, mode_t mode, int want)
{
	errno = 0;
	int fd = open(path, flags | O_CLOEXEC, mode);
	int kerr = errno;
	if (fd >= 0)
		close(fd);
	ck_assert_msg(fd < 0 && kerr == want, "oracle open(%s, %#x) gave fd %d errno %s, expected %s",
		      path, flags, fd, strerror(kerr), strerror(want));
	errno = 0;
	mmapfile_t *m = mmapfile_open(path, flags, mode);
	int e = errno;
	if (m)
		mmapfile_close(m);
	ck_assert_msg(m == NULL, "mmapfile_open(%s, %#x) succeeded; open(2) fails with %s", path, flags,
		      strerror(kerr));
	ck_assert_msg(e == kerr, "mmapfile_open(%s, %#x): errno %s, open(2) gives %s", path, flags,
		      strerror(e), strerror(kerr));
}

static void expect_open_fails(const char *path, int flags, int want)
{
	errno = 0;
	mmapfile_t *m = mmapfile_open(path, flags, 0644);
	int e = errno;
	if (m)
		mmapfile_close(m);
	ck_assert_msg(m == NULL, "mmapfile_open(%s, %#x) succeeded, expected %s", path, flags, strerror(want));
	ck_assert_msg(e == want, "mmapfile_open(%s, %#x): errno %s, expected %s", path, flags, strerror(e),
		      strerror(want));
}

/* ================================================================== */
/* open: access modes                                                  */

/* Each access mode on an existing file: what reads, writes and truncate do
 * (including their errno) matches a plain descriptor opened the same way. */
START_TEST(test_open_access_modes)
{
	static const int modes[] = {O_RDONLY, O_WRONLY, O_RDWR};
	size_t n = 3 * page() + 11;
	unsigned char *data = tu_random_bytes(n, 1);
	char pm[PATH_MAX], pf[PATH_MAX];
	for (size_t i = 0; i < 3; i++) {
		int acc = modes[i];
		pathbuf(pm, sizeof pm, "m");
		pathbuf(pf, sizeof pf, "f");
		tu_write_file(pm, data, n);
		tu_write_file(pf, data, n);
		mmapfile_t *m = mmapfile_open(pm, acc, 0);
		ck_assert_msg(m != NULL, "mode %d: %s", acc, strerror(errno));
		int fd = open(pf, acc | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(mmapfile_size(m), (off_t)n);

		unsigned char b1[100], b2[100];
		errno = 0;
		ssize_t r1 = mmapfile_read(m, b1, sizeof b1);
		int e1 = errno;
		errno = 0;
		ssize_t r2 = read(fd, b2, sizeof b2);
		int e2 = errno;
		ck_assert_msg(r1 == r2, "mode %d: read gave %zd, read(2) %zd", acc, r1, r2);
		if (r2 < 0)
			ck_assert_msg(e1 == e2, "mode %d read: errno %s vs %s", acc, strerror(e1), strerror(e2));
		else
			ck_assert_mem_eq(b1, b2, (size_t)r2);

		errno = 0;
		r1 = mmapfile_readat(m, b1, sizeof b1, 1000);
		e1 = errno;
		errno = 0;
		r2 = pread(fd, b2, sizeof b2, 1000);
		e2 = errno;
		ck_assert_msg(r1 == r2, "mode %d: readat gave %zd, pread %zd", acc, r1, r2);
		if (r2 < 0)
			ck_assert_int_eq(e1, e2);
		else
			ck_assert_mem_eq(b1, b2, (size_t)r2);

		const char msg[] = "written through the handle";
		errno = 0;
		r1 = mmapfile_write(m, msg, sizeof msg);
		e1 = errno;
		errno = 0;
		r2 = write(fd, msg, sizeof msg);
		e2 = errno;
		ck_assert_msg(r1 == r2, "mode %d: write gave %zd, write(2) %zd", acc, r1, r2);
		if (r2 < 0)
			ck_assert_msg(e1 == e2, "mode %d write: errno %s vs %s", acc, strerror(e1), strerror(e2));

		errno = 0;
		r1 = mmapfile_writeat(m, msg, sizeof msg, (off_t)n + 50);
		e1 = errno;
		errno = 0;
		r2 = pwrite(fd, msg, sizeof msg, (off_t)n + 50);
		e2 = errno;
		ck_assert_msg(r1 == r2, "mode %d: writeat gave %zd, pwrite %zd", acc, r1, r2);
		if (r2 < 0)
			ck_assert_int_eq(e1, e2);

		errno = 0;
		int t1 = mmapfile_truncate(m, 5000);
		e1 = errno;
		errno = 0;
		int t2 = ftruncate(fd, 5000);
		e2 = errno;
		ck_assert_msg(t1 == t2, "mode %d: truncate gave %d, ftruncate %d", acc, t1, t2);
		if (t2 < 0)
			ck_assert_msg(e1 == e2, "mode %d truncate: errno %s vs %s", acc, strerror(e1), strerror(e2));

		struct stat st;
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_int_eq(mmapfile_size(m), st.st_size);
		ck_assert_int_eq(mmapfile_close(m), 0);
		close(fd);
		assert_same_file(pm, pf);
	}
	free(data);
}
END_TEST

/* Every accepted flag opens a regular file and the handle works. */
START_TEST(test_open_accepted_flags)
{
	static const struct { int flag; const char *name; } ok[] = {
		{0, "none"},
		{O_APPEND, "O_APPEND"},
		{O_CLOEXEC, "O_CLOEXEC"},
		{O_NOFOLLOW, "O_NOFOLLOW"},
		{O_NOATIME, "O_NOATIME"},
		{O_SYNC, "O_SYNC"},
		{O_DSYNC, "O_DSYNC"},
		{O_LARGEFILE, "O_LARGEFILE"},
		{O_CREAT, "O_CREAT"},
		{O_TRUNC, "O_TRUNC"},
		{O_APPEND | O_SYNC | O_NOATIME | O_CLOEXEC | O_NOFOLLOW, "combined"},
	};
	const char *pm = tu_path("m");
	const char *pf = tu_path("f");
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		tu_write_file(pm, "0123456789", 10);
		tu_write_file(pf, "0123456789", 10);
		mmapfile_t *m = mmapfile_open(pm, O_RDWR | ok[i].flag, 0644);
		ck_assert_msg(m != NULL, "%s: %s", ok[i].name, strerror(errno));
		int fd = open(pf, O_RDWR | ok[i].flag | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(mmapfile_write(m, "abc", 3), 3);
		ck_assert_int_eq(write(fd, "abc", 3), 3);
		ck_assert_int_eq(mmapfile_close(m), 0);
		close(fd);
		assert_same_file(pm, pf);
	}
}
END_TEST

/* ================================================================== */
/* open: O_CREAT, O_EXCL, ENOENT, O_TRUNC, O_NOFOLLOW                  */

START_TEST(test_open_creat)
{
	char pm[PATH_MAX], pf[PATH_MAX];
	pathbuf(pm, sizeof pm, "new");
	pathbuf(pf, sizeof pf, "twin");
	umask(022);
	mmapfile_t *m = mmapfile_open(pm, O_RDWR | O_CREAT, 0640);
	ck_assert_msg(m != NULL, "%s", strerror(errno));
	int fd = open(pf, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(mmapfile_size(m), 0);
	struct stat sm, sf;
	ck_assert_int_eq(stat(pm, &sm), 0);
	ck_assert_int_eq(fstat(fd, &sf), 0);
	ck_assert_msg(S_ISREG(sm.st_mode), "not a regular file");
	ck_assert_int_eq(sm.st_mode & 07777, sf.st_mode & 07777);
	ck_assert_int_eq(mmapfile_close(m), 0);
	close(fd);
	ck_assert_int_eq(tu_file_size(pm), 0);

	/* O_CREAT on an existing file opens it and keeps its contents. */
	tu_write_file(pm, "keep me", 7);
	m = mmapfile_open(pm, O_RDWR | O_CREAT, 0600);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(mmapfile_size(m), 7);
	char b[8] = {0};
	ck_assert_int_eq(mmapfile_read(m, b, 7), 7);
	ck_assert_str_eq(b, "keep me");
	ck_assert_int_eq(mmapfile_close(m), 0);
	ck_assert_int_eq(stat(pm, &sm), 0);
	ck_assert_int_eq(sm.st_mode & 07777, sf.st_mode & 07777);
}
END_TEST

START_TEST(test_open_excl)
{
	const char *p = tu_path("x");
	tu_write_file(p, "existing", 8);
	expect_open_errno_like_kernel(p, O_RDWR | O_CREAT | O_EXCL, 0644, EEXIST);
	expect_open_errno_like_kernel(p, O_RDONLY | O_CREAT | O_EXCL, 0644, EEXIST);
	size_t n;
	unsigned char *d = tu_read_file(p, &n);
	ck_assert_uint_eq(n, 8);
	ck_assert_mem_eq(d, "existing", 8);
	free(d);

	/* On a new path O_EXCL creates it. */
	const char *q = tu_path("y");
	mmapfile_t *m = mmapfile_open(q, O_RDWR | O_CREAT | O_EXCL, 0644);
	ck_assert_msg(m != NULL, "%s", strerror(errno));
	ck_assert(exists(q));
	ck_assert_int_eq(mmapfile_close(m), 0);

	/* O_EXCL refuses a symlink too, even a dangling one. */
	const char *l = tu_path("link");
	ck_assert_int_eq(symlink(tu_path("nowhere"), l), 0);
	expect_open_errno_like_kernel(l, O_RDWR | O_CREAT | O_EXCL, 0644, EEXIST);
	ck_assert(!exists(tu_path("nowhere")));
}
END_TEST

START_TEST(test_open_enoent)
{
	expect_open_errno_like_kernel(tu_path("missing"), O_RDONLY, 0, ENOENT);
	expect_open_errno_like_kernel(tu_path("missing"), O_RDWR, 0, ENOENT);
	expect_open_errno_like_kernel(tu_path("missing"), O_WRONLY | O_TRUNC, 0, ENOENT);
	ck_assert(!exists(tu_path("missing")));
	/* O_CREAT cannot create a missing directory component. */
	expect_open_errno_like_kernel(tu_path("nodir/file"), O_RDWR | O_CREAT, 0644, ENOENT);
	/* A regular file used as a directory. */
	tu_write_file(tu_path("plain"), "x", 1);
	expect_open_errno_like_kernel(tu_path("plain/file"), O_RDONLY, 0, ENOTDIR);
	/* The empty path. */
	expect_open_errno_like_kernel("", O_RDONLY, 0, ENOENT);
}
END_TEST

/* O_TRUNC empties the file as a plain descriptor does, for every access mode
 * (Linux truncates even with O_RDONLY). */
START_TEST(test_open_trunc)
{
	static const int modes[] = {O_RDONLY, O_WRONLY, O_RDWR};
	size_t n = 2 * page() + 3;
	unsigned char *data = tu_random_bytes(n, 2);
	char pm[PATH_MAX], pf[PATH_MAX];
	pathbuf(pm, sizeof pm, "m");
	pathbuf(pf, sizeof pf, "f");
	for (size_t i = 0; i < 3; i++) {
		tu_write_file(pm, data, n);
		tu_write_file(pf, data, n);
		mmapfile_t *m = mmapfile_open(pm, modes[i] | O_TRUNC, 0);
		ck_assert_msg(m != NULL, "mode %d: %s", modes[i], strerror(errno));
		int fd = open(pf, modes[i] | O_TRUNC | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		struct stat st;
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_int_eq(mmapfile_size(m), st.st_size);
		if (modes[i] != O_WRONLY) {
			char b[16];
			ck_assert_int_eq(mmapfile_read(m, b, sizeof b), read(fd, b, sizeof b));
		}
		ck_assert_int_eq(mmapfile_close(m), 0);
		close(fd);
		assert_same_file(pm, pf);
	}
	free(data);
}
END_TEST

START_TEST(test_open_nofollow)
{
	const char *target = tu_path("target");
	const char *link = tu_path("link");
	tu_write_file(target, "target contents", 15);
	ck_assert_int_eq(symlink(target, link), 0);
	expect_open_errno_like_kernel(link, O_RDONLY | O_NOFOLLOW, 0, ELOOP);
	expect_open_errno_like_kernel(link, O_RDWR | O_NOFOLLOW, 0, ELOOP);
	expect_open_errno_like_kernel(link, O_RDWR | O_CREAT | O_NOFOLLOW, 0644, ELOOP);
	expect_open_errno_like_kernel(link, O_WRONLY | O_TRUNC | O_NOFOLLOW, 0, ELOOP);
	ck_assert_int_eq(tu_file_size(target), 15);

	/* Without O_NOFOLLOW the link is followed; the name is the link's. */
	mmapfile_t *m = mmapfile_open(link, O_RDONLY, 0);
	ck_assert_msg(m != NULL, "%s", strerror(errno));
	ck_assert_int_eq(mmapfile_size(m), 15);
	char b[16] = {0};
	ck_assert_int_eq(mmapfile_read(m, b, 15), 15);
	ck_assert_str_eq(b, "target contents");
	ck_assert_str_eq(mmapfile_name(m), link);
	ck_assert_int_eq(mmapfile_close(m), 0);

	/* O_NOFOLLOW on a plain file is fine. */
	m = mmapfile_open(target, O_RDONLY | O_NOFOLLOW, 0);
	ck_assert_msg(m != NULL, "%s", strerror(errno));
	ck_assert_int_eq(mmapfile_close(m), 0);
}
END_TEST

/* ---- EACCES ---- */

struct eacces_arg {
	char secret[PATH_MAX];   /* mode 0000 */
	char readonly[PATH_MAX]; /* mode 0444 */
	char locked[PATH_MAX];   /* directory, mode 0555 */
};

static void child_eacces(void *p)
{
	struct eacces_arg *a = p;
	static const struct { int which; int flags; } cases[] = {
		{0, O_RDONLY}, {0, O_WRONLY}, {0, O_RDWR}, {0, O_RDWR | O_CREAT},
		{1, O_WRONLY}, {1, O_RDWR}, {1, O_RDWR | O_TRUNC}, {1, O_RDONLY | O_TRUNC},
		{2, O_RDWR | O_CREAT}, {2, O_WRONLY | O_CREAT | O_EXCL},
	};
	char inlocked[PATH_MAX + 8];
	snprintf(inlocked, sizeof inlocked, "%s/new", a->locked);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *path = cases[i].which == 0 ? a->secret : cases[i].which == 1 ? a->readonly : inlocked;
		errno = 0;
		int fd = open(path, cases[i].flags | O_CLOEXEC, 0644);
		int kerr = errno;
		TU_CCHECK(fd < 0 && kerr == EACCES, "oracle open(%s, %#x) as uid %d: fd %d, %s", path,
		       cases[i].flags, (int)geteuid(), fd, strerror(kerr));
		errno = 0;
		mmapfile_t *m = mmapfile_open(path, cases[i].flags, 0644);
		int e = errno;
		TU_CCHECK(m == NULL, "mmapfile_open(%s, %#x) succeeded as uid %d", path, cases[i].flags,
		       (int)geteuid());
		TU_CCHECK(e == EACCES, "mmapfile_open(%s, %#x): errno %s, expected EACCES", path, cases[i].flags,
		       strerror(e));
	}
	TU_CCHECK(access(inlocked, F_OK) != 0, "%s was created", inlocked);

	/* mmapfile_create is refused too. */
	errno = 0;
	mmapfile_t *m = mmapfile_create(a->readonly, 10, O_RDWR, 0644);
	int e = errno;
	TU_CCHECK(m == NULL && e == EACCES, "mmapfile_create on a 0444 file: %p, %s", (void *)m, strerror(e));

	/* The read-only file still opens read-only and reads. */
	m = mmapfile_open(a->readonly, O_RDONLY, 0);
	TU_CCHECK(m != NULL, "O_RDONLY on a 0444 file: %s", strerror(errno));
	char b[8] = {0};
	TU_CCHECK(mmapfile_read(m, b, 8) == 8 && memcmp(b, "readonly", 8) == 0, "reading the 0444 file");
	TU_CCHECK(mmapfile_close(m) == 0, "close: %s", strerror(errno));
}

START_TEST(test_open_eacces)
{
	struct eacces_arg a;
	ck_assert_int_eq(chmod(tu_dir(), 0711), 0);
	pathbuf(a.secret, sizeof a.secret, "secret");
	pathbuf(a.readonly, sizeof a.readonly, "readonly");
	pathbuf(a.locked, sizeof a.locked, "locked");
	tu_write_file(a.secret, "secret!!", 8);
	tu_write_file(a.readonly, "readonly", 8);
	ck_assert_int_eq(chmod(a.secret, 0), 0);
	ck_assert_int_eq(chmod(a.readonly, 0444), 0);
	ck_assert_int_eq(mkdir(a.locked, 0555), 0);
	ck_assert_int_eq(chmod(a.locked, 0555), 0);
	tu_run_unprivileged("EACCES checks", tu_dir(), X_OK, child_eacces, &a);
	/* Nothing was changed, whether or not the checks ran. */
	chmod(a.secret, 0600);
	chmod(a.readonly, 0644);
	size_t n;
	unsigned char *d = tu_read_file(a.readonly, &n);
	ck_assert_uint_eq(n, 8);
	ck_assert_mem_eq(d, "readonly", 8);
	free(d);
	chmod(a.locked, 0755);
}
END_TEST

/* ================================================================== */
/* open: rejected flags                                                */

static const struct { int flag; const char *name; } bad_flags[] = {
	{O_DIRECTORY, "O_DIRECTORY"},
	{O_NONBLOCK, "O_NONBLOCK"},
	{O_PATH, "O_PATH"},
	{O_TMPFILE, "O_TMPFILE"},
	{O_DIRECT, "O_DIRECT"},
	{O_ASYNC, "O_ASYNC"},
	{O_NOCTTY, "O_NOCTTY"},
	{1 << 28, "unknown bit 1<<28"},
};

START_TEST(test_open_unknown_flags)
{
	char p[PATH_MAX];
	pathbuf(p, sizeof p, "never");
	for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
		int fl = bad_flags[i].flag;
		static const int modes[] = {O_RDONLY, O_WRONLY, O_RDWR};
		for (size_t k = 0; k < 3; k++) {
			errno = 0;
			mmapfile_t *m = mmapfile_open(p, modes[k] | O_CREAT | fl, 0644);
			int e = errno;
			if (m)
				mmapfile_close(m);
			ck_assert_msg(m == NULL && e == EINVAL, "%s (mode %d): %p, errno %s", bad_flags[i].name,
				      modes[k], (void *)m, strerror(e));
			ck_assert_msg(!exists(p), "%s (mode %d): file created although rejected",
				      bad_flags[i].name, modes[k]);
		}
	}
	/* Access mode 3. */
	errno = 0;
	mmapfile_t *m = mmapfile_open(p, 3 | O_CREAT, 0644);
	int e = errno;
	ck_assert_msg(m == NULL && e == EINVAL, "access mode 3: %p, %s", (void *)m, strerror(e));
	ck_assert_msg(!exists(p), "access mode 3: file created");
	m = mmapfile_open(p, O_ACCMODE, 0644);
	ck_assert_msg(m == NULL && errno == EINVAL, "O_ACCMODE on a missing path: %p, %s", (void *)m,
		      strerror(errno));
}
END_TEST

/* Flags are checked before anything touches the file: a rejected open with
 * O_TRUNC leaves an existing file alone. */
START_TEST(test_open_unknown_flags_existing)
{
	const char *p = tu_path("existing");
	unsigned char *data = tu_random_bytes(5000, 3);
	tu_write_file(p, data, 5000);
	for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
		errno = 0;
		mmapfile_t *m = mmapfile_open(p, O_RDWR | O_TRUNC | bad_flags[i].flag, 0);
		int e = errno;
		if (m)
			mmapfile_close(m);
		ck_assert_msg(m == NULL && e == EINVAL, "%s: %p, errno %s", bad_flags[i].name, (void *)m,
			      strerror(e));
		size_t n;
		unsigned char *d = tu_read_file(p, &n);
		ck_assert_msg(n == 5000 && memcmp(d, data, n) == 0, "%s: file changed (%zu bytes)",
			      bad_flags[i].name, n);
		free(d);
	}
	expect_open_fails(p, 3 | O_TRUNC, EINVAL);
	ck_assert_int_eq(tu_file_size(p), 5000);
	/* mmapfile_create with a rejected flag neither truncates nor resizes. */
	errno = 0;
	mmapfile_t *m = mmapfile_create(p, 10, O_DIRECT, 0644);
	ck_assert_msg(m == NULL && errno == EINVAL, "create with O_DIRECT: %p, %s", (void *)m, strerror(errno));
	ck_assert_int_eq(tu_file_size(p), 5000);
	free(data);
}
END_TEST

/* ================================================================== */
/* open: files that cannot be mapped                                   */

START_TEST(test_open_directory)
{
	const char *d = tu_path("dir");
	ck_assert_int_eq(mkdir(d, 0755), 0);
	expect_open_fails(d, O_RDONLY, EISDIR);
	expect_open_fails(d, O_WRONLY, EISDIR);
	expect_open_fails(d, O_RDWR, EISDIR);
	expect_open_fails(d, O_RDONLY | O_CREAT, EISDIR);
	expect_open_fails(d, O_RDWR | O_CREAT, EISDIR);
	expect_open_fails(tu_dir(), O_RDONLY, EISDIR);
	expect_open_fails("/", O_RDONLY, EISDIR);
	errno = 0;
	mmapfile_t *m = mmapfile_create(d, 0, O_RDWR, 0644);
	ck_assert_msg(m == NULL && errno == EISDIR, "create on a directory: %p, %s", (void *)m, strerror(errno));
	struct stat st;
	ck_assert_int_eq(stat(d, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
}
END_TEST

/* A FIFO with no writer (or, for O_WRONLY, no reader) is ENODEV, at once:
 * the test's timeout catches an open that blocks. */
START_TEST(test_open_fifo)
{
	const char *p = tu_path("fifo");
	ck_assert_int_eq(mkfifo(p, 0666), 0);
	expect_open_fails(p, O_RDONLY, ENODEV);
	expect_open_fails(p, O_WRONLY, ENODEV);
	expect_open_fails(p, O_RDWR, ENODEV);
	expect_open_fails(p, O_RDONLY | O_CREAT, ENODEV);
	expect_open_fails(p, O_WRONLY | O_TRUNC, ENODEV);

	/* With a writer present (so the open could succeed) it is still ENODEV. */
	int rfd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(rfd, 0);
	int wfd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(wfd, 0);
	expect_open_fails(p, O_RDONLY, ENODEV);
	expect_open_fails(p, O_WRONLY, ENODEV);
	close(wfd);
	close(rfd);
}
END_TEST

START_TEST(test_open_chardev)
{
	static const char *const devs[] = {"/dev/null", "/dev/zero"};
	for (size_t i = 0; i < 2; i++) {
		struct stat st;
		if (stat(devs[i], &st) != 0 || !S_ISCHR(st.st_mode)) {
			printf("SKIPPED %s: not a character device here\n", devs[i]);
			continue;
		}
		expect_open_fails(devs[i], O_RDONLY, ENODEV);
		expect_open_fails(devs[i], O_WRONLY, ENODEV);
		expect_open_fails(devs[i], O_RDWR, ENODEV);
	}
	/* /dev/null must not have been replaced by a file. */
	struct stat st;
	ck_assert_int_eq(stat("/dev/null", &st), 0);
	ck_assert(S_ISCHR(st.st_mode));
}
END_TEST

START_TEST(test_open_socket)
{
	const char *p = tu_path("sock");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(p) >= sizeof sa.sun_path) {
		printf("SKIPPED unix socket check: path %s is too long for sun_path\n", p);
		return;
	}
	strcpy(sa.sun_path, p);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_msg(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
	ck_assert_int_eq(listen(s, 1), 0);
	expect_open_fails(p, O_RDONLY, ENODEV);
	expect_open_fails(p, O_WRONLY, ENODEV);
	expect_open_fails(p, O_RDWR, ENODEV);
	expect_open_fails(p, O_RDWR | O_CREAT, ENODEV);
	close(s);
	struct stat st;
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
}
END_TEST

/* ================================================================== */
/* the descriptor and the name                                         */

static void assert_cloexec_same_inode(mmapfile_t *m, const char *path, const char *what)
{
	int fd = mmapfile_fd(m);
	ck_assert_msg(fd >= 0, "%s: mmapfile_fd = %d", what, fd);
	int fdflags = fcntl(fd, F_GETFD);
	ck_assert_msg(fdflags >= 0, "%s: F_GETFD: %s", what, strerror(errno));
	ck_assert_msg(fdflags & FD_CLOEXEC, "%s: descriptor %d is not close-on-exec", what, fd);
	struct stat a, b;
	ck_assert_int_eq(fstat(fd, &a), 0);
	ck_assert_int_eq(stat(path, &b), 0);
	ck_assert_msg(a.st_dev == b.st_dev && a.st_ino == b.st_ino, "%s: descriptor is on another inode", what);
	/* The library's temporary O_NONBLOCK is gone for a regular file. */
	int fl = fcntl(fd, F_GETFL);
	ck_assert_int_ge(fl, 0);
	ck_assert_msg(!(fl & O_NONBLOCK), "%s: O_NONBLOCK left on the descriptor", what);
}

START_TEST(test_fd_cloexec_and_inode)
{
	const char *p = tu_path("f");
	tu_write_file(p, "hello", 5);
	static const int flags[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_CLOEXEC, O_RDWR | O_APPEND,
				    O_RDONLY | O_NOATIME, O_RDWR | O_SYNC};
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		mmapfile_t *m = mmapfile_open(p, flags[i], 0);
		ck_assert_msg(m != NULL, "flags %#x: %s", flags[i], strerror(errno));
		char what[32];
		snprintf(what, sizeof what, "open flags %#x", flags[i]);
		assert_cloexec_same_inode(m, p, what);
		ck_assert_int_eq(mmapfile_close(m), 0);
	}
	const char *q = tu_path("created");
	mmapfile_t *m = mmapfile_create(q, 100, O_RDWR, 0644);
	ck_assert_msg(m != NULL, "%s", strerror(errno));
	assert_cloexec_same_inode(m, q, "create");
	ck_assert_int_eq(mmapfile_close(m), 0);
}
END_TEST

/* Two handles get two descriptors, and the descriptor survives until close. */
START_TEST(test_fd_distinct)
{
	const char *p = tu_path("f");
	tu_write_file(p, "hello", 5);
	mmapfile_t *a = mmapfile_open(p, O_RDONLY, 0);
	mmapfile_t *b = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	int fa = mmapfile_fd(a), fb = mmapfile_fd(b);
	ck_assert_int_ne(fa, fb);
	ck_assert_int_eq(mmapfile_fd(a), fa); /* stable */
	ck_assert_int_eq(mmapfile_close(a), 0);
	ck_assert_int_ge(fcntl(fb, F_GETFD), 0);
	ck_assert_int_eq(mmapfile_close(b), 0);
	/* close released both descriptors. */
	errno = 0;
	ck_assert_int_eq(fcntl(fa, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	errno = 0;
	ck_assert_int_eq(fcntl(fb, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(test_name)
{
	char p[PATH_MAX];
	pathbuf(p, sizeof p, "named file");
	tu_write_file(p, "x", 1);
	mmapfile_t *m = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(mmapfile_name(m), p);
	/* The handle keeps its own copy of the name. */
	char expect[PATH_MAX];
	strcpy(expect, p);
	memset(p, 'Z', strlen(p));
	ck_assert_str_eq(mmapfile_name(m), expect);
	ck_assert_int_eq(mmapfile_close(m), 0);

	/* A relative path stays as given. */
	char cwd[PATH_MAX];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	ck_assert_int_eq(chdir(tu_dir()), 0);
	m = mmapfile_create("rel.bin", 3, O_RDWR, 0644);
	ck_assert_msg(m != NULL, "%s", strerror(errno));
	ck_assert_str_eq(mmapfile_name(m), "rel.bin");
	ck_assert_int_eq(mmapfile_close(m), 0);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_int_eq(tu_file_size(tu_path("rel.bin")), 3);
}
END_TEST

/* ================================================================== */
/* mmapfile_create                                                     */

START_TEST(test_create_sizes)
{
	const off_t sizes[] = {0, 1, (off_t)page(), (off_t)page() + 1, 1 << 20};
	char p[PATH_MAX];
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char name[32];
		snprintf(name, sizeof name, "c%zu", i);
		pathbuf(p, sizeof p, name);
		mmapfile_t *m = mmapfile_create(p, sizes[i], O_RDWR, 0644);
		ck_assert_msg(m != NULL, "size %lld: %s", (long long)sizes[i], strerror(errno));
		ck_assert_int_eq(mmapfile_size(m), sizes[i]);
		size_t n;
		unsigned char *d = handle_read_all(m, &n);
		ck_assert_uint_eq(n, (size_t)sizes[i]);
		assert_zeros(d, n, "created file via the handle");
		free(d);
		ck_assert_int_eq(mmapfile_sync(m), 0);
		ck_assert_int_eq(tu_file_size(p), sizes[i]);
		ck_assert_int_eq(mmapfile_close(m), 0);
		d = tu_read_file(p, &n);
		ck_assert_uint_eq(n, (size_t)sizes[i]);
		assert_zeros(d, n, "created file on disk");
		free(d);
	}
}
END_TEST

/* The file's mode is what open(2) with the same mode and umask gives. */
START_TEST(test_create_mode)
{
	umask(027);
	const char *p = tu_path("m");
	const char *q = tu_path("f");
	mmapfile_t *m = mmapfile_create(p, 10, O_RDWR, 0666);
	ck_assert_ptr_nonnull(m);
	int fd = open(q, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	ck_assert_int_ge(fd, 0);
	struct stat a, b;
	ck_assert_int_eq(stat(p, &a), 0);
	ck_assert_int_eq(fstat(fd, &b), 0);
	ck_assert_int_eq(a.st_mode, b.st_mode);
	close(fd);
	ck_assert_int_eq(mmapfile_close(m), 0);
}
END_TEST

START_TEST(test_create_truncates_existing)
{
	const char *p = tu_path("f");
	size_t n0 = 3 * page() + 5;
	unsigned char *data = tu_random_bytes(n0, 4);
	const off_t sizes[] = {0, 100, (off_t)page() + 7, (off_t)(5 * page())};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		tu_write_file(p, data, n0);
		mmapfile_t *m = mmapfile_create(p, sizes[i], O_RDWR, 0644);
		ck_assert_msg(m != NULL, "%s", strerror(errno));
		ck_assert_int_eq(mmapfile_size(m), sizes[i]);
		size_t n;
		unsigned char *d = handle_read_all(m, &n);
		ck_assert_uint_eq(n, (size_t)sizes[i]);
		assert_zeros(d, n, "recreated file (handle)");
		free(d);
		ck_assert_int_eq(mmapfile_close(m), 0);
		d = tu_read_file(p, &n);
		ck_assert_uint_eq(n, (size_t)sizes[i]);
		assert_zeros(d, n, "recreated file (disk)");
		free(d);
	}
	free(data);
}
END_TEST

START_TEST(test_create_negative_size)
{
	const char *p = tu_path("f");
	unsigned char *data = tu_random_bytes(3000, 5);
	tu_write_file(p, data, 3000);
	const off_t bad[] = {-1, -4096, INT64_MIN};
	for (size_t i = 0; i < 3; i++) {
		errno = 0;
		mmapfile_t *m = mmapfile_create(p, bad[i], O_RDWR, 0644);
		int e = errno;
		if (m)
			mmapfile_close(m);
		ck_assert_msg(m == NULL && e == EINVAL, "size %lld: %p, %s", (long long)bad[i], (void *)m,
			      strerror(e));
		size_t n;
		unsigned char *d = tu_read_file(p, &n);
		ck_assert_msg(n == 3000 && memcmp(d, data, 3000) == 0, "existing file touched (%zu bytes)", n);
		free(d);
	}
	const char *q = tu_path("new");
	errno = 0;
	ck_assert_ptr_null(mmapfile_create(q, -1, O_RDWR, 0644));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_msg(!exists(q), "negative size created the file");
	free(data);
}
END_TEST

/* The access mode is forced to read-write. */
START_TEST(test_create_forces_rdwr)
{
	static const int modes[] = {O_RDONLY, O_WRONLY, O_RDWR};
	const char *p = tu_path("f");
	for (size_t i = 0; i < 3; i++) {
		mmapfile_t *m = mmapfile_create(p, 10, modes[i], 0644);
		ck_assert_msg(m != NULL, "mode %d: %s", modes[i], strerror(errno));
		ck_assert_int_eq(mmapfile_writeat(m, "abc", 3, 2), 3);
		ck_assert_int_eq(mmapfile_write(m, "XY", 2), 2);
		char b[10];
		ck_assert_int_eq(mmapfile_readat(m, b, 10, 0), 10);
		ck_assert_mem_eq(b, "XYabc\0\0\0\0\0", 10);
		ck_assert_int_eq(mmapfile_read(m, b, 3), 3);
		ck_assert_mem_eq(b, "abc", 3);
		ck_assert_int_eq(mmapfile_truncate(m, 4), 0);
		ck_assert_int_eq(mmapfile_close(m), 0);
		size_t n;
		unsigned char *d = tu_read_file(p, &n);
		ck_assert_uint_eq(n, 4);
		ck_assert_mem_eq(d, "XYab", 4);
		free(d);
	}
}
END_TEST

/* A size past what the file system allows: the error ftruncate gives (EFBIG
 * on most file systems); the file stays, empty (DESIGN.md). */
START_TEST(test_create_too_big)
{
	const char *q = tu_path("oracle");
	int fd = open(q, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	errno = 0;
	int r = ftruncate(fd, INT64_MAX);
	int e = errno;
	close(fd);
	if (r == 0) {
		printf("SKIPPED create past the file system's limit: %s takes a size of INT64_MAX\n", tu_dir());
		return;
	}
	const char *p = tu_path("f");
	tu_write_file(p, "previous", 8);
	errno = 0;
	mmapfile_t *m = mmapfile_create(p, INT64_MAX, O_RDWR, 0644);
	int me = errno;
	if (m)
		mmapfile_close(m);
	ck_assert_msg(m == NULL && me == e, "create(INT64_MAX): %p, %s; ftruncate gives %s", (void *)m,
		      strerror(me), strerror(e));
	ck_assert(exists(p));
	ck_assert_int_eq(tu_file_size(p), 0);
}
END_TEST

START_TEST(test_create_excl)
{
	const char *p = tu_path("f");
	tu_write_file(p, "old", 3);
	errno = 0;
	mmapfile_t *m = mmapfile_create(p, 10, O_EXCL, 0644);
	int e = errno;
	if (m)
		mmapfile_close(m);
	ck_assert_msg(m == NULL && e == EEXIST, "create O_EXCL on existing: %p, %s", (void *)m, strerror(e));
	size_t n;
	unsigned char *d = tu_read_file(p, &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(d, "old", 3);
	free(d);
	m = mmapfile_create(tu_path("g"), 10, O_EXCL, 0644);
	ck_assert_msg(m != NULL, "%s", strerror(errno));
	ck_assert_int_eq(mmapfile_size(m), 10);
	ck_assert_int_eq(mmapfile_close(m), 0);
}
END_TEST

/* ================================================================== */
/* close                                                               */

/* 1000 writes of 100 bytes (well past the first reserve step): the file on
 * disk after close is exactly what a plain descriptor wrote. */
START_TEST(test_close_exact_after_appends)
{
	const char *pm = tu_path("m");
	const char *pf = tu_path("f");
	mmapfile_t *m = mmapfile_create(pm, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(m);
	int fd = open(pf, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	unsigned char buf[100];
	for (int i = 0; i < 1000; i++) {
		tu_fill(buf, sizeof buf, (uint64_t)i);
		ck_assert_int_eq(mmapfile_write(m, buf, sizeof buf), 100);
		ck_assert_int_eq(write(fd, buf, sizeof buf), 100);
	}
	ck_assert_int_eq(mmapfile_size(m), 100000);
	ck_assert_int_eq(mmapfile_close(m), 0);
	close(fd);
	ck_assert_int_eq(tu_file_size(pm), 100000);
	assert_same_file(pm, pf);
}
END_TEST

/* The same after a mix of writeat past the end, a shrink and more appends,
 * and on a handle opened on an existing file. */
START_TEST(test_close_exact_after_mixed)
{
	const char *pm = tu_path("m");
	const char *pf = tu_path("f");
	unsigned char *data = tu_random_bytes(7000, 6);
	tu_write_file(pm, data, 7000);
	tu_write_file(pf, data, 7000);
	mmapfile_t *m = mmapfile_open(pm, O_RDWR, 0);
	ck_assert_ptr_nonnull(m);
	int fd = open(pf, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(mmapfile_writeat(m, data, 3000, 200000), 3000);
	ck_assert_int_eq(pwrite(fd, data, 3000, 200000), 3000);
	ck_assert_int_eq(mmapfile_truncate(m, 150001), 0);
	ck_assert_int_eq(ftruncate(fd, 150001), 0);
	ck_assert_int_eq(mmapfile_seek(m, 0, SEEK_END), 150001);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 150001);
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(mmapfile_write(m, data + i, 333), 333);
		ck_assert_int_eq(write(fd, data + i, 333), 333);
	}
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(mmapfile_size(m), st.st_size);
	ck_assert_int_eq(mmapfile_close(m), 0);
	close(fd);
	assert_same_file(pm, pf);
	free(data);
}
END_TEST

START_TEST(test_close_readonly_leaves_file)
{
	const char *p = tu_path("f");
	size_t n0 = page() + 1;
	unsigned char *data = tu_random_bytes(n0, 7);
	tu_write_file(p, data, n0);
	mmapfile_t *m = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(m);
	char b[10];
	ck_assert_int_eq(mmapfile_read(m, b, 10), 10);
	ck_assert_int_eq(mmapfile_close(m), 0);
	/* A read-write handle that writes nothing leaves it alone too. */
	m = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(mmapfile_close(m), 0);
	size_t n;
	unsigned char *d = tu_read_file(p, &n);
	ck_assert_uint_eq(n, n0);
	ck_assert_mem_eq(d, data, n0);
	free(d);
	free(data);
}
END_TEST

START_TEST(test_null_handle)
{
	char b[4];
	errno = 0;
	ck_assert_int_eq(mmapfile_close(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_size(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(mmapfile_name(NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_fd(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_read(NULL, b, 4), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_write(NULL, b, 4), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_readat(NULL, b, 4, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_writeat(NULL, b, 4, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_seek(NULL, 0, SEEK_SET), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_truncate(NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_sync(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_madvise(NULL, 0, 0, MMAPFILE_MADV_NORMAL), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ================================================================== */
/* sizes at the edges, read back in full                               */

START_TEST(test_read_small_files)
{
	const size_t sizes[] = {0, 1, page() - 1, page(), page() + 1, 3 * page() + 5};
	static const int modes[] = {O_RDONLY, O_RDWR};
	const char *p = tu_path("f");
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		unsigned char *data = tu_random_bytes(sizes[i], 100 + i);
		tu_write_file(p, data, sizes[i]);
		for (size_t k = 0; k < 2; k++) {
			mmapfile_t *m = mmapfile_open(p, modes[k], 0);
			ck_assert_msg(m != NULL, "size %zu mode %d: %s", sizes[i], modes[k], strerror(errno));
			ck_assert_int_eq(mmapfile_size(m), tu_file_size(p));
			size_t n, nf;
			unsigned char *d = handle_read_all(m, &n);
			unsigned char *df = tu_read_file(p, &nf);
			ck_assert_msg(n == nf, "size %zu: handle read %zu bytes, read(2) %zu", sizes[i], n, nf);
			ck_assert_msg(memcmp(d, df, n) == 0, "size %zu: contents differ", sizes[i]);
			char b[4];
			ck_assert_int_eq(mmapfile_read(m, b, 4), 0);
			ck_assert_int_eq(mmapfile_readat(m, b, 4, (off_t)sizes[i]), 0);
			if (sizes[i] > 0) {
				ck_assert_int_eq(mmapfile_readat(m, b, 4, (off_t)sizes[i] - 1), 1);
				ck_assert_int_eq((unsigned char)b[0], df[sizes[i] - 1]);
			}
			free(d);
			free(df);
			ck_assert_int_eq(mmapfile_close(m), 0);
			ck_assert_int_eq(tu_file_size(p), (off_t)sizes[i]);
		}
		free(data);
	}
}
END_TEST

/* ================================================================== */
/* a write-only file, as a user who may not read it                    */

struct wronly_arg {
	char m[PATH_MAX], f[PATH_MAX];
};

/* In the child: compare the two files byte for byte.  They are 0200, so the
 * owner makes them readable for the comparison and write-only again. */
static void child_compare(const char *x, const char *y, const char *when)
{
	static unsigned char dx[1 << 16], dy[1 << 16];
	TU_CCHECK(chmod(x, 0600) == 0 && chmod(y, 0600) == 0, "%s: chmod: %s", when, strerror(errno));
	ssize_t n[2];
	const char *paths[2] = {x, y};
	unsigned char *bufs[2] = {dx, dy};
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		TU_CCHECK(fd >= 0, "%s: open %s: %s", when, paths[i], strerror(errno));
		n[i] = read(fd, bufs[i], sizeof dx);
		TU_CCHECK(n[i] >= 0 && (size_t)n[i] < sizeof dx, "%s: read %s", when, paths[i]);
		close(fd);
	}
	TU_CCHECK(n[0] == n[1], "%s: %zd bytes on disk, oracle %zd", when, n[0], n[1]);
	TU_CCHECK(memcmp(dx, dy, (size_t)n[0]) == 0, "%s: contents differ from the oracle", when);
	TU_CCHECK(chmod(x, 0200) == 0 && chmod(y, 0200) == 0, "%s: chmod back: %s", when, strerror(errno));
}

static void child_wronly(void *p)
{
	struct wronly_arg *a = p;
	unsigned char init[3000], more[9000];
	tu_fill(init, sizeof init, 11);
	tu_fill(more, sizeof more, 12);
	const char *paths[2] = {a->m, a->f};
	for (int i = 0; i < 2; i++) {
		int fd = open(paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0200);
		TU_CCHECK(fd >= 0, "create %s: %s", paths[i], strerror(errno));
		TU_CCHECK(write(fd, init, sizeof init) == (ssize_t)sizeof init, "write %s", paths[i]);
		close(fd);
	}
	/* The file really is unreadable to us. */
	errno = 0;
	int rfd = open(a->m, O_RDONLY | O_CLOEXEC);
	TU_CCHECK(rfd < 0 && errno == EACCES, "a 0200 file opened for reading as uid %d", (int)geteuid());

	mmapfile_t *m = mmapfile_open(a->m, O_WRONLY, 0);
	TU_CCHECK(m != NULL, "mmapfile_open O_WRONLY on a 0200 file: %s", strerror(errno));
	int fd = open(a->f, O_WRONLY | O_CLOEXEC);
	TU_CCHECK(fd >= 0, "oracle open: %s", strerror(errno));
	TU_CCHECK(mmapfile_size(m) == 3000, "size %lld", (long long)mmapfile_size(m));

	char b[16];
	errno = 0;
	TU_CCHECK(mmapfile_read(m, b, sizeof b) == -1 && errno == EBADF, "read on O_WRONLY: %s", strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_readat(m, b, sizeof b, 0) == -1 && errno == EBADF, "readat on O_WRONLY: %s",
	       strerror(errno));

	/* The same operations on both. */
	TU_CCHECK(mmapfile_write(m, more, 100) == 100, "write: %s", strerror(errno));
	TU_CCHECK(write(fd, more, 100) == 100, "oracle write");
	TU_CCHECK(mmapfile_writeat(m, more + 100, 500, 2900) == 500, "writeat: %s", strerror(errno));
	TU_CCHECK(pwrite(fd, more + 100, 500, 2900) == 500, "oracle pwrite");
	TU_CCHECK(mmapfile_seek(m, 10000, SEEK_SET) == 10000, "seek: %s", strerror(errno));
	TU_CCHECK(lseek(fd, 10000, SEEK_SET) == 10000, "oracle lseek");
	TU_CCHECK(mmapfile_write(m, more, 5000) == 5000, "write past end: %s", strerror(errno));
	TU_CCHECK(write(fd, more, 5000) == 5000, "oracle write past end");
	for (int i = 0; i < 40; i++) {
		TU_CCHECK(mmapfile_write(m, more + i * 100, 100) == 100, "append %d: %s", i, strerror(errno));
		TU_CCHECK(write(fd, more + i * 100, 100) == 100, "oracle append");
	}
	TU_CCHECK(mmapfile_truncate(m, 14000) == 0, "truncate: %s", strerror(errno));
	TU_CCHECK(ftruncate(fd, 14000) == 0, "oracle ftruncate");
	TU_CCHECK(mmapfile_write(m, more, 64) == 64, "write after truncate: %s", strerror(errno));
	TU_CCHECK(write(fd, more, 64) == 64, "oracle write after truncate");
	struct stat st;
	TU_CCHECK(fstat(fd, &st) == 0, "fstat");
	TU_CCHECK(mmapfile_size(m) == st.st_size, "size %lld, oracle %lld", (long long)mmapfile_size(m),
	       (long long)st.st_size);
	TU_CCHECK(mmapfile_sync(m) == 0, "sync: %s", strerror(errno));
	TU_CCHECK(mmapfile_close(m) == 0, "close: %s", strerror(errno));
	close(fd);
	child_compare(a->m, a->f, "after O_WRONLY writes");

	/* O_APPEND on the same write-only file: writes land at the end,
	 * writeat is EINVAL, reads are still EBADF. */
	m = mmapfile_open(a->m, O_WRONLY | O_APPEND, 0);
	TU_CCHECK(m != NULL, "mmapfile_open O_WRONLY|O_APPEND on a 0200 file: %s", strerror(errno));
	fd = open(a->f, O_WRONLY | O_APPEND | O_CLOEXEC);
	TU_CCHECK(fd >= 0, "oracle open: %s", strerror(errno));
	TU_CCHECK(mmapfile_seek(m, 5, SEEK_SET) == 5, "seek: %s", strerror(errno));
	TU_CCHECK(lseek(fd, 5, SEEK_SET) == 5, "oracle lseek");
	for (int i = 0; i < 30; i++) {
		TU_CCHECK(mmapfile_write(m, more + i * 7, 300) == 300, "append %d: %s", i, strerror(errno));
		TU_CCHECK(write(fd, more + i * 7, 300) == 300, "oracle append");
	}
	errno = 0;
	TU_CCHECK(mmapfile_writeat(m, more, 10, 0) == -1 && errno == EINVAL, "writeat on O_APPEND: %s",
	       strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_read(m, b, sizeof b) == -1 && errno == EBADF, "read on O_WRONLY|O_APPEND: %s",
	       strerror(errno));
	TU_CCHECK(mmapfile_seek(m, 0, SEEK_CUR) == lseek(fd, 0, SEEK_CUR), "cursor after appends");
	TU_CCHECK(mmapfile_close(m) == 0, "close: %s", strerror(errno));
	close(fd);
	child_compare(a->m, a->f, "after O_APPEND writes");

	/* O_TRUNC on it: emptied, as by open(2). */
	m = mmapfile_open(a->m, O_WRONLY | O_TRUNC, 0);
	TU_CCHECK(m != NULL, "mmapfile_open O_WRONLY|O_TRUNC on a 0200 file: %s", strerror(errno));
	fd = open(a->f, O_WRONLY | O_TRUNC | O_CLOEXEC);
	TU_CCHECK(fd >= 0, "oracle open: %s", strerror(errno));
	TU_CCHECK(mmapfile_size(m) == 0, "size after O_TRUNC: %lld", (long long)mmapfile_size(m));
	TU_CCHECK(mmapfile_write(m, more, 4321) == 4321, "write after O_TRUNC: %s", strerror(errno));
	TU_CCHECK(write(fd, more, 4321) == 4321, "oracle write");
	TU_CCHECK(mmapfile_close(m) == 0, "close: %s", strerror(errno));
	close(fd);
}

START_TEST(test_write_only_file)
{
	const char *pub = tu_public_dir();
	struct wronly_arg a;
	snprintf(a.m, sizeof a.m, "%s/m", pub);
	snprintf(a.f, sizeof a.f, "%s/f", pub);
	if (!tu_run_unprivileged("write-only file checks", tu_dir(), X_OK, child_wronly, &a))
		return;
	/* We own the files or are root: make them readable and compare. */
	ck_assert_int_eq(chmod(a.m, 0600), 0);
	ck_assert_int_eq(chmod(a.f, 0600), 0);
	assert_same_file(a.m, a.f);
}
END_TEST

/* ================================================================== */
/* a file larger than 4 GiB                                            */

START_TEST(test_large_file)
{
	const off_t G = (off_t)1 << 30;
	const off_t big = 5 * G;
	const char *p = tu_path("big");
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	if (ftruncate(fd, big) != 0) {
		printf("SKIPPED >4 GiB file: ftruncate to 5 GiB on %s: %s\n", tu_dir(), strerror(errno));
		close(fd);
		return;
	}
	unsigned char pat[64], got[64], w[40];
	tu_fill(pat, sizeof pat, 77);
	tu_fill(w, sizeof w, 78);
	const off_t offs[] = {4 * G - 32, 4 * G + 100, 4 * G + 4095, big - 64};
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(pwrite(fd, pat, sizeof pat, offs[i]), (ssize_t)sizeof pat);

	mmapfile_t *m = mmapfile_open(p, O_RDWR, 0);
	ck_assert_msg(m != NULL, "open a 5 GiB file: %s", strerror(errno));
	ck_assert_int_eq(mmapfile_size(m), big);
	for (size_t i = 0; i < 4; i++) {
		memset(got, 0xee, sizeof got);
		ck_assert_int_eq(mmapfile_readat(m, got, sizeof got, offs[i]), (ssize_t)sizeof got);
		ck_assert_msg(memcmp(got, pat, sizeof pat) == 0, "readat at %lld differs", (long long)offs[i]);
	}
	/* Reading across the end returns what is left. */
	ck_assert_int_eq(mmapfile_readat(m, got, sizeof got, big - 10), 10);
	ck_assert_mem_eq(got, pat + 54, 10);
	/* The cursor goes there too. */
	ck_assert_int_eq(mmapfile_seek(m, 4 * G - 32, SEEK_SET), 4 * G - 32);
	ck_assert_int_eq(mmapfile_read(m, got, sizeof got), (ssize_t)sizeof got);
	ck_assert_mem_eq(got, pat, sizeof pat);
	ck_assert_int_eq(mmapfile_seek(m, 0, SEEK_CUR), 4 * G + 32);

	/* Writes past 4 GiB land where pread sees them. */
	const off_t woffs[] = {4 * G + 12345, 4 * G - 20, big - 40};
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(mmapfile_writeat(m, w, sizeof w, woffs[i]), (ssize_t)sizeof w);
	ck_assert_int_eq(mmapfile_seek(m, 4 * G + 100000, SEEK_SET), 4 * G + 100000);
	ck_assert_int_eq(mmapfile_write(m, w, sizeof w), (ssize_t)sizeof w);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(pread(fd, got, sizeof w, woffs[i]), (ssize_t)sizeof w);
		ck_assert_msg(memcmp(got, w, sizeof w) == 0, "pread at %lld after writeat", (long long)woffs[i]);
	}
	ck_assert_int_eq(pread(fd, got, sizeof w, 4 * G + 100000), (ssize_t)sizeof w);
	ck_assert_mem_eq(got, w, sizeof w);
	ck_assert_int_eq(mmapfile_size(m), big);
	ck_assert_int_eq(mmapfile_close(m), 0);
	ck_assert_int_eq(tu_file_size(p), big);
	/* After close too, and the neighbours of the writes are intact. */
	ck_assert_int_eq(pread(fd, got, sizeof w, woffs[0]), (ssize_t)sizeof w);
	ck_assert_mem_eq(got, w, sizeof w);
	ck_assert_int_eq(pread(fd, got, 12, 4 * G - 32), 12);
	ck_assert_mem_eq(got, pat, 12);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("open");
	TCase *tc;

	tc = tu_tcase("open", 10);
	tcase_add_test(tc, test_open_access_modes);
	tcase_add_test(tc, test_open_accepted_flags);
	tcase_add_test(tc, test_open_creat);
	tcase_add_test(tc, test_open_excl);
	tcase_add_test(tc, test_open_enoent);
	tcase_add_test(tc, test_open_trunc);
	tcase_add_test(tc, test_open_nofollow);
	tcase_add_test(tc, test_open_eacces);
	suite_add_tcase(s, tc);

	tc = tu_tcase("flags", 10);
	tcase_add_test(tc, test_open_unknown_flags);
	tcase_add_test(tc, test_open_unknown_flags_existing);
	suite_add_tcase(s, tc);

	/* Short timeout: an open that blocks on a FIFO fails the test. */
	tc = tu_tcase("special", 5);
	tcase_add_test(tc, test_open_directory);
	tcase_add_test(tc, test_open_fifo);
	tcase_add_test(tc, test_open_chardev);
	tcase_add_test(tc, test_open_socket);
	suite_add_tcase(s, tc);

	tc = tu_tcase("fd_name", 10);
	tcase_add_test(tc, test_fd_cloexec_and_inode);
	tcase_add_test(tc, test_fd_distinct);
	tcase_add_test(tc, test_name);
	suite_add_tcase(s, tc);

	tc = tu_tcase("create", 10);
	tcase_add_test(tc, test_create_sizes);
	tcase_add_test(tc, test_create_mode);
	tcase_add_test(tc, test_create_truncates_existing);
	tcase_add_test(tc, test_create_negative_size);
	tcase_add_test(tc, test_create_forces_rdwr);
	tcase_add_test(tc, test_create_excl);
	tcase_add_test(tc, test_create_too_big);
	suite_add_tcase(s, tc);

	tc = tu_tcase("close", 10);
	tcase_add_test(tc, test_close_exact_after_appends);
	tcase_add_test(tc, test_close_exact_after_mixed);
	tcase_add_test(tc, test_close_readonly_leaves_file);
	tcase_add_test(tc, test_null_handle);
	tcase_add_test(tc, test_read_small_files);
	suite_add_tcase(s, tc);

	tc = tu_tcase("unprivileged", 10);
	tcase_add_test(tc, test_write_only_file);
	suite_add_tcase(s, tc);

	tc = tu_tcase("large", 20);
	tcase_add_test(tc, test_large_file);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
