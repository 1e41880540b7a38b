/* check_memfd.c - handles over memory (mmapfile_memfd) and over huge pages
 * (MMAPFILE_MEMFD_HUGETLB, files on hugetlbfs).
 *
 * The oracles:
 * - a plain memfd_create(2) descriptor (the twin) doing the same operations
 *   with pwrite/pread/ftruncate/lseek: every answer, errno, byte and size of
 *   the handle must be the twin's;
 * - the memfd's own descriptor, read with pread(2) or mapped by another
 *   process, which must see what the handle wrote (and the handle what the
 *   other process wrote);
 * - for seals, the errno the twin gets under the same seals;
 * - on huge pages (hugetlbfs has no write(2)) a buffer in memory holds what
 *   the file must contain, the kernel's answer on a twin hugetlb memfd says
 *   which errno an exhausted pool gives, /proc/meminfo says whether every
 *   huge page came back, and mincore(2) of the handle's own mapping says
 *   which huge pages are resident.
 *
 * The huge page tests need root: they size the pool (vm.nr_hugepages) to a
 * few free pages for the test case (twelve for the residency test, or as
 * many as the kernel gives past eight), and put it back as it was afterwards,
 * from the process that runs the suite (so also when a test fails or
 * crashes); a flock on the sysctl keeps two runs of this program from
 * sizing it at once.  Without root or hugetlb support they are skipped
 * with the reason printed; the hugetlbfs test also needs to mount one, in a
 * mount namespace of its own. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB (1024 * KiB)

/* ---- small helpers ---- */

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void pwrite_all(int fd, const unsigned char *buf, size_t n, off_t off)
{
	ck_assert_int_eq(pwrite(fd, buf, n, off), (ssize_t)n);
}

/* The handle holds exactly want[0, n): its size, its bytes through
 * readat, and the same bytes through pread(2) on its own descriptor, past
 * which the memfd holds only zeros (the reserve). */
static void check_handle(mmapfile_t *f, const unsigned char *want, size_t n)
{
	ck_assert_int_eq(mmapfile_size(f), (off_t)n);
	unsigned char *buf = tu_xmalloc(n + 4096);
	ck_assert_int_eq(mmapfile_readat(f, buf, n + 4096, 0), (ssize_t)n);
	size_t i = tu_first_diff(buf, want, n);
	ck_assert_msg(i == n, "through the handle: byte %zu of %zu is %#x, not %#x", i, n, buf[i], want[i]);
	int fd = mmapfile_fd(f);
	off_t disk = tu_fd_size(fd);
	ck_assert_msg(disk >= (off_t)n, "memfd of %lld bytes, size %zu", (long long)disk, n);
	tu_pread_all(fd, buf, n, 0);
	i = tu_first_diff(buf, want, n);
	ck_assert_msg(i == n, "through its descriptor: byte %zu of %zu differs", i, n);
	for (off_t o = (off_t)n; o < disk; o += 4096) {
		size_t k = disk - o < 4096 ? (size_t)(disk - o) : 4096;
		tu_pread_all(fd, buf, k, o);
		ck_assert_msg(all_zero(buf, k), "reserve past the size is not zeros near %lld", (long long)o);
	}
	free(buf);
}

/* ---- argument errors ---- */

START_TEST(test_bad_args)
{
	int fds = tu_count_fds();
	struct mmapfile_options o = { .size = sizeof o };

	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", -1, 0, NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", -4096, 0, NULL));
	ck_assert_int_eq(errno, EINVAL);
	static const unsigned int bad_flags[] = { 0x4, 0x8, 0x100, 0x80000000u, MFD_CLOEXEC << 4 };
	for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
		errno = 0;
		ck_assert_ptr_null(mmapfile_memfd("x", 10, bad_flags[i] | MMAPFILE_MEMFD_SEALABLE, NULL));
		ck_assert_msg(errno == EINVAL, "flags %#x: errno %s", bad_flags[i], strerror(errno));
	}

	/* A private handle over memory nobody else can see is refused. */
	o.flags = MMAPFILE_OPT_PRIVATE;
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", 10, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	o.flags = MMAPFILE_OPT_PRIVATE | MMAPFILE_OPT_POPULATE;
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", 0, MMAPFILE_MEMFD_SEALABLE, &o));
	ck_assert_int_eq(errno, EINVAL);

	/* The options are checked as mmapfile_open_ex checks them. */
	o = (struct mmapfile_options){ .size = MMAPFILE_OPTIONS_SIZE_VER0 - 1 };
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", 10, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	o = (struct mmapfile_options){ .size = sizeof o, .flags = 0x100 };
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", 10, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	o = (struct mmapfile_options){ .size = sizeof o, .advice = MMAPFILE_MADV_WILLNEED };
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", 10, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	o = (struct mmapfile_options){ .size = sizeof o, .max_size = -1 };
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", 10, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	/* A caller's newer, longer struct: zeros past ours are fine, anything
	 * else E2BIG. */
	struct {
		struct mmapfile_options o;
		uint64_t more;
	} big = { .o = { .size = sizeof big } };
	mmapfile_t *f = mmapfile_memfd("x", 10, 0, &big.o);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_size(f), 10);
	ck_assert_int_eq(mmapfile_close(f), 0);
	big.more = 1;
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", 10, 0, &big.o));
	ck_assert_int_eq(errno, E2BIG);

	/* A name memfd_create(2) refuses: its errno, from the kernel. */
	char longname[300];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	errno = 0;
	int twin = memfd_create(longname, MFD_CLOEXEC);
	int terr = errno;
	ck_assert_int_eq(twin, -1);
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd(longname, 10, 0, NULL));
	ck_assert_int_eq(errno, terr);

	ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* The name in /proc and mmapfile_name, close-on-exec, the seals a memfd
 * starts with, the size and cursor at creation, and that close gives the
 * descriptor back. */
static void check_names(const char *name, unsigned int flags, off_t size)
{
	int fds = tu_count_fds();
	mmapfile_t *f = mmapfile_memfd(name, size, flags, NULL);
	ck_assert_msg(f != NULL, "mmapfile_memfd(%s, %lld, %#x): %s", name ? name : "NULL",
	              (long long)size, flags, strerror(errno));
	const char *want = name ? name : "mmapfile";
	ck_assert_str_eq(mmapfile_name(f), want);
	int fd = mmapfile_fd(f);
	char link[64], target[512], expect[512];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof target - 1);
	ck_assert_msg(n > 0, "readlink %s: %s", link, strerror(errno));
	target[n] = '\0';
	snprintf(expect, sizeof expect, "/memfd:%s (deleted)", want);
	ck_assert_str_eq(target, expect);
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);

	/* The seals of a plain memfd made the same way. */
	int twin = memfd_create(want, MFD_CLOEXEC | (flags & MMAPFILE_MEMFD_SEALABLE ? MFD_ALLOW_SEALING : 0));
	ck_assert_int_ge(twin, 0);
	ck_assert_int_eq(fcntl(fd, F_GET_SEALS), fcntl(twin, F_GET_SEALS));
	close(twin);

	ck_assert_int_eq(mmapfile_size(f), size);
	ck_assert_int_eq(tu_fd_size(fd), size);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), 0);
	unsigned char *z = tu_xmalloc((size_t)size + 10);
	ck_assert_int_eq(mmapfile_read(f, z, (size_t)size + 10), (ssize_t)size);
	ck_assert(all_zero(z, (size_t)size));
	free(z);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_count_fds(), fds);
}

START_TEST(test_names)
{
	check_names("mmapfile-test", 0, 0);
	check_names(NULL, 0, 1);
	check_names("with space:and:colons", MMAPFILE_MEMFD_SEALABLE, 4096);
	check_names("", 0, 70000);
	char longest[250]; /* memfd_create takes 249 bytes */
	memset(longest, 'L', sizeof longest - 1);
	longest[sizeof longest - 1] = '\0';
	check_names(longest, 0, 5);
}
END_TEST

/* ---- a random sequence against a twin memfd ---- */

#define TWIN_CAP ((off_t)160 << 10)

static size_t rand_len(uint64_t *rng)
{
	switch (tu_rand(rng) % 4) {
	case 0:
		return (size_t)(tu_rand(rng) % 16);
	case 1:
		return 1 + (size_t)(tu_rand(rng) % 300);
	case 2:
		return 1 + (size_t)(tu_rand(rng) % 5000);
	default:
		return 1 + (size_t)(tu_rand(rng) % 40000); /* past 16 KiB: the pwrite path */
	}
}

/* Bytes and size of the handle, of its own descriptor, and of the twin
 * are the same; so are the cursors. */
static void same_as_twin(mmapfile_t *f, int twin, unsigned char *a, unsigned char *b, int step,
                         bool via_fd)
{
	off_t size = tu_fd_size(twin);
	ck_assert_msg(mmapfile_size(f) == size, "step %d: size %lld, the twin's %lld", step,
	              (long long)mmapfile_size(f), (long long)size);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), lseek(twin, 0, SEEK_CUR));
	ck_assert_int_eq(mmapfile_readat(f, a, (size_t)TWIN_CAP + 1, 0), (ssize_t)size);
	if (size)
		tu_pread_all(twin, b, (size_t)size, 0);
	size_t i = tu_first_diff(a, b, (size_t)size);
	ck_assert_msg(i == (size_t)size, "step %d: byte %zu of %lld is %#x, the twin's %#x", step, i,
	              (long long)size, a[i], b[i]);
	if (via_fd && size) {
		tu_pread_all(mmapfile_fd(f), a, (size_t)size, 0);
		i = tu_first_diff(a, b, (size_t)size);
		ck_assert_msg(i == (size_t)size, "step %d: byte %zu through the memfd differs", step, i);
	}
}

START_TEST(test_twin_random)
{
	struct mmapfile_options o = { .size = sizeof o };
	const struct mmapfile_options *opts = NULL;
	unsigned int flags = 0;
	if (_i == 1) {
		opts = &o; /* maps at open */
	} else if (_i == 2) {
		o.advice = MMAPFILE_MADV_SEQUENTIAL;
		o.max_size = 1 * MiB;
		opts = &o;
		flags = MMAPFILE_MEMFD_SEALABLE;
	}
	mmapfile_t *f = mmapfile_memfd("twin-random", 0, flags, opts);
	ck_assert_ptr_nonnull(f);
	int twin = memfd_create("twin", MFD_CLOEXEC);
	ck_assert_int_ge(twin, 0);
	unsigned char *a = tu_xmalloc((size_t)TWIN_CAP + 1), *b = tu_xmalloc((size_t)TWIN_CAP + 1);
	unsigned char *buf = tu_xmalloc((size_t)TWIN_CAP), *tbuf = tu_xmalloc((size_t)TWIN_CAP);
	uint64_t rng = 0x3e3f0 + (uint64_t)_i;
	unsigned long counts[8] = { 0 };
	for (int step = 0; step < 300; step++) {
		off_t size = tu_fd_size(twin), cur = lseek(twin, 0, SEEK_CUR);
		unsigned op = (unsigned)(tu_rand(&rng) % 100);
		size_t n = rand_len(&rng);
		ssize_t r, tr;
		int err, terr;
		if (op < 25) { /* writeat */
			off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(size + 20000));
			if (off + (off_t)n > TWIN_CAP)
				off = TWIN_CAP - (off_t)n;
			tu_fill(buf, n, tu_rand(&rng));
			errno = 0;
			r = mmapfile_writeat(f, buf, n, off);
			err = errno;
			tr = pwrite(twin, buf, n, off);
			terr = errno;
			counts[0]++;
		} else if (op < 45) { /* write at the cursor */
			if (cur + (off_t)n > TWIN_CAP)
				n = cur < TWIN_CAP ? (size_t)(TWIN_CAP - cur) : 0;
			tu_fill(buf, n, tu_rand(&rng));
			errno = 0;
			r = mmapfile_write(f, buf, n);
			err = errno;
			tr = write(twin, buf, n);
			terr = errno;
			counts[1]++;
		} else if (op < 60) { /* readat */
			off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(size + 1000));
			errno = 0;
			r = mmapfile_readat(f, buf, n, off);
			err = errno;
			tr = pread(twin, tbuf, n, off);
			terr = errno;
			counts[2]++;
		} else if (op < 75) { /* read at the cursor */
			errno = 0;
			r = mmapfile_read(f, buf, n);
			err = errno;
			tr = read(twin, tbuf, n);
			terr = errno;
			counts[3]++;
		} else if (op < 87) { /* seek, results past the end and below 0 too */
			static const int whences[] = { SEEK_SET, SEEK_CUR, SEEK_END };
			int whence = whences[tu_rand(&rng) % 3];
			off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(2 * size + 2001)) - size - 1000;
			if (whence == SEEK_SET && off > TWIN_CAP)
				off = TWIN_CAP;
			errno = 0;
			off_t rs = mmapfile_seek(f, off, whence);
			err = errno;
			off_t trs = lseek(twin, off, whence);
			terr = errno;
			ck_assert_msg(rs == trs && (rs >= 0 || err == terr),
			              "step %d: seek(%lld, %d): %lld (%s), the twin's %lld (%s)", step,
			              (long long)off, whence, (long long)rs, strerror(err), (long long)trs,
			              strerror(terr));
			if (trs > TWIN_CAP) { /* keep the file within the cap */
				ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_SET), 0);
				ck_assert_int_eq(lseek(twin, 0, SEEK_SET), 0);
			}
			counts[4]++;
			same_as_twin(f, twin, a, b, step, step % 4 == 0);
			continue;
		} else if (op < 96) { /* truncate, either way */
			off_t len = (off_t)(tu_rand(&rng) % (uint64_t)(TWIN_CAP + 1));
			if (tu_rand(&rng) % 3 == 0)
				len = size / 2;
			errno = 0;
			r = mmapfile_truncate(f, len);
			err = errno;
			tr = ftruncate(twin, len);
			terr = errno;
			counts[5]++;
		} else { /* sync: the memfd is then exactly the size */
			ck_assert_int_eq(mmapfile_sync(f), 0);
			ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), size);
			counts[6]++;
			same_as_twin(f, twin, a, b, step, true);
			continue;
		}
		ck_assert_msg(r == tr && (r >= 0 || err == terr),
		              "step %d, op %u, n %zu: %zd (%s), the twin's %zd (%s)", step, op, n, r,
		              r < 0 ? strerror(err) : "-", tr, tr < 0 ? strerror(terr) : "-");
		if (op >= 45 && op < 75 && r > 0) {
			size_t i = tu_first_diff(buf, tbuf, (size_t)r);
			ck_assert_msg(i == (size_t)r, "step %d: read byte %zu differs from the twin's", step, i);
		}
		same_as_twin(f, twin, a, b, step, step % 4 == 0);
	}
	if (getenv("MMAPFILE_TEST_FIGURES"))
		printf("twin_random[%d]: %lu writeat, %lu write, %lu readat, %lu read, %lu seek, "
		       "%lu truncate, %lu sync; final size %lld\n",
		       _i, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6],
		       (long long)mmapfile_size(f));
	for (int k = 0; k < 7; k++)
		ck_assert_uint_gt(counts[k], 0);

	/* After close the memfd (kept open through a duplicate) is exactly
	 * the size and the bytes. */
	off_t size = mmapfile_size(f);
	int keep = dup(mmapfile_fd(f));
	ck_assert_int_ge(keep, 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_fd_size(keep), size);
	if (size) {
		tu_pread_all(keep, a, (size_t)size, 0);
		tu_pread_all(twin, b, (size_t)size, 0);
		ck_assert_uint_eq(tu_first_diff(a, b, (size_t)size), (size_t)size);
	}
	close(keep);
	close(twin);
	free(a);
	free(b);
	free(buf);
	free(tbuf);
}
END_TEST

/* ---- the descriptor is shared with another process ---- */

/* A child's report: a token, or the message of a failed TU_CCHECK before
 * it exits. */
static int child_pipe = -1;

static void child_token(char t)
{
	TU_CCHECK(write(child_pipe, &t, 1) == 1, "write to the parent: %s", strerror(errno));
}

static void child_wait(int fd, char t)
{
	char c = 0;
	TU_CCHECK(read(fd, &c, 1) == 1 && c == t, "no token %c from the parent", t);
}

/* Wait for the child's token; a failure message fails the test. */
static void parent_expect(int fd, char t, pid_t pid)
{
	char msg[700] = "";
	ssize_t r = read(fd, msg, 1);
	if (r == 1 && msg[0] == t)
		return;
	size_t got = r == 1 ? 1 : 0;
	while (got < sizeof msg - 1 && (r = read(fd, msg + got, sizeof msg - 1 - got)) > 0)
		got += (size_t)r;
	msg[got] = '\0';
	int st = 0;
	waitpid(pid, &st, 0);
	ck_abort_msg("child (status %#x): %s", st, got ? msg : "no report");
}

/* The child's side: _i 0 maps the inherited descriptor and works through
 * the mapping (growing with ftruncate); _i 1 opens /proc/<parent>/fd/<n>
 * (a descriptor of its own on the same memfd) and uses pread/pwrite. */
static void share_child(int variant, int inherited, pid_t parent, int from_parent,
                        const unsigned char *want, size_t want_len, const unsigned char *d,
                        size_t d_len, off_t d_off, const unsigned char *e, size_t e_len, off_t gap)
{
	int fd = inherited;
	if (variant == 1) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)parent, inherited);
		fd = open(path, O_RDWR | O_CLOEXEC);
		TU_CCHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	}
	struct stat st;
	TU_CCHECK(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
	size_t len0 = (size_t)st.st_size;
	unsigned char *map = NULL;
	if (variant == 0) {
		map = mmap(NULL, len0, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		TU_CCHECK(map != MAP_FAILED, "mmap of %zu: %s", len0, strerror(errno));
	}
	child_token('R');
	child_wait(from_parent, 'G');

	/* The parent's writes since the fork, through the mapping made before
	 * them, or through pread. */
	TU_CCHECK(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
	size_t len = (size_t)st.st_size;
	TU_CCHECK(len >= want_len, "memfd of %zu bytes, the parent wrote %zu", len, want_len);
	unsigned char *buf = tu_xmalloc(len);
	if (variant == 0 && len <= len0)
		memcpy(buf, map, len);
	else
		tu_pread_all(fd, buf, len, 0);
	size_t i = tu_first_diff(buf, want, want_len);
	TU_CCHECK(i == want_len, "byte %zu of the parent's %zu differs (%#x, not %#x)", i, want_len, buf[i],
	       want[i]);
	TU_CCHECK(all_zero(buf + want_len, len - want_len), "the parent's reserve is not zeros");
	free(buf);

	/* Overwrite within, and grow past the parent's end (and its reserve). */
	off_t e_off = (off_t)len + gap;
	if (variant == 0) {
		memcpy(map + d_off, d, d_len);
		TU_CCHECK(ftruncate(fd, e_off + (off_t)e_len) == 0, "ftruncate: %s", strerror(errno));
		unsigned char *m2 = mmap(NULL, (size_t)e_off + e_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		TU_CCHECK(m2 != MAP_FAILED, "mmap: %s", strerror(errno));
		memcpy(m2 + e_off, e, e_len);
		munmap(m2, (size_t)e_off + e_len);
		munmap(map, len0);
	} else {
		TU_CCHECK(pwrite(fd, d, d_len, d_off) == (ssize_t)d_len, "pwrite: %s", strerror(errno));
		TU_CCHECK(pwrite(fd, e, e_len, e_off) == (ssize_t)e_len, "pwrite: %s", strerror(errno));
		close(fd);
	}
	child_token('D');
	_exit(0);
}

/* What the test holds when it forks, kept reachable from here so that the
 * child's _exit leaks nothing (valgrind checks the child too). */
static mmapfile_t *volatile share_f;
static unsigned char *volatile share_bufs[6];

START_TEST(test_share)
{
	const size_t a_len = 10000, b_len = 3000, c_len = 20000, d_len = 4000, e_len = 50000;
	const off_t b_off = 5000, d_off = 1000, gap = 777;
	unsigned char *a = share_bufs[0] = tu_xmalloc(a_len), *bb = share_bufs[1] = tu_xmalloc(b_len);
	unsigned char *c = share_bufs[2] = tu_xmalloc(c_len), *d = share_bufs[3] = tu_xmalloc(d_len);
	unsigned char *e = share_bufs[4] = tu_xmalloc(e_len);
	tu_fill(a, a_len, 1);
	tu_fill(bb, b_len, 2);
	tu_fill(c, c_len, 3);
	tu_fill(d, d_len, 4);
	tu_fill(e, e_len, 5);
	/* What the memfd holds after the parent's writes. */
	size_t want_len = a_len + c_len;
	unsigned char *want = share_bufs[5] = tu_xmalloc(want_len);
	memcpy(want, a, a_len);
	memcpy(want + b_off, bb, b_len);
	memcpy(want + a_len, c, c_len);

	mmapfile_t *f = share_f = mmapfile_memfd("shared", 0, 0, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_write(f, a, a_len), (ssize_t)a_len);
	if (_i == 1)
		ck_assert_int_eq(mmapfile_sync(f), 0); /* no reserve: the child grows it exactly */
	int to_child[2], from_child[2];
	ck_assert_int_eq(pipe2(to_child, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(from_child, O_CLOEXEC), 0);
	pid_t parent = getpid(), pid = tu_fork();
	if (pid == 0) {
		close(to_child[1]);
		close(from_child[0]);
		child_pipe = from_child[1];
		tu_child_reports_to(child_pipe);
		share_child(_i, mmapfile_fd(f), parent, to_child[0], want, want_len, d, d_len, d_off, e,
		            e_len, gap);
	}
	close(to_child[0]);
	close(from_child[1]);
	parent_expect(from_child[0], 'R', pid);

	/* Writes after the fork, one of them growing the file. */
	ck_assert_int_eq(mmapfile_writeat(f, bb, b_len, b_off), (ssize_t)b_len);
	ck_assert_int_eq(mmapfile_write(f, c, c_len), (ssize_t)c_len);
	ck_assert_int_eq(write(to_child[1], "G", 1), 1);
	parent_expect(from_child[0], 'D', pid);
	int st = tu_wait(pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	close(to_child[1]);
	close(from_child[0]);

	/* The child's overwrite, through a read that stays inside the size. */
	unsigned char *buf = tu_xmalloc(d_len);
	ck_assert_int_eq(mmapfile_readat(f, buf, d_len, d_off), (ssize_t)d_len);
	ck_assert_uint_eq(tu_first_diff(buf, d, d_len), d_len);
	free(buf);

	/* Its growth: learned when a read reaches the end.  The memfd's own
	 * length and bytes are the oracle, and what the child wrote. */
	int fd = mmapfile_fd(f);
	off_t disk = tu_fd_size(fd);
	off_t e_off = disk - (off_t)e_len;
	ck_assert_int_ge(e_off, (off_t)want_len + gap);
	size_t total = (size_t)disk;
	unsigned char *all = tu_xmalloc(total + 100), *exp = tu_xmalloc(total);
	tu_pread_all(fd, exp, total, 0);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_SET), 0);
	size_t got = 0;
	for (;;) {
		ssize_t r = mmapfile_read(f, all + got, 7777);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		got += (size_t)r;
		ck_assert_uint_le(got, total);
	}
	ck_assert_uint_eq(got, total);
	ck_assert_int_eq(mmapfile_size(f), disk);
	ck_assert_uint_eq(tu_first_diff(all, exp, total), total);
	/* Independently of the memfd: the parent's bytes with the child's
	 * overwrite, zeros up to the child's data, the child's data. */
	memcpy(want + d_off, d, d_len);
	ck_assert_uint_eq(tu_first_diff(all, want, want_len), want_len);
	ck_assert(all_zero(all + want_len, (size_t)e_off - want_len));
	ck_assert_uint_eq(tu_first_diff(all + e_off, e, e_len), e_len);

	/* The handle goes on from there; after close the memfd is exactly its
	 * size. */
	ck_assert_int_eq(mmapfile_write(f, "tail", 4), 4);
	ck_assert_int_eq(mmapfile_size(f), disk + 4);
	int keep = dup(fd);
	ck_assert_int_ge(keep, 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_fd_size(keep), disk + 4);
	ck_assert_int_eq(pread(keep, all, 4, disk), 4);
	ck_assert_int_eq(memcmp(all, "tail", 4), 0);
	close(keep);
	free(all);
	free(exp);
	free(want);
	free(a);
	free(bb);
	free(c);
	free(d);
	free(e);
}
END_TEST

/* ---- seals ---- */

/* A memfd and its twin, both sealable, holding the same n bytes. */
static mmapfile_t *sealable_pair(int *twin, const unsigned char *data, size_t n)
{
	mmapfile_t *f = mmapfile_memfd("sealed", 0, MMAPFILE_MEMFD_SEALABLE, NULL);
	ck_assert_ptr_nonnull(f);
	for (size_t done = 0; done < n; done += 1000) {
		size_t k = n - done < 1000 ? n - done : 1000;
		ck_assert_int_eq(mmapfile_write(f, data + done, k), (ssize_t)k);
	}
	*twin = memfd_create("twin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(*twin, 0);
	pwrite_all(*twin, data, n, 0);
	ck_assert_int_eq(lseek(*twin, (off_t)n, SEEK_SET), (off_t)n);
	return f;
}

static void add_seals(mmapfile_t *f, int twin, int seals)
{
	ck_assert_msg(fcntl(mmapfile_fd(f), F_ADD_SEALS, seals) == 0, "F_ADD_SEALS %#x: %s", seals,
	              strerror(errno));
	ck_assert_int_eq(fcntl(twin, F_ADD_SEALS, seals), 0);
	ck_assert_int_eq(fcntl(mmapfile_fd(f), F_GET_SEALS), fcntl(twin, F_GET_SEALS));
}

/* The handle's answer r/err against the twin's tr/terr. */
static void same_answer(const char *what, ssize_t r, int err, ssize_t tr, int terr)
{
	ck_assert_msg(r == tr && (r >= 0 || err == terr), "%s: %zd (%s), the twin %zd (%s)", what, r,
	              r < 0 ? strerror(err) : "-", tr, tr < 0 ? strerror(terr) : "-");
}

/* Size, bytes and cursor of the handle are the twin's, and the memfd is
 * as long as the twin (no reserve under a seal that forbids growth). */
static void same_sealed(mmapfile_t *f, int twin)
{
	off_t size = tu_fd_size(twin);
	unsigned char *b = tu_xmalloc((size_t)size + 1);
	tu_pread_all(twin, b, (size_t)size, 0);
	check_handle(f, b, (size_t)size);
	ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), size);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), lseek(twin, 0, SEEK_CUR));
	free(b);
}

START_TEST(test_seal_grow)
{
	const size_t n = 10000;
	unsigned char *data = tu_xmalloc(n), *buf = tu_xmalloc(8192);
	tu_fill(data, n, 77);
	int twin;
	mmapfile_t *f = sealable_pair(&twin, data, n);
	/* The appends left a reserve: sync gives it back, so that the seal
	 * holds the file at its size. */
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), (off_t)n);
	add_seals(f, twin, F_SEAL_GROW);
	tu_fill(buf, 8192, 78);

	/* Writes that would grow the file (each inside one page, so that the
	 * kernel's write refuses it whole rather than in part). */
	static const struct {
		off_t back; /* offset from the end */
		size_t n;
	} cases[] = { { 50, 100 }, { 0, 1 }, { -1000, 10 }, { 1, 2 }, { -(off_t)MiB, 4096 } };
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		off_t off = (off_t)n - cases[k].back;
		errno = 0;
		ssize_t r = mmapfile_writeat(f, buf, cases[k].n, off);
		int err = errno;
		errno = 0;
		ssize_t tr = pwrite(twin, buf, cases[k].n, off);
		int terr = errno;
		/* What ftruncate and fallocate give for the same growth. */
		errno = 0;
		ck_assert_int_eq(fallocate(twin, 0, off, (off_t)cases[k].n), -1);
		ck_assert_int_eq(errno, terr);
		ck_assert_int_eq(ftruncate(twin, off + (off_t)cases[k].n), -1);
		ck_assert_int_eq(errno, terr);
		char what[64];
		snprintf(what, sizeof what, "writeat of %zu at %lld", cases[k].n, (long long)off);
		ck_assert_int_eq(tr, -1);
		same_answer(what, r, err, tr, terr);
		same_sealed(f, twin);
	}
	/* The cursor write at the end, and truncate up. */
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), lseek(twin, 0, SEEK_END));
	errno = 0;
	ssize_t r = mmapfile_write(f, buf, 10);
	int err = errno;
	errno = 0;
	ssize_t tr = write(twin, buf, 10);
	same_answer("write at the end", r, err, tr, errno);
	same_sealed(f, twin);
	errno = 0;
	r = mmapfile_truncate(f, (off_t)n + 1);
	err = errno;
	errno = 0;
	tr = ftruncate(twin, (off_t)n + 1);
	same_answer("truncate up", r, err, tr, errno);
	same_sealed(f, twin);

	/* Still usable: writes inside, shrinking (the seal allows it), reads. */
	ck_assert_int_eq(mmapfile_writeat(f, buf, 300, 5000), 300);
	pwrite_all(twin, buf, 300, 5000);
	ck_assert_int_eq(mmapfile_truncate(f, 6000), 0);
	ck_assert_int_eq(ftruncate(twin, 6000), 0);
	same_sealed(f, twin);
	errno = 0;
	r = mmapfile_truncate(f, 6001);
	err = errno;
	errno = 0;
	tr = ftruncate(twin, 6001);
	same_answer("truncate up after a cut", r, err, tr, errno);
	ck_assert_int_eq(mmapfile_seek(f, 5990, SEEK_SET), 5990);
	ck_assert_int_eq(lseek(twin, 5990, SEEK_SET), 5990);
	ck_assert_int_eq(mmapfile_write(f, buf, 10), 10);
	ck_assert_int_eq(write(twin, buf, 10), 10);
	errno = 0;
	r = mmapfile_write(f, buf, 1);
	err = errno;
	errno = 0;
	tr = write(twin, buf, 1);
	same_answer("write at the end after a cut", r, err, tr, errno);
	same_sealed(f, twin);
	ck_assert_int_eq(mmapfile_read(f, buf, 10), 0);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	int keep = dup(mmapfile_fd(f));
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_fd_size(keep), 6000);
	close(keep);
	close(twin);
	free(data);
	free(buf);
}
END_TEST

/* F_SEAL_SHRINK: growth through the handle works as for the twin, and the
 * memfd ends exactly at the size after sync and close, as the spec wants
 * of every file (point 8): a reserve past the size could never be cut
 * again under this seal. */
START_TEST(test_seal_shrink)
{
	const size_t n = 5000;
	unsigned char *data = tu_xmalloc(3 * n);
	tu_fill(data, 3 * n, 91);
	int twin;
	mmapfile_t *f = sealable_pair(&twin, data, n);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	add_seals(f, twin, F_SEAL_SHRINK);

	errno = 0;
	ssize_t r = mmapfile_truncate(f, 100);
	int err = errno;
	errno = 0;
	ssize_t tr = ftruncate(twin, 100);
	ck_assert_int_eq(tr, -1);
	same_answer("truncate down", r, err, tr, errno);
	same_sealed(f, twin);

	/* Appends grow it, as write(2) does on the twin. */
	for (size_t done = n; done < 3 * n; done += 1000) {
		ck_assert_int_eq(mmapfile_write(f, data + done, 1000), 1000);
		ck_assert_int_eq(write(twin, data + done, 1000), 1000);
	}
	ck_assert_int_eq(mmapfile_size(f), (off_t)(3 * n));
	errno = 0;
	r = mmapfile_sync(f);
	ck_assert_msg(r == 0, "sync under F_SEAL_SHRINK after growth: %s", strerror(errno));
	same_sealed(f, twin);
	int keep = dup(mmapfile_fd(f));
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_fd_size(keep), (off_t)(3 * n));
	close(keep);
	close(twin);
	free(data);
}
END_TEST

/* Without MMAPFILE_MEMFD_SEALABLE the memfd takes no seal, as a plain one
 * made without MFD_ALLOW_SEALING. */
START_TEST(test_seal_refused)
{
	mmapfile_t *f = mmapfile_memfd("unsealable", 100, 0, NULL);
	ck_assert_ptr_nonnull(f);
	int twin = memfd_create("twin", MFD_CLOEXEC);
	ck_assert_int_ge(twin, 0);
	static const int seals[] = { F_SEAL_GROW, F_SEAL_SHRINK, F_SEAL_SEAL };
	for (size_t k = 0; k < sizeof seals / sizeof seals[0]; k++) {
		errno = 0;
		int r = fcntl(mmapfile_fd(f), F_ADD_SEALS, seals[k]);
		int err = errno;
		errno = 0;
		int tr = fcntl(twin, F_ADD_SEALS, seals[k]);
		ck_assert_int_eq(tr, -1);
		same_answer("F_ADD_SEALS", r, err, tr, errno);
	}
	ck_assert_int_eq(fcntl(mmapfile_fd(f), F_GET_SEALS), fcntl(twin, F_GET_SEALS));
	/* Growth is not held back. */
	ck_assert_int_eq(mmapfile_writeat(f, "x", 1, 200000), 1);
	ck_assert_int_eq(mmapfile_size(f), 200001);
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(twin);
}
END_TEST

/* ---- options on a memfd handle ---- */

/* Bytes of [p, p + len) inside VMAs whose VmFlags (/proc/self/smaps) hold
 * flag, and inside any VMA at all. */
static void vma_cover(const void *p, size_t len, const char *flag, size_t *with, size_t *mapped)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + len;
	struct tu_vma *v;
	int n = tu_read_vmas(&v);
	*with = *mapped = 0;
	for (int i = 0; i < n; i++) {
		uintptr_t s = v[i].start > lo ? v[i].start : lo, e = v[i].end < hi ? v[i].end : hi;
		if (e <= s)
			continue;
		*mapped += e - s;
		if (tu_vm_flag(v[i].flags, flag))
			*with += e - s;
	}
	tu_free_vmas(v, n);
}

static size_t page_up(off_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return ((size_t)n + pg - 1) & ~(pg - 1);
}

/* Whether the kernel shows flag on a plain shared mapping of a memfd
 * given the same treatment (mlock, madvise): the oracle for what smaps
 * says of the library's mapping. */
static bool kernel_shows(const char *flag, int advice, bool lock)
{
	int fd = memfd_create("oracle", MFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	size_t len = 4 * page_up(1);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	bool ok = true;
	if (lock && tu_sys_mlock(m, len) != 0)
		ok = false;
	if (advice >= 0 && madvise(m, len, advice) != 0)
		ok = false;
	size_t with = 0, mapped = 0;
	if (ok)
		vma_cover(m, len, flag, &with, &mapped);
	munmap(m, len);
	close(fd);
	return ok && with == len;
}

START_TEST(test_opts_lock_advice)
{
	/* The test locks about 2.5 MiB (1.4 MiB of file and a reserve). */
	struct rlimit lim;
	ck_assert_int_eq(getrlimit(RLIMIT_MEMLOCK, &lim), 0);
	bool may_lock = geteuid() == 0 || lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= (rlim_t)(8 * MiB);
	bool show_lo = may_lock && kernel_shows("lo", -1, true), show_rr = kernel_shows("rr", MADV_RANDOM, false);
	if (!may_lock)
		printf("SKIPPED the lock half of opts_lock_advice: RLIMIT_MEMLOCK is %llu bytes\n",
		       (unsigned long long)lim.rlim_cur);
	else if (!show_lo)
		printf("SKIPPED the lock half of opts_lock_advice: mlock of a memfd mapping not shown in smaps\n");
	if (!show_rr)
		printf("SKIPPED the advice half of opts_lock_advice: MADV_RANDOM not shown in smaps\n");
	fflush(stdout);
	struct mmapfile_options o = { .size = sizeof o, .flags = may_lock ? MMAPFILE_OPT_LOCK : 0,
	                              .advice = MMAPFILE_MADV_RANDOM };
	mmapfile_t *f = mmapfile_memfd("opts", 200 * KiB, 0, &o);
	ck_assert_msg(f != NULL, "mmapfile_memfd with LOCK and RANDOM: %s", strerror(errno));
	ck_assert_int_eq(mmapfile_size(f), 200 * KiB);

	size_t with, mapped;
	unsigned char *p = mmapfile_view(f, 0, 200 * KiB);
	ck_assert_ptr_nonnull(p);
	vma_cover(p, page_up(200 * KiB), "lo", &with, &mapped);
	ck_assert_uint_eq(mapped, page_up(200 * KiB));
	if (show_lo)
		ck_assert_uint_eq(with, mapped);
	vma_cover(p, page_up(200 * KiB), "rr", &with, &mapped);
	if (show_rr)
		ck_assert_uint_eq(with, mapped);
	if (may_lock) /* locked pages are in memory */
		ck_assert_int_eq(mmapfile_resident(f, 0, 0), 200 * KiB);

	/* Growth keeps both. */
	unsigned char *buf = tu_xmalloc(64 * KiB);
	tu_fill(buf, 64 * KiB, 5);
	off_t end = 0;
	while (end < 1200 * KiB) {
		ck_assert_int_eq(mmapfile_writeat(f, buf, 64 * KiB, 200 * KiB + end), 64 * KiB);
		end += 64 * KiB;
	}
	off_t size = 200 * KiB + end;
	ck_assert_int_eq(mmapfile_release(f, p), 0);
	p = mmapfile_view(f, 0, (size_t)size);
	ck_assert_ptr_nonnull(p);
	vma_cover(p, page_up(size), "lo", &with, &mapped);
	ck_assert_uint_eq(mapped, page_up(size));
	if (show_lo)
		ck_assert_msg(with == mapped, "after growth %zu of %zu bytes locked", with, mapped);
	vma_cover(p, page_up(size), "rr", &with, &mapped);
	if (show_rr)
		ck_assert_msg(with == mapped, "after growth %zu of %zu bytes MADV_RANDOM", with, mapped);
	ck_assert_uint_eq(tu_first_diff(p + size - 64 * KiB, buf, 64 * KiB), 64 * KiB);

	/* A cut lets the pages past the end go. */
	ck_assert_int_eq(mmapfile_release(f, p), 0);
	ck_assert_int_eq(mmapfile_truncate(f, 8 * KiB), 0);
	p = mmapfile_view(f, 0, 8 * KiB);
	ck_assert_ptr_nonnull(p);
	vma_cover(p, page_up(8 * KiB), "lo", &with, &mapped);
	if (show_lo)
		ck_assert_uint_eq(with, page_up(8 * KiB));
	vma_cover(p + page_up(8 * KiB), page_up(size) - page_up(8 * KiB), "lo", &with, &mapped);
	if (show_lo)
		ck_assert_msg(with == 0, "%zu bytes past the cut still locked", with);
	ck_assert_int_eq(mmapfile_release(f, p), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	free(buf);
}
END_TEST

/* A reserved maximum: a view at offset 0 keeps its address through growth
 * up to it, and the memfd's bytes are what was written. */
START_TEST(test_opts_max_size)
{
	struct mmapfile_options o = { .size = sizeof o, .max_size = 3 * MiB, .flags = MMAPFILE_OPT_POPULATE };
	mmapfile_t *f = mmapfile_memfd("max", 4096, 0, &o);
	ck_assert_ptr_nonnull(f);
	unsigned char *p0 = mmapfile_view(f, 0, 4096);
	ck_assert_ptr_nonnull(p0);
	memcpy(p0, "through the view", 16);
	size_t n = (size_t)(3 * MiB - 123);
	unsigned char *data = tu_xmalloc(n);
	tu_fill(data, n, 8);
	memcpy(data, "through the view", 16);
	ck_assert_int_eq(mmapfile_seek(f, 16, SEEK_SET), 16);
	for (size_t done = 16; done < n; done += 50000) {
		size_t k = n - done < 50000 ? n - done : 50000;
		ck_assert_int_eq(mmapfile_write(f, data + done, k), (ssize_t)k);
	}
	unsigned char *p1 = mmapfile_view(f, 0, n);
	ck_assert_ptr_eq(p1, p0);
	ck_assert_uint_eq(tu_first_diff(p1, data, n), n);
	check_handle(f, data, n);
	ck_assert_int_eq(mmapfile_release(f, p0), 0);
	ck_assert_int_eq(mmapfile_release(f, p1), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	free(data);
}
END_TEST

/* ---- huge pages ---- */

#define POOL 4 /* free huge pages during the huge page tests */
/* Free huge pages for the residency test: more than 8, so that counting
 * them takes more than 4096 of mincore's per-system-page entries. */
#define POOL_MANY 12
#define POOL_MANY_LEAST 9

static char huge_skip[256]; /* why the huge page tests cannot run, or "" */
static size_t huge;         /* the default huge page size */
static long pool_pages;     /* free huge pages the test case was given */
static long saved_nr = -1, saved_over = -1;
static pid_t pool_owner;
static int pool_lock = -1;  /* flock on the pool's sysctl: one program at a time sizes it */

static long read_long(const char *path)
{
	FILE *fp = fopen(path, "re");
	long v = -1;
	if (fp) {
		if (fscanf(fp, "%ld", &v) != 1)
			v = -1;
		fclose(fp);
	}
	return v;
}

static bool write_long(const char *path, long v)
{
	FILE *fp = fopen(path, "we");
	if (!fp)
		return false;
	bool ok = fprintf(fp, "%ld\n", v) > 0;
	return fclose(fp) == 0 && ok;
}

/* A HugePages_* line of /proc/meminfo. */
static long meminfo(const char *key)
{
	return tu_proc_value("/proc/meminfo", key);
}

/* Free huge pages no mapping has reserved. */
static long huge_available(void)
{
	return meminfo("HugePages_Free") - meminfo("HugePages_Rsvd");
}

#define NR_PATH "/proc/sys/vm/nr_hugepages"
#define OVER_PATH "/proc/sys/vm/nr_overcommit_hugepages"

/* Put the pool back as it was: after the test case, and at exit of the
 * process that sized it (not of the children Check forks, which inherit
 * the atexit). */
static void pool_restore(void)
{
	if (getpid() != pool_owner)
		return;
	if (saved_nr >= 0) {
		write_long(NR_PATH, saved_nr);
		write_long(OVER_PATH, saved_over);
		saved_nr = saved_over = -1;
	}
	if (pool_lock >= 0) {
		close(pool_lock);
		pool_lock = -1;
	}
}

/* Another run of these tests (another build tree, say) sizes the same
 * pool: wait for it, up to a minute. */
static bool lock_pool(void)
{
	pool_lock = open(NR_PATH, O_RDONLY | O_CLOEXEC);
	if (pool_lock < 0)
		return false;
	for (int tries = 0; tries < 600; tries++) {
		if (flock(pool_lock, LOCK_EX | LOCK_NB) == 0)
			return true;
		if (errno != EWOULDBLOCK)
			break;
		usleep(100000);
	}
	close(pool_lock);
	pool_lock = -1;
	return false;
}

/* Size the pool to want free pages for a test case, at least least of
 * them (else the test case is skipped, the reason in huge_skip). */
static void pool_setup_pages(long want, long least)
{
	huge_skip[0] = '\0';
	pool_pages = 0;
	if (geteuid() != 0) {
		snprintf(huge_skip, sizeof huge_skip, "sizing the huge page pool needs root");
		return;
	}
	int fd = memfd_create("mmapfile-probe", MFD_CLOEXEC | MFD_HUGETLB);
	if (fd < 0) {
		snprintf(huge_skip, sizeof huge_skip, "memfd_create(MFD_HUGETLB): %s", strerror(errno));
		return;
	}
	struct stat st;
	int rc = fstat(fd, &st);
	close(fd);
	if (rc != 0 || st.st_blksize <= 0) {
		snprintf(huge_skip, sizeof huge_skip, "no huge page size");
		return;
	}
	huge = (size_t)st.st_blksize;
	if (huge > (size_t)(32 * MiB)) {
		snprintf(huge_skip, sizeof huge_skip, "the default huge page is %zu MiB: too large here",
		         huge >> 20);
		return;
	}
	static bool registered;
	if (!registered) {
		atexit(pool_restore);
		registered = true;
	}
	pool_owner = getpid();
	if (!lock_pool()) {
		snprintf(huge_skip, sizeof huge_skip, "another program holds the huge page pool (flock %s)",
		         NR_PATH);
		return;
	}
	long nr = read_long(NR_PATH), over = read_long(OVER_PATH);
	long total = meminfo("HugePages_Total"), avail = huge_available();
	if (nr < 0 || over < 0 || total < 0 || avail < 0) {
		snprintf(huge_skip, sizeof huge_skip, "cannot read %s, %s or /proc/meminfo", NR_PATH, OVER_PATH);
		pool_restore();
		return;
	}
	saved_nr = nr;
	saved_over = over;
	/* No surplus pages: growth past the pool must fail. */
	if (!write_long(OVER_PATH, 0) || !write_long(NR_PATH, total - avail + want)) {
		snprintf(huge_skip, sizeof huge_skip, "cannot size the pool: %s", strerror(errno));
		pool_restore();
		return;
	}
	if ((avail = huge_available()) < least || avail > want) {
		snprintf(huge_skip, sizeof huge_skip, "asked for %ld free huge pages, the kernel gave %ld",
		         want, avail);
		pool_restore();
		return;
	}
	pool_pages = avail;
}

static void pool_setup(void)
{
	pool_setup_pages(POOL, POOL);
}

static void pool_setup_many(void)
{
	pool_setup_pages(POOL_MANY, POOL_MANY_LEAST);
}

static bool huge_ready(const char *test)
{
	if (!huge_skip[0])
		return true;
	printf("SKIPPED %s: %s\n", test, huge_skip);
	fflush(stdout);
	return false;
}

static size_t round_huge(off_t n)
{
	return ((size_t)n + huge - 1) & ~(huge - 1);
}

/* The memfd behind a hugetlb handle is whole huge pages, at least the
 * size. */
static void check_huge_len(mmapfile_t *f)
{
	off_t disk = tu_fd_size(mmapfile_fd(f)), size = mmapfile_size(f);
	ck_assert_msg(disk % (off_t)huge == 0 && disk >= size,
	              "size %lld: the file is %lld bytes, not whole huge pages of %zu", (long long)size,
	              (long long)disk, huge);
}

/* The handle holds exactly model[0, n) (read through the handle; pread
 * does not work on hugetlbfs). */
static void check_huge(mmapfile_t *f, const unsigned char *model, size_t n, unsigned char *buf)
{
	ck_assert_int_eq(mmapfile_size(f), (off_t)n);
	ck_assert_int_eq(mmapfile_readat(f, buf, n + 1, 0), (ssize_t)n);
	size_t i = tu_first_diff(buf, model, n);
	ck_assert_msg(i == n, "byte %zu of %zu is %#x, not %#x", i, n, buf[i], model[i]);
	check_huge_len(f);
}

/* What the kernel says to a hugetlb memfd asked for more pages than the
 * pool has free: the errno an exhausted pool must give. */
static int pool_exhausted_errno(size_t pages)
{
	int fd = memfd_create("twin", MFD_CLOEXEC | MFD_HUGETLB);
	ck_assert_int_ge(fd, 0);
	int rc, err;
	do { /* hugetlbfs stops at any signal; the pages it got stay */
		errno = 0;
		rc = fallocate(fd, 0, 0, (off_t)(pages * huge));
		err = errno;
	} while (rc != 0 && err == EINTR);
	close(fd);
	ck_assert_msg(rc == -1, "fallocate of %zu huge pages with %ld free succeeded", pages,
	              huge_available());
	return err;
}

/* Random reads, writes, seeks and truncates on a hugetlb handle against a
 * buffer, within two huge pages (the handle's reserve fits the pool). */
START_TEST(test_huge_twin)
{
	if (!huge_ready("huge_twin"))
		return;
	long free0 = meminfo("HugePages_Free");
	mmapfile_t *f = mmapfile_memfd("huge", 0, MMAPFILE_MEMFD_HUGETLB, NULL);
	ck_assert_msg(f != NULL, "mmapfile_memfd(HUGETLB): %s", strerror(errno));
	struct stat st;
	ck_assert_int_eq(fstat(mmapfile_fd(f), &st), 0);
	ck_assert_int_eq(st.st_blksize, (blksize_t)huge);
	const size_t cap = 2 * huge;
	unsigned char *model = tu_xmalloc(cap + 1), *buf = tu_xmalloc(cap + 1), *data = tu_xmalloc(cap);
	memset(model, 0, cap + 1);
	size_t len = 0, cur = 0;
	uint64_t rng = 0x4b1e;
	for (int step = 0; step < 160; step++) {
		unsigned op = (unsigned)(tu_rand(&rng) % 10);
		size_t n = 1 + (size_t)(tu_rand(&rng) % (tu_rand(&rng) % 2 ? 300 : 200000));
		if (op < 3) { /* writeat */
			size_t off = (size_t)(tu_rand(&rng) % (len + 100000));
			if (off + n > cap)
				off = cap - n;
			tu_fill(data, n, (uint64_t)step);
			ck_assert_int_eq(mmapfile_writeat(f, data, n, (off_t)off), (ssize_t)n);
			memcpy(model + off, data, n);
			if (off + n > len)
				len = off + n;
		} else if (op < 5) { /* write at the cursor */
			if (cur + n > cap)
				ck_assert_int_eq(mmapfile_seek(f, (off_t)(cur = cap - n), SEEK_SET), (off_t)cur);
			tu_fill(data, n, (uint64_t)step);
			ck_assert_int_eq(mmapfile_write(f, data, n), (ssize_t)n);
			memcpy(model + cur, data, n);
			cur += n;
			if (cur > len)
				len = cur;
		} else if (op < 6) { /* readat */
			size_t off = (size_t)(tu_rand(&rng) % (len + 1000));
			size_t want = off >= len ? 0 : (len - off < n ? len - off : n);
			ck_assert_int_eq(mmapfile_readat(f, buf, n, (off_t)off), (ssize_t)want);
			ck_assert_uint_eq(tu_first_diff(buf, model + off, want), want);
		} else if (op < 7) { /* read at the cursor */
			size_t want = cur >= len ? 0 : (len - cur < n ? len - cur : n);
			ck_assert_int_eq(mmapfile_read(f, buf, n), (ssize_t)want);
			ck_assert_uint_eq(tu_first_diff(buf, model + cur, want), want);
			cur += want;
		} else if (op < 8) { /* seek */
			cur = (size_t)(tu_rand(&rng) % cap);
			ck_assert_int_eq(mmapfile_seek(f, (off_t)cur, SEEK_SET), (off_t)cur);
		} else { /* truncate to any length, a non-multiple of the page mostly */
			size_t to = (size_t)(tu_rand(&rng) % (cap + 1));
			ck_assert_msg(mmapfile_truncate(f, (off_t)to) == 0, "truncate to %zu: %s", to,
			              strerror(errno));
			if (to < len)
				memset(model + to, 0, len - to);
			len = to;
		}
		ck_assert_int_eq(mmapfile_size(f), (off_t)len);
		ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), (off_t)cur);
		check_huge_len(f);
		if (step % 8 == 0)
			check_huge(f, model, len, buf);
	}
	check_huge(f, model, len, buf);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), (off_t)round_huge((off_t)len));
	check_huge(f, model, len, buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
	free(model);
	free(buf);
	free(data);
}
END_TEST

/* Growth past the pool: the errno of the kernel's own refusal, nothing
 * lost, no page kept; freeing pages lets the growth through. */
START_TEST(test_huge_pool)
{
	if (!huge_ready("huge_pool"))
		return;
	long free0 = meminfo("HugePages_Free");
	int fds = tu_count_fds();
	int enospc = pool_exhausted_errno(POOL + 1);

	/* At creation: no handle, no descriptor, no page. */
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("too-big", (off_t)(POOL * huge + 1), MMAPFILE_MEMFD_HUGETLB, NULL));
	ck_assert_int_eq(errno, enospc);
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);

	mmapfile_t *f = mmapfile_memfd("pool", 0, MMAPFILE_MEMFD_HUGETLB, NULL);
	ck_assert_ptr_nonnull(f);
	size_t n = huge + huge / 2;
	unsigned char *model = tu_xmalloc(POOL * huge + 1), *buf = tu_xmalloc(POOL * huge + 1);
	memset(model, 0, POOL * huge + 1);
	tu_fill(model, n, 12);
	for (size_t done = 0; done < n; done += 256 * KiB)
		ck_assert_int_eq(mmapfile_write(f, model + done, 256 * KiB), 256 * KiB);
	check_huge(f, model, n, buf);

	/* Each way to grow past the pool, with no hole left before the new
	 * pages (see test_huge_pool_sparse for that). */
	long avail = huge_available();
	off_t past = (off_t)(POOL * huge);
	size_t big = (size_t)past + 5 - n;
	unsigned char *more = tu_xmalloc(big);
	tu_fill(more, big, 14);
	errno = 0;
	ck_assert_int_eq(mmapfile_writeat(f, more, big, (off_t)n), -1);
	ck_assert_int_eq(errno, enospc);
	check_huge(f, model, n, buf);
	ck_assert_int_eq(huge_available(), avail);
	errno = 0;
	ck_assert_int_eq(mmapfile_truncate(f, past + 1), -1);
	ck_assert_int_eq(errno, enospc);
	check_huge(f, model, n, buf);
	ck_assert_int_eq(huge_available(), avail);
	ck_assert_int_eq(mmapfile_seek(f, (off_t)n - 10, SEEK_SET), (off_t)n - 10);
	errno = 0;
	ck_assert_int_eq(mmapfile_write(f, more, big + 10), -1);
	ck_assert_int_eq(errno, enospc);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), (off_t)n - 10);
	check_huge(f, model, n, buf);
	ck_assert_int_eq(huge_available(), avail);
	free(more);

	/* The handle goes on within the pages it has... */
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), (off_t)n);
	ck_assert_int_eq(mmapfile_write(f, model, 100), 100);
	memcpy(model + n, model, 100);
	n += 100;
	check_huge(f, model, n, buf);

	/* ...and after freeing pages, growth to the whole pool. */
	ck_assert_int_eq(mmapfile_truncate(f, 100), 0);
	memset(model + 100, 0, n - 100);
	n = 100;
	check_huge(f, model, n, buf);
	off_t at = past - (off_t)huge + 10;
	tu_fill(buf, 1000, 13);
	ck_assert_msg(mmapfile_writeat(f, buf, 1000, at) == 1000, "writeat after freeing: %s", strerror(errno));
	memcpy(model + at, buf, 1000);
	n = (size_t)at + 1000;
	check_huge(f, model, n, buf);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	check_huge(f, model, n, buf);
	ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), past);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
	ck_assert_int_eq(tu_count_fds(), fds);
	free(model);
	free(buf);
}
END_TEST

/* Growth past the pool by a write far past the end (the pages between stay
 * holes): the same errno as any growth past the pool. */
START_TEST(test_huge_pool_sparse)
{
	if (!huge_ready("huge_pool_sparse"))
		return;
	long free0 = meminfo("HugePages_Free");
	int enospc = pool_exhausted_errno(POOL + 1);
	mmapfile_t *f = mmapfile_memfd("sparse", 0, MMAPFILE_MEMFD_HUGETLB, NULL);
	ck_assert_ptr_nonnull(f);
	unsigned char model[10], buf[20];
	tu_fill(model, 10, 3);
	ck_assert_int_eq(mmapfile_write(f, model, 10), 10);
	errno = 0;
	ssize_t r = mmapfile_writeat(f, "far", 3, (off_t)(POOL * huge + 1));
	int err = errno;
	ck_assert_msg(r == -1 && err == enospc, "a write %d huge pages out, past the pool: %zd (%s), not %s",
	              POOL, r, r < 0 ? strerror(err) : "-", strerror(enospc));
	check_huge(f, model, 10, buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
}
END_TEST

/* A pool with a page left: an append that needs it gets it (the handle
 * gives up its reserve), and the size stays exact, after sync too. */
START_TEST(test_huge_last_page)
{
	if (!huge_ready("huge_last_page"))
		return;
	long free0 = meminfo("HugePages_Free");
	mmapfile_t *f = mmapfile_memfd("last", (off_t)((POOL - 1) * huge), MMAPFILE_MEMFD_HUGETLB, NULL);
	ck_assert_ptr_nonnull(f);
	size_t n = (POOL - 1) * huge;
	unsigned char *model = tu_xmalloc(n + 200), *buf = tu_xmalloc(n + 201);
	memset(model, 0, n);
	tu_fill(model + n, 200, 4);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), (off_t)n);
	ck_assert_msg(mmapfile_write(f, model + n, 100) == 100, "append into the last page: %s", strerror(errno));
	check_huge(f, model, n + 100, buf);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	check_huge(f, model, n + 100, buf);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), (off_t)(n + 100));
	ck_assert_int_eq(mmapfile_write(f, model + n + 100, 100), 100);
	check_huge(f, model, n + 200, buf);
	int keep = dup(mmapfile_fd(f));
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_fd_size(keep), (off_t)POOL * (off_t)huge);
	close(keep);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
	free(model);
	free(buf);
}
END_TEST

/* Truncating down to a length inside a huge page, then up: the bytes past
 * the cut read as zeros. */
START_TEST(test_huge_cut)
{
	if (!huge_ready("huge_cut"))
		return;
	long free0 = meminfo("HugePages_Free");
	mmapfile_t *f = mmapfile_memfd("cut", 0, MMAPFILE_MEMFD_HUGETLB, NULL);
	ck_assert_ptr_nonnull(f);
	size_t n = huge + huge / 2, cap = 2 * huge + 7;
	unsigned char *model = tu_xmalloc(cap + 1), *buf = tu_xmalloc(cap + 1);
	memset(model, 0, cap + 1);
	tu_fill(model, n, 21);
	ck_assert_int_eq(mmapfile_write(f, model, n), (ssize_t)n);
	check_huge(f, model, n, buf);
	static const size_t cuts[] = { 123, 4096, 1 };
	for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
		size_t to = huge / 2 * (k + 1) + cuts[k];
		ck_assert_int_eq(mmapfile_truncate(f, (off_t)to), 0);
		ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), (off_t)round_huge((off_t)to));
		memset(model + to, 0, cap - to);
		check_huge(f, model, to, buf);
		ck_assert_int_eq(mmapfile_truncate(f, (off_t)cap), 0);
		check_huge(f, model, cap, buf);
		/* New bytes over the cut part, then cut again below them. */
		tu_fill(model + to, 5000, 22 + k);
		ck_assert_int_eq(mmapfile_writeat(f, model + to, 5000, (off_t)to), 5000);
		check_huge(f, model, cap, buf);
	}
	ck_assert_int_eq(mmapfile_truncate(f, 0), 0);
	ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), 0);
	ck_assert_int_eq(mmapfile_truncate(f, 3000), 0);
	memset(model, 0, cap);
	check_huge(f, model, 3000, buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
	free(model);
	free(buf);
}
END_TEST

/* Growth while signals arrive.  hugetlbfs's fallocate(2) stops with EINTR
 * whenever a signal is pending (even one whose handler has SA_RESTART), so
 * a growth that allocates with it must go on where it stopped: write(2)
 * and ftruncate(2) on a file never fail with EINTR for a handled signal.
 * A timer ticks every 100 us, so that signals land inside the allocation
 * (clearing a huge page takes about that long). */
static volatile sig_atomic_t ticks;

static void on_tick(int sig)
{
	(void)sig;
	ticks++;
}

START_TEST(test_huge_signals)
{
	if (!huge_ready("huge_signals"))
		return;
	long free0 = meminfo("HugePages_Free");
	struct sigaction sa = { .sa_handler = on_tick, .sa_flags = SA_RESTART }, old;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old), 0);
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	timer_t timer;
	ck_assert_int_eq(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0);
	struct itimerspec every = { { 0, 100000 }, { 0, 100000 } };
	ck_assert_int_eq(timer_settime(timer, 0, &every, NULL), 0);
	mmapfile_t *f = mmapfile_memfd("signals", 0, MMAPFILE_MEMFD_HUGETLB, NULL);
	ck_assert_ptr_nonnull(f);
	unsigned char model[64], buf[64];
	tu_fill(model, sizeof model, 41);
	int failed = 0, err = 0;
	for (int round = 0; round < 12 && !failed; round++) {
		if (mmapfile_truncate(f, (off_t)(POOL * huge)) != 0) {
			failed = 1;
			err = errno;
		} else if (mmapfile_truncate(f, 0) != 0 || mmapfile_seek(f, 0, SEEK_SET) != 0) {
			failed = 2;
			err = errno;
		} else if (mmapfile_writeat(f, model, sizeof model, (off_t)(2 * huge)) != (ssize_t)sizeof model) {
			failed = 3; /* growth by a write */
			err = errno;
		} else if (mmapfile_truncate(f, 0) != 0) {
			failed = 4;
			err = errno;
		}
	}
	ck_assert_int_eq(timer_delete(timer), 0);
	ck_assert_int_eq(sigaction(SIGUSR2, &old, NULL), 0);
	ck_assert_msg(!failed, "growth %s with a timer ticking: %s",
	              failed == 3 ? "by a write" : "by truncate", strerror(err));
	ck_assert_int_gt(ticks, 0);
	ck_assert_int_eq(mmapfile_writeat(f, model, sizeof model, 100), (ssize_t)sizeof model);
	memset(buf, 0, sizeof buf);
	ck_assert_int_eq(mmapfile_readat(f, buf, sizeof buf, 100), (ssize_t)sizeof buf);
	ck_assert_int_eq(memcmp(buf, model, sizeof buf), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
}
END_TEST

/* ---- residency of huge pages ---- */

/* What mincore(2) says of the handle's own mapping (base: a view at offset
 * 0), counted as mmapfile_resident promises (vmtouch's way): bytes
 * [off, off + len) of a file of size bytes (len 0: to the end), widened to
 * whole huge pages, each resident page in full, the file's last one only
 * up to its end.  mincore answers per system page; a huge page counts as
 * resident when any of its system pages is. */
static off_t resident_oracle(const unsigned char *base, off_t size, off_t off, size_t len)
{
	if (off >= size)
		return 0;
	size_t sys = (size_t)sysconf(_SC_PAGESIZE), per = huge / sys;
	off_t end = len && (off_t)len < size - off ? off + (off_t)len : size;
	off_t start = off / (off_t)huge * (off_t)huge, stop = (off_t)round_huge(end);
	size_t n = (size_t)(stop - start) / sys;
	unsigned char *vec = tu_xmalloc(n);
	ck_assert_msg(mincore((void *)(base + start), (size_t)(stop - start), vec) == 0, "mincore: %s",
	              strerror(errno));
	off_t total = 0;
	for (size_t i = 0; i < n; i += per) {
		bool in = false;
		for (size_t j = 0; j < per && !in; j++)
			in = vec[i + j] & 1;
		off_t at = start + (off_t)(i * sys);
		if (in)
			total += size - at < (off_t)huge ? size - at : (off_t)huge;
	}
	free(vec);
	return total;
}

/* mmapfile_resident of [off, off + len) is what mincore says, and want
 * when want >= 0. */
static void check_resident(mmapfile_t *f, const unsigned char *base, off_t off, size_t len, off_t want,
                           const char *when)
{
	off_t size = mmapfile_size(f);
	errno = 0;
	off_t got = mmapfile_resident(f, off, len);
	ck_assert_msg(got >= 0, "%s: mmapfile_resident(%lld, %zu): %s", when, (long long)off, len,
	              strerror(errno));
	off_t oracle = resident_oracle(base, size, off, len);
	ck_assert_msg(got == oracle, "%s: mmapfile_resident(%lld, %zu) = %lld, mincore says %lld", when,
	              (long long)off, len, (long long)got, (long long)oracle);
	if (want >= 0)
		ck_assert_msg(got == want, "%s: mmapfile_resident(%lld, %zu) = %lld, want %lld", when,
		              (long long)off, len, (long long)got, (long long)want);
}

/* A handle of many huge pages (more than 8: mincore answers for 512 system
 * pages of each, more than a vector of one entry per huge page holds).
 * Only the pages the handle touched are in its mapping: one page of a
 * fresh handle, then more, then all; the last page counts to the end. */
START_TEST(test_huge_resident)
{
	if (!huge_ready("huge_resident"))
		return;
	long free0 = meminfo("HugePages_Free");
	off_t n = pool_pages, H = (off_t)huge;
	if (n < POOL_MANY)
		printf("NOTE huge_resident: the pool could hold %lld huge pages, not %d: sized to that\n",
		       (long long)n, POOL_MANY);
	off_t size = n * H;
	mmapfile_t *f = mmapfile_memfd("resident", size, MMAPFILE_MEMFD_HUGETLB, NULL);
	ck_assert_msg(f != NULL, "mmapfile_memfd of %lld huge pages: %s", (long long)n, strerror(errno));
	ck_assert_int_eq(mmapfile_size(f), size);
	unsigned char *v = mmapfile_view(f, 0, (size_t)size);
	ck_assert_ptr_nonnull(v);
	check_resident(f, v, 0, 0, -1, "fresh");

	/* One page touched: that page's bytes, whichever range asks. */
	off_t mid = n / 2 * H;
	ck_assert_int_eq(mmapfile_writeat(f, "x", 1, mid + 7), 1);
	check_resident(f, v, 0, 0, H, "one page touched");
	check_resident(f, v, mid + 100, 10, H, "one page touched, 10 bytes of it");
	check_resident(f, v, mid - 1, 2, H, "one page touched, across its start");
	check_resident(f, v, 0, (size_t)mid, 0, "one page touched, the pages before it");
	check_resident(f, v, mid + H, 0, 0, "one page touched, the pages after it");

	/* Every third page, then every page. */
	off_t touched = 1;
	for (off_t k = 0; k < n; k += 3) {
		ck_assert_int_eq(mmapfile_writeat(f, "t", 1, k * H + 11), 1);
		touched += k != n / 2;
	}
	check_resident(f, v, 0, 0, touched * H, "every third page touched");
	for (off_t k = 0; k < n; k++)
		ck_assert_int_eq(mmapfile_writeat(f, "a", 1, k * H + 12), 1);
	check_resident(f, v, 0, 0, size, "every page touched");

	/* Ranges anywhere, against mincore. */
	uint64_t rng = 0x4e51;
	for (int i = 0; i < 40; i++) {
		off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(size + H));
		size_t len = (size_t)(tu_rand(&rng) % (uint64_t)(3 * H));
		check_resident(f, v, off, len, -1, "a random range");
	}

	/* A cut inside a page: the last page counts only to the end. */
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	off_t size2 = (n - 2) * H + 1000;
	ck_assert_int_eq(mmapfile_truncate(f, size2), 0);
	v = mmapfile_view(f, 0, (size_t)size2);
	ck_assert_ptr_nonnull(v);
	check_resident(f, v, 0, 0, size2, "after a cut");
	check_resident(f, v, size2 - 1, 1, 1000, "after a cut, the last byte");
	check_resident(f, v, size2, 10, 0, "after a cut, past the end");
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
}
END_TEST

/* ---- a hugetlb memfd cut under the handle ---- */

/* Another descriptor on the memfd cuts it under the handle, to one huge
 * page of three.  As on a plain memfd handle doing the same (the twin,
 * whose own descriptor pread(2) answers too): a read past the cut returns
 * 0, the size is the cut size, the bytes before it stay; the memfd keeps
 * the length it was cut to (a writable mapping of a hugetlbfs file makes
 * the file as long as itself, so mapping all three pages again would undo
 * the cut); writes inside the file work, and growth again reads zeros in
 * the gap.  _i 1: another memfd takes every free huge page after the cut,
 * so that the old length could not even be mapped again; growth then
 * fails as the pool's exhaustion does, and works once the pages are back. */
START_TEST(test_huge_cut_by_other)
{
	if (!huge_ready("huge_cut_by_other"))
		return;
	long free0 = meminfo("HugePages_Free");
	int fds = tu_count_fds();
	const off_t H = (off_t)huge;
	mmapfile_t *f = mmapfile_memfd("cut-by-other", 0, MMAPFILE_MEMFD_HUGETLB, NULL);
	mmapfile_t *t = mmapfile_memfd("cut-by-other-twin", 0, 0, NULL);
	ck_assert(f && t);
	size_t cap = (size_t)(3 * H);
	unsigned char *model = tu_xmalloc(cap + 1), *buf = tu_xmalloc(cap + 1), *tbuf = tu_xmalloc(cap + 1);
	memset(model, 0, cap + 1);
	ck_assert_int_eq(mmapfile_truncate(f, 3 * H), 0);
	ck_assert_int_eq(mmapfile_truncate(t, 3 * H), 0);
	/* Bytes in each page, one write across the first boundary. */
	off_t at[] = { 10, H - 500, 2 * H + 3, 3 * H - 50 };
	size_t len[] = { 100, 1000, 5, 50 };
	for (int k = 0; k < 4; k++) {
		tu_fill(model + at[k], len[k], 60 + (uint64_t)k);
		ck_assert_int_eq(mmapfile_writeat(f, model + at[k], len[k], at[k]), (ssize_t)len[k]);
		ck_assert_int_eq(mmapfile_writeat(t, model + at[k], len[k], at[k]), (ssize_t)len[k]);
	}
	check_huge(f, model, cap, buf);

	/* The cut, through descriptors of their own on the two memfds. */
	int cutter[2];
	mmapfile_t *both[2] = { f, t };
	for (int k = 0; k < 2; k++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", mmapfile_fd(both[k]));
		cutter[k] = open(path, O_RDWR | O_CLOEXEC);
		ck_assert_msg(cutter[k] >= 0, "open %s: %s", path, strerror(errno));
		ck_assert_int_eq(ftruncate(cutter[k], H), 0);
		close(cutter[k]);
	}
	memset(model + H, 0, cap - (size_t)H);
	ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), H);
	int other = -1;
	if (_i == 1) {
		long avail = huge_available();
		ck_assert_int_gt(avail, 0);
		other = memfd_create("other", MFD_CLOEXEC | MFD_HUGETLB);
		ck_assert_int_ge(other, 0);
		int rc;
		do /* hugetlbfs stops at any signal; the pages it got stay */
			rc = fallocate(other, 0, 0, (off_t)avail * H);
		while (rc != 0 && errno == EINTR);
		ck_assert_msg(rc == 0, "fallocate of %ld huge pages: %s", avail, strerror(errno));
		ck_assert_int_eq(huge_available(), 0);
	}

	/* A read past the cut, as the twin answers it. */
	errno = 0;
	ssize_t r = mmapfile_readat(f, buf, 5, 2 * H + 3);
	int err = errno;
	ssize_t tr = mmapfile_readat(t, tbuf, 5, 2 * H + 3);
	ck_assert_int_eq(tr, 0);
	ck_assert_int_eq(pread(mmapfile_fd(t), tbuf, 5, 2 * H + 3), 0);
	ck_assert_msg(r == tr, "a read past the cut: %zd (%s), the twin's %zd", r, r < 0 ? strerror(err) : "-",
	              tr);
	ck_assert_int_eq(mmapfile_size(t), H);
	ck_assert_msg(mmapfile_size(f) == H, "size %lld after the cut to %lld", (long long)mmapfile_size(f),
	              (long long)H);
	ck_assert_msg(tu_fd_size(mmapfile_fd(f)) == H, "the memfd is %lld bytes after a cut to %lld",
	              (long long)tu_fd_size(mmapfile_fd(f)), (long long)H);
	check_huge(f, model, (size_t)H, buf);
	ck_assert_int_eq(mmapfile_readat(t, tbuf, cap, 0), (ssize_t)H);
	ck_assert_uint_eq(tu_first_diff(buf, tbuf, (size_t)H), (size_t)H);

	/* Writes inside the file. */
	for (int k = 0; k < 2; k++) {
		off_t o = k ? H - 3 : 20;
		memcpy(model + o, "in!", 3);
		errno = 0;
		r = mmapfile_writeat(f, "in!", 3, o);
		ck_assert_msg(r == 3, "a write of 3 bytes at %lld, inside the file of %lld: %zd (%s)", (long long)o,
		              (long long)H, r, r < 0 ? strerror(errno) : "-");
		ck_assert_int_eq(mmapfile_writeat(t, "in!", 3, o), 3);
	}
	check_huge(f, model, (size_t)H, buf);
	ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), H);

	if (_i == 1) {
		int enospc = pool_exhausted_errno(1);
		errno = 0;
		r = mmapfile_writeat(f, "g", 1, H + 10);
		err = errno;
		ck_assert_msg(r == -1 && err == enospc, "growth with no free huge page: %zd (%s), want %s", r,
		              r < 0 ? strerror(err) : "-", strerror(enospc));
		check_huge(f, model, (size_t)H, buf);
		close(other);
	}
	/* Growth again: zeros up to the new bytes, as on the twin. */
	memcpy(model + 2 * H + 3, "again", 5);
	ck_assert_int_eq(mmapfile_writeat(f, "again", 5, 2 * H + 3), 5);
	ck_assert_int_eq(mmapfile_writeat(t, "again", 5, 2 * H + 3), 5);
	size_t n = (size_t)(2 * H + 8);
	check_huge(f, model, n, buf);
	ck_assert_int_eq(mmapfile_readat(t, tbuf, cap, 0), (ssize_t)n);
	ck_assert_uint_eq(tu_first_diff(buf, tbuf, n), n);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(tu_fd_size(mmapfile_fd(f)), (off_t)round_huge((off_t)n));
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(mmapfile_close(t), 0);
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
	free(model);
	free(buf);
	free(tbuf);
}
END_TEST

/* ---- a file on hugetlbfs ---- */

/* A hugetlbfs of this test's, in a mount namespace of its own; NULL, after
 * printing why, when there cannot be one. */
static const char *mount_hugetlbfs(void)
{
	const char *step, *dir;
	if (tu_private_mounts(&step) != 0) {
		printf("SKIPPED hugetlbfs_file: a private mount namespace (%s): %s\n", step, strerror(errno));
		return NULL;
	}
	if (!(dir = tu_mount("hugetlbfs", "hugetlbfs", "mode=0700"))) {
		printf("SKIPPED hugetlbfs_file: mounting hugetlbfs: %s\n", strerror(errno));
		return NULL;
	}
	return dir;
}

START_TEST(test_hugetlbfs_file)
{
	if (!huge_ready("hugetlbfs_file"))
		return;
	const char *dir = mount_hugetlbfs();
	if (!dir)
		return;
	long free0 = meminfo("HugePages_Free");
	char path[4480], path2[4480];
	snprintf(path, sizeof path, "%s/f", dir);
	snprintf(path2, sizeof path2, "%s/g", dir);
	const size_t cap = 2 * huge;
	unsigned char *model = tu_xmalloc(cap + 1), *buf = tu_xmalloc(cap + 1);
	memset(model, 0, cap + 1);

	mmapfile_t *f = mmapfile_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(f != NULL, "mmapfile_open on hugetlbfs: %s", strerror(errno));
	tu_fill(model, 100, 31);
	ck_assert_int_eq(mmapfile_write(f, model, 100), 100);
	tu_fill(model + huge + 5, 1000, 32);
	ck_assert_int_eq(mmapfile_writeat(f, model + huge + 5, 1000, (off_t)huge + 5), 1000);
	size_t n = huge + 1005;
	check_huge(f, model, n, buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(path), (off_t)round_huge((off_t)n));

	/* Opened again: the file is whole pages, the bytes past what was
	 * written zeros. */
	f = mmapfile_open(path, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	n = round_huge((off_t)n);
	check_huge(f, model, n, buf);
	ck_assert_int_eq(mmapfile_truncate(f, 10), 0);
	memset(model + 10, 0, cap - 10);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), 10);
	ck_assert_int_eq(mmapfile_write(f, "0123456789", 10), 10);
	memcpy(model + 10, "0123456789", 10);
	check_huge(f, model, 20, buf);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(tu_file_size(path), (off_t)huge);
	check_huge(f, model, 20, buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(path), (off_t)huge);

	/* Read-only: the whole page, zeros past what was written. */
	f = mmapfile_open(path, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_size(f), (off_t)huge);
	ck_assert_int_eq(mmapfile_read(f, buf, cap), (ssize_t)huge);
	ck_assert_uint_eq(tu_first_diff(buf, model, huge), huge);
	errno = 0;
	ck_assert_int_eq(mmapfile_write(f, "x", 1), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* mmapfile_create with a size inside a page, and growth past the pool
	 * on this file system too. */
	f = mmapfile_create(path2, 12345, 0, 0600);
	ck_assert_msg(f != NULL, "mmapfile_create on hugetlbfs: %s", strerror(errno));
	ck_assert_int_eq(mmapfile_size(f), 12345);
	int enospc = pool_exhausted_errno((size_t)huge_available() + 2);
	errno = 0;
	ck_assert_int_eq(mmapfile_truncate(f, (off_t)(POOL * huge + 1)), -1);
	ck_assert_int_eq(errno, enospc);
	ck_assert_int_eq(mmapfile_size(f), 12345);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(path2), (off_t)huge);

	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(unlink(path2), 0);
	ck_assert_int_eq(meminfo("HugePages_Free"), free0);
	tu_unmount_all();
	free(model);
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memfd");
	TCase *tc = tu_tcase("args", 30);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tu_tcase("twin", 60);
	tcase_add_loop_test(tc, test_twin_random, 0, 3);
	suite_add_tcase(s, tc);

	tc = tu_tcase("share", 30);
	tcase_add_loop_test(tc, test_share, 0, 2);
	suite_add_tcase(s, tc);

	tc = tu_tcase("seal", 30);
	tcase_add_test(tc, test_seal_grow);
	tcase_add_test(tc, test_seal_shrink);
	tcase_add_test(tc, test_seal_refused);
	suite_add_tcase(s, tc);

	tc = tu_tcase("options", 30);
	tcase_add_test(tc, test_opts_lock_advice);
	tcase_add_test(tc, test_opts_max_size);
	suite_add_tcase(s, tc);

	/* The pool is sized by the process that runs the suite, around the
	 * test case, so that it is put back whatever the tests do. */
	tc = tu_tcase("hugetlb", 60);
	tcase_add_unchecked_fixture(tc, pool_setup, pool_restore);
	tcase_add_test(tc, test_huge_twin);
	tcase_add_test(tc, test_huge_pool);
	tcase_add_test(tc, test_huge_pool_sparse);
	tcase_add_test(tc, test_huge_last_page);
	tcase_add_test(tc, test_huge_cut);
	tcase_add_test(tc, test_huge_signals);
	tcase_add_test(tc, test_hugetlbfs_file);
	tcase_add_loop_test(tc, test_huge_cut_by_other, 0, 2);
	suite_add_tcase(s, tc);

	/* A larger pool for the residency of many huge pages. */
	tc = tu_tcase("hugetlb_many", 60);
	tcase_add_unchecked_fixture(tc, pool_setup_many, pool_restore);
	tcase_add_test(tc, test_huge_resident);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
