/* check_options.c - mmapfile_open_ex: every option against an independent
 * oracle.
 *
 * Oracles: the file on disk read through a plain descriptor (a private
 * handle must never change it; every other handle's bytes are the file's);
 * an in-memory twin for a private handle's own contents; the kernel's own
 * bookkeeping of the handle's mapping, found through a view at offset 0
 * (mmapfile_view gives the mapping's address): /proc/self/smaps (VmFlags
 * "lo" locked, "hg" huge pages, "rr"/"sr" access pattern), /proc/self/pagemap
 * (which pages are mapped in: populated), /proc/self/status (VmLck), and
 * mincore(2) over the test's own mapping of the file (page-cache residency).
 * Each flag is first shown to be absent from a mapping made without the
 * option, so that the checks can fail.  mlock(2) on the test's own memory
 * under the same RLIMIT_MEMLOCK says what the library's locking must answer.
 *
 * The test that cuts a file under a private handle makes the library's
 * fault guard catch SIGBUS: under valgrind run this program with
 * --vex-iropt-register-updates=allregs-at-each-insn. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB ((off_t)1024 * 1024)

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef RAMFS_MAGIC
#define RAMFS_MAGIC 0x858458f6
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

static off_t P; /* the page size */

static off_t round_up(off_t x)
{
	return (x + P - 1) / P * P;
}

static struct mmapfile_options opts_of(unsigned int flags)
{
	struct mmapfile_options o;
	memset(&o, 0, sizeof o);
	o.size = sizeof o;
	o.flags = flags;
	return o;
}

static mmapfile_t *open_opts(const char *p, int flags, unsigned int oflags)
{
	struct mmapfile_options o = opts_of(oflags);
	mmapfile_t *f = mmapfile_open_ex(p, flags, 0644, &o);
	ck_assert_msg(f != NULL, "mmapfile_open_ex(%s, %#x, opts %#x): %s", p, flags, oflags,
	              strerror(errno));
	return f;
}

/* ------------------------------------------------------------------ */
/* What the kernel says about the process (a child may use these too). */

/* How many VMAs map the file path (by device and inode); -1 when it
 * cannot be stat'ed. */
static int file_vma_count(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	struct tu_vma *v;
	int n = tu_read_vmas(&v);
	int count = 0;
	for (int i = 0; i < n; i++)
		if (v[i].inode == (unsigned long)st.st_ino && v[i].dev_major == major(st.st_dev) &&
		    v[i].dev_minor == minor(st.st_dev))
			count++;
	tu_free_vmas(v, n);
	return count;
}

/* Whether every byte of [lo, lo + len) is mapped by VMAs that carry flag
 * (want) or lack it (!want).  On failure, says why in why. */
static bool span_flag(const void *lo, size_t len, const char *flag, bool want, char *why, size_t whylen)
{
	struct tu_vma *v;
	int n = tu_read_vmas(&v);
	uintptr_t at = (uintptr_t)lo, end = (uintptr_t)lo + len;
	bool ok = true;
	for (int i = 0; i < n && at < end; i++) {
		if (v[i].end <= at || v[i].start > at)
			continue;
		if (tu_vm_flag(v[i].flags, flag) != want) {
			snprintf(why, whylen, "VMA %#lx-%#lx (bytes %lld-%lld of the span) %s \"%s\": VmFlags: %s",
			         (unsigned long)v[i].start, (unsigned long)v[i].end,
			         (long long)(v[i].start > (uintptr_t)lo ? v[i].start - (uintptr_t)lo : 0),
			         (long long)(v[i].end - (uintptr_t)lo), want ? "lacks" : "carries", flag,
			         v[i].flags);
			ok = false;
			break;
		}
		at = v[i].end;
	}
	if (ok && at < end) {
		snprintf(why, whylen, "byte %lld of the span is not mapped", (long long)(at - (uintptr_t)lo));
		ok = false;
	}
	tu_free_vmas(v, n);
	return ok;
}

#define CHECK_SPAN_FLAG(lo, len, flag, want, ...)                                    \
	do {                                                                       \
		char why_[512];                                                    \
		if (!span_flag((lo), (size_t)(len), (flag), (want), why_, sizeof why_)) \
			ck_abort_msg("%s: %s", __VA_ARGS__, why_);                 \
	} while (0)

/* How many pages of [addr, addr + len) are mapped in (present in the page
 * tables, /proc/self/pagemap bit 63); -1 on error. */
static long present_pages(const void *addr, size_t len)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t first = (uintptr_t)addr / (size_t)P, n = (len + (size_t)P - 1) / (size_t)P;
	long count = 0;
	uint64_t ent[512];
	for (size_t i = 0; i < n;) {
		size_t k = n - i < 512 ? n - i : 512;
		ssize_t r = pread(fd, ent, k * sizeof ent[0], (off_t)((first + i) * sizeof ent[0]));
		if (r != (ssize_t)(k * sizeof ent[0])) {
			close(fd);
			return -1;
		}
		for (size_t j = 0; j < k; j++)
			count += (long)(ent[j] >> 63);
		i += k;
	}
	close(fd);
	return count;
}

/* The address of the handle's mapping of byte 0 (the file must not be
 * empty): a view taken and given back. */
static char *base_of(mmapfile_t *f)
{
	char *v = mmapfile_view(f, 0, 1);
	ck_assert_msg(v != NULL, "mmapfile_view(0, 1): %s", strerror(errno));
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	return v;
}

/* Pages of the file's bytes [off, off + len) in the page cache, by mincore
 * over the test's own mapping. */
static long resident_pages(const char *p, off_t off, off_t len)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	off_t start = off / P * P, stop = round_up(off + len);
	void *m = mmap(NULL, (size_t)(stop - start), PROT_READ, MAP_SHARED, fd, start);
	ck_assert(m != MAP_FAILED);
	close(fd);
	size_t n = (size_t)((stop - start) / P);
	unsigned char *vec = malloc(n);
	ck_assert_ptr_nonnull(vec);
	ck_assert_int_eq(mincore(m, (size_t)(stop - start), vec), 0);
	long count = 0;
	for (size_t i = 0; i < n; i++)
		count += vec[i] & 1;
	free(vec);
	munmap(m, (size_t)(stop - start));
	return count;
}

static long mincore_count(void *m, size_t len, unsigned char *vec)
{
	ck_assert_int_eq(mincore(m, len, vec), 0);
	long count = 0;
	for (size_t i = 0; i < len / (size_t)P; i++)
		count += vec[i] & 1;
	return count;
}

/* A file of size pseudo-random bytes on stable storage, and its stat for
 * check_disk_unchanged; returns the bytes (malloc'd). */
static unsigned char *make_file_stat(const char *p, off_t size, uint64_t seed, struct stat *st)
{
	unsigned char *buf = tu_make_file(p, (size_t)size, seed, true);
	ck_assert_int_eq(stat(p, st), 0);
	return buf;
}

/* The file as a plain descriptor sees it: the same length, times and bytes
 * as when st0 and want were taken. */
static void check_disk_unchanged(const char *p, const struct stat *st0, const unsigned char *want,
                                 const char *when)
{
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_msg(st.st_size == st0->st_size, "%s: the file's size is %lld, was %lld", when,
	              (long long)st.st_size, (long long)st0->st_size);
	ck_assert_msg(st.st_mtim.tv_sec == st0->st_mtim.tv_sec && st.st_mtim.tv_nsec == st0->st_mtim.tv_nsec,
	              "%s: the file's mtime changed", when);
	ck_assert_msg(st.st_ctim.tv_sec == st0->st_ctim.tv_sec && st.st_ctim.tv_nsec == st0->st_ctim.tv_nsec,
	              "%s: the file's ctime changed", when);
	size_t n;
	unsigned char *got = tu_read_file(p, &n);
	ck_assert_msg(n == (size_t)st0->st_size, "%s: read %zu bytes of the file", when, n);
	ck_assert_msg(n == 0 || memcmp(got, want, n) == 0, "%s: the file's bytes changed", when);
	free(got);
}

/* ------------------------------------------------------------------ */
/* Option checking */

#define BIG SIZE_MAX

struct bad_case {
	const char *what;
	size_t size;            /* opts.size; BIG: the longer struct's size */
	bool extra;             /* a non-zero byte past struct mmapfile_options */
	unsigned int flags;
	int advice;
	off_t prefetch, max_size;
	int err;
};

static const struct bad_case bad_cases[] = {
	{ "size 0", 0, false, 0, 0, 0, 0, EINVAL },
	{ "size 1", 1, false, 0, 0, 0, 0, EINVAL },
	{ "size 8", 8, false, 0, 0, 0, 0, EINVAL },
	{ "size VER0 - 1", MMAPFILE_OPTIONS_SIZE_VER0 - 1, false, 0, 0, 0, 0, EINVAL },
	{ "a non-zero byte past the struct", BIG, true, 0, 0, 0, 0, E2BIG },
	{ "size checked before fields", BIG, true, 0x100, 77, -1, -1, E2BIG },
	{ "unknown flag 0x20", sizeof(struct mmapfile_options), false, 0x20, 0, 0, 0, EINVAL },
	{ "HUGEPAGE and NOHUGEPAGE", sizeof(struct mmapfile_options), false,
	  MMAPFILE_OPT_HUGEPAGE | MMAPFILE_OPT_NOHUGEPAGE, 0, 0, 0, EINVAL },
	{ "unknown flag 0x80000000", sizeof(struct mmapfile_options), false, 0x80000000u, 0, 0, 0, EINVAL },
	{ "every flag", sizeof(struct mmapfile_options), false, ~0u, 0, 0, 0, EINVAL },
	{ "advice WILLNEED", sizeof(struct mmapfile_options), false, 0, MMAPFILE_MADV_WILLNEED, 0, 0, EINVAL },
	{ "advice DONTNEED", sizeof(struct mmapfile_options), false, 0, MMAPFILE_MADV_DONTNEED, 0, 0, EINVAL },
	{ "advice HUGEPAGE", sizeof(struct mmapfile_options), false, 0, MMAPFILE_MADV_HUGEPAGE, 0, 0, EINVAL },
	{ "advice -1", sizeof(struct mmapfile_options), false, 0, -1, 0, 0, EINVAL },
	{ "advice 3", sizeof(struct mmapfile_options), false, 0, 3, 0, 0, EINVAL },
	{ "prefetch -1", sizeof(struct mmapfile_options), false, 0, 0, -1, 0, EINVAL },
	{ "prefetch INT64_MIN", sizeof(struct mmapfile_options), false, 0, 0, INT64_MIN, 0, EINVAL },
	{ "max_size -1", sizeof(struct mmapfile_options), false, 0, 0, 0, -1, EINVAL },
	{ "max_size INT64_MIN", sizeof(struct mmapfile_options), false, 0, 0, 0, INT64_MIN, EINVAL },
};

/* A caller built against a longer struct (a later version). */
struct options_v9 {
	struct mmapfile_options o;
	unsigned char later[40];
};

/* Each refused struct: the right errno, the file not touched (not created,
 * not truncated), no descriptor and no mapping left behind. */
START_TEST(test_refused_options)
{
	const char *p = tu_path("f");
	off_t size = 100 * KiB + 5;
	struct stat st0;
	unsigned char *orig = make_file_stat(p, size, 1, &st0);
	const char *absent = tu_path("absent");
	int fds = tu_count_fds();
	ck_assert_int_gt(fds, 0);
	struct { const char *path; int flags; } targets[] = {
		{ p, O_RDWR | O_TRUNC },
		{ p, O_RDONLY },
		{ absent, O_RDWR | O_CREAT | O_EXCL },
	};
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
			struct options_v9 big;
			memset(&big, 0, sizeof big);
			big.o.size = c->size == BIG ? sizeof big : c->size;
			big.o.flags = c->flags;
			big.o.advice = c->advice;
			big.o.prefetch = c->prefetch;
			big.o.max_size = c->max_size;
			if (c->extra)
				big.later[i % sizeof big.later] = 1;
			errno = 0;
			mmapfile_t *f = mmapfile_open_ex(targets[t].path, targets[t].flags, 0644, &big.o);
			int err = errno;
			if (f)
				mmapfile_close(f);
			ck_assert_msg(f == NULL, "%s: mmapfile_open_ex(%s) succeeded", c->what, targets[t].path);
			ck_assert_msg(err == c->err, "%s: errno %s, want %s", c->what, strerror(err),
			              strerror(c->err));
		}
	}
	check_disk_unchanged(p, &st0, orig, "after refused options");
	struct stat st;
	ck_assert_int_eq(stat(absent, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(file_vma_count(p), 0);

	/* The same for mmapfile_memfd, which takes the same struct. */
	struct mmapfile_options o = opts_of(0x20);
	errno = 0;
	ck_assert_ptr_null(mmapfile_memfd("x", 0, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tu_count_fds(), fds);
	free(orig);
}
END_TEST

/* Structs that are accepted: a longer one with zeros past what the library
 * knows, exactly the first version's size, extreme prefetch and every
 * known flag that combines; opts NULL is mmapfile_open. */
START_TEST(test_accepted_options)
{
	const char *p = tu_path("f");
	off_t size = 20 * KiB + 3; /* under 64 KiB: mmapfile_open maps it lazily */
	unsigned char *orig = tu_make_file(p, (size_t)size, 2, true);
	int fds = tu_count_fds();

	/* opts NULL: mmapfile_open, which maps a small file when used. */
	mmapfile_t *f = mmapfile_open_ex(p, O_RDONLY, 0, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(file_vma_count(p), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* Any options, even none: mapped at open. */
	struct options_v9 big;
	size_t sizes[] = { MMAPFILE_OPTIONS_SIZE_VER0, sizeof(struct mmapfile_options), sizeof big };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		memset(&big, 0, sizeof big);
		big.o.size = sizes[i];
		f = mmapfile_open_ex(p, O_RDONLY, 0, &big.o);
		ck_assert_msg(f != NULL, "size %zu: %s", sizes[i], strerror(errno));
		ck_assert_msg(file_vma_count(p) > 0, "size %zu: the file is not mapped at open", sizes[i]);
		ck_assert_int_eq(mmapfile_size(f), size);
		unsigned char buf[64];
		ck_assert_int_eq(mmapfile_readat(f, buf, sizeof buf, 1000), (ssize_t)sizeof buf);
		ck_assert_mem_eq(buf, orig + 1000, sizeof buf);
		ck_assert_int_eq(mmapfile_close(f), 0);
	}
	ck_assert_int_eq(file_vma_count(p), 0);

	/* The largest struct taken (a page on most systems), zeros past the
	 * known fields. */
	unsigned char *page = calloc(1, MMAPFILE_OPTIONS_SIZE_MAX);
	ck_assert_ptr_nonnull(page);
	struct mmapfile_options o = opts_of(0);
	o.size = MMAPFILE_OPTIONS_SIZE_MAX;
	memcpy(page, &o, sizeof o);
	f = mmapfile_open_ex(p, O_RDWR, 0, (const struct mmapfile_options *)(void *)page);
	ck_assert_msg(f != NULL, "a %d-byte struct of zeros: %s", MMAPFILE_OPTIONS_SIZE_MAX, strerror(errno));
	ck_assert_int_eq(mmapfile_close(f), 0);
	free(page);

	/* Extreme but valid values. */
	o = opts_of(MMAPFILE_OPT_POPULATE);
	o.prefetch = INT64_MAX;
	o.advice = MMAPFILE_MADV_SEQUENTIAL;
	f = mmapfile_open_ex(p, O_RDONLY, 0, &o);
	ck_assert_msg(f != NULL, "prefetch INT64_MAX: %s", strerror(errno));
	ck_assert_int_eq(mmapfile_close(f), 0);
	o = opts_of(0);
	o.max_size = size / 2; /* smaller than the file: nothing to reserve */
	f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_msg(f != NULL, "max_size below the size: %s", strerror(errno));
	ck_assert_int_eq(mmapfile_write(f, "x", 1), 1);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_count_fds(), fds);

	/* The open's own checks still apply, after the options'. */
	o = opts_of(0);
	errno = 0;
	ck_assert_ptr_null(mmapfile_open_ex(p, O_RDWR | O_DIRECTORY, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(mmapfile_open_ex(tu_dir(), O_RDONLY, 0, &o));
	ck_assert_int_eq(errno, EISDIR);
	errno = 0;
	ck_assert_ptr_null(mmapfile_open_ex(tu_path("nope"), O_RDONLY, 0, &o));
	ck_assert_int_eq(errno, ENOENT);
	errno = 0;
	ck_assert_ptr_null(mmapfile_open_ex(NULL, O_RDONLY, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(tu_count_fds(), fds);
	free(orig);
}
END_TEST

/* A reserved maximum the address space cannot hold: the open refuses it
 * (ENOMEM) rather than accept a promise it cannot keep; if it is accepted,
 * the promise holds (the mapping does not move as the file grows). */
START_TEST(test_max_size_unreservable)
{
	const char *p = tu_path("f");
	unsigned char *orig = tu_make_file(p, (size_t)(4 * KiB), 3, true);
	struct mmapfile_options o = opts_of(0);
	o.max_size = (off_t)1 << 62; /* far more than any address space */
	errno = 0;
	mmapfile_t *f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	if (!f) {
		ck_assert_msg(errno == ENOMEM, "max_size 2^62: %s, want ENOMEM", strerror(errno));
		free(orig);
		return;
	}
	char *v0 = mmapfile_view(f, 0, (size_t)(4 * KiB));
	ck_assert_ptr_nonnull(v0);
	unsigned char *chunk = calloc(1, (size_t)(256 * KiB));
	ck_assert_ptr_nonnull(chunk);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), 4 * KiB);
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(mmapfile_write(f, chunk, (size_t)(256 * KiB)), (ssize_t)(256 * KiB));
		char *v = mmapfile_view(f, 0, (size_t)mmapfile_size(f));
		ck_assert_ptr_nonnull(v);
		ck_assert_int_eq(mmapfile_release(f, v), 0);
		ck_assert_msg(v == v0,
		              "max_size 2^62 was accepted, yet the mapping moved when the file grew to %lld bytes",
		              (long long)mmapfile_size(f));
	}
	ck_assert_int_eq(mmapfile_release(f, v0), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	free(chunk);
	free(orig);
}
END_TEST

/* The struct's layout is the header's on every ABI: 32 bytes, the fields
 * at fixed offsets (uint64_t size, unsigned int flags, int advice, off_t
 * prefetch, off_t max_size). */
START_TEST(test_options_layout)
{
	ck_assert_uint_eq(sizeof(struct mmapfile_options), MMAPFILE_OPTIONS_SIZE_VER0);
	ck_assert_uint_eq(offsetof(struct mmapfile_options, size), 0);
	ck_assert_uint_eq(sizeof(((struct mmapfile_options *)0)->size), 8);
	ck_assert_uint_eq(offsetof(struct mmapfile_options, flags), 8);
	ck_assert_uint_eq(offsetof(struct mmapfile_options, advice), 12);
	ck_assert_uint_eq(offsetof(struct mmapfile_options, prefetch), 16);
	ck_assert_uint_eq(offsetof(struct mmapfile_options, max_size), 24);
}
END_TEST

/* A size past MMAPFILE_OPTIONS_SIZE_MAX is E2BIG without a byte past the
 * struct read (as openat2(2) answers): the struct ends a page followed by
 * one the process may not touch, so a read past it would kill the test.
 * Up to the limit the bytes are read: zeros accepted, a non-zero one
 * E2BIG. */
START_TEST(test_options_size_limit)
{
	const char *p = tu_path("f");
	struct stat st0;
	unsigned char *orig = make_file_stat(p, 5000, 21, &st0);
	int fds = tu_count_fds();
	size_t span = (size_t)(MMAPFILE_OPTIONS_SIZE_MAX > P ? round_up(MMAPFILE_OPTIONS_SIZE_MAX) : P);
	unsigned char *m = mmap(NULL, span + (size_t)P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(m != MAP_FAILED);
	ck_assert_int_eq(mprotect(m + span, (size_t)P, PROT_NONE), 0);
	unsigned char *end = m + span;

	static const struct {
		const char *what;
		size_t room;    /* bytes from the struct to the forbidden page */
		uint64_t size;
		bool nonzero;   /* the last byte before the forbidden page is 1 */
		int err;        /* 0: accepted */
	} cases[] = {
		{ "size 2^40", sizeof(struct mmapfile_options), (uint64_t)1 << 40, false, E2BIG },
		{ "size UINT64_MAX", sizeof(struct mmapfile_options), UINT64_MAX, false, E2BIG },
		{ "size 2^63", sizeof(struct mmapfile_options), (uint64_t)1 << 63, false, E2BIG },
		{ "size MAX + 1", sizeof(struct mmapfile_options), MMAPFILE_OPTIONS_SIZE_MAX + 1, false, E2BIG },
		{ "size MAX + 1, MAX bytes of zeros", MMAPFILE_OPTIONS_SIZE_MAX, MMAPFILE_OPTIONS_SIZE_MAX + 1,
		  false, E2BIG },
		{ "size MAX, zeros", MMAPFILE_OPTIONS_SIZE_MAX, MMAPFILE_OPTIONS_SIZE_MAX, false, 0 },
		{ "size MAX, its last byte 1", MMAPFILE_OPTIONS_SIZE_MAX, MMAPFILE_OPTIONS_SIZE_MAX, true, E2BIG },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		unsigned char *at = end - cases[i].room;
		memset(at, 0, cases[i].room);
		struct mmapfile_options o = opts_of(0);
		o.size = cases[i].size;
		memcpy(at, &o, sizeof o);
		if (cases[i].nonzero)
			end[-1] = 1;
		const struct mmapfile_options *op = (const struct mmapfile_options *)(void *)at;
		for (int k = 0; k < 2; k++) {
			errno = 0;
			mmapfile_t *f = k ? mmapfile_memfd("size-limit", 10, 0, op) : mmapfile_open_ex(p, O_RDWR, 0, op);
			int err = errno;
			if (f)
				ck_assert_int_eq(mmapfile_close(f), 0);
			if (cases[i].err)
				ck_assert_msg(!f && err == cases[i].err, "%s (%s): %s, want %s", cases[i].what,
				              k ? "mmapfile_memfd" : "mmapfile_open_ex", f ? "opened" : strerror(err),
				              strerror(cases[i].err));
			else
				ck_assert_msg(f != NULL, "%s (%s): %s", cases[i].what,
				              k ? "mmapfile_memfd" : "mmapfile_open_ex", strerror(err));
		}
	}
	check_disk_unchanged(p, &st0, orig, "after the size checks");
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(file_vma_count(p), 0);
	munmap(m, span + (size_t)P);
	free(orig);
}
END_TEST

/* The VMAs of at least len bytes that [before, before + n) does not hold
 * (the same start and end): address space that appeared since.  Returns
 * how many (at most max) are in lo[] and hi[]. */
static int new_vmas(const struct tu_vma *before, int n, size_t len, uintptr_t *lo, uintptr_t *hi, int max)
{
	struct tu_vma *v;
	int m = tu_read_vmas(&v), found = 0;
	for (int i = 0; i < m && found < max; i++) {
		if (v[i].end - v[i].start < len)
			continue;
		bool old = false;
		for (int j = 0; j < n && !old; j++)
			old = before[j].start == v[i].start && before[j].end == v[i].end;
		if (!old) {
			lo[found] = v[i].start;
			hi[found] = v[i].end;
			found++;
		}
	}
	tu_free_vmas(v, m);
	return found;
}

/* A reserved maximum on an empty file (nothing to map at open): one that
 * cannot be reserved fails the open with ENOMEM, leaving nothing behind;
 * one that can is reserved at open, and the mapping, once the first write
 * makes one, lies in that address space and keeps its address (a view at
 * offset 0) through growth up to the maximum. */
START_TEST(test_max_size_empty_file)
{
	const char *p = tu_path("empty");
	tu_write_file(p, "", 0);
	int fds = tu_count_fds();
	static const int accs[] = { O_RDWR, O_RDONLY };
	for (int i = 0; i < 2; i++) {
		struct mmapfile_options o = opts_of(0);
		o.max_size = (off_t)1 << 60; /* more than any address space */
		errno = 0;
		mmapfile_t *f = mmapfile_open_ex(p, accs[i], 0, &o);
		int err = errno;
		ssize_t w = f ? mmapfile_write(f, "x", 1) : 0;
		if (f)
			mmapfile_close(f);
		ck_assert_msg(!f && err == ENOMEM,
		              "max_size 2^60 on an empty file (%s): %s, want ENOMEM (a first write then: %zd)",
		              accs[i] == O_RDWR ? "O_RDWR" : "O_RDONLY", f ? "opened" : strerror(err), w);
		ck_assert_int_eq(tu_count_fds(), fds);
		ck_assert_int_eq(file_vma_count(p), 0);
		ck_assert_int_eq(tu_file_size(p), 0);
	}

	off_t max = 16 * MiB;
	struct mmapfile_options o = opts_of(0);
	o.max_size = max;
	struct tu_vma *before;
	int n = tu_read_vmas(&before);
	mmapfile_t *f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_msg(f != NULL, "max_size 16 MiB on an empty file: %s", strerror(errno));
	/* (A checker's run-time may map memory of its own meanwhile.) */
	uintptr_t lo[16], hi[16];
	int nres = new_vmas(before, n, (size_t)max, lo, hi, 16);
	tu_free_vmas(before, n);
	ck_assert_msg(nres > 0, "no address space of %lld bytes appeared at open", (long long)max);

	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(mmapfile_write(f, "x", 1), 1);
	unsigned char *v0 = mmapfile_view(f, 0, 1);
	ck_assert_ptr_nonnull(v0);
	bool inside = false;
	for (int i = 0; i < nres && !inside; i++)
		inside = (uintptr_t)v0 >= lo[i] && (uintptr_t)v0 + (uintptr_t)max <= hi[i];
	ck_assert_msg(inside, "the mapping at %p is not in address space of %lld bytes that appeared at open",
	              (void *)v0, (long long)max);
	ck_assert_int_eq(v0[0], 'x');
	unsigned char *chunk = tu_xmalloc((size_t)MiB), *disk = tu_xmalloc((size_t)MiB);
	uint64_t rng = 0x3a7;
	off_t size = 1;
	for (int step = 0; size < max; step++) {
		off_t k = (off_t)(tu_rand(&rng) % (uint64_t)MiB) + 1;
		if (k > max - size)
			k = max - size;
		tu_fill(chunk, (size_t)k, (uint64_t)step);
		ck_assert_int_eq(mmapfile_write(f, chunk, (size_t)k), (ssize_t)k);
		unsigned char *v = mmapfile_view(f, 0, (size_t)(size + k));
		ck_assert_msg(v != NULL, "a view of %lld bytes: %s", (long long)(size + k), strerror(errno));
		ck_assert_int_eq(mmapfile_release(f, v), 0);
		ck_assert_msg(v == v0, "step %d: the mapping moved at %lld bytes, within max_size %lld", step,
		              (long long)(size + k), (long long)max);
		ck_assert_int_eq(pread(fd, disk, (size_t)k, size), (ssize_t)k);
		ck_assert_msg(memcmp(disk, chunk, (size_t)k) == 0 && memcmp(v0 + size, chunk, (size_t)k) == 0,
		              "step %d: the bytes at %lld differ", step, (long long)size);
		size += k;
	}
	ck_assert_int_eq(mmapfile_release(f, v0), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), max);
	close(fd);
	free(chunk);
	free(disk);
}
END_TEST

/* Options on a handle that cannot map: O_WRONLY of a file the caller may
 * not read has no mapping, and every option is about one.  As an
 * unprivileged user (root reads anything): mmapfile_open without options
 * gives a working handle; mmapfile_open_ex with any options is EACCES and
 * leaves no descriptor behind. */
static void child_options_write_only(void *arg)
{
	char path[4352];
	mmapfile_t *f = tu_child_open_write_only(arg, path, sizeof path);
	TU_CCHECK(mmapfile_writeat(f, "ab", 2, 0) == 2, "a write through the handle without a mapping: %s",
	          strerror(errno));
	TU_CCHECK(mmapfile_close(f) == 0, "close: %s", strerror(errno));
	int fds = tu_count_fds();
	static const struct {
		const char *what;
		unsigned int flags;
		off_t max_size;
		int acc;
	} cases[] = {
		{ "zeros", 0, 0, O_WRONLY },
		{ "zeros, O_APPEND", 0, 0, O_WRONLY | O_APPEND },
		{ "POPULATE", MMAPFILE_OPT_POPULATE, 0, O_WRONLY },
		{ "LOCK", MMAPFILE_OPT_LOCK, 0, O_WRONLY },
		{ "HUGEPAGE", MMAPFILE_OPT_HUGEPAGE, 0, O_WRONLY },
		{ "max_size", 0, MiB, O_WRONLY },
		{ "PRIVATE", MMAPFILE_OPT_PRIVATE, 0, O_WRONLY },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mmapfile_options o = opts_of(cases[i].flags);
		o.max_size = cases[i].max_size;
		errno = 0;
		mmapfile_t *g = mmapfile_open_ex(path, cases[i].acc, 0, &o);
		int err = errno;
		if (g)
			mmapfile_close(g);
		TU_CCHECK(!g && err == EACCES, "open_ex of a write-only file with options (%s): %s, want EACCES",
		          cases[i].what, g ? "opened" : strerror(err));
		TU_CCHECK(tu_count_fds() == fds, "options %s: %d descriptors open after the refusal, %d before",
		          cases[i].what, tu_count_fds(), fds);
	}
	f = mmapfile_open_ex(path, O_WRONLY, 0, NULL);
	TU_CCHECK(f != NULL, "open_ex without options of a write-only file: %s", strerror(errno));
	TU_CCHECK(mmapfile_writeat(f, "cd", 2, 2) == 2, "a write: %s", strerror(errno));
	TU_CCHECK(mmapfile_close(f) == 0, "close: %s", strerror(errno));
	TU_CCHECK(tu_count_fds() == fds, "descriptors leaked");
}

START_TEST(test_options_write_only_file)
{
	const char *d = tu_public_dir();
	if (!tu_run_unprivileged("options on a write-only file", d, W_OK, child_options_write_only, (void *)d))
		return;
	/* The file holds the two handles' writes, nothing else (made readable
	 * first: without root the child was this user). */
	char path[4352];
	snprintf(path, sizeof path, "%s/wo", d);
	ck_assert_int_eq(chmod(path, 0600), 0);
	size_t n;
	unsigned char *got = tu_read_file(path, &n);
	ck_assert_uint_eq(n, 10);
	ck_assert_mem_eq(got, "abcd456789", 10);
	free(got);
}
END_TEST

/* ------------------------------------------------------------------ */
/* PRIVATE */

/* Flags that would write the file are refused with a private mapping, and
 * the file is not touched (O_TRUNC must not cut it). */
START_TEST(test_private_refused_flags)
{
	const char *p = tu_path("f");
	off_t size = 70 * KiB;
	struct stat st0;
	unsigned char *orig = make_file_stat(p, size, 4, &st0);
	int fds = tu_count_fds();
	int flags[] = { O_TRUNC, O_SYNC, O_DSYNC, O_TRUNC | O_CREAT, O_SYNC | O_APPEND };
	int acc[] = { O_RDONLY, O_WRONLY, O_RDWR };
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		for (size_t a = 0; a < 3; a++) {
			struct mmapfile_options o = opts_of(MMAPFILE_OPT_PRIVATE);
			errno = 0;
			mmapfile_t *f = mmapfile_open_ex(p, acc[a] | flags[i], 0644, &o);
			int err = errno;
			if (f)
				mmapfile_close(f);
			ck_assert_msg(f == NULL && err == EINVAL, "private with flags %#x: %s", acc[a] | flags[i],
			              f ? "opened" : strerror(err));
		}
	check_disk_unchanged(p, &st0, orig, "after refused private opens");
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(file_vma_count(p), 0);
	free(orig);
}
END_TEST

/* The descriptor of a private handle is read-only whatever the access
 * mode; the access mode still says what the handle may do. */
START_TEST(test_private_access_modes)
{
	const char *p = tu_path("f");
	off_t size = 90 * KiB + 11;
	struct stat st0;
	unsigned char *orig = make_file_stat(p, size, 5, &st0);
	unsigned char buf[4096];

	/* O_RDONLY: reads are the file's, writes EBADF, truncate EINVAL. */
	mmapfile_t *f = open_opts(p, O_RDONLY, MMAPFILE_OPT_PRIVATE);
	int fl = fcntl(mmapfile_fd(f), F_GETFL);
	ck_assert_int_ge(fl, 0);
	ck_assert_int_eq(fl & O_ACCMODE, O_RDONLY);
	ck_assert_int_eq(mmapfile_readat(f, buf, sizeof buf, size - 100), 100);
	ck_assert_mem_eq(buf, orig + size - 100, 100);
	errno = 0;
	ck_assert_int_eq(mmapfile_write(f, "x", 1), -1);
	ck_assert_int_eq(errno, EBADF);
	errno = 0;
	ck_assert_int_eq(mmapfile_writeat(f, "x", 1, 0), -1);
	ck_assert_int_eq(errno, EBADF);
	errno = 0;
	ck_assert_int_eq(mmapfile_truncate(f, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_disk_unchanged(p, &st0, orig, "O_RDONLY private");

	/* O_WRONLY: writes land in the handle's copy, reads are EBADF. */
	f = open_opts(p, O_WRONLY, MMAPFILE_OPT_PRIVATE);
	fl = fcntl(mmapfile_fd(f), F_GETFL);
	ck_assert_int_eq(fl & O_ACCMODE, O_RDONLY);
	memset(buf, 'w', sizeof buf);
	ck_assert_int_eq(mmapfile_write(f, buf, sizeof buf), (ssize_t)sizeof buf);
	ck_assert_int_eq(mmapfile_writeat(f, buf, sizeof buf, size + 5000), (ssize_t)sizeof buf);
	ck_assert_int_eq(mmapfile_size(f), size + 5000 + (off_t)sizeof buf);
	errno = 0;
	ck_assert_int_eq(mmapfile_read(f, buf, 1), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	check_disk_unchanged(p, &st0, orig, "O_WRONLY private, open");
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_disk_unchanged(p, &st0, orig, "O_WRONLY private, closed");

	/* O_RDWR: the descriptor is read-only too. */
	f = open_opts(p, O_RDWR, MMAPFILE_OPT_PRIVATE);
	fl = fcntl(mmapfile_fd(f), F_GETFL);
	ck_assert_int_eq(fl & O_ACCMODE, O_RDONLY);
	ck_assert_str_eq(mmapfile_name(f), p);
	ck_assert_int_eq(mmapfile_close(f), 0);
	free(orig);
}
END_TEST

/* The handle's contents, as a file descriptor would hold them. */
struct twin {
	unsigned char *buf;
	size_t cap;
	off_t size, cursor;
};

static void twin_room(struct twin *t, off_t need)
{
	if ((size_t)need <= t->cap)
		return;
	size_t cap = t->cap ? t->cap : 4096;
	while (cap < (size_t)need)
		cap *= 2;
	t->buf = realloc(t->buf, cap);
	ck_assert_ptr_nonnull(t->buf);
	memset(t->buf + t->cap, 0, cap - t->cap);
	t->cap = cap;
}

static void twin_write(struct twin *t, const unsigned char *src, size_t n, off_t off)
{
	twin_room(t, off + (off_t)n);
	if (off > t->size)
		memset(t->buf + t->size, 0, (size_t)(off - t->size));
	memcpy(t->buf + off, src, n);
	if (off + (off_t)n > t->size)
		t->size = off + (off_t)n;
}

static void twin_truncate(struct twin *t, off_t size)
{
	twin_room(t, size);
	if (size > t->size)
		memset(t->buf + t->size, 0, (size_t)(size - t->size));
	t->size = size;
}

/* The handle's bytes [off, off + len) are the twin's. */
static void compare_window(mmapfile_t *f, const struct twin *t, off_t off, size_t len, int step)
{
	unsigned char *got = malloc(len + 1);
	ck_assert_ptr_nonnull(got);
	ssize_t want = off >= t->size ? 0 : (off_t)len < t->size - off ? (ssize_t)len : (ssize_t)(t->size - off);
	ssize_t k = mmapfile_readat(f, got, len, off);
	ck_assert_msg(k == want, "step %d: readat(%zu at %lld) = %zd, want %zd (%s)", step, len,
	              (long long)off, k, want, strerror(errno));
	if (k > 0 && memcmp(got, t->buf + off, (size_t)k) != 0) {
		ssize_t i = 0;
		while (got[i] == t->buf[off + i])
			i++;
		ck_abort_msg("step %d: byte %lld is %#x, want %#x", step, (long long)(off + i), got[i],
		             t->buf[off + i]);
	}
	free(got);
}

/* A random sequence of every cursor and positional call on a private
 * handle, against the twin; the file on disk stays byte for byte what it
 * was (size, times) after every step and after close.  _i: 0 a file,
 * 1 the same with O_APPEND, 2 an empty file. */
START_TEST(test_private_against_twin)
{
	const char *p = tu_path("f");
	off_t size0 = _i == 2 ? 0 : 150 * KiB + 77;
	struct stat st0;
	unsigned char *orig = make_file_stat(p, size0, 6, &st0);
	int flags = O_RDWR | (_i == 1 ? O_APPEND : 0);
	mmapfile_t *f = open_opts(p, flags, MMAPFILE_OPT_PRIVATE);
	struct twin t = { 0 };
	twin_truncate(&t, size0);
	if (size0)
		memcpy(t.buf, orig, (size_t)size0);
	unsigned char *data = malloc((size_t)(64 * KiB));
	unsigned char *got = malloc((size_t)(64 * KiB));
	ck_assert(data && got);
	uint64_t rng = 1000 + (uint64_t)_i;
	bool moved = false;
	char *base = size0 ? base_of(f) : NULL;
	int steps = 300;
	for (int step = 0; step < steps; step++) {
		unsigned r = (unsigned)(tu_rand(&rng) % 100);
		size_t n = tu_rand(&rng) % 10 == 0 ? (size_t)(tu_rand(&rng) % (uint64_t)(40 * KiB)) + 1
		                                   : (size_t)(tu_rand(&rng) % (uint64_t)(2 * P)) + 1;
		off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(t.size + 2 * P));
		tu_fill(data, n, tu_rand(&rng));
		if (step == 100 || (r >= 93 && r < 96)) {
			/* Far past everything mapped: a new region takes the bytes. */
			off_t far = 2 * MiB + (off_t)(tu_rand(&rng) % (uint64_t)(4 * MiB));
			if (_i == 1) {
				ck_assert_int_eq(mmapfile_truncate(f, far), 0);
				twin_truncate(&t, far);
			} else {
				ck_assert_int_eq(mmapfile_writeat(f, data, n, far), (ssize_t)n);
				twin_write(&t, data, n, far);
			}
			if (t.size > 0 && !moved && base && base_of(f) != base)
				moved = true;
		} else if (r < 25) {
			off_t at = _i == 1 ? t.size : t.cursor;
			ck_assert_int_eq(mmapfile_write(f, data, n), (ssize_t)n);
			twin_write(&t, data, n, at);
			t.cursor = at + (off_t)n;
		} else if (r < 45) {
			errno = 0;
			ssize_t k = mmapfile_writeat(f, data, n, off);
			if (_i == 1) {
				ck_assert_msg(k == -1 && errno == EINVAL, "writeat on O_APPEND: %zd", k);
			} else {
				ck_assert_int_eq(k, (ssize_t)n);
				twin_write(&t, data, n, off);
			}
		} else if (r < 60) {
			ssize_t want = t.cursor >= t.size ? 0
			             : (off_t)n < t.size - t.cursor ? (ssize_t)n : (ssize_t)(t.size - t.cursor);
			ssize_t k = mmapfile_read(f, got, n);
			ck_assert_msg(k == want, "step %d: read(%zu) at %lld = %zd, want %zd", step, n,
			              (long long)t.cursor, k, want);
			ck_assert_msg(k <= 0 || memcmp(got, t.buf + t.cursor, (size_t)k) == 0,
			              "step %d: read at %lld: wrong bytes", step, (long long)t.cursor);
			t.cursor += k;
		} else if (r < 70) {
			compare_window(f, &t, off, n, step);
		} else if (r < 80) {
			int whence = (int)(tu_rand(&rng) % 3);
			off_t rel = (off_t)(tu_rand(&rng) % (uint64_t)(4 * P)) - 2 * P;
			off_t from = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? t.cursor : t.size;
			if (whence == SEEK_SET)
				rel = off;
			off_t want = from + rel;
			errno = 0;
			off_t got_off = mmapfile_seek(f, rel, whence);
			if (want < 0) {
				ck_assert_msg(got_off == -1 && errno == EINVAL, "step %d: seek to %lld: %lld", step,
				              (long long)want, (long long)got_off);
			} else {
				ck_assert_msg(got_off == want, "step %d: seek(%lld, %d) = %lld, want %lld", step,
				              (long long)rel, whence, (long long)got_off, (long long)want);
				t.cursor = want;
			}
		} else if (r < 90) {
			off_t sz = tu_rand(&rng) % 8 == 0 ? 0 : (off_t)(tu_rand(&rng) % (uint64_t)(t.size * 3 / 2 + 2 * P));
			ck_assert_msg(mmapfile_truncate(f, sz) == 0, "step %d: truncate(%lld): %s", step,
			              (long long)sz, strerror(errno));
			twin_truncate(&t, sz);
		} else if (r < 93) {
			ck_assert_int_eq(mmapfile_sync(f), 0);
		} else {
			/* A window, or everything while it is small. */
			if (t.size <= MiB)
				compare_window(f, &t, 0, (size_t)t.size + 10, step);
			else
				compare_window(f, &t, off % t.size, (size_t)(256 * KiB), step);
		}
		ck_assert_msg(mmapfile_size(f) == t.size, "step %d: size %lld, want %lld", step,
		              (long long)mmapfile_size(f), (long long)t.size);
		char when[64];
		snprintf(when, sizeof when, "step %d", step);
		check_disk_unchanged(p, &st0, orig, when);
	}
	if (size0 && !moved)
		printf("NOTE: the private handle's mapping never moved (%s)\n", p);
	compare_window(f, &t, 0, (size_t)t.size + 1, steps);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_disk_unchanged(p, &st0, orig, "after close");
	free(t.buf);
	free(data);
	free(got);
	free(orig);
}
END_TEST

/* A private handle's size is its own: growth of the file by another
 * process is not learned, and the handle's growth is not the file's. */
START_TEST(test_private_size_is_its_own)
{
	const char *p = tu_path("f");
	off_t size = 80 * KiB + 1;
	unsigned char *orig = tu_make_file(p, (size_t)size, 7, true);
	mmapfile_t *f = open_opts(p, _i ? O_RDONLY : O_RDWR, MMAPFILE_OPT_PRIVATE);
	int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	unsigned char more[3 * 4096];
	memset(more, 'o', sizeof more);
	ck_assert_int_eq(write(fd, more, sizeof more), (ssize_t)sizeof more);
	close(fd);
	unsigned char buf[100];
	ck_assert_int_eq(mmapfile_readat(f, buf, sizeof buf, size), 0);
	ck_assert_int_eq(mmapfile_size(f), size);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), size);
	ck_assert_int_eq(mmapfile_read(f, buf, sizeof buf), 0);
	if (!_i) {
		/* An append lands at the handle's end, not after the other's. */
		ck_assert_int_eq(mmapfile_write(f, "mine", 4), 4);
		ck_assert_int_eq(mmapfile_size(f), size + 4);
		ck_assert_int_eq(mmapfile_readat(f, buf, sizeof buf, size - 2), 6);
		ck_assert_mem_eq(buf, orig + size - 2, 2);
		ck_assert_mem_eq(buf + 2, "mine", 4);
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
	size_t n;
	unsigned char *disk = tu_read_file(p, &n);
	ck_assert_int_eq(n, (size_t)size + sizeof more);
	ck_assert_mem_eq(disk, orig, (size_t)size);
	ck_assert_mem_eq(disk + size, more, sizeof more);
	free(disk);
	free(orig);
}
END_TEST

/* Another process cuts the file under a private handle, in the middle of a
 * page.  The caller must not die of SIGBUS: bytes past the cut that the
 * handle never wrote read as zeros (the file no longer has them), the bytes
 * before it are the file's, what the handle wrote before the cut is still
 * its, its size stays its own, and it goes on working. */
START_TEST(test_private_cut_by_other)
{
	const char *p = tu_path("f");
	off_t size = 32 * P, cut = 4 * P + 100;
	unsigned char *orig = tu_make_file(p, (size_t)size, 8, true);
	mmapfile_t *f = open_opts(p, O_RDWR, MMAPFILE_OPT_PRIVATE);
	struct twin t = { 0 };
	twin_truncate(&t, size);
	memcpy(t.buf, orig, (size_t)size);
	/* Read everything once (pages mapped in), write before the cut. */
	compare_window(f, &t, 0, (size_t)size, 0);
	ck_assert_int_eq(mmapfile_writeat(f, "EARLY", 5, 2 * P + 10), 5);
	twin_write(&t, (const unsigned char *)"EARLY", 5, 2 * P + 10);

	int fd = open(p, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, cut), 0);
	memset(t.buf + cut, 0, (size_t)(size - cut)); /* what it never wrote is gone */

	ck_assert_int_eq(mmapfile_size(f), size);
	compare_window(f, &t, 20 * P, 100, 1);       /* a page wholly past the cut */
	compare_window(f, &t, cut - 50, 200, 2);      /* across the cut, inside a page */
	compare_window(f, &t, 0, (size_t)size, 3);    /* all of it */
	/* It goes on working past the cut: its own bytes from now on. */
	unsigned char data[3000];
	tu_fill(data, sizeof data, 9);
	ck_assert_int_eq(mmapfile_writeat(f, data, sizeof data, 25 * P - 1000), (ssize_t)sizeof data);
	twin_write(&t, data, sizeof data, 25 * P - 1000);
	ck_assert_int_eq(mmapfile_truncate(f, size + 3 * P), 0);
	twin_truncate(&t, size + 3 * P);
	compare_window(f, &t, 0, (size_t)(size + 3 * P), 4);
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* The file is what the other process made it. */
	size_t n;
	unsigned char *disk = tu_read_file(p, &n);
	ck_assert_int_eq(n, (size_t)cut);
	ck_assert_mem_eq(disk, orig, (size_t)cut);
	free(disk);
	close(fd);
	free(t.buf);
	free(orig);
}
END_TEST

/* The same cut, over pages the handle had written: those bytes are the
 * handle's own, not the file's, so they stay. */
/* Linux drops a private mapping's copies of pages past a file's new end
 * when the file is cut (the man page's BUGS): what the handle wrote there
 * reads as zeros afterwards, without a crash; what it wrote in the page
 * that still holds the end stays. */
START_TEST(test_private_cut_past_end_reads_zeros)
{
	const char *p = tu_path("f");
	off_t size = 32 * P, cut = 4 * P + 100;
	unsigned char *orig = tu_make_file(p, (size_t)size, 10, true);
	mmapfile_t *f = open_opts(p, O_RDWR, MMAPFILE_OPT_PRIVATE);
	unsigned char data[2 * 4096];
	tu_fill(data, sizeof data, 11);
	off_t at = 20 * P - 300; /* across two pages wholly past the cut */
	ck_assert_int_eq(mmapfile_writeat(f, data, sizeof data, at), (ssize_t)sizeof data);
	ck_assert_int_eq(mmapfile_writeat(f, "tail", 4, cut + 10), 4); /* in the page of the cut */

	int fd = open(p, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, cut), 0);
	close(fd);

	unsigned char got[sizeof data];
	ck_assert_int_eq(mmapfile_readat(f, got, sizeof got, at), (ssize_t)sizeof got);
	for (size_t i = 0; i < sizeof got; i++)
		ck_assert_msg(got[i] == 0, "byte %lld past the cut reads %#x, not zero",
		              (long long)(at + (off_t)i), got[i]);
	ck_assert_int_eq(mmapfile_size(f), size); /* its size is its own */
	ck_assert_int_eq(mmapfile_readat(f, got, 4, cut + 10), 4);
	ck_assert_mem_eq(got, "tail", 4);
	ck_assert_int_eq(mmapfile_writeat(f, data, sizeof data, at), (ssize_t)sizeof data);
	ck_assert_int_eq(mmapfile_readat(f, got, sizeof got, at), (ssize_t)sizeof got);
	ck_assert_mem_eq(got, data, sizeof data);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), cut);
	free(orig);
}
END_TEST

/* n bytes of c appended to the file through a descriptor of its own (as
 * another process would); returns the file's new length. */
static off_t append_bytes(const char *p, int c, size_t n)
{
	unsigned char *b = tu_xmalloc(n);
	memset(b, c, n);
	int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
	off_t len = tu_fd_size(fd);
	close(fd);
	free(b);
	return len;
}

/* A private handle of a file whose length is not whole pages: the rest of
 * the last page is the file's until written, and another process appends
 * there after the open.  What the handle's own growth adds past its old
 * size reads as zeros, never as the other's bytes: by truncate, by a write
 * leaving a gap, by a cursor write after a seek past the end.  The file
 * holds only its own bytes and the other's.  _i: the length at open,
 * 100 bytes, two pages and 100 bytes, a page less one. */
START_TEST(test_private_growth_after_append)
{
	const char *p = tu_path("f");
	const off_t sizes[] = { 100, 2 * P + 100, P - 1 };
	off_t size0 = sizes[_i];
	unsigned char *orig = tu_make_file(p, (size_t)size0, 30 + (uint64_t)_i, true);
	struct twin t = { 0 };
	twin_truncate(&t, size0);
	memcpy(t.buf, orig, (size_t)size0);

	/* Truncate up, within the last page and then past it. */
	mmapfile_t *f = open_opts(p, O_RDWR, MMAPFILE_OPT_PRIVATE);
	off_t size1 = append_bytes(p, 'B', (size_t)P + 300);
	ck_assert_int_eq(mmapfile_truncate(f, size0 + 20), 0);
	twin_truncate(&t, size0 + 20);
	compare_window(f, &t, 0, (size_t)size0 + 30, 0);
	ck_assert_int_eq(mmapfile_truncate(f, round_up(size0) + P + 50), 0);
	twin_truncate(&t, round_up(size0) + P + 50);
	compare_window(f, &t, 0, (size_t)t.size + 10, 1);
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* A fresh handle of the longer file; the other appends again. */
	size_t n;
	unsigned char *disk = tu_read_file(p, &n);
	ck_assert_int_eq((off_t)n, size1);
	free(t.buf);
	t = (struct twin){ 0 };
	twin_write(&t, disk, n, 0);
	free(disk);
	f = open_opts(p, O_RDWR, MMAPFILE_OPT_PRIVATE);
	off_t size2 = append_bytes(p, 'C', 500);
	ck_assert_int_eq(mmapfile_writeat(f, "x", 1, size1 + 150), 1);
	twin_write(&t, (const unsigned char *)"x", 1, size1 + 150);
	compare_window(f, &t, 0, (size_t)t.size + 10, 2);
	ck_assert_int_eq(mmapfile_seek(f, size1 + 400, SEEK_SET), size1 + 400);
	ck_assert_int_eq(mmapfile_write(f, "yz", 2), 2);
	twin_write(&t, (const unsigned char *)"yz", 2, size1 + 400);
	compare_window(f, &t, 0, (size_t)t.size + 10, 3);
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* The file: its bytes, the B's and the C's. */
	disk = tu_read_file(p, &n);
	ck_assert_int_eq((off_t)n, size2);
	ck_assert_mem_eq(disk, orig, (size_t)size0);
	for (off_t i = size0; i < size2; i++)
		ck_assert_msg(disk[i] == (i < size1 ? 'B' : 'C'), "byte %lld of the file is %#x", (long long)i,
		              disk[i]);
	free(disk);
	free(t.buf);
	free(orig);
}
END_TEST

/* A private handle's bytes past the file's pages at open are its own
 * anonymous memory: another process cutting the file to nothing does not
 * touch them, also when a read that starts in the file's pages (which
 * fault: the fault guard answers) runs on into them.  The bytes in the
 * file's pages read as zeros (see test_private_cut_past_end_reads_zeros). */
START_TEST(test_private_own_pages_after_cut)
{
	const char *p = tu_path("f");
	off_t size0 = P + 100, own = round_up(size0);
	unsigned char *orig = tu_make_file(p, (size_t)size0, 40, true);
	mmapfile_t *f = open_opts(p, O_RDWR, MMAPFILE_OPT_PRIVATE);
	struct twin t = { 0 };
	twin_write(&t, orig, (size_t)size0, 0);
	/* From the file's last page well into the handle's own memory. */
	size_t dn = (size_t)(2 * P);
	unsigned char *data = tu_random_bytes(dn, 41);
	ck_assert_int_eq(mmapfile_writeat(f, data, dn, own - 50), (ssize_t)dn);
	twin_write(&t, data, dn, own - 50);
	compare_window(f, &t, 0, (size_t)t.size, 0);

	int fd = open(p, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	close(fd);
	memset(t.buf, 0, (size_t)own);

	/* One read from 0 across everything, then the handle's own bytes
	 * alone. */
	compare_window(f, &t, 0, (size_t)t.size + 10, 1);
	compare_window(f, &t, own, (size_t)(t.size - own), 2);
	ck_assert_int_eq(mmapfile_size(f), own - 50 + (off_t)dn);
	/* It goes on working, over both kinds of page. */
	ck_assert_int_eq(mmapfile_writeat(f, "file", 4, 10), 4);
	twin_write(&t, (const unsigned char *)"file", 4, 10);
	ck_assert_int_eq(mmapfile_writeat(f, "own", 3, own + 10), 3);
	twin_write(&t, (const unsigned char *)"own", 3, own + 10);
	ck_assert_int_eq(mmapfile_truncate(f, 6 * P), 0);
	twin_truncate(&t, 6 * P);
	compare_window(f, &t, 0, (size_t)t.size + 10, 3);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), 0);
	free(data);
	free(t.buf);
	free(orig);
}
END_TEST

/* ------------------------------------------------------------------ */
/* POPULATE */

/* Whether the kernel has MADV_POPULATE_READ (Linux 5.14); without it the
 * library falls back to read-ahead, which maps nothing in. */
static bool kernel_populates(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	void *m = mmap(NULL, (size_t)P, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	close(fd);
	int rc = madvise(m, (size_t)P, MMAPFILE_MADV_POPULATE_READ), err = errno;
	munmap(m, (size_t)P);
	if (rc != 0) {
		printf("SKIPPED (in part): MADV_POPULATE_READ: %s; nothing to see in the page tables\n",
		       strerror(err));
		fflush(stdout);
	}
	return rc == 0;
}

/* Every page of the handle's mapping of its file's length on disk (shared:
 * size plus reserve) is mapped in. */
static void check_populated(mmapfile_t *f, const char *p, const char *when)
{
	off_t len = round_up(tu_file_size(p));
	if (len == 0)
		return;
	char *b = base_of(f);
	long got = present_pages(b, (size_t)len);
	ck_assert_msg(got == len / P, "%s: %ld of %lld pages of the mapping are mapped in", when, got,
	              (long long)(len / P));
}

/* A file written a page at a time: its page cache is made of single
 * pages, so that the kernel maps in no more than each fault asks for (a
 * large folio is mapped whole, which could hide pages left out). */
static void make_file_by_pages(const char *p, off_t size)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	unsigned char *page = malloc((size_t)P);
	ck_assert_ptr_nonnull(page);
	for (off_t off = 0; off < size; off += P) {
		size_t n = (size_t)(size - off < P ? size - off : P);
		tu_fill(page, n, (uint64_t)off);
		ck_assert_int_eq(pwrite(fd, page, n, off), (ssize_t)n);
	}
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	free(page);
}

START_TEST(test_populate)
{
	const char *p = tu_path("f");
	off_t size = MiB + 100;
	make_file_by_pages(p, size);
	if (!kernel_populates(p))
		return;

	/* Control: a mapping that is not populated has (almost) nothing mapped in. */
	mmapfile_t *f = open_opts(p, O_RDWR, 0);
	long plain = present_pages(base_of(f), (size_t)round_up(size));
	ck_assert_msg(plain >= 0 && plain < round_up(size) / P / 2,
	              "a handle without POPULATE has %ld pages mapped in: the check cannot fail", plain);
	ck_assert_int_eq(mmapfile_close(f), 0);

	f = open_opts(p, O_RDWR, MMAPFILE_OPT_POPULATE);
	check_populated(f, p, "after open");
	/* Growth past the region (a new mapping), by truncate: no byte is
	 * touched by the call itself. */
	ck_assert_int_eq(mmapfile_truncate(f, 3 * MiB + 5), 0);
	check_populated(f, p, "after truncate to 3 MiB");
	/* Growth by a large write (which goes through pwrite(2)), with a reserve. */
	unsigned char *chunk = calloc(1, (size_t)MiB);
	ck_assert_ptr_nonnull(chunk);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), 3 * MiB + 5);
	ck_assert_int_eq(mmapfile_write(f, chunk, (size_t)MiB), (ssize_t)MiB);
	ck_assert_int_gt(tu_file_size(p), 4 * MiB + 5); /* a reserve was taken */
	check_populated(f, p, "after a 1 MiB append");
	ck_assert_int_eq(mmapfile_close(f), 0);

	/* Read-only, and an empty file that grows. */
	f = open_opts(p, O_RDONLY, MMAPFILE_OPT_POPULATE);
	check_populated(f, p, "read-only, after open");
	ck_assert_int_eq(mmapfile_close(f), 0);
	const char *e = tu_path("empty");
	tu_write_file(e, "", 0);
	f = open_opts(e, O_RDWR, MMAPFILE_OPT_POPULATE);
	ck_assert_int_eq(mmapfile_truncate(f, 200 * KiB), 0);
	check_populated(f, e, "empty file truncated to 200 KiB");
	ck_assert_int_eq(mmapfile_close(f), 0);
	free(chunk);
}
END_TEST

/* ------------------------------------------------------------------ */
/* LOCK */

/* The handle's locked memory is its file's pages (reserve included), all
 * of them, and nothing else: VmLck, and "lo" on the mapping. */
static void check_locked(mmapfile_t *f, const char *p, long base_kb, const char *when)
{
	off_t len = round_up(tu_file_size(p));
	long kb = tu_vm_locked() - base_kb;
	ck_assert_msg(kb == len / 1024, "%s: %ld KiB locked, the file has %lld KiB of pages", when, kb,
	              (long long)(len / 1024));
	if (len)
		CHECK_SPAN_FLAG(base_of(f), len, "lo", true, when);
}

START_TEST(test_lock)
{
	const char *p = tu_path("f");
	off_t size = 256 * KiB + 100;
	if (!tu_may_lock((size_t)(16 * MiB)))
		return;
	unsigned char *orig = tu_make_file(p, (size_t)size, 13, true);
	long base = tu_vm_locked();

	mmapfile_t *f = open_opts(p, O_RDWR, MMAPFILE_OPT_LOCK);
	check_locked(f, p, base, "after open");
	/* Locked pages stay in the page cache. */
	tu_evict(p);
	ck_assert_int_eq(resident_pages(p, 0, size), round_up(size) / P);

	/* Growth: one byte (a reserve), then far (a new region). */
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), size);
	ck_assert_int_eq(mmapfile_write(f, "x", 1), 1);
	ck_assert_int_gt(tu_file_size(p), size + 1);
	check_locked(f, p, base, "after a 1-byte append");
	char *b1 = base_of(f);
	ck_assert_int_eq(mmapfile_writeat(f, "far", 3, 6 * MiB), 3);
	check_locked(f, p, base, "after a write at 6 MiB");
	if (base_of(f) == b1)
		printf("NOTE: a write at 6 MiB did not move the mapping\n");
	/* Down: the pages past the end are let go. */
	ck_assert_int_eq(mmapfile_truncate(f, 100 * KiB), 0);
	ck_assert_int_eq(tu_file_size(p), 100 * KiB);
	check_locked(f, p, base, "after truncate to 100 KiB");
	CHECK_SPAN_FLAG(base_of(f) + round_up(100 * KiB), P, "lo", false, "the page past the end");
	/* Up again by truncate, then sync (which trims nothing). */
	ck_assert_int_eq(mmapfile_truncate(f, 300 * KiB), 0);
	check_locked(f, p, base, "after truncate to 300 KiB");
	ck_assert_int_eq(mmapfile_sync(f), 0);
	check_locked(f, p, base, "after sync");
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_vm_locked(), base);

	/* Read-only: growth by another process is locked once learned. */
	tu_write_file(p, orig, (size_t)size);
	f = open_opts(p, O_RDONLY, MMAPFILE_OPT_LOCK);
	check_locked(f, p, base, "read-only, after open");
	int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, orig, (size_t)size), (ssize_t)size);
	close(fd);
	char c;
	ck_assert_int_eq(mmapfile_readat(f, &c, 1, 2 * size - 1), 1);
	ck_assert_int_eq(mmapfile_size(f), 2 * size);
	check_locked(f, p, base, "read-only, after another process doubled the file");
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
	free(orig);
}
END_TEST

/* As an unprivileged user under a small RLIMIT_MEMLOCK: what mlock(2) of
 * the same number of pages answers (with nothing else locked) is what the
 * open, the write or the truncate that needs them answers; a refusal
 * leaves nothing locked by that step, and the file as it was. */

struct limit_arg {
	const char *dir;
	bool fits_only; /* only the write whose result fits under the limit */
};

/* What mlock(2) of n pages of the child's own memory answers: 0 or errno.
 * Asked with nothing else locked, it is the answer for a handle whose file
 * needs n pages locked in all. */
static int oracle_lock_errno(off_t pages)
{
	size_t n = (size_t)(pages * P);
	void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TU_CCHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
	long before = tu_vm_locked();
	errno = 0;
	int rc = tu_sys_mlock(m, n), err = rc ? errno : 0;
	tu_sys_munlock(m, n);
	munmap(m, n);
	TU_CCHECK(tu_vm_locked() == before, "%ld KiB locked after the oracle, %ld before", tu_vm_locked(), before);
	return err;
}

/* The child's file: size bytes of seed, written by the child. */
static unsigned char *child_file(const char *p, off_t size, uint64_t seed)
{
	unsigned char *buf = tu_random_bytes((size_t)size, seed);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	TU_CCHECK(fd >= 0, "create %s: %s", p, strerror(errno));
	TU_CCHECK(write(fd, buf, (size_t)size) == (ssize_t)size, "write: %s", strerror(errno));
	close(fd);
	return buf;
}

static void child_same_file(const char *p, const unsigned char *want, off_t size, const char *when)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	TU_CCHECK(fd >= 0, "open %s: %s", p, strerror(errno));
	struct stat st;
	TU_CCHECK(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
	TU_CCHECK(st.st_size == size, "%s: the file is %lld bytes, want %lld", when, (long long)st.st_size,
	          (long long)size);
	unsigned char *got = tu_xmalloc((size_t)size + 1);
	TU_CCHECK(pread(fd, got, (size_t)size, 0) == (ssize_t)size, "pread: %s", strerror(errno));
	TU_CCHECK(memcmp(got, want, (size_t)size) == 0, "%s: the file's bytes changed", when);
	free(got);
	close(fd);
}

static void child_lock_limits(void *arg)
{
	const struct limit_arg *a = arg;
	char big[4096], small[4096];
	snprintf(big, sizeof big, "%s/big", a->dir);
	snprintf(small, sizeof small, "%s/small", a->dir);
	off_t limit = 16; /* pages */
	off_t big_size = 64 * P, small_size = 4 * P + 10;
	unsigned char *big_bytes = child_file(big, big_size, 20);
	unsigned char *small_bytes = child_file(small, small_size, 21);
	struct rlimit rl = { (rlim_t)(limit * P), (rlim_t)(limit * P) };
	TU_CCHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit: %s", strerror(errno));
	int fds = tu_count_fds();
	TU_CCHECK(fds > 0, "count descriptors: %s", strerror(errno));
	struct mmapfile_options o = opts_of(MMAPFILE_OPT_LOCK);
	int want_big = oracle_lock_errno(big_size / P), want_40 = oracle_lock_errno(40);
	int want_12 = oracle_lock_errno(12);

	if (a->fits_only) {
		/* 4 pages + 10 bytes, then 8 more pages written at the end: 13
		 * pages, under the limit of 16.  The reserve the library keeps
		 * for later appends is its own affair. */
		off_t need = round_up(small_size + 8 * P) / P;
		int want = oracle_lock_errno(need);
		if (want != 0)
			tu_child_skip("mlock of %lld pages under a limit of %lld: %s", (long long)need,
			              (long long)limit, strerror(want));
		mmapfile_t *f = mmapfile_open_ex(small, O_RDWR, 0, &o);
		TU_CCHECK(f != NULL, "open with LOCK: %s", strerror(errno));
		unsigned char *data = calloc(1, (size_t)(8 * P));
		TU_CCHECK(data != NULL, "calloc");
		errno = 0;
		ssize_t k = mmapfile_writeat(f, data, (size_t)(8 * P), small_size);
		TU_CCHECK(k == 8 * P,
		          "a write to %lld bytes (%lld pages; mlock of that many succeeds under RLIMIT_MEMLOCK of "
		          "%lld pages) failed: %s",
		          (long long)(small_size + 8 * P), (long long)need, (long long)limit, strerror(errno));
		TU_CCHECK(tu_vm_locked() >= need * P / 1024, "%ld KiB locked", tu_vm_locked());
		TU_CCHECK(mmapfile_close(f) == 0, "close: %s", strerror(errno));
		free(data);
		free(big_bytes);
		free(small_bytes);
		return;
	}

	/* An open of more than the limit fails as mlock does, leaving nothing. */
	int want = want_big;
	if (want == 0)
		tu_child_skip("mlock of %lld pages succeeded under a limit of %lld (CAP_IPC_LOCK?)",
		              (long long)(big_size / P), (long long)limit);
	int accs[] = { O_RDONLY, O_RDWR };
	for (int i = 0; i < 2; i++) {
		errno = 0;
		mmapfile_t *f = mmapfile_open_ex(big, accs[i], 0, &o);
		int err = errno;
		TU_CCHECK(f == NULL, "an open locking %lld pages under a limit of %lld succeeded",
		          (long long)(big_size / P), (long long)limit);
		TU_CCHECK(err == want, "open with LOCK: %s, mlock: %s", strerror(err), strerror(want));
		TU_CCHECK(tu_vm_locked() == 0, "%ld KiB locked after a refused open", tu_vm_locked());
		TU_CCHECK(tu_count_fds() == fds, "%d descriptors open after a refused open, %d before", tu_count_fds(),
		          fds);
		TU_CCHECK(file_vma_count(big) == 0, "the file is still mapped after a refused open");
		child_same_file(big, big_bytes, big_size, "after a refused open");
	}

	/* A file under the limit: locked, all of it. */
	mmapfile_t *f = mmapfile_open_ex(small, O_RDWR, 0, &o);
	TU_CCHECK(f != NULL, "open with LOCK: %s", strerror(errno));
	long locked = tu_vm_locked();
	TU_CCHECK(locked == round_up(small_size) / 1024, "%ld KiB locked, want %lld", locked,
	          (long long)(round_up(small_size) / 1024));

	/* A write and a truncate that need 40 pages. */
	want = want_40;
	TU_CCHECK(want != 0, "mlock of 40 pages succeeded under a limit of 16");
	unsigned char *data = calloc(1, (size_t)(40 * P));
	TU_CCHECK(data != NULL, "calloc");
	struct { const char *what; size_t n; } writes[] = {
		{ "a write to 40 pages", (size_t)(40 * P - small_size) },
		{ "a 1-page write to 40 pages", (size_t)P },
	};
	for (int i = 0; i < 2; i++) {
		errno = 0;
		ssize_t k = mmapfile_writeat(f, data, writes[i].n, 40 * P - (off_t)writes[i].n);
		int err = errno;
		TU_CCHECK(k == -1 && err == want, "%s: %zd (%s), mlock of 40 pages: %s", writes[i].what, k,
		          strerror(err), strerror(want));
		TU_CCHECK(mmapfile_size(f) == small_size, "%s: the size is %lld", writes[i].what,
		          (long long)mmapfile_size(f));
		TU_CCHECK(tu_vm_locked() == locked, "%s: %ld KiB locked, %ld before", writes[i].what, tu_vm_locked(),
		          locked);
		child_same_file(small, small_bytes, small_size, writes[i].what);
	}
	errno = 0;
	int rc = mmapfile_truncate(f, 40 * P);
	int err = errno;
	TU_CCHECK(rc == -1 && err == want, "truncate to 40 pages: %d (%s), mlock: %s", rc, strerror(err),
	          strerror(want));
	TU_CCHECK(mmapfile_size(f) == small_size, "after a refused truncate the size is %lld",
	          (long long)mmapfile_size(f));
	TU_CCHECK(tu_vm_locked() == locked, "after a refused truncate %ld KiB locked, %ld before", tu_vm_locked(),
	          locked);
	child_same_file(small, small_bytes, small_size, "after a refused truncate");
	/* The handle still works, and reads are the file's. */
	unsigned char buf[64];
	TU_CCHECK(mmapfile_readat(f, buf, sizeof buf, small_size - 64) == 64, "readat: %s", strerror(errno));
	TU_CCHECK(memcmp(buf, small_bytes + small_size - 64, 64) == 0, "readat: wrong bytes");

	/* A truncate that fits: 12 pages locked. */
	TU_CCHECK(want_12 == 0, "mlock of 12 pages under a limit of 16 failed: %s", strerror(want_12));
	TU_CCHECK(mmapfile_truncate(f, 12 * P) == 0, "truncate to 12 pages: %s", strerror(errno));
	TU_CCHECK(tu_vm_locked() == 12 * P / 1024, "%ld KiB locked after truncate to 12 pages", tu_vm_locked());
	TU_CCHECK(mmapfile_close(f) == 0, "close: %s", strerror(errno));
	TU_CCHECK(tu_vm_locked() == 0, "%ld KiB locked after close", tu_vm_locked());

	/* No locking at all: EPERM, as mlock says. */
	rl.rlim_cur = rl.rlim_max = 0;
	TU_CCHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit: %s", strerror(errno));
	want = oracle_lock_errno(1);
	TU_CCHECK(want != 0, "mlock with RLIMIT_MEMLOCK 0 succeeded");
	errno = 0;
	f = mmapfile_open_ex(small, O_RDONLY, 0, &o);
	err = errno;
	TU_CCHECK(f == NULL && err == want, "open with LOCK and no limit: %s, mlock: %s",
	          f ? "opened" : strerror(err), strerror(want));
	TU_CCHECK(tu_count_fds() == fds, "descriptors leaked");
	free(data);
	free(big_bytes);
	free(small_bytes);
}

static void run_limits(bool fits_only)
{
	const char *d = tu_public_dir();
	struct limit_arg a = { d, fits_only };
	tu_run_unprivileged("RLIMIT_MEMLOCK", d, W_OK, child_lock_limits, &a);
}

START_TEST(test_lock_limits)
{
	run_limits(false);
}
END_TEST

START_TEST(test_lock_limit_write_that_fits)
{
	run_limits(true);
}
END_TEST

/* ------------------------------------------------------------------ */
/* HUGEPAGE and the access pattern: VmFlags of the mapping */

/* The kernel's answer to advice on the test's own mapping of the file, and
 * the proof that the flag can be seen: absent before, present after. */
static int oracle_advice(const char *p, int advice, const char *flag)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	size_t len = (size_t)round_up(tu_file_size(p));
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	close(fd);
	CHECK_SPAN_FLAG(m, len, flag, false, "a plain mapping");
	errno = 0;
	int rc = madvise(m, len, advice), err = rc ? errno : 0;
	if (rc == 0)
		CHECK_SPAN_FLAG(m, len, flag, true, mmapfile_madvise_name(advice));
	munmap(m, len);
	return err;
}

/* Open with options o; the flag on every page of the file's mapping after
 * open, after growth in place, and after growth far enough to map the file
 * in a new region; not on a handle opened without them. */
static void check_flag_kept(const char *p, const struct mmapfile_options *o, const char *flag,
                            int acc)
{
	mmapfile_t *f = mmapfile_open_ex(p, acc, 0, NULL);
	ck_assert_ptr_nonnull(f);
	/* Without options a mapping of a PMD or more carries "hg" (check_huge
	 * tests that default); below one, nothing. */
	bool by_default = strcmp(flag, "hg") == 0 && tu_pmd_size() &&
	                  (size_t)mmapfile_size(f) >= tu_pmd_size();
	CHECK_SPAN_FLAG(base_of(f), round_up(mmapfile_size(f)), flag, by_default, "a handle without options");
	ck_assert_int_eq(mmapfile_close(f), 0);

	f = mmapfile_open_ex(p, acc, 0, o);
	ck_assert_msg(f != NULL, "open with %s: %s", flag, strerror(errno));
	CHECK_SPAN_FLAG(base_of(f), round_up(mmapfile_size(f)), flag, true, "after open");
	if (acc != O_RDONLY) {
		off_t size = mmapfile_size(f);
		ck_assert_int_eq(mmapfile_writeat(f, "a", 1, size + 1000), 1);
		CHECK_SPAN_FLAG(base_of(f), round_up(mmapfile_size(f)), flag, true, "after growth by 1000 bytes");
		char *b = base_of(f);
		ck_assert_int_eq(mmapfile_writeat(f, "b", 1, 8 * MiB), 1);
		CHECK_SPAN_FLAG(base_of(f), round_up(mmapfile_size(f)), flag, true, "after growth to 8 MiB");
		if (base_of(f) == b)
			printf("NOTE: growth to 8 MiB did not move the mapping\n");
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
}

START_TEST(test_hugepage)
{
	const char *p = tu_path("f");
	free(tu_make_file(p, (size_t)MiB, 14, true));
	int err = oracle_advice(p, MMAPFILE_MADV_HUGEPAGE, "hg");
	struct mmapfile_options o = opts_of(MMAPFILE_OPT_HUGEPAGE);
	if (err) {
		printf("NOTE: the kernel refuses MADV_HUGEPAGE on a file mapping: %s\n", strerror(err));
		int fds = tu_count_fds();
		errno = 0;
		ck_assert_ptr_null(mmapfile_open_ex(p, O_RDWR, 0, &o));
		ck_assert_int_eq(errno, err);
		ck_assert_int_eq(tu_count_fds(), fds);
		ck_assert_int_eq(file_vma_count(p), 0);
		return;
	}
	check_flag_kept(p, &o, "hg", O_RDWR);
	check_flag_kept(p, &o, "hg", O_RDONLY);
	/* An empty file: the advice holds for the first mapping. */
	const char *e = tu_path("empty");
	tu_write_file(e, "", 0);
	mmapfile_t *f = mmapfile_open_ex(e, O_RDWR, 0, &o);
	ck_assert_ptr_nonnull(f);
	unsigned char *chunk = calloc(1, (size_t)(300 * KiB));
	ck_assert_ptr_nonnull(chunk);
	ck_assert_int_eq(mmapfile_write(f, chunk, (size_t)(300 * KiB)), (ssize_t)(300 * KiB));
	CHECK_SPAN_FLAG(base_of(f), 300 * KiB, "hg", true, "an empty file after growth");
	ck_assert_int_eq(mmapfile_close(f), 0);
	free(chunk);
}
END_TEST

START_TEST(test_access_pattern)
{
	static const struct { int advice; const char *flag, *other; } pat[] = {
		{ MMAPFILE_MADV_RANDOM, "rr", "sr" },
		{ MMAPFILE_MADV_SEQUENTIAL, "sr", "rr" },
	};
	const char *p = tu_path("f");
	free(tu_make_file(p, (size_t)(200 * KiB + 1), 15, true));
	ck_assert_int_eq(oracle_advice(p, pat[_i].advice, pat[_i].flag), 0);
	struct mmapfile_options o = opts_of(0);
	o.advice = pat[_i].advice;
	check_flag_kept(p, &o, pat[_i].flag, O_RDWR);
	check_flag_kept(p, &o, pat[_i].flag, O_RDONLY);
	/* Only that one; and NORMAL sets neither. */
	mmapfile_t *f = mmapfile_open_ex(p, O_RDONLY, 0, &o);
	ck_assert_ptr_nonnull(f);
	CHECK_SPAN_FLAG(base_of(f), round_up(mmapfile_size(f)), pat[_i].other, false, "the other pattern");
	ck_assert_int_eq(mmapfile_close(f), 0);
	o.advice = MMAPFILE_MADV_NORMAL;
	f = mmapfile_open_ex(p, O_RDONLY, 0, &o);
	ck_assert_ptr_nonnull(f);
	CHECK_SPAN_FLAG(base_of(f), round_up(mmapfile_size(f)), pat[_i].flag, false, "NORMAL");
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* prefetch */

/* On a file system with a disk behind it: the file dropped from the page
 * cache, an open with prefetch = N brings the first N bytes in (bounded
 * wait, no claim on speed).  _i: 0 a part of the file, 1 more than all of
 * it (capped at the size). */
START_TEST(test_prefetch)
{
	const char *p = tu_path("f");
	struct statfs sfs;
	ck_assert_int_eq(statfs(tu_dir(), &sfs), 0);
	if (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC || sfs.f_type == HUGETLBFS_MAGIC) {
		printf("SKIPPED: prefetch needs a file system with a disk behind it (%s is in memory)\n",
		       tu_dir());
		return;
	}
	off_t size = 4 * MiB + 5;
	off_t n = _i ? 100 * MiB : 512 * KiB + 1;
	off_t want = n < size ? n : size;
	free(tu_make_file(p, (size_t)size, 16, true));
	/* The oracle's mapping is made before the eviction: a checker such as
	 * valgrind reads the start of every file mapped. */
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	size_t len = (size_t)round_up(want);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	close(fd);
	unsigned char *vec = malloc(len / (size_t)P);
	ck_assert_ptr_nonnull(vec);
	long before = 0;
	for (int tries = 0; tries < 5; tries++) {
		tu_evict(p);
		before = mincore_count(m, len, vec);
		if (before == 0)
			break;
	}
	if (before > 0) {
		printf("SKIPPED: %ld of %lld pages still resident after POSIX_FADV_DONTNEED\n", before,
		       (long long)(round_up(want) / P));
		munmap(m, len);
		free(vec);
		return;
	}
	struct mmapfile_options o = opts_of(0);
	o.prefetch = n;
	mmapfile_t *f = mmapfile_open_ex(p, O_RDONLY, 0, &o);
	ck_assert_ptr_nonnull(f);
	long got = 0;
	for (int tries = 0; tries < 300; tries++) {
		got = mincore_count(m, len, vec);
		if (got == round_up(want) / P)
			break;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	ck_assert_msg(got == round_up(want) / P,
	              "prefetch %lld: %ld of the first %lld pages resident after 15 s", (long long)n, got,
	              (long long)(round_up(want) / P));
	/* Whole pages, the last one only to the file's end. */
	off_t pages = round_up(want) < size ? round_up(want) : size;
	ck_assert_int_eq(mmapfile_resident(f, 0, (size_t)want), pages);
	ck_assert_int_eq(mmapfile_close(f), 0);
	munmap(m, len);
	free(vec);
}
END_TEST

/* ------------------------------------------------------------------ */
/* max_size */

/* A view at offset 0 keeps its address while the file grows by writes from
 * 4 KiB to max_size, and what it shows is the file (pread) - or, for a
 * private handle, the handle's bytes.  Growth past max_size still works;
 * a private handle refuses it (EBUSY) while a view is held, since its
 * bytes would have to move. */
START_TEST(test_max_size)
{
	bool priv = _i == 1;
	off_t max = priv ? 16 * MiB : 32 * MiB;
	const char *p = tu_path("f");
	unsigned char *orig = tu_make_file(p, (size_t)(4 * KiB), 17, true);
	struct mmapfile_options o = opts_of(priv ? MMAPFILE_OPT_PRIVATE : 0);
	o.max_size = max;
	mmapfile_t *f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_ptr_nonnull(f);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	unsigned char *v0 = mmapfile_view(f, 0, (size_t)(4 * KiB));
	ck_assert_ptr_nonnull(v0);
	ck_assert_mem_eq(v0, orig, (size_t)(4 * KiB));
	if (!priv) {
		/* Writes through the view are the file's. */
		memcpy(v0 + 100, "through the view", 16);
		unsigned char buf[16];
		ck_assert_int_eq(pread(fd, buf, 16, 100), 16);
		ck_assert_mem_eq(buf, "through the view", 16);
	}
	struct twin t = { 0 };
	twin_truncate(&t, 4 * KiB);
	memcpy(t.buf, v0, (size_t)(4 * KiB));
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), 4 * KiB);
	unsigned char *chunk = malloc((size_t)(8 * MiB));
	unsigned char *disk = malloc((size_t)(8 * MiB));
	ck_assert(chunk && disk);
	uint64_t rng = 77 + (uint64_t)_i;
	int step = 0;
	while (t.size < max) {
		/* Uneven sizes, so that the reserve lands anywhere. */
		off_t n = (off_t)(tu_rand(&rng) % (uint64_t)(t.size < MiB ? t.size : 8 * MiB)) + 1;
		if (n > max - t.size)
			n = max - t.size;
		tu_fill(chunk, (size_t)n, (uint64_t)step);
		off_t at = t.size;
		ssize_t k = mmapfile_write(f, chunk, (size_t)n);
		ck_assert_msg(k == n, "step %d: a write of %lld bytes at %lld, within max_size %lld: %zd (%s)", step,
		              (long long)n, (long long)at, (long long)max, k, strerror(errno));
		twin_write(&t, chunk, (size_t)n, at);
		unsigned char *v = mmapfile_view(f, 0, (size_t)t.size);
		ck_assert_msg(v != NULL, "view of %lld bytes: %s", (long long)t.size, strerror(errno));
		ck_assert_int_eq(mmapfile_release(f, v), 0);
		ck_assert_msg(v == v0, "step %d: the mapping moved at %lld bytes, within max_size %lld", step,
		              (long long)t.size, (long long)max);
		/* The new bytes, seen through the view's address. */
		ck_assert_msg(memcmp(v0 + at, chunk, (size_t)n) == 0, "step %d: the view shows other bytes", step);
		if (!priv) {
			ck_assert_int_eq(pread(fd, disk, (size_t)n, at), (ssize_t)n);
			ck_assert_msg(memcmp(disk, v0 + at, (size_t)n) == 0, "step %d: the file differs from the view",
			              step);
		}
		step++;
	}
	/* All of it, window by window. */
	for (off_t off = 0; off < t.size; off += 8 * MiB) {
		size_t n = (size_t)(t.size - off < 8 * MiB ? t.size - off : 8 * MiB);
		if (!priv) {
			ck_assert_int_eq(pread(fd, disk, n, off), (ssize_t)n);
			ck_assert_msg(memcmp(disk, v0 + off, n) == 0, "bytes %lld+%zu differ from the file",
			              (long long)off, n);
		}
		ck_assert_msg(memcmp(t.buf + off, v0 + off, n) == 0, "bytes %lld+%zu differ from the twin",
		              (long long)off, n);
	}
	/* Past max_size. */
	tu_fill(chunk, (size_t)MiB, 999);
	errno = 0;
	ssize_t k = mmapfile_write(f, chunk, (size_t)MiB);
	if (priv) {
		ck_assert_msg(k == -1 && errno == EBUSY, "a private handle grew past its region with a view held: %zd (%s)",
		              k, strerror(errno));
		ck_assert_int_eq(mmapfile_size(f), max);
		ck_assert_int_eq(mmapfile_release(f, v0), 0);
		v0 = NULL;
		ck_assert_int_eq(mmapfile_write(f, chunk, (size_t)MiB), (ssize_t)MiB);
	} else {
		ck_assert_int_eq(k, (ssize_t)MiB);
	}
	twin_write(&t, chunk, (size_t)MiB, max);
	compare_window(f, &t, max - 1000, (size_t)MiB + 2000, step);
	compare_window(f, &t, 0, (size_t)MiB, step);
	if (v0)
		ck_assert_int_eq(mmapfile_release(f, v0), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	if (priv)
		ck_assert_int_eq(tu_file_size(p), 4 * KiB);
	else
		ck_assert_int_eq(tu_file_size(p), max + MiB);
	close(fd);
	free(t.buf);
	free(chunk);
	free(disk);
	free(orig);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Combinations */

/* PRIVATE | LOCK: the handle's own pages are locked, all of them, through
 * growth into a new region; a cut lets the pages past the end go; the
 * file is untouched. */
START_TEST(test_private_lock)
{
	const char *p = tu_path("f");
	off_t size = 200 * KiB + 3;
	if (!tu_may_lock((size_t)(16 * MiB)))
		return;
	struct stat st0;
	unsigned char *orig = make_file_stat(p, size, 18, &st0);
	long base = tu_vm_locked();
	mmapfile_t *f = open_opts(p, O_RDWR, MMAPFILE_OPT_PRIVATE | MMAPFILE_OPT_LOCK);
	CHECK_SPAN_FLAG(base_of(f), round_up(size), "lo", true, "private, after open");
	ck_assert_int_ge(tu_vm_locked() - base, round_up(size) / 1024);
	ck_assert_int_eq(mmapfile_writeat(f, "abc", 3, 100), 3);
	ck_assert_int_eq(mmapfile_writeat(f, "far", 3, 3 * MiB), 3);
	off_t size2 = 3 * MiB + 3;
	CHECK_SPAN_FLAG(base_of(f), round_up(size2), "lo", true, "private, after growth to 3 MiB");
	ck_assert_int_ge(tu_vm_locked() - base, round_up(size2) / 1024);
	ck_assert_int_eq(mmapfile_truncate(f, 50 * KiB), 0);
	ck_assert_int_eq(tu_vm_locked() - base, round_up(50 * KiB) / 1024);
	CHECK_SPAN_FLAG(base_of(f), round_up(50 * KiB), "lo", true, "private, after truncate");
	unsigned char buf[3];
	ck_assert_int_eq(mmapfile_readat(f, buf, 3, 100), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	check_disk_unchanged(p, &st0, orig, "private and locked");
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
	check_disk_unchanged(p, &st0, orig, "private and locked, closed");
	free(orig);
}
END_TEST

/* POPULATE | LOCK | RANDOM with a reserved maximum: every promise at once,
 * through growth inside the reserved maximum. */
START_TEST(test_populate_lock_random)
{
	const char *p = tu_path("f");
	off_t size = 300 * KiB + 9;
	if (!tu_may_lock((size_t)(16 * MiB)))
		return;
	unsigned char *orig = tu_make_file(p, (size_t)size, 19, true);
	bool pop = kernel_populates(p);
	long base = tu_vm_locked();
	struct mmapfile_options o = opts_of(MMAPFILE_OPT_POPULATE | MMAPFILE_OPT_LOCK);
	o.advice = MMAPFILE_MADV_RANDOM;
	o.max_size = 8 * MiB;
	mmapfile_t *f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_ptr_nonnull(f);
	char *b = base_of(f);
	for (int round = 0; round < 3; round++) {
		char when[64];
		snprintf(when, sizeof when, "round %d", round);
		CHECK_SPAN_FLAG(base_of(f), round_up(mmapfile_size(f)), "rr", true, when);
		check_locked(f, p, base, when);
		if (pop)
			check_populated(f, p, when);
		ck_assert_msg(base_of(f) == b, "%s: the mapping moved at %lld bytes, within max_size %lld", when,
		              (long long)mmapfile_size(f), (long long)o.max_size);
		if (round == 0)
			ck_assert_int_eq(mmapfile_truncate(f, 5 * MiB), 0);
		else if (round == 1)
			ck_assert_int_eq(mmapfile_writeat(f, "z", 1, 7 * MiB), 1);
	}
	unsigned char buf[64];
	ck_assert_int_eq(mmapfile_readat(f, buf, 64, size - 64), 64);
	ck_assert_mem_eq(buf, orig + size - 64, 64);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
	ck_assert_int_eq(tu_file_size(p), 7 * MiB + 1);
	free(orig);
}
END_TEST

/* PRIVATE | POPULATE | HUGEPAGE | SEQUENTIAL: the flags on the handle's
 * copy, and the file never written. */
START_TEST(test_private_populate_hugepage)
{
	const char *p = tu_path("f");
	off_t size = 500 * KiB;
	struct stat st0;
	unsigned char *orig = make_file_stat(p, size, 20, &st0);
	if (oracle_advice(p, MMAPFILE_MADV_HUGEPAGE, "hg") != 0) {
		printf("SKIPPED: the kernel refuses MADV_HUGEPAGE\n");
		free(orig);
		return;
	}
	bool pop = kernel_populates(p);
	struct mmapfile_options o = opts_of(MMAPFILE_OPT_PRIVATE | MMAPFILE_OPT_POPULATE | MMAPFILE_OPT_HUGEPAGE);
	o.advice = MMAPFILE_MADV_SEQUENTIAL;
	mmapfile_t *f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_ptr_nonnull(f);
	for (int round = 0; round < 2; round++) {
		char *b = base_of(f);
		off_t len = round_up(mmapfile_size(f));
		CHECK_SPAN_FLAG(b, len, "hg", true, round ? "after growth" : "after open");
		CHECK_SPAN_FLAG(b, len, "sr", true, round ? "after growth" : "after open");
		if (pop) {
			long got = present_pages(b, (size_t)len);
			ck_assert_msg(got == len / P, "round %d: %ld of %lld pages mapped in", round, got,
			              (long long)(len / P));
		}
		ck_assert_int_eq(mmapfile_truncate(f, 4 * MiB), 0);
	}
	check_disk_unchanged(p, &st0, orig, "private, populated, huge");
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_disk_unchanged(p, &st0, orig, "private, populated, huge, closed");
	free(orig);
}
END_TEST

/* hugetlbfs files are tested in check_memfd, which sets up a pool and a
 * mount of its own. */


int main(void)
{
	P = (off_t)sysconf(_SC_PAGESIZE);
	Suite *s = suite_create("options");
	TCase *tc = tu_tcase("checking", 30);
	tcase_add_test(tc, test_refused_options);
	tcase_add_test(tc, test_accepted_options);
	tcase_add_test(tc, test_max_size_unreservable);
	tcase_add_test(tc, test_options_layout);
	tcase_add_test(tc, test_options_size_limit);
	tcase_add_test(tc, test_max_size_empty_file);
	tcase_add_test(tc, test_options_write_only_file);
	suite_add_tcase(s, tc);
	tc = tu_tcase("private", 120);
	tcase_add_test(tc, test_private_refused_flags);
	tcase_add_test(tc, test_private_access_modes);
	tcase_add_loop_test(tc, test_private_against_twin, 0, 3);
	tcase_add_loop_test(tc, test_private_size_is_its_own, 0, 2);
	tcase_add_test(tc, test_private_cut_by_other);
	tcase_add_test(tc, test_private_cut_past_end_reads_zeros);
	tcase_add_loop_test(tc, test_private_growth_after_append, 0, 3);
	tcase_add_test(tc, test_private_own_pages_after_cut);
	suite_add_tcase(s, tc);
	tc = tu_tcase("populate", 60);
	tcase_add_test(tc, test_populate);
	suite_add_tcase(s, tc);
	tc = tu_tcase("lock", 60);
	tcase_add_test(tc, test_lock);
	tcase_add_test(tc, test_lock_limits);
	tcase_add_test(tc, test_lock_limit_write_that_fits);
	suite_add_tcase(s, tc);
	tc = tu_tcase("advice", 60);
	tcase_add_test(tc, test_hugepage);
	tcase_add_loop_test(tc, test_access_pattern, 0, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("prefetch", 60);
	tcase_add_loop_test(tc, test_prefetch, 0, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("max_size", 120);
	tcase_add_loop_test(tc, test_max_size, 0, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("combinations", 60);
	tcase_add_test(tc, test_private_lock);
	tcase_add_test(tc, test_populate_lock_random);
	tcase_add_test(tc, test_private_populate_hugepage);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
