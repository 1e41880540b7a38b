/* check_huge.c - transparent huge pages by default (DESIGN.md, "Huge
 * pages"): a mapping of a PMD or more starts on a PMD boundary and carries
 * MADV_HUGEPAGE ("hg" in smaps), also after growth; a file the library
 * writes ends on a PMD boundary while open, so its folios can be PMD-sized;
 * small files, MMAPFILE_OPT_NOHUGEPAGE and random-access advice get none.
 * The oracles are /proc/self/smaps, and a plain aligned MADV_HUGEPAGE
 * mapping of the same file: where it gets no PMD entries, the file system
 * or kernel gives no PMD folios, and that check is skipped, with the
 * reason. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB (1024 * KiB)
#define REC 64

static bool have_thp(void)
{
	if (tu_pmd_size())
		return true;
	printf("SKIPPED: the kernel has no transparent huge pages (no hpage_pmd_size)\n");
	fflush(stdout);
	return false;
}

struct span {
	long pmd_kb, rss_kb;
	bool all_hg, any_nh;
	int vmas;
};

/* What smaps says of the VMAs over [p, p + len). */
static struct span span_of(const void *p, size_t len)
{
	struct tu_vma *v;
	int n = tu_read_vmas(&v);
	struct span s = { .all_hg = true };
	uintptr_t lo = (uintptr_t)p, hi = lo + len;
	for (int i = 0; i < n; i++) {
		if (v[i].end <= lo || v[i].start >= hi)
			continue;
		s.vmas++;
		s.pmd_kb += v[i].pmd_kb;
		s.rss_kb += v[i].rss_kb;
		s.all_hg = s.all_hg && tu_vm_flag(v[i].flags, "hg");
		s.any_nh = s.any_nh || tu_vm_flag(v[i].flags, "nh");
	}
	tu_free_vmas(v, n);
	if (!s.vmas)
		s.all_hg = false;
	return s;
}

/* The oracle: PMD entries that a plain 2 MiB-aligned MADV_HUGEPAGE mapping
 * of the file's first len bytes gets when every page is read. */
static long raw_pmd_kb(const char *path, size_t len)
{
	size_t pmd = tu_pmd_size();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	char *r = mmap(NULL, len + pmd, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert(r != MAP_FAILED);
	char *a = (char *)(((uintptr_t)r + pmd - 1) & ~(uintptr_t)(pmd - 1));
	ck_assert(mmap(a, len, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == a);
	ck_assert_int_eq(madvise(a, len, MADV_HUGEPAGE), 0);
	volatile unsigned char sum = 0;
	for (size_t o = 0; o < len; o += 4096)
		sum += (unsigned char)a[o];
	(void)sum;
	long kb = span_of(a, len).pmd_kb;
	munmap(r, len + pmd);
	close(fd);
	return kb;
}

/* The address of the file's first byte in the handle's mapping. */
static char *base_of(mmapfile_t *f)
{
	char *p = mmapfile_view(f, 0, 1);
	ck_assert_msg(p != NULL, "view: %s", strerror(errno));
	ck_assert_int_eq(mmapfile_release(f, p), 0);
	return p;
}

static void append_records(mmapfile_t *f, off_t from, off_t to)
{
	unsigned char rec[REC];
	for (off_t o = from; o < to; o += REC) {
		tu_fill_pattern(rec, o, REC);
		ck_assert_int_eq(mmapfile_write(f, rec, REC), REC);
	}
}

/* The file holds the pattern, exactly size bytes, read with pread(2). */
static void check_pattern(const char *p, off_t size)
{
	ck_assert_int_eq(tu_file_size(p), size);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	size_t n = (size_t)MiB;
	unsigned char *got = tu_xmalloc(n), *want = tu_xmalloc(n);
	for (off_t o = 0; o < size; o += (off_t)n) {
		size_t k = size - o < (off_t)n ? (size_t)(size - o) : n;
		tu_pread_all(fd, got, k, o);
		tu_fill_pattern(want, o, k);
		ck_assert_msg(memcmp(got, want, k) == 0, "byte %lld differs",
		              (long long)(o + (off_t)tu_first_diff(got, want, k)));
	}
	free(got);
	free(want);
	close(fd);
}

/* PMD entries are the file system's to give: where the oracle gets none,
 * the check says why it is skipped. */
static void expect_pmd(const char *what, long kb, const char *path, size_t len)
{
	long raw = raw_pmd_kb(path, len);
	if (raw == 0) {
		printf("SKIPPED: %s: a plain aligned MADV_HUGEPAGE mapping of the file gets no PMD "
		       "entries either (file system or kernel without PMD folios)\n", what);
		fflush(stdout);
		return;
	}
	ck_assert_msg(kb > 0, "%s: no PMD entries, where a plain aligned mapping gets %ld KiB", what, raw);
}

START_TEST(test_library_written)
{
	if (!have_thp())
		return;
	size_t pmd = tu_pmd_size();
	const char *p = tu_path("w");
	const off_t size = 12 * MiB + 7 * REC;
	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	append_records(f, 0, size);
	char *base = base_of(f);
	ck_assert_msg(((uintptr_t)base & (pmd - 1)) == 0, "mapping at %p: not on a PMD boundary", (void *)base);
	/* While open, the file ends on a PMD boundary past its size. */
	struct stat st;
	ck_assert_int_eq(fstat(mmapfile_fd(f), &st), 0);
	ck_assert_msg(st.st_size % (off_t)pmd == 0 && st.st_size >= size && st.st_size - size < (off_t)pmd,
	              "file length %lld while open, size %lld", (long long)st.st_size, (long long)size);
	struct span s = span_of(base, (size_t)size);
	ck_assert_msg(s.all_hg, "the mapping lacks MADV_HUGEPAGE (%d VMAs)", s.vmas);
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_pattern(p, size);

	/* A fresh handle reads it back through PMD entries where the file
	 * system made PMD folios. */
	f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	unsigned char rec[REC], want[REC];
	for (off_t o = 0; o < size; o += REC) {
		ck_assert_int_eq(mmapfile_read(f, rec, REC), REC);
		tu_fill_pattern(want, o, REC);
		ck_assert(memcmp(rec, want, REC) == 0);
	}
	base = base_of(f);
	ck_assert(((uintptr_t)base & (pmd - 1)) == 0);
	s = span_of(base, (size_t)size);
	ck_assert(s.all_hg);
	expect_pmd("a file the library wrote, read back", s.pmd_kb, p, (size_t)size);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* Growth from 3 MiB to 40 MiB, in place and by moves: every region stays
 * aligned and advised, and the bytes are the file's. */
START_TEST(test_growth_keeps_advice)
{
	if (!have_thp())
		return;
	size_t pmd = tu_pmd_size();
	const char *p = tu_path("g");
	tu_make_pattern_file(p, 3 * MiB);
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), 3 * MiB);
	for (off_t end = 5 * MiB; end <= 40 * MiB; end += 5 * MiB) {
		append_records(f, mmapfile_size(f), end);
		char *base = base_of(f);
		ck_assert_msg(((uintptr_t)base & (pmd - 1)) == 0, "at %lld MiB: mapping at %p", (long long)(end / MiB),
		              (void *)base);
		struct span s = span_of(base, (size_t)end);
		ck_assert_msg(s.all_hg, "at %lld MiB: a VMA of the mapping lacks MADV_HUGEPAGE", (long long)(end / MiB));
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_pattern(p, 40 * MiB);
}
END_TEST

static const struct none_case {
	const char *name;
	off_t size;         /* at open; appends add 4 MiB */
	unsigned opts;      /* mmapfile_open_ex flags; 0: mmapfile_open */
	int advice;         /* lasting advice given after the open; -1: none */
	const char *flag;   /* the flag smaps shows instead, or NULL */
} none_cases[] = {
	{ "MMAPFILE_OPT_NOHUGEPAGE", 8 * MiB, MMAPFILE_OPT_NOHUGEPAGE, -1, "nh" },
	{ "MADV_NOHUGEPAGE given", 8 * MiB, 0, MMAPFILE_MADV_NOHUGEPAGE, "nh" },
	{ "MADV_RANDOM given", 8 * MiB, 0, MMAPFILE_MADV_RANDOM, "rr" },
};

START_TEST(test_no_default)
{
	if (!have_thp())
		return;
	const struct none_case *c = &none_cases[_i];
	const char *p = tu_path("n");
	tu_make_pattern_file(p, c->size);
	struct mmapfile_options o = { .size = sizeof o, .flags = c->opts };
	mmapfile_t *f = c->opts ? mmapfile_open_ex(p, O_RDWR, 0, &o) : mmapfile_open(p, O_RDWR, 0);
	ck_assert_msg(f != NULL, "%s: open: %s", c->name, strerror(errno));
	if (c->advice >= 0)
		ck_assert_int_eq(mmapfile_madvise(f, 0, 0, c->advice), 0);
	/* Growth past a PMD keeps it so. */
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), c->size);
	append_records(f, c->size, c->size + 4 * MiB);
	char *base = base_of(f);
	size_t len = (size_t)(c->size + 4 * MiB);
	unsigned char buf[REC];
	for (off_t off = 0; off < (off_t)len; off += 4096)
		ck_assert_int_eq(mmapfile_readat(f, buf, 1, off), 1);
	struct span s = span_of(base, len);
	ck_assert_msg(!s.all_hg, "%s: MADV_HUGEPAGE given", c->name);
	ck_assert_msg(s.pmd_kb == 0, "%s: %ld KiB mapped by PMD entries", c->name, s.pmd_kb);
	if (c->flag) {
		struct tu_vma v;
		ck_assert(tu_find_vma(base, &v));
		ck_assert_msg(tu_vm_flag(v.flags, c->flag), "%s: smaps flags '%s' lack %s", c->name, v.flags,
		              c->flag);
		ck_assert_msg(!tu_vm_flag(v.flags, "hg"), "%s: flags '%s'", c->name, v.flags);
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
	if (!(c->opts & MMAPFILE_OPT_PRIVATE))
		check_pattern(p, (off_t)len);
}
END_TEST

/* A small file never gets the advice: the first 1 MiB stays unadvised. */
START_TEST(test_small_file)
{
	if (!have_thp())
		return;
	const char *p = tu_path("s");
	tu_make_pattern_file(p, 1 * MiB);
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	struct span s = span_of(base_of(f), (size_t)MiB);
	ck_assert_msg(s.vmas > 0 && !s.all_hg, "a 1 MiB file's mapping has MADV_HUGEPAGE");
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* A private handle's pages get no advice: its written pages are copies. */
START_TEST(test_private)
{
	if (!have_thp())
		return;
	const char *p = tu_path("p");
	tu_make_pattern_file(p, 8 * MiB);
	struct mmapfile_options o = { .size = sizeof o, .flags = MMAPFILE_OPT_PRIVATE };
	mmapfile_t *f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), 8 * MiB);
	append_records(f, 8 * MiB, 12 * MiB);
	struct span s = span_of(base_of(f), (size_t)(12 * MiB));
	ck_assert_msg(s.vmas > 0 && !s.all_hg, "a private handle's mapping has MADV_HUGEPAGE");
	ck_assert_int_eq(mmapfile_close(f), 0);
	check_pattern(p, 8 * MiB);
}
END_TEST

START_TEST(test_both_flags)
{
	const char *p = tu_path("b");
	tu_make_pattern_file(p, 4 * KiB);
	struct mmapfile_options o = { .size = sizeof o, .flags = MMAPFILE_OPT_HUGEPAGE | MMAPFILE_OPT_NOHUGEPAGE };
	errno = 0;
	ck_assert_ptr_null(mmapfile_open_ex(p, O_RDWR, 0, &o));
	ck_assert_int_eq(errno, EINVAL);
	check_pattern(p, 4 * KiB);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("huge");
	TCase *tc = tu_tcase("huge", 60);
	tcase_add_test(tc, test_library_written);
	tcase_add_test(tc, test_growth_keeps_advice);
	tcase_add_loop_test(tc, test_no_default, 0, (int)(sizeof none_cases / sizeof none_cases[0]));
	tcase_add_test(tc, test_small_file);
	tcase_add_test(tc, test_private);
	tcase_add_test(tc, test_both_flags);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
