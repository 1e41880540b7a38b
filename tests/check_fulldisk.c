/* check_fulldisk.c - a real full disk (spec, errors: "A full disk: ENOSPC
 * from the call that needed the space, never a crash; what was written
 * before stays intact").
 *
 * Every test mounts small tmpfs file systems of its own, in a mount namespace
 * private to this program (so nothing shows on the host, and everything
 * goes when the program ends; the tests unmount them all the same).  That
 * needs root; without it the program is skipped (exit 77).
 *
 * The oracle is twofold.  A twin tmpfs of the same size, on which the same
 * operations are made with plain descriptors (write(2), pwrite(2),
 * fallocate(2)), says where a full disk must answer ENOSPC; and what the
 * calls reported written must be exactly what the file holds, read back
 * through the handle and with read(2) on a fresh descriptor.  Check runs
 * every test in a child process and reports one killed by a signal as an
 * error, so a SIGBUS that escaped the library fails the test.
 *
 * tmpfs allocates a page at the first fault on a hole, read or write, and a
 * fault it cannot satisfy is SIGBUS: the sparse-file tests meet the
 * library's fault guard, which must turn that into ENOSPC (writes) or the
 * zeros read(2) gives (reads). */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB (1024 * KiB)

/* ---- the small file systems ---- */

/* A tmpfs of size_kib KiB and at most inodes inodes (its root included), on
 * a new directory of the fixture's (unmounted by its teardown). */
static const char *disk(const char *name, long size_kib, int inodes)
{
	char opts[96];
	snprintf(opts, sizeof opts, "size=%ldk,nr_inodes=%d,mode=0700", size_kib, inodes);
	const char *dir = tu_mount(name, "tmpfs", opts);
	ck_assert_msg(dir != NULL, "mount tmpfs (%s): %s", opts, strerror(errno));
	return dir;
}

static const char *in(const char *dir, const char *name)
{
	static char bufs[8][4480];
	static unsigned next;
	char *p = bufs[next++ % 8];
	snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
	return p;
}

static off_t free_bytes(const char *dir)
{
	struct statvfs sv;
	ck_assert_int_eq(statvfs(dir, &sv), 0);
	return (off_t)sv.f_bavail * (off_t)sv.f_frsize;
}

/* ---- data and checks ---- */

/* Figures for the report at the end. */
static unsigned long n_enospc, n_short, n_checked;

/* With MMAPFILE_TEST_FIGURES set, a line of figures per test. */
static void figures(const char *test, unsigned long ok, unsigned long shortw, unsigned long fails)
{
	if (getenv("MMAPFILE_TEST_FIGURES"))
		printf("%s: %lu writes whole, %lu short, %lu ENOSPC; %lu ENOSPC answers checked in all, "
		       "%lu bytes compared\n",
		       test, ok, shortw, fails, n_enospc, n_checked);
}

/* A full disk: the call failed with exactly ENOSPC.  err is errno saved
 * right after the call. */
static void expect_enospc(ssize_t r, int err, const char *what)
{
	ck_assert_msg(r == -1 && err == ENOSPC, "%s on a full disk: returned %zd, errno %d (%s)", what,
	              r, r < 0 ? err : 0, r < 0 ? strerror(err) : "-");
	n_enospc++;
}

/* The handle holds exactly want[0, n): its size, its bytes through
 * readat, and the same bytes through read(2) on a fresh descriptor, past
 * which the file on disk holds only zeros (the reserve). */
static void check_handle(mmapfile_t *f, const unsigned char *want, size_t n)
{
	ck_assert_int_eq(mmapfile_size(f), (off_t)n);
	unsigned char *buf = malloc(n + 4096);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(mmapfile_readat(f, buf, n + 4096, 0), (ssize_t)n);
	size_t i = tu_first_diff(buf, want, n);
	ck_assert_msg(i == n, "through the handle: byte %zu of %zu differs", i, n);

	int fd = open(mmapfile_name(f), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_msg(st.st_size >= (off_t)n, "file on disk %lld bytes, %zu written",
	              (long long)st.st_size, n);
	tu_pread_all(fd, buf, n, 0);
	i = tu_first_diff(buf, want, n);
	ck_assert_msg(i == n, "through read(2): byte %zu of %zu differs", i, n);
	for (off_t o = (off_t)n; o < st.st_size;) {
		ssize_t r = pread(fd, buf, 4096, o);
		ck_assert_int_gt(r, 0);
		for (ssize_t k = 0; k < r; k++)
			if (buf[k] != 0)
				ck_abort_msg("reserve byte %lld is %#x, not zero", (long long)(o + k), buf[k]);
		o += r;
	}
	close(fd);
	free(buf);
	n_checked += n;
}

/* After close: the file is exactly want[0, n). */
static void check_file(const char *path, const unsigned char *want, size_t n)
{
	size_t got;
	unsigned char *buf = tu_read_file(path, &got);
	ck_assert_msg(got == n, "%s: %zu bytes on disk, %zu reported written", path, got, n);
	size_t i = tu_first_diff(buf, want, n);
	ck_assert_msg(i == n, "%s: byte %zu differs", path, i);
	free(buf);
	n_checked += n;
}

/* Two files are byte for byte the same. */
static void check_same_files(const char *a, const char *b)
{
	size_t na, nb;
	unsigned char *pa = tu_read_file(a, &na), *pb = tu_read_file(b, &nb);
	ck_assert_msg(na == nb, "%s: %zu bytes, its twin %zu", a, na, nb);
	size_t i = tu_first_diff(pa, pb, na);
	ck_assert_msg(i == na, "%s: byte %zu differs from its twin", a, i);
	free(pa);
	free(pb);
	n_checked += na;
}

/* sync on a full disk: 0, or a clear error (the data is checked after). */
static void sync_full(mmapfile_t *f)
{
	int rc = mmapfile_sync(f);
	ck_assert_msg(rc == 0 || errno == ENOSPC || errno == EIO, "sync: %d, errno %s", rc,
	              strerror(errno));
	if (rc == 0) /* the reserve is gone: the file is exactly the size */
		ck_assert_int_eq(tu_file_size(mmapfile_name(f)), mmapfile_size(f));
}

/* A file of n bytes written with write(2), for the space it takes. */
static void filler(const char *path, size_t n)
{
	unsigned char *p = tu_random_bytes(n, 0xf111e4);
	tu_write_file(path, p, n);
	free(p);
}

/* The oracle for a sequential fill: write(2) data from `from` in chunks
 * until the disk is full; the bytes the file then holds.  (write(2) may
 * fill the last chunk in part; the library writes a chunk whole or not.) */
static size_t twin_fill(int fd, const unsigned char *data, size_t from, size_t chunk)
{
	size_t pos = from;
	for (;;) {
		ssize_t r = write(fd, data + pos, chunk);
		if (r > 0)
			pos += (size_t)r;
		if (r == (ssize_t)chunk)
			continue;
		if (r >= 0) { /* short: the next one says why */
			r = write(fd, data + pos, chunk);
			ck_assert_int_eq(r, -1);
		}
		ck_assert_msg(errno == ENOSPC, "twin write: %s", strerror(errno));
		return pos;
	}
}

/* mmapfile_write data from *total in chunks until a call fails: every call
 * writes all of its chunk or fails with -1 (an O_APPEND handle's appends are
 * write(2) on its descriptor, so there, as for write(2), the last may be
 * short, and the next fails).  Returns that errno. */
static int fill_chunks(mmapfile_t *f, const unsigned char *data, size_t *total, size_t chunk, bool append)
{
	for (;;) {
		ssize_t r = mmapfile_write(f, data + *total, chunk);
		int err = errno;
		if (r == (ssize_t)chunk) {
			*total += chunk;
			continue;
		}
		if (r > 0)
			n_short++;
		if (r > 0 && append) {
			*total += (size_t)r;
			r = mmapfile_write(f, data + *total, chunk);
			err = errno;
		}
		ck_assert_msg(r == -1, "mmapfile_write of %zu at %zu: short count %zd", chunk, *total, r);
		return err;
	}
}

/* After ENOSPC at total: the size and the cursor are what was reported
 * written; the same write fails the same way and changes nothing, and so
 * does one across the end (the bytes it overlaps keep what was written).
 * late_room > 0: a file system that may free space after the fact (btrfs
 * frees what a transaction pinned when the transaction commits), where a
 * write that found no room may find some a moment later; such a write must
 * be whole and in the file (want takes its bytes, want has late_room).
 * Returns the size then. */
static size_t after_enospc(mmapfile_t *f, unsigned char *want, size_t total, size_t chunk,
                           size_t late_room)
{
	ck_assert_int_eq(mmapfile_size(f), (off_t)total);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), (off_t)total);
	unsigned long late = 0;
	ssize_t r;
	while ((r = mmapfile_write(f, want + total, chunk)) == (ssize_t)chunk && late_room) {
		total += chunk;
		late++;
		ck_assert_uint_le(total + chunk, late_room);
	}
	expect_enospc(r, errno, "the same write again");
	ck_assert_int_eq(mmapfile_size(f), (off_t)total);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), (off_t)total);
	if (total >= 10 && mmapfile_writeat(f, "", 0, 0) == 0) { /* not O_APPEND */
		unsigned char *other = malloc(chunk + 10);
		ck_assert_ptr_nonnull(other);
		memset(other, 0xab, chunk + 10);
		r = mmapfile_writeat(f, other, chunk + 10, (off_t)total - 10);
		if (late_room && r == (ssize_t)(chunk + 10)) {
			memcpy(want + total - 10, other, chunk + 10);
			total += chunk;
			late++;
		} else {
			expect_enospc(r, errno, "a write across the end");
		}
		free(other);
	}
	if (late)
		printf("fill_dir: %lu writes found room the file system freed after ENOSPC\n", late);
	check_handle(f, want, total);
	return total;
}

/* ---- filling through mmapfile_write ---- */

static const struct fill_case {
	size_t chunk;
	int flags;
	long disk_kib;
} fill_cases[] = {
	{ 1, 0, 256 },
	{ 64, 0, 512 },
	{ 4096, 0, 1024 },
	{ 4097, 0, 1024 },
	{ 100 * 1024, 0, 1024 },
	{ 12345, O_APPEND, 1024 },
	{ 777, O_DSYNC, 512 },
};

START_TEST(test_write_fill)
{
	const struct fill_case *c = &fill_cases[_i];
	const char *d = disk("d", c->disk_kib, 16), *t = disk("t", c->disk_kib, 16);
	size_t room = (size_t)c->disk_kib * 1024;
	filler(in(d, "filler"), room / 4);
	filler(in(t, "filler"), room / 4);
	unsigned char *data = tu_random_bytes(room + 2 * c->chunk, 1000 + (uint64_t)_i);

	/* The twin: where write(2) finds the disk full, with the filler and
	 * after it is removed. */
	int tfd = open(in(t, "f"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(tfd, 0);
	size_t full1 = twin_fill(tfd, data, 0, c->chunk);
	ck_assert_int_eq(unlink(in(t, "filler")), 0);
	size_t full2 = twin_fill(tfd, data, full1, c->chunk);
	close(tfd);
	ck_assert(full1 > 0 && full2 > full1);

	mmapfile_t *f = mmapfile_open(in(d, "f"), O_RDWR | O_CREAT | O_TRUNC | c->flags, 0644);
	ck_assert_ptr_nonnull(f);
	size_t total = 0;
	bool append = (c->flags & O_APPEND) != 0;
	expect_enospc(-1, fill_chunks(f, data, &total, c->chunk, append), "mmapfile_write");
	/* Every chunk that had room was written: the library's reserve does
	 * not make it give up early. */
	ck_assert_uint_eq(total, append ? full1 : full1 / c->chunk * c->chunk);
	after_enospc(f, data, total, c->chunk, 0);

	/* What room is left takes one write of exactly that size; then not a
	 * byte more. */
	if (full1 > total) {
		ck_assert_int_eq(mmapfile_write(f, data + total, full1 - total), (ssize_t)(full1 - total));
		total = full1;
	}
	{
		ssize_t r1 = mmapfile_write(f, data + total, 1);
		expect_enospc(r1, errno, "a 1-byte write");
	}
	after_enospc(f, data, total, 1, 0);
	sync_full(f);
	check_handle(f, data, total);

	/* Room again: the same handle goes on writing. */
	ck_assert_int_eq(unlink(in(d, "filler")), 0);
	expect_enospc(-1, fill_chunks(f, data, &total, c->chunk, append), "mmapfile_write after freeing");
	ck_assert_uint_eq(total, append ? full2 : full1 + (full2 - full1) / c->chunk * c->chunk);
	after_enospc(f, data, total, c->chunk, 0);

	ck_assert_int_eq(mmapfile_close(f), 0);
	check_file(in(d, "f"), data, total);
	figures("write_fill", total / c->chunk, n_short, n_enospc);
	free(data);
}
END_TEST

/* ---- filling through mmapfile_writeat ---- */

/* Writes at increasing offsets with random lengths; after a failure the
 * length halves until a 1-byte write fails, then the filler is removed and
 * it goes on.  Without gaps, the twin makes each write with pwrite(2)
 * (undone when it does not fit whole, since the library's are all or
 * nothing) and every answer must match.  With gaps between the writes the
 * library's reserve may hold pages a gap leaves unused, so the fail points
 * may come earlier than the twin's: then only the writes the library
 * reported are made on the twin, and the files must match. */
static const struct writeat_case {
	off_t start;
	bool gaps;
} writeat_cases[] = {
	{ 0, false },
	{ 16 * MiB + 12345, false }, /* a far offset: a sparse hole, then data */
	{ 0, true },
	{ 3 * MiB + 1, true },
};

START_TEST(test_writeat_fill)
{
	const struct writeat_case *c = &writeat_cases[_i];
	const char *d = disk("d", 1024, 16), *t = disk("t", 1024, 16);
	filler(in(d, "filler"), 256 * KiB);
	filler(in(t, "filler"), 256 * KiB);
	int tfd = open(in(t, "f"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(tfd, 0);
	mmapfile_t *f = mmapfile_open(in(d, "f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);

	const size_t maxn = 40000;
	unsigned char *buf = malloc(maxn);
	ck_assert_ptr_nonnull(buf);
	uint64_t rng = 77 + (uint64_t)_i;
	off_t end = 0, next = c->start; /* the size; where the next write goes */
	size_t n = 0;
	int phase = 0, fails = 0;
	unsigned long oks = 0;
	for (int step = 0; phase < 2; step++) {
		ck_assert_int_lt(step, 20000);
		if (n == 0)
			n = 1 + tu_rand(&rng) % maxn;
		off_t off = next + (c->gaps ? (off_t)(tu_rand(&rng) % 12000) : 0);
		tu_fill(buf, n, (uint64_t)step);
		ssize_t r = mmapfile_writeat(f, buf, n, off);
		int err = errno;
		if (!c->gaps) {
			ssize_t tr = pwrite(tfd, buf, n, off);
			ck_assert_msg(tr >= 0 || errno == ENOSPC, "twin pwrite: %s", strerror(errno));
			if (tr != (ssize_t)n)
				ck_assert_int_eq(ftruncate(tfd, end), 0);
			ck_assert_msg((r == (ssize_t)n) == (tr == (ssize_t)n),
			              "writeat of %zu at %lld: %zd, pwrite(2) on the twin %zd", n,
			              (long long)off, r, tr);
		}
		if (r == (ssize_t)n) {
			oks++;
			if (c->gaps)
				ck_assert_int_eq(pwrite(tfd, buf, n, off), (ssize_t)n);
			next = end = off + (off_t)n;
			n = 0;
			continue;
		}
		expect_enospc(r, err, "mmapfile_writeat");
		ck_assert_int_eq(mmapfile_size(f), end);
		fails++;
		if (n > 1) {
			n /= 2;
			continue;
		}
		/* Full to the byte.  Sync and check on the full disk, then make
		 * room. */
		sync_full(f);
		n = 0;
		if (phase++ == 0) {
			ck_assert_int_eq(unlink(in(d, "filler")), 0);
			ck_assert_int_eq(unlink(in(t, "filler")), 0);
		}
	}
	ck_assert_int_ge(fails, 2);
	ck_assert_int_eq(mmapfile_size(f), end);
	/* Everything through the handle (holes included) is the twin's. */
	unsigned char *a = malloc(64 * KiB), *b = malloc(64 * KiB);
	ck_assert(a && b);
	for (off_t o = 0; o < end; o += 64 * KiB) {
		ssize_t r = mmapfile_readat(f, a, 64 * KiB, o);
		ck_assert_int_eq(r, pread(tfd, b, 64 * KiB, o));
		ck_assert_msg(tu_first_diff(a, b, (size_t)r) == (size_t)r, "readat at %lld differs", (long long)o);
	}
	free(a);
	free(b);
	close(tfd);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_same_files(in(d, "f"), in(t, "f"));
	figures("writeat_fill", oks, 0, (unsigned long)fails);
	free(buf);
}
END_TEST

/* ---- truncate ---- */

START_TEST(test_truncate_grow)
{
	const char *d = disk("d", 1024, 16), *t = disk("t", 1024, 16);
	const size_t n0 = 300 * KiB + 17;
	unsigned char *data = tu_random_bytes(n0, 5);
	mmapfile_t *f = mmapfile_open(in(d, "f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	for (size_t o = 0; o < n0; o += 10000) {
		size_t k = n0 - o < 10000 ? n0 - o : 10000;
		ck_assert_int_eq(mmapfile_write(f, data + o, k), (ssize_t)k);
	}
	tu_write_file(in(t, "f"), data, n0);
	int tfd = open(in(t, "f"), O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(tfd, 0);

	/* Far past the free space: ENOSPC, nothing changed, no block kept. */
	off_t disk_len = tu_file_size(in(d, "f")), avail = free_bytes(d);
	ck_assert_int_eq(mmapfile_truncate(f, 4 * MiB), -1);
	expect_enospc(-1, errno, "mmapfile_truncate");
	ck_assert_int_eq(fallocate(tfd, 0, 0, 4 * MiB), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(tu_file_size(in(d, "f")), disk_len);
	ck_assert_int_eq(free_bytes(d), avail);
	check_handle(f, data, n0);

	/* The largest size the twin can allocate: one byte more fails, that
	 * size succeeds, on the twin and through the handle alike. */
	struct stat st;
	ck_assert_int_eq(fstat(tfd, &st), 0);
	off_t cap = (off_t)st.st_blocks * 512 + free_bytes(t);
	ck_assert_int_eq(fallocate(tfd, 0, 0, cap + 1), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(mmapfile_truncate(f, cap + 1), -1);
	expect_enospc(-1, errno, "mmapfile_truncate by one byte too many");
	ck_assert_int_eq(mmapfile_size(f), (off_t)n0);
	ck_assert_int_eq(fallocate(tfd, 0, 0, cap), 0);
	ck_assert_int_eq(mmapfile_truncate(f, cap), 0);
	ck_assert_int_eq(mmapfile_size(f), cap);
	ck_assert_int_eq(free_bytes(d), 0);

	/* Full: a write past the end fails, one inside succeeds; the grown
	 * part reads as zeros. */
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), cap);
	{
		ssize_t r1 = mmapfile_write(f, data, 1);
		expect_enospc(r1, errno, "a write past a truncated-full file");
	}
	ck_assert_int_eq(mmapfile_writeat(f, data, 4096, cap - 4096), 4096);
	unsigned char *want = calloc(1, (size_t)cap);
	ck_assert_ptr_nonnull(want);
	memcpy(want, data, n0);
	memcpy(want + cap - 4096, data, 4096);
	sync_full(f);
	check_handle(f, want, (size_t)cap);

	/* Shrinking gives the space back, and the handle grows again. */
	ck_assert_int_eq(mmapfile_truncate(f, (off_t)n0), 0);
	ck_assert_int_gt(free_bytes(d), 0);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), (off_t)n0);
	ck_assert_int_eq(mmapfile_write(f, data, 4096), 4096);
	memcpy(want + n0, data, 4096);
	check_handle(f, want, n0 + 4096);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_file(in(d, "f"), want, n0 + 4096);
	figures("truncate_grow", 0, 0, n_enospc);
	close(tfd);
	free(want);
	free(data);
}
END_TEST

/* ---- create ---- */

START_TEST(test_create_too_big)
{
	const char *d = disk("d", 1024, 16);
	off_t avail = free_bytes(d);

	/* Larger than the file system: NULL, ENOSPC; the file stays, empty, and
	 * holds no block. */
	errno = 0;
	ck_assert_ptr_null(mmapfile_create(in(d, "new"), 4 * MiB, 0, 0644));
	expect_enospc(-1, errno, "mmapfile_create");
	ck_assert_int_eq(tu_file_size(in(d, "new")), 0);
	ck_assert_int_eq(free_bytes(d), avail);

	/* An existing file loses its contents all the same (O_TRUNC). */
	filler(in(d, "old"), 100 * KiB);
	ck_assert_ptr_null(mmapfile_create(in(d, "old"), 2 * MiB, 0, 0644));
	expect_enospc(-1, errno, "mmapfile_create over a file");
	ck_assert_int_eq(tu_file_size(in(d, "old")), 0);
	ck_assert_int_eq(free_bytes(d), avail);

	/* Past anything: ENOSPC or EFBIG, the file empty. */
	errno = 0;
	ck_assert_ptr_null(mmapfile_create(in(d, "huge"), (off_t)1 << 62, 0, 0644));
	ck_assert_msg(errno == ENOSPC || errno == EFBIG, "create 2^62: %s", strerror(errno));
	ck_assert_int_eq(tu_file_size(in(d, "huge")), 0);
	ck_assert_int_eq(free_bytes(d), avail);

	/* Exactly the free space: a file of zeros, and the disk is full. */
	mmapfile_t *f = mmapfile_create(in(d, "fits"), avail, 0, 0644);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(free_bytes(d), 0);
	unsigned char *zeros = calloc(1, (size_t)avail);
	ck_assert_ptr_nonnull(zeros);
	check_handle(f, zeros, (size_t)avail);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), avail);
	{
		ssize_t r1 = mmapfile_write(f, "x", 1);
		expect_enospc(r1, errno, "a write past a created-full file");
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_file(in(d, "fits"), zeros, (size_t)avail);
	figures("create_too_big", 0, 0, n_enospc);
	free(zeros);
}
END_TEST

START_TEST(test_create_no_inode)
{
	const char *d = disk("d", 1024, 8);
	/* Use up the inodes with plain open(2); the last answer is the oracle. */
	int made = 0, err = 0;
	for (;; made++) {
		char name[32];
		snprintf(name, sizeof name, "e%d", made);
		int fd = open(in(d, name), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			err = errno;
			break;
		}
		close(fd);
		ck_assert_int_lt(made, 100);
	}
	ck_assert_int_eq(err, ENOSPC);
	ck_assert_int_gt(made, 0);
	errno = 0;
	ck_assert_ptr_null(mmapfile_create(in(d, "new"), 0, 0, 0644));
	expect_enospc(-1, errno, "mmapfile_create without an inode");
	ck_assert_ptr_null(mmapfile_open(in(d, "new"), O_RDWR | O_CREAT, 0644));
	expect_enospc(-1, errno, "mmapfile_open(O_CREAT) without an inode");
	struct stat st;
	ck_assert_int_eq(stat(in(d, "new"), &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	/* An existing file still opens and takes data. */
	mmapfile_t *f = mmapfile_open(in(d, "e0"), O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_write(f, "abc", 3), 3);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_file(in(d, "e0"), (const unsigned char *)"abc", 3);
}
END_TEST

/* ---- holes: the mapping itself faults ---- */

/* A sparse file (ftruncate by a plain descriptor) four times the disk,
 * written through the handle at random places: a write into a hole
 * allocates pages at the fault, and when there is none the kernel raises
 * SIGBUS, which the library must turn into the answer pwrite(2) gives.
 * The twin makes each write with pwrite(2); the answers must be the same,
 * short counts included (pwrite(2) writes what fits, and so does the
 * library's fault path).  _i: 0 writeat, 1 seek + write. */
START_TEST(test_hole_fill)
{
	const bool cursor = _i == 1;
	const char *d = disk("d", 1024, 16), *t = disk("t", 1024, 16);
	filler(in(d, "filler"), 256 * KiB);
	filler(in(t, "filler"), 256 * KiB);
	const off_t len = 4 * MiB;
	int fd = open(in(d, "s"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, len), 0);
	close(fd);
	int tfd = open(in(t, "s"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(tfd, 0);
	ck_assert_int_eq(ftruncate(tfd, len), 0);

	mmapfile_t *f = mmapfile_open(in(d, "s"), O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	const size_t maxn = 3 * 4096 + 100;
	unsigned char *buf = malloc(maxn);
	ck_assert_ptr_nonnull(buf);
	uint64_t rng = 31 + (uint64_t)_i;
	unsigned long ok = 0, shortw = 0, fails = 0;
	for (int phase = 0; phase < 2; phase++) {
		unsigned long phase_fails = 0;
		for (int step = 0; phase_fails < 12; step++) {
			ck_assert_int_lt(step, 5000);
			size_t n = 1 + tu_rand(&rng) % maxn;
			off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(len - (off_t)n));
			tu_fill(buf, n, tu_rand(&rng));
			ssize_t r;
			if (cursor) {
				ck_assert_int_eq(mmapfile_seek(f, off, SEEK_SET), off);
				r = mmapfile_write(f, buf, n);
			} else {
				r = mmapfile_writeat(f, buf, n, off);
			}
			int err = errno;
			ssize_t tr = pwrite(tfd, buf, n, off);
			int terr = errno;
			ck_assert_msg(r == tr && (r >= 0 || err == terr),
			              "write of %zu at %lld into holes: %zd (%s), pwrite(2) on the twin %zd (%s)",
			              n, (long long)off, r, r < 0 ? strerror(err) : "-", tr,
			              tr < 0 ? strerror(terr) : "-");
			if (cursor)
				ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), off + (r > 0 ? r : 0));
			ck_assert_int_eq(mmapfile_size(f), len);
			if (r == (ssize_t)n) {
				ok++;
				continue;
			}
			if (r > 0) {
				shortw++;
				n_short++;
				continue;
			}
			expect_enospc(r, err, "a write into a hole");
			fails++;
			phase_fails++;
		}
		if (phase == 0) {
			sync_full(f);
			/* Make room: the same handle writes again.  Both disks
			 * took the same pages so far. */
			ck_assert_int_eq(free_bytes(d), free_bytes(t));
			ck_assert_int_eq(unlink(in(d, "filler")), 0);
			ck_assert_int_eq(unlink(in(t, "filler")), 0);
		}
	}
	/* Reads of the holes fault too (tmpfs allocates a page even to read a
	 * hole through a shared mapping), and the disk is full again: they
	 * must give the zeros read(2) gives. */
	unsigned char *a = malloc(64 * KiB), *b = malloc(64 * KiB);
	ck_assert(a && b);
	for (off_t o = 0; o < len; o += 64 * KiB) {
		ck_assert_int_eq(mmapfile_readat(f, a, 64 * KiB, o), 64 * KiB);
		ck_assert_int_eq(pread(tfd, b, 64 * KiB, o), 64 * KiB);
		ck_assert_msg(tu_first_diff(a, b, 64 * KiB) == 64 * KiB, "readat at %lld differs",
		              (long long)o);
	}
	free(a);
	free(b);
	ck_assert_uint_gt(ok, 0);
	ck_assert_uint_gt(fails, 0);
	sync_full(f);
	close(tfd);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_same_files(in(d, "s"), in(t, "s"));
	figures("hole_fill", ok, shortw, fails);
	free(buf);
}
END_TEST

/* ---- a disk filled by someone else while the handle keeps a reserve ---- */

/* The reserve is allocated: writes into it succeed on a full disk, the
 * first write past it is ENOSPC; sync and close then cut the file to
 * exactly what was written and lose none of it. */
START_TEST(test_full_by_other)
{
	const char *d = disk("d", 1024, 16);
	const size_t maxlen = 1024 * KiB;
	unsigned char *data = tu_random_bytes(maxlen, 9);
	mmapfile_t *f = mmapfile_open(in(d, "f"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	/* Appends of 1000 bytes: the file on disk runs ahead by a reserve. */
	size_t total = 0;
	while (total < 100 * KiB) {
		ck_assert_int_eq(mmapfile_write(f, data + total, 1000), 1000);
		total += 1000;
	}
	off_t reserved = tu_file_size(in(d, "f"));
	ck_assert_int_ge(reserved, (off_t)total);

	/* Another writer takes every free block. */
	int fd = open(in(d, "other"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	size_t other = twin_fill(fd, data, 0, 4096);
	close(fd);
	ck_assert_uint_gt(other, 0);
	ck_assert_int_eq(free_bytes(d), 0);

	/* In 333-byte writes: all that fit in the reserve succeed. */
	const size_t chunk = 333;
	size_t start = total;
	expect_enospc(-1, fill_chunks(f, data, &total, chunk, false), "mmapfile_write past the reserve");
	ck_assert_uint_eq(total, start + ((size_t)reserved - start) / chunk * chunk);
	after_enospc(f, data, total, chunk, 0);
	/* The rest of the reserve takes one write. */
	ck_assert_int_eq(mmapfile_write(f, data + total, (size_t)reserved - total),
	                 (ssize_t)((size_t)reserved - total));
	total = (size_t)reserved;
	{
		ssize_t r1 = mmapfile_write(f, data + total, 1);
		expect_enospc(r1, errno, "a write past the reserve");
	}

	sync_full(f);
	check_handle(f, data, total);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_file(in(d, "f"), data, total);

	/* close without sync on the full disk: still exact. */
	ck_assert_int_eq(unlink(in(d, "f")), 0);
	f = mmapfile_open(in(d, "g"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	total = 0;
	expect_enospc(-1, fill_chunks(f, data, &total, 1000, false), "mmapfile_write");
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_file(in(d, "g"), data, total);
	figures("full_by_other", 0, 0, n_enospc);
	free(data);
}
END_TEST

/* ---- the file system under test, filled to the last block ---- */

/* With MMAPFILE_FULLDISK_DIR naming a directory on a small file system
 * (tests/fsmatrix.sh makes one of each type: ext4, xfs, btrfs, tmpfs,
 * overlay), 64-byte appends through mmapfile_write until that file system
 * is full: the last call fails with -1 and ENOSPC (never a signal: btrfs
 * copies on write, so even a page written before needs new space at
 * writeback), every append before it is intact through the handle and
 * through read(2), and close succeeds (the file is then exactly what was
 * written) or says why (ENOSPC or EIO, the bytes before still there).
 * Without the variable the test says SKIPPED and passes.
 * _i: 0 plain appends, 1 O_APPEND. */
#define FILL_DEADLINE 20 /* seconds; the test case's timeout is 30 */

START_TEST(test_fill_dir)
{
	const char *dir = getenv("MMAPFILE_FULLDISK_DIR");
	if (!dir || !*dir) {
		if (_i == 0)
			printf("SKIPPED: fill_dir: MMAPFILE_FULLDISK_DIR is not set (tests/fsmatrix.sh sets it)\n");
		return;
	}
	struct statvfs sv;
	ck_assert_msg(statvfs(dir, &sv) == 0, "MMAPFILE_FULLDISK_DIR=%s: %s", dir, strerror(errno));
	off_t fs_size = (off_t)sv.f_blocks * (off_t)sv.f_frsize;
	ck_assert_msg(fs_size <= 1024 * MiB,
	              "MMAPFILE_FULLDISK_DIR=%s is a file system of %lld MiB: this test fills it, "
	              "give it a small one (at most 1 GiB)",
	              dir, (long long)(fs_size / MiB));
	const size_t chunk = 64;
	size_t room = (size_t)fs_size + 2 * chunk;
	unsigned char *data = malloc(room);
	ck_assert_ptr_nonnull(data);
	tu_fill_pattern(data, 0, room);

	/* A file a test that timed out left would keep the disk full. */
	char path[4352];
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof path, "%s/check_fulldisk-fill-%d", dir, k);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/check_fulldisk-fill-%d", dir, _i);
	mmapfile_t *f = mmapfile_open(path, O_RDWR | O_CREAT | O_TRUNC | (_i ? O_APPEND : 0), 0644);
	ck_assert_msg(f != NULL, "mmapfile_open %s: %s", path, strerror(errno));
	/* Until ENOSPC; a fill still going after FILL_DEADLINE s (write(2)
	 * fills these in a few) stops, checks what it wrote, and fails: more
	 * telling than the test's timeout. */
	size_t total = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int err = 0;
	for (unsigned long k = 1;; k++) {
		ssize_t r = mmapfile_write(f, data + total, chunk);
		if (r == (ssize_t)chunk) {
			total += chunk;
			ck_assert_uint_le(total + chunk, room);
			if (k % 256)
				continue;
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec < FILL_DEADLINE)
				continue;
			check_handle(f, data, total);
			ck_assert_int_eq(mmapfile_close(f), 0);
			check_file(path, data, total);
			unlink(path);
			ck_abort_msg("64-byte appends: the disk not full after %d s, %zu of %lld bytes written "
			             "(those intact): the fill near a full disk is too slow",
			             FILL_DEADLINE, total, (long long)fs_size);
		}
		err = errno;
		ck_assert_msg(r == -1, "mmapfile_write of %zu at %zu: short count %zd", chunk, total, r);
		break;
	}
	expect_enospc(-1, err, "a 64-byte mmapfile_write");
	ck_assert_uint_gt(total, 0);
	printf("fill_dir%s: ENOSPC after %zu bytes, %lld bytes free by statvfs\n",
	       _i ? " (O_APPEND)" : "", total, (long long)free_bytes(dir));
	total = after_enospc(f, data, total, chunk, room);
	sync_full(f);
	check_handle(f, data, total);

	errno = 0;
	int rc = mmapfile_close(f);
	err = errno;
	if (rc == 0) {
		check_file(path, data, total);
	} else {
		ck_assert_msg(err == ENOSPC || err == EIO, "close on a full disk: %s", strerror(err));
		printf("fill_dir: close on the full disk reported %s\n", strerror(err));
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_ge(tu_fd_size(fd), (off_t)total);
		unsigned char *buf = malloc(total);
		ck_assert_ptr_nonnull(buf);
		tu_pread_all(fd, buf, total, 0);
		size_t i = tu_first_diff(buf, data, total);
		ck_assert_msg(i == total, "after a failed close: byte %zu of %zu differs", i, total);
		close(fd);
		free(buf);
	}
	ck_assert_int_eq(unlink(path), 0);
	figures("fill_dir", total / chunk, 0, n_enospc);
	free(data);
}
END_TEST

/* ---- main: a private mount namespace, or skip ---- */

static int skip(const char *why, int err)
{
	printf("check_fulldisk: skipped: %s%s%s\n", why, err ? ": " : "", err ? strerror(err) : "");
	return 77;
}

int main(void)
{
	if (geteuid() != 0)
		return skip("mounting a small tmpfs needs root", 0);
	const char *step;
	if (tu_private_mounts(&step) != 0)
		return skip(step, errno);
	/* Can this namespace mount a tmpfs at all? */
	char probe[4096];
	snprintf(probe, sizeof probe, "%s/mmapfile-probe-XXXXXX", tu_tmpdir());
	if (!mkdtemp(probe))
		return skip("mkdtemp", errno);
	int rc = mount("mmapfile-test", probe, "tmpfs", 0, "size=64k"), err = errno;
	if (rc == 0)
		umount2(probe, MNT_DETACH);
	rmdir(probe);
	if (rc != 0)
		return skip("mounting a tmpfs", err);

	Suite *s = suite_create("fulldisk");
	TCase *tc = tu_tcase("fill", 60);
	tcase_add_loop_test(tc, test_write_fill, 0, (int)(sizeof fill_cases / sizeof fill_cases[0]));
	tcase_add_loop_test(tc, test_writeat_fill, 0,
	                    (int)(sizeof writeat_cases / sizeof writeat_cases[0]));
	tcase_add_test(tc, test_full_by_other);
	suite_add_tcase(s, tc);
	tc = tu_tcase("size", 30);
	tcase_add_test(tc, test_truncate_grow);
	tcase_add_test(tc, test_create_too_big);
	tcase_add_test(tc, test_create_no_inode);
	suite_add_tcase(s, tc);
	tc = tu_tcase("holes", 60);
	tcase_add_loop_test(tc, test_hole_fill, 0, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("the file system under test", 30);
	tcase_add_loop_test(tc, test_fill_dir, 0, 2);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
