/* check_route.c - which way a large read goes (DESIGN.md, "The cheaper
 * path per call"): a read of 64 KiB or more of a stretch the handle has not
 * read goes through pread(2), so the handle's mapping gets no pages for it
 * (smaps Rss of the mapping); the second read of a stretch, and every one
 * after, goes through the mapping.  Either way every byte is what a plain
 * descriptor reads at the same moment, also after another process wrote or
 * cut the file, and past the size nothing of the reserve shows.  Random
 * reads of a file not in memory and bigger than memory (the library is
 * shown a /proc/meminfo of its own, through its system-call table) go
 * through pread(2) too; of a file that fits, through the mapping. */
#define _GNU_SOURCE
#include "internal.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* The address of the file's first byte in the handle's mapping. */
static const char *base_of(mmapfile_t *f)
{
	char *p = mmapfile_view(f, 0, 1);
	ck_assert_msg(p != NULL, "view: %s", strerror(errno));
	ck_assert_int_eq(mmapfile_release(f, p), 0);
	return p;
}

/* KiB of [p, p + len) mapped in (Rss of the VMAs over it, counted whole). */
static long mapped_kb(const char *p, size_t len)
{
	struct tu_vma *v;
	int n = tu_read_vmas(&v);
	long kb = 0;
	for (int i = 0; i < n; i++)
		if (v[i].start < (uintptr_t)p + len && v[i].end > (uintptr_t)p)
			kb += v[i].rss_kb;
	tu_free_vmas(v, n);
	return kb;
}

/* Read [off, off + len) of the handle in chunks of chunk bytes and compare
 * with what a fresh descriptor reads. */
static void read_and_compare(mmapfile_t *f, const char *path, off_t off, size_t len, size_t chunk)
{
	unsigned char *got = tu_xmalloc(chunk), *want = tu_xmalloc(chunk);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	for (size_t done = 0; done < len; done += chunk) {
		size_t k = len - done < chunk ? len - done : chunk;
		ssize_t r = mmapfile_readat(f, got, k, off + (off_t)done);
		ssize_t w = pread(fd, want, k, off + (off_t)done);
		ck_assert_int_eq(r, w);
		size_t i = tu_first_diff(got, want, (size_t)w);
		ck_assert_msg(i == (size_t)w, "byte %lld differs from read(2)", (long long)(off + (off_t)(done + i)));
	}
	close(fd);
	free(got);
	free(want);
}

/* The first large read of each stretch maps nothing; the second maps it;
 * the bytes are the file's every time.  Small reads take the mapping. */
START_TEST(test_first_read_by_kernel)
{
	const char *p = tu_path("f");
	const size_t size = 8 * MiB;
	free(tu_make_file(p, size, 21, false));
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	const char *base = base_of(f);
	ck_assert_int_eq(mapped_kb(base, size), 0);

	read_and_compare(f, p, 0, 4 * MiB, MiB);
	long kb = mapped_kb(base, size);
	ck_assert_msg(kb == 0, "after the first read of 4 MiB in 1 MiB calls: %ld KiB mapped, want 0", kb);
	/* Unaligned 64 KiB calls over what follows: each reaches a stretch not
	 * read yet, so none maps. */
	read_and_compare(f, p, 4 * MiB + 100, 2 * MiB, 64 * KiB);
	kb = mapped_kb(base, size);
	ck_assert_msg(kb == 0, "after unaligned 64 KiB reads: %ld KiB mapped, want 0", kb);

	/* The second read of the first 4 MiB goes through the mapping. */
	read_and_compare(f, p, 0, 4 * MiB, MiB);
	kb = mapped_kb(base, size);
	ck_assert_msg(kb >= 4096, "after the second read of 4 MiB: %ld KiB mapped, want at least 4096", kb);
	long before = kb;
	read_and_compare(f, p, 0, 4 * MiB, MiB);
	ck_assert_int_eq(mapped_kb(base, size), before);

	/* 4 KiB reads, under the size for pread, take the mapping at once. */
	read_and_compare(f, p, 7 * MiB, 64 * KiB, 4 * KiB);
	kb = mapped_kb(base, size);
	ck_assert_msg(kb >= before + 64, "after 4 KiB reads of 64 KiB not read before: %ld KiB mapped, "
	              "was %ld", kb, before);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* Another process writes the file between reads: a read through either
 * path returns what it wrote, as read(2) on a fresh descriptor does. */
START_TEST(test_writes_by_other)
{
	const char *p = tu_path("o");
	const size_t size = 3 * MiB;
	free(tu_make_file(p, size, 22, false));
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	for (int round = 0; round < 3; round++) { /* pread, then the mapping, then the mapping */
		pid_t pid = tu_fork();
		if (pid == 0) {
			int fd = open(p, O_WRONLY | O_CLOEXEC);
			unsigned char *b = tu_random_bytes(200 * KiB, 100 + (uint64_t)round);
			ssize_t w = fd < 0 ? -1 : pwrite(fd, b, 200 * KiB, (off_t)(round * 300 + 50) * (off_t)KiB);
			_exit(w == (ssize_t)(200 * KiB) ? 0 : 1);
		}
		ck_assert_int_eq(tu_wait(pid), 0);
		read_and_compare(f, p, 0, size, 512 * KiB);
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* Another process cuts the file: a large read that has not touched the
 * pages (pread) and one that has (the mapping) both end where read(2)
 * ends, and the size follows. */
START_TEST(test_cut_by_other)
{
	const char *p = tu_path("c");
	const size_t size = 4 * MiB;
	free(tu_make_file(p, size, 23, false));
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	read_and_compare(f, p, 0, 2 * MiB, MiB); /* [0, 2 MiB) read once */
	tu_truncate_by_other(p, (off_t)(3 * MiB + 5));
	unsigned char *buf = tu_xmalloc(2 * MiB);
	/* [2, 4) MiB not read: pread, short at the new end. */
	ck_assert_int_eq(mmapfile_readat(f, buf, 2 * MiB, (off_t)(2 * MiB)), (ssize_t)(MiB + 5));
	ck_assert_int_eq(mmapfile_size(f), (off_t)(3 * MiB + 5));
	read_and_compare(f, p, 0, 3 * MiB + 5, MiB);
	tu_truncate_by_other(p, (off_t)(MiB / 2));
	/* [0, 1) MiB read twice: through the mapping, which the cut left
	 * short; the answer is still read(2)'s. */
	ck_assert_int_eq(mmapfile_readat(f, buf, MiB, 0), (ssize_t)(MiB / 2));
	ck_assert_int_eq(mmapfile_size(f), (off_t)(MiB / 2));
	read_and_compare(f, p, 0, MiB / 2, 256 * KiB);
	free(buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* A writable handle: what it wrote through the mapping is what a large
 * read returns by either path, and a read past the size never returns the
 * reserve beyond it. */
START_TEST(test_own_writes_and_reserve)
{
	const char *p = tu_path("w");
	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	const size_t size = 3 * MiB + 77;
	unsigned char *data = tu_random_bytes(size, 24);
	for (size_t o = 0; o < size; o += 1000) /* small appends: through the mapping */
		ck_assert_int_eq(mmapfile_write(f, data + o, size - o < 1000 ? size - o : 1000),
		                 (ssize_t)(size - o < 1000 ? size - o : 1000));
	ck_assert_int_ge(tu_file_size(p), (off_t)size); /* the reserve may follow */
	unsigned char *buf = tu_xmalloc(4 * MiB);
	for (int pass = 0; pass < 3; pass++) {
		ck_assert_int_eq(mmapfile_readat(f, buf, 4 * MiB, 0), (ssize_t)size);
		size_t i = tu_first_diff(buf, data, size);
		ck_assert_msg(i == size, "pass %d: byte %zu differs from what was written", pass, i);
		ck_assert_int_eq(mmapfile_readat(f, buf, MiB, (off_t)size), 0);
	}
	/* The cursor: a seek and a large read, the same bytes. */
	ck_assert_int_eq(mmapfile_seek(f, 1000, SEEK_SET), 1000);
	ck_assert_int_eq(mmapfile_read(f, buf, 2 * MiB), (ssize_t)(2 * MiB));
	ck_assert_mem_eq(buf, data + 1000, 2 * MiB);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), (off_t)(1000 + 2 * MiB));
	free(buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
	size_t n;
	unsigned char *disk = tu_read_file(p, &n);
	ck_assert_uint_eq(n, size);
	ck_assert_mem_eq(disk, data, size);
	free(disk);
	free(data);
}
END_TEST

/* A private handle's bytes are in its mapping alone: its large reads take
 * the mapping from the first, and return what it wrote, not the file. */
START_TEST(test_private)
{
	const char *p = tu_path("p");
	const size_t size = 2 * MiB;
	unsigned char *orig = tu_make_file(p, size, 25, false);
	struct mmapfile_options o = { .size = sizeof o, .flags = MMAPFILE_OPT_PRIVATE };
	mmapfile_t *f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_writeat(f, "private", 7, (off_t)MiB), 7);
	const char *base = base_of(f);
	unsigned char *buf = tu_xmalloc(size);
	ck_assert_int_eq(mmapfile_readat(f, buf, size, 0), (ssize_t)size);
	ck_assert_mem_eq(buf + MiB, "private", 7);
	ck_assert_mem_eq(buf, orig, MiB);
	long kb = mapped_kb(base, size);
	ck_assert_msg(kb >= 1024, "a private handle's first large read: %ld KiB mapped, want the mapping", kb);
	free(buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
	size_t n;
	unsigned char *disk = tu_read_file(p, &n);
	ck_assert_uint_eq(n, size);
	ck_assert_mem_eq(disk, orig, size);
	free(disk);
	free(orig);
}
END_TEST

/* Whether the VMA at p carries the flag (smaps VmFlags). */
static bool vma_flag(const char *p, const char *flag)
{
	struct tu_vma v;
	ck_assert(tu_find_vma(p, &v));
	return tu_vm_flag(v.flags, flag);
}

/* n random 4 KiB readat calls (never at 0, where a first read would count
 * as sequential), each compared with pread(2) of the same bytes. */
static void random_reads(mmapfile_t *f, int fd, size_t size, int n, uint64_t *seed)
{
	unsigned char got[4096], want[4096];
	for (int i = 0; i < n; i++) {
		off_t off = (off_t)(1 + tu_rand(seed) % (size / 4096 - 1)) * 4096;
		errno = EDOM; /* a read that succeeds leaves errno alone, as read(2) does */
		ck_assert_int_eq(mmapfile_readat(f, got, sizeof got, off), (ssize_t)sizeof got);
		ck_assert_msg(errno == EDOM, "a random read that succeeded set errno to %s", strerror(errno));
		ck_assert_int_eq(pread(fd, want, sizeof want, off), (ssize_t)sizeof want);
		ck_assert_msg(memcmp(got, want, sizeof got) == 0, "random read at %lld differs", (long long)off);
	}
}

/* The library reads these instead of /proc/meminfo, /proc/self/cgroup and
 * the tree under /sys/fs/cgroup (fake_sys + the path). */
static char meminfo[4200], cgroups[4200], fake_sys[4200];
static int (*real_open)(const char *, int, mode_t);

static int open_fake(const char *path, int flags, mode_t mode)
{
	char p[8400];
	if (!strcmp(path, "/proc/meminfo"))
		return real_open(meminfo, flags, mode);
	if (!strcmp(path, "/proc/self/cgroup") && cgroups[0])
		return real_open(cgroups, flags, mode);
	if (!strncmp(path, "/sys/fs/cgroup/", 15) && fake_sys[0]) {
		snprintf(p, sizeof p, "%s%s", fake_sys, path);
		return real_open(p, flags, mode);
	}
	return real_open(path, flags, mode);
}

/* Show the library a machine of avail_kb available memory. */
static void fake_meminfo(unsigned long avail_kb)
{
	char text[256];
	int n = snprintf(text, sizeof text, "MemTotal:       %lu kB\nMemFree:        %lu kB\nMemAvailable:   %lu kB\n",
	                 4 * avail_kb, avail_kb, avail_kb);
	snprintf(meminfo, sizeof meminfo, "%s", tu_path("meminfo"));
	tu_write_file(meminfo, text, (size_t)n);
	real_open = mmf_sys.open;
	mmf_sys.open = open_fake;
}

/* Show the library this process in the cgroups of text (what
 * /proc/self/cgroup says), with the files of files (name, contents, ...,
 * NULL) under the fake /sys/fs/cgroup, each name relative to it. */
static void fake_cgroups(const char *text, ...)
{
	snprintf(cgroups, sizeof cgroups, "%s", tu_path("cgroup"));
	tu_write_file(cgroups, text, strlen(text));
	snprintf(fake_sys, sizeof fake_sys, "%s", tu_path("sys"));
	ck_assert_msg(mkdir(fake_sys, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", fake_sys, strerror(errno));
	va_list ap;
	va_start(ap, text);
	for (const char *name; (name = va_arg(ap, const char *));) {
		const char *body = va_arg(ap, const char *);
		char p[8400];
		snprintf(p, sizeof p, "%s/sys/fs/cgroup/%s", fake_sys, name);
		for (char *slash = strchr(p + strlen(fake_sys) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
			*slash = 0;
			ck_assert_msg(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
			*slash = '/';
		}
		tu_write_file(p, body, strlen(body));
	}
	va_end(ap);
}

/* A file of size bytes written and dropped from the page cache; false (and
 * the reason printed) where the file system keeps it in memory. */
static bool cold_file(const char *p, size_t size)
{
	free(tu_make_file(p, size, 26, true));
	tu_evict(p);
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	off_t resident = mmapfile_resident(f, 0, 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_ge(resident, 0);
	if (resident <= (off_t)size / 2)
		return true;
	printf("SKIPPED: the file system keeps the file in memory (%lld of %zu bytes after eviction)\n",
	       (long long)resident, size);
	return false;
}

/* Random reads of pages not in memory of a file bigger than memory (16 MiB
 * of it, as the library is shown) go through pread(2), with the mapping
 * advised RANDOM and no huge pages; once the file is in memory again they
 * go back to the mapping and its advice to the default. */
START_TEST(test_random_past_memory)
{
	const char *p = tu_path("r");
	const size_t size = 32 * MiB;
	fake_meminfo(16384);
	if (!cold_file(p, size))
		return;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	const char *base = base_of(f);
	uint64_t seed = 27;
	random_reads(f, fd, size, 64, &seed);
	ck_assert_msg(vma_flag(base, "rr"), "random reads past memory: the mapping is not advised RANDOM");
	if (tu_pmd_size())
		ck_assert_msg(vma_flag(base, "nh"), "random reads past memory: huge pages not turned off");
	long kb = mapped_kb(base, size);
	ck_assert_msg(kb == 0, "random reads past memory: %ld KiB mapped, want none (pread)", kb);

	/* The file in memory again: back to the mapping and the default. */
	unsigned char *all = tu_read_file(p, &(size_t){ 0 });
	free(all);
	random_reads(f, fd, size, 128, &seed);
	ck_assert_msg(!vma_flag(base, "rr"), "random reads in memory: the mapping still advised RANDOM");
	if (tu_pmd_size())
		ck_assert_msg(vma_flag(base, "hg"), "random reads in memory: the huge-page default not back");
	kb = mapped_kb(base, size);
	ck_assert_msg(kb > 0, "random reads in memory: nothing mapped, want the mapping");
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
}
END_TEST

/* Pages not in memory of a file that fits: the mapping, whose read-around
 * brings the file in a PMD at a time, and no RANDOM advice. */
START_TEST(test_random_cold_fits)
{
	const char *p = tu_path("s");
	const size_t size = 32 * MiB;
	if (!cold_file(p, size))
		return;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	const char *base = base_of(f);
	uint64_t seed = 28;
	random_reads(f, fd, size, 64, &seed);
	ck_assert_msg(!vma_flag(base, "rr"), "a cold file that fits in memory: the mapping advised RANDOM");
	long kb = mapped_kb(base, size);
	ck_assert_msg(kb > 0, "a cold file that fits in memory: nothing mapped, want the mapping");
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
}
END_TEST

/* A cold file, read at random in 64 places: whether the handle took it for
 * one past memory (RANDOM advice and nothing mapped) or not. */
static bool taken_past_memory(const char *name)
{
	const char *p = tu_path(name);
	const size_t size = 32 * MiB;
	if (!cold_file(p, size))
		return false;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	const char *base = base_of(f);
	uint64_t seed = 29;
	random_reads(f, fd, size, 64, &seed);
	bool rr = vma_flag(base, "rr");
	long kb = mapped_kb(base, size);
	ck_assert_msg(rr == (kb == 0), "RANDOM advice %s, yet %ld KiB mapped", rr ? "given" : "not given", kb);
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
	return rr;
}

/* Plenty of memory, but a cgroup v2 ancestor's memory.max of 16 MiB: the
 * smallest limit up the tree counts, "max" none. */
START_TEST(test_cgroup_v2_limit)
{
	fake_meminfo(64ul << 20);
	fake_cgroups("0::/app/job\n", "app/memory.max", "16777216\n", "app/job/memory.max", "max\n", NULL);
	ck_assert_msg(taken_past_memory("v2"), "a 32 MiB file in a cgroup v2 of 16 MiB: not taken as past memory");
}
END_TEST

/* cgroup v1: the memory controller's line (among others), its
 * memory.limit_in_bytes up the tree, the unlimited value at the leaf. */
START_TEST(test_cgroup_v1_limit)
{
	fake_meminfo(64ul << 20);
	fake_cgroups("12:cpu,cpuacct:/other\n11:memory:/app/job\n0::/\n",
	             "memory/app/memory.limit_in_bytes", "16777216\n",
	             "memory/app/job/memory.limit_in_bytes", "9223372036854771712\n",
	             "cpu,cpuacct/other/memory.limit_in_bytes", "4096\n", NULL);
	ck_assert_msg(taken_past_memory("v1"), "a 32 MiB file in a cgroup v1 of 16 MiB: not taken as past memory");
}
END_TEST

/* The control: the same trees with no limit, or limits the file fits in
 * twice (v2 "max", v1's unlimited value, another controller's small file):
 * the file fits, so the handle stays on the mapping. */
START_TEST(test_cgroup_no_limit)
{
	fake_meminfo(64ul << 20);
	fake_cgroups("12:cpu,cpuacct:/other\n11:memory:/app/job\n0::/app/job\n",
	             "app/memory.max", "max\n", "app/job/memory.max", "1073741824\n",
	             "memory/app/job/memory.limit_in_bytes", "9223372036854771712\n",
	             "cpu,cpuacct/other/memory.limit_in_bytes", "4096\n", NULL);
	ck_assert_msg(!taken_past_memory("none"), "a 32 MiB file with 1 GiB of cgroup room: taken as past memory");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tu_tcase("route", 60);
	tcase_add_test(tc, test_first_read_by_kernel);
	tcase_add_test(tc, test_writes_by_other);
	tcase_add_test(tc, test_cut_by_other);
	tcase_add_test(tc, test_own_writes_and_reserve);
	tcase_add_test(tc, test_private);
	tcase_add_test(tc, test_random_past_memory);
	tcase_add_test(tc, test_random_cold_fits);
	tcase_add_test(tc, test_cgroup_v2_limit);
	tcase_add_test(tc, test_cgroup_v1_limit);
	tcase_add_test(tc, test_cgroup_no_limit);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
