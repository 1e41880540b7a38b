/* check_nearfull.c - appends on a nearly full disk (spec, errors: "A full
 * disk: ENOSPC from the call that needed the space, never a crash; what
 * was written before stays intact").
 *
 * A small tmpfs (5 to 8 MiB, in a mount namespace of this program's own) is
 * filled by appends of 64 bytes (and of 4 KiB) until ENOSPC.  Besides the
 * ENOSPC and the bytes, the test counts the system calls the library makes
 * to get space and learn the file's length (fallocate, ftruncate, fstat)
 * while it fills: once the reserve can no longer be had, at most about one
 * per page appended, not several per record.  The count is taken through
 * the library's system-call table (mmf_sys, sys.c), so this program links
 * the library's objects (libmmapfile_core), as check_fault does.
 *
 * Needs root (the mount); skipped with the reason otherwise. */
#define _GNU_SOURCE
#include "internal.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* Disk sizes: one the reserve's doubling does not meet exactly, and one
 * it does (8 MiB: the last reserve ends where the disk does). */
static const struct fill_case {
	size_t rec;
	long disk_kib;
} fill_cases[] = {
	{ 64, 7000 }, { 4096, 7000 }, { 64, 8192 }, { 4096, 8192 }, { 64, 5000 },
};

/* ---- counting ---- */

enum counted { C_FALLOCATE, C_FTRUNCATE, C_FSTAT, C_PWRITE, C_MMAP, C_MREMAP, C_MADVISE, C_COUNT };
static const char *const counted_name[C_COUNT] = {
	"fallocate", "ftruncate", "fstat", "pwrite", "mmap", "mremap", "madvise",
};
static struct mmf_syscalls real;
static bool counting;
static long calls[C_COUNT];

static void hit(enum counted k)
{
	if (counting)
		calls[k]++;
}

static int w_fallocate(int fd, int m, off_t o, off_t l)
{
	hit(C_FALLOCATE);
	return real.fallocate(fd, m, o, l);
}
static int w_ftruncate(int fd, off_t l)
{
	hit(C_FTRUNCATE);
	return real.ftruncate(fd, l);
}
static int w_fstat(int fd, struct stat *st)
{
	hit(C_FSTAT);
	return real.fstat(fd, st);
}
static ssize_t w_pwrite(int fd, const void *b, size_t n, off_t o)
{
	hit(C_PWRITE);
	return real.pwrite(fd, b, n, o);
}
static void *w_mmap(void *a, size_t l, int p, int fl, int fd, off_t o)
{
	hit(C_MMAP);
	return real.mmap(a, l, p, fl, fd, o);
}
static void *w_mremap(void *a, size_t ol, size_t nl, int fl)
{
	hit(C_MREMAP);
	return real.mremap(a, ol, nl, fl);
}
static int w_madvise(void *a, size_t l, int adv)
{
	hit(C_MADVISE);
	return real.madvise(a, l, adv);
}

static void counter_install(void)
{
	real = mmf_sys;
	mmf_sys.fallocate = w_fallocate;
	mmf_sys.ftruncate = w_ftruncate;
	mmf_sys.fstat = w_fstat;
	mmf_sys.pwrite = w_pwrite;
	mmf_sys.mmap = w_mmap;
	mmf_sys.mremap = w_mremap;
	mmf_sys.madvise = w_madvise;
}

static void counter_remove(void)
{
	mmf_sys = real;
}

/* ---- the fill ---- */

static const char *in(const char *dir, const char *name)
{
	static char buf[4480];
	snprintf(buf, sizeof buf, "%s/%s", dir, name);
	return buf;
}

START_TEST(test_fill)
{
	const size_t rec = fill_cases[_i].rec;
	const long disk_kib = fill_cases[_i].disk_kib;
	char opts[64];
	snprintf(opts, sizeof opts, "size=%ldk,mode=0700", disk_kib);
	const char *d = tu_mount("disk", "tmpfs", opts);
	ck_assert_msg(d != NULL, "mount tmpfs (%s): %s", opts, strerror(errno));
	const char *p = in(d, "f");
	const size_t max = (size_t)disk_kib * KiB + MiB; /* more than the disk holds */
	unsigned char *data = tu_random_bytes(max, 31 + (uint64_t)_i);

	counter_install();
	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_msg(f != NULL, "open: %s", strerror(errno));
	memset(calls, 0, sizeof calls);
	counting = true;
	size_t total = 0;
	ssize_t r = 0;
	int err = 0;
	while (total + rec <= max) {
		r = mmapfile_write(f, data + total, rec);
		if (r != (ssize_t)rec) {
			err = errno;
			break;
		}
		total += rec;
	}
	counting = false;
	ck_assert_msg(r == -1 && err == ENOSPC,
	              "%zu-byte appends on %ld KiB: the fill ended with %zd (%s) after %zu bytes", rec, disk_kib,
	              r, strerror(err), total);
	ck_assert_msg(total > (size_t)disk_kib * KiB / 2, "only %zu bytes fit on a %ld KiB disk", total,
	              disk_kib);

	long space = calls[C_FALLOCATE] + calls[C_FTRUNCATE] + calls[C_FSTAT];
	long limit = (long)(total / 4096) + 64;
	char counts[512];
	int o = 0;
	for (int k = 0; k < C_COUNT; k++)
		o += snprintf(counts + o, sizeof counts - (size_t)o, "%s%s %ld", k ? ", " : "", counted_name[k],
		              calls[k]);
	printf("%zu-byte appends on %ld KiB, %zu bytes until ENOSPC: %s\n", rec, disk_kib, total, counts);
	ck_assert_msg(space <= limit,
	              "%zu-byte appends on %ld KiB: %ld fallocate+ftruncate+fstat calls for %zu bytes (%zu records), "
	              "at most %ld (one a page + 64): %s",
	              rec, disk_kib, space, total, total / rec, limit, counts);

	/* What was written is intact: through the handle, then on disk. */
	ck_assert_int_eq(mmapfile_size(f), (off_t)total);
	unsigned char *back = tu_xmalloc(total);
	ck_assert_int_eq(mmapfile_readat(f, back, total, 0), (ssize_t)total);
	ck_assert_uint_eq(tu_first_diff(back, data, total), total);
	free(back);
	ck_assert_msg(mmapfile_close(f) == 0, "close: %s", strerror(errno));
	counter_remove();
	size_t n;
	back = tu_read_file(p, &n);
	ck_assert_msg(n == total, "the file is %zu bytes, %zu were written", n, total);
	ck_assert_uint_eq(tu_first_diff(back, data, total), total);
	free(back);
	free(data);
}
END_TEST

static int skip(const char *why, int err)
{
	printf("SKIPPED: check_nearfull: %s%s%s\n", why, err ? ": " : "", err ? strerror(err) : "");
	return 77;
}

int main(void)
{
	if (geteuid() != 0)
		return skip("mounting a small tmpfs needs root", 0);
	const char *step;
	if (tu_private_mounts(&step) != 0)
		return skip(step, errno);
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

	Suite *s = suite_create("nearfull");
	TCase *tc = tu_tcase("fill", 60);
	tcase_add_loop_test(tc, test_fill, 0, (int)(sizeof fill_cases / sizeof fill_cases[0]));
	suite_add_tcase(s, tc);
	return tu_run(s);
}
