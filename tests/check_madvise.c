/* check_madvise.c - the madvise module: constants, names, parsing, and
 * mmapfile_madvise against madvise(2) on an equivalent plain mapping. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<linux/mman.h>)
#include <linux/mman.h>
#endif
#endif

#define OFF_MAX_T ((off_t)INT64_MAX)

/* ------------------------------------------------------------------ */
/* The 27 names the spec lists, with the header's values. */

struct advice {
	int value;
	const char *name; /* "MADV_X" */
	const char *bare; /* "X" */
};

#define A(x) { MMAPFILE_MADV_##x, "MADV_" #x, #x }
static const struct advice all_advice[] = {
	A(NORMAL), A(RANDOM), A(SEQUENTIAL), A(WILLNEED), A(DONTNEED),
	A(FREE), A(REMOVE), A(DONTFORK), A(DOFORK), A(MERGEABLE),
	A(UNMERGEABLE), A(HUGEPAGE), A(NOHUGEPAGE), A(DONTDUMP), A(DODUMP),
	A(WIPEONFORK), A(KEEPONFORK), A(COLD), A(PAGEOUT), A(POPULATE_READ),
	A(POPULATE_WRITE), A(DONTNEED_LOCKED), A(COLLAPSE), A(HWPOISON),
	A(SOFT_OFFLINE), A(GUARD_INSTALL), A(GUARD_REMOVE),
};
#undef A
#define N_ADVICE (sizeof all_advice / sizeof all_advice[0])

/* Advice that must never be issued by a test: it damages the machine. */
static int dangerous(int advice)
{
	return advice == MMAPFILE_MADV_HWPOISON || advice == MMAPFILE_MADV_SOFT_OFFLINE;
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------------ */
/* Constants */

START_TEST(test_constants_count_and_distinct)
{
	ck_assert_uint_eq(N_ADVICE, 27);
	for (size_t i = 0; i < N_ADVICE; i++)
		for (size_t j = i + 1; j < N_ADVICE; j++)
			ck_assert_msg(all_advice[i].value != all_advice[j].value,
				      "%s and %s share the value %d", all_advice[i].name,
				      all_advice[j].name, all_advice[i].value);
}
END_TEST

START_TEST(test_constants_match_system)
{
	int checked = 0;
	char missing[512] = "";
#define SYS(x)                                                                          \
	do {                                                                            \
		ck_assert_msg(MMAPFILE_MADV_##x == MADV_##x,                            \
			      "MMAPFILE_MADV_" #x " = %d but the system's MADV_" #x " = %d", \
			      MMAPFILE_MADV_##x, MADV_##x);                             \
		checked++;                                                              \
	} while (0)
#define NOSYS(x) strncat(missing, " MADV_" #x, sizeof missing - strlen(missing) - 1)
#ifdef MADV_NORMAL
	SYS(NORMAL);
#else
	NOSYS(NORMAL);
#endif
#ifdef MADV_RANDOM
	SYS(RANDOM);
#else
	NOSYS(RANDOM);
#endif
#ifdef MADV_SEQUENTIAL
	SYS(SEQUENTIAL);
#else
	NOSYS(SEQUENTIAL);
#endif
#ifdef MADV_WILLNEED
	SYS(WILLNEED);
#else
	NOSYS(WILLNEED);
#endif
#ifdef MADV_DONTNEED
	SYS(DONTNEED);
#else
	NOSYS(DONTNEED);
#endif
#ifdef MADV_FREE
	SYS(FREE);
#else
	NOSYS(FREE);
#endif
#ifdef MADV_REMOVE
	SYS(REMOVE);
#else
	NOSYS(REMOVE);
#endif
#ifdef MADV_DONTFORK
	SYS(DONTFORK);
#else
	NOSYS(DONTFORK);
#endif
#ifdef MADV_DOFORK
	SYS(DOFORK);
#else
	NOSYS(DOFORK);
#endif
#ifdef MADV_MERGEABLE
	SYS(MERGEABLE);
#else
	NOSYS(MERGEABLE);
#endif
#ifdef MADV_UNMERGEABLE
	SYS(UNMERGEABLE);
#else
	NOSYS(UNMERGEABLE);
#endif
#ifdef MADV_HUGEPAGE
	SYS(HUGEPAGE);
#else
	NOSYS(HUGEPAGE);
#endif
#ifdef MADV_NOHUGEPAGE
	SYS(NOHUGEPAGE);
#else
	NOSYS(NOHUGEPAGE);
#endif
#ifdef MADV_DONTDUMP
	SYS(DONTDUMP);
#else
	NOSYS(DONTDUMP);
#endif
#ifdef MADV_DODUMP
	SYS(DODUMP);
#else
	NOSYS(DODUMP);
#endif
#ifdef MADV_WIPEONFORK
	SYS(WIPEONFORK);
#else
	NOSYS(WIPEONFORK);
#endif
#ifdef MADV_KEEPONFORK
	SYS(KEEPONFORK);
#else
	NOSYS(KEEPONFORK);
#endif
#ifdef MADV_COLD
	SYS(COLD);
#else
	NOSYS(COLD);
#endif
#ifdef MADV_PAGEOUT
	SYS(PAGEOUT);
#else
	NOSYS(PAGEOUT);
#endif
#ifdef MADV_POPULATE_READ
	SYS(POPULATE_READ);
#else
	NOSYS(POPULATE_READ);
#endif
#ifdef MADV_POPULATE_WRITE
	SYS(POPULATE_WRITE);
#else
	NOSYS(POPULATE_WRITE);
#endif
#ifdef MADV_DONTNEED_LOCKED
	SYS(DONTNEED_LOCKED);
#else
	NOSYS(DONTNEED_LOCKED);
#endif
#ifdef MADV_COLLAPSE
	SYS(COLLAPSE);
#else
	NOSYS(COLLAPSE);
#endif
#ifdef MADV_HWPOISON
	SYS(HWPOISON);
#else
	NOSYS(HWPOISON);
#endif
#ifdef MADV_SOFT_OFFLINE
	SYS(SOFT_OFFLINE);
#else
	NOSYS(SOFT_OFFLINE);
#endif
#ifdef MADV_GUARD_INSTALL
	SYS(GUARD_INSTALL);
#else
	NOSYS(GUARD_INSTALL);
#endif
#ifdef MADV_GUARD_REMOVE
	SYS(GUARD_REMOVE);
#else
	NOSYS(GUARD_REMOVE);
#endif
#undef SYS
#undef NOSYS
	if (missing[0])
		fprintf(stderr, "check_madvise: the system headers lack%s; "
				"those constants were compared with nothing (%d compared)\n",
			missing, checked);
	/* The headers of any Linux system this builds on have at least these. */
	ck_assert_int_ge(checked, 17);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Names */

START_TEST(test_name_each)
{
	for (size_t i = 0; i < N_ADVICE; i++) {
		const char *n = mmapfile_madvise_name(all_advice[i].value);
		ck_assert_msg(n != NULL, "no name for %s (%d)", all_advice[i].name,
			      all_advice[i].value);
		ck_assert_str_eq(n, all_advice[i].name);
	}
}
END_TEST

START_TEST(test_name_unknown_null)
{
	static const int unknown[] = { 5, 6, 7, 26, 27, 99, 104, 999, -1, -100, INT_MAX, INT_MIN };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
		ck_assert_msg(mmapfile_madvise_name(unknown[i]) == NULL,
			      "mmapfile_madvise_name(%d) = \"%s\", expected NULL", unknown[i],
			      mmapfile_madvise_name(unknown[i]));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Parsing */

static void lower(char *dst, const char *src, size_t cap, int dashes)
{
	size_t i;
	for (i = 0; src[i] && i + 1 < cap; i++) {
		char c = src[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (dashes && c == '_')
			c = '-';
		dst[i] = c;
	}
	dst[i] = '\0';
}

START_TEST(test_parse_roundtrip_all)
{
	char buf[128];
	for (size_t i = 0; i < N_ADVICE; i++) {
		const struct advice *a = &all_advice[i];
		ck_assert_msg(mmapfile_madvise_parse(a->name) == a->value, "parse(\"%s\") = %d, want %d",
			      a->name, mmapfile_madvise_parse(a->name), a->value);
		ck_assert_int_eq(mmapfile_madvise_parse(a->bare), a->value);
		lower(buf, a->bare, sizeof buf, 0);
		ck_assert_msg(mmapfile_madvise_parse(buf) == a->value, "parse(\"%s\") = %d, want %d",
			      buf, mmapfile_madvise_parse(buf), a->value);
		lower(buf, a->bare, sizeof buf, 1);
		ck_assert_msg(mmapfile_madvise_parse(buf) == a->value, "parse(\"%s\") = %d, want %d",
			      buf, mmapfile_madvise_parse(buf), a->value);
		lower(buf, a->name, sizeof buf, 0);
		ck_assert_int_eq(mmapfile_madvise_parse(buf), a->value);
		snprintf(buf, sizeof buf, "MMAPFILE_%s", a->name);
		ck_assert_msg(mmapfile_madvise_parse(buf) == a->value, "parse(\"%s\") = %d, want %d",
			      buf, mmapfile_madvise_parse(buf), a->value);
		/* name -> value -> name */
		const char *n = mmapfile_madvise_name(mmapfile_madvise_parse(a->name));
		ck_assert_ptr_nonnull(n);
		ck_assert_str_eq(n, a->name);
	}
}
END_TEST

START_TEST(test_parse_variants)
{
	static const struct {
		const char *s;
		int v;
	} ok[] = {
		{ "willneed", MMAPFILE_MADV_WILLNEED },
		{ "MADV_WILLNEED", MMAPFILE_MADV_WILLNEED },
		{ "madv_willneed", MMAPFILE_MADV_WILLNEED },
		{ "MMAPFILE_MADV_WILLNEED", MMAPFILE_MADV_WILLNEED },
		{ "mmapfile_madv_willneed", MMAPFILE_MADV_WILLNEED },
		{ "WillNeed", MMAPFILE_MADV_WILLNEED },
		{ "populate-read", MMAPFILE_MADV_POPULATE_READ },
		{ "POPULATE-WRITE", MMAPFILE_MADV_POPULATE_WRITE },
		{ "MADV_populate-read", MMAPFILE_MADV_POPULATE_READ },
		{ "dontneed-locked", MMAPFILE_MADV_DONTNEED_LOCKED },
		{ "guard-install", MMAPFILE_MADV_GUARD_INSTALL },
		{ "normal", MMAPFILE_MADV_NORMAL },
		{ "madv-willneed", MMAPFILE_MADV_WILLNEED },
		{ "mmapfile-madv-willneed", MMAPFILE_MADV_WILLNEED },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		ck_assert_msg(mmapfile_madvise_parse(ok[i].s) == ok[i].v, "parse(\"%s\") = %d, want %d",
			      ok[i].s, mmapfile_madvise_parse(ok[i].s), ok[i].v);
}
END_TEST

START_TEST(test_parse_rejects)
{
	static const char *bad[] = {
		"", "bogus", "MADV_", "madv_", "MMAPFILE_MADV_", "MMAPFILE_", "willneedx",
		"xwillneed", " willneed", "willneed ", "will need", "MADV_BOGUS", "NORMAL_",
		"_NORMAL", "MADV", "populate", "guard", "hwpoison2",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		int v = mmapfile_madvise_parse(bad[i]);
		ck_assert_msg(v == -1, "parse(\"%s\") = %d, want -1", bad[i], v);
		ck_assert_msg(errno == EINVAL, "parse(\"%s\"): errno %d (%s), want EINVAL", bad[i],
			      errno, strerror(errno));
	}
	errno = 0;
	ck_assert_int_eq(mmapfile_madvise_parse(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The oracle: madvise(2) on an equivalent MAP_SHARED mapping of a plain
 * descriptor, with the range widened to pages and clipped to the mapping. */

struct oracle {
	int fd;
	char *base;
	size_t len; /* mapped length, page multiple */
	off_t size;
};

static void oracle_open(struct oracle *o, const char *path, int writable)
{
	o->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	ck_assert_msg(o->fd >= 0, "open %s: %s", path, strerror(errno));
	struct stat st;
	ck_assert_int_eq(fstat(o->fd, &st), 0);
	o->size = st.st_size;
	size_t p = page_size();
	o->len = ((size_t)st.st_size + p - 1) / p * p;
	o->base = NULL;
	if (o->len > 0) {
		void *m = mmap(NULL, o->len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
			       o->fd, 0);
		ck_assert_msg(m != MAP_FAILED, "mmap: %s", strerror(errno));
		o->base = m;
	}
}

static void oracle_close(struct oracle *o)
{
	if (o->base)
		munmap(o->base, o->len);
	close(o->fd);
}

/* Returns madvise's result; *err its errno (0 on success). */
static int oracle_madvise(struct oracle *o, off_t off, size_t len, int advice, int *err)
{
	size_t p = page_size();
	size_t start = (size_t)off / p * p;
	size_t end = len == 0 ? (size_t)o->size : (size_t)off + len;
	end = (end + p - 1) / p * p;
	if (end > o->len)
		end = o->len;
	ck_assert_msg(start < o->len, "oracle range starts past the mapping");
	errno = 0;
	int r = madvise(o->base + start, end - start, advice);
	*err = r == 0 ? 0 : errno;
	return r;
}

static int lib_madvise(mmapfile_t *f, off_t off, size_t len, int advice, int *err)
{
	errno = 0;
	int r = mmapfile_madvise(f, off, len, advice);
	*err = r == 0 ? 0 : errno;
	return r;
}

/* ------------------------------------------------------------------ */
/* Argument errors */

START_TEST(test_madvise_null_handle)
{
	errno = 0;
	ck_assert_int_eq(mmapfile_madvise(NULL, 0, 0, MMAPFILE_MADV_WILLNEED), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_madvise(NULL, -1, 10, MMAPFILE_MADV_NORMAL), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_madvise_negative_offset)
{
	const char *path = tu_path("f");
	free(tu_make_file(path, 3 * page_size(), 1, false));
	mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	static const off_t offs[] = { -1, -4096, -(off_t)INT64_MAX, (off_t)INT64_MIN };
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		errno = 0;
		ck_assert_int_eq(mmapfile_madvise(f, offs[i], 0, MMAPFILE_MADV_WILLNEED), -1);
		ck_assert_int_eq(errno, EINVAL);
		errno = 0;
		ck_assert_int_eq(mmapfile_madvise(f, offs[i], 100, MMAPFILE_MADV_NORMAL), -1);
		ck_assert_int_eq(errno, EINVAL);
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

START_TEST(test_madvise_overflow)
{
	const char *path = tu_path("f");
	free(tu_make_file(path, 3 * page_size(), 2, false));
	mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	static const struct {
		off_t off;
		size_t len;
	} cases[] = {
		{ OFF_MAX_T, 1 },
		{ OFF_MAX_T - 5, 10 },
		{ 1, SIZE_MAX },
		{ 4096, (size_t)INT64_MAX },
		{ OFF_MAX_T / 2 + 1, (size_t)(OFF_MAX_T / 2 + 1) },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		errno = 0;
		ck_assert_msg(mmapfile_madvise(f, cases[i].off, cases[i].len, MMAPFILE_MADV_WILLNEED) == -1,
			      "case %zu did not fail", i);
		ck_assert_msg(errno == EINVAL, "case %zu: errno %d (%s), want EINVAL", i, errno,
			      strerror(errno));
	}
	/* The handle still works. */
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, MMAPFILE_MADV_WILLNEED), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* A range that starts past the mapping: the kernel's ENOMEM (DESIGN.md). */
START_TEST(test_madvise_past_end_enomem)
{
	size_t p = page_size();
	const char *path = tu_path("f");
	free(tu_make_file(path, 2 * p, 3, false));
	mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	errno = 0;
	ck_assert_int_eq(mmapfile_madvise(f, (off_t)(5 * p), p, MMAPFILE_MADV_WILLNEED), -1);
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_int_eq(mmapfile_madvise(f, (off_t)(5 * p), 0, MMAPFILE_MADV_WILLNEED), -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* On an empty file nothing is mapped: whole-file advice returns 0. */
START_TEST(test_madvise_empty_file)
{
	const char *path = tu_path("f");
	tu_write_file(path, "", 0);
	for (int ro = 0; ro < 2; ro++) {
		mmapfile_t *f = mmapfile_open(path, ro ? O_RDONLY : O_RDWR, 0);
		ck_assert_ptr_nonnull(f);
		static const int adv[] = { MMAPFILE_MADV_WILLNEED, MMAPFILE_MADV_RANDOM,
					   MMAPFILE_MADV_DONTNEED, MMAPFILE_MADV_SEQUENTIAL,
					   MMAPFILE_MADV_DONTDUMP, MMAPFILE_MADV_NORMAL };
		for (size_t i = 0; i < sizeof adv / sizeof adv[0]; i++) {
			errno = 0;
			ck_assert_msg(mmapfile_madvise(f, 0, 0, adv[i]) == 0, "%s on an empty file: %s",
				      mmapfile_madvise_name(adv[i]), strerror(errno));
		}
		ck_assert_int_eq(mmapfile_size(f), 0);
		ck_assert_int_eq(mmapfile_close(f), 0);
	}
	ck_assert_int_eq(tu_file_size(path), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Common advice on many ranges, unaligned included: success, as the oracle. */

static const int common_advice[] = {
	MMAPFILE_MADV_WILLNEED, MMAPFILE_MADV_DONTNEED, MMAPFILE_MADV_RANDOM,
	MMAPFILE_MADV_SEQUENTIAL, MMAPFILE_MADV_NORMAL, MMAPFILE_MADV_COLD,
	MMAPFILE_MADV_PAGEOUT, MMAPFILE_MADV_POPULATE_READ,
};

START_TEST(test_madvise_ranges_succeed)
{
	int ro = _i; /* loop: 0 = O_RDWR, 1 = O_RDONLY */
	size_t p = page_size();
	size_t size = 9 * p + 123;
	const char *path = tu_path("f");
	free(tu_make_file(path, size, 4, false));
	mmapfile_t *f = mmapfile_open(path, ro ? O_RDONLY : O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	struct oracle o;
	oracle_open(&o, path, !ro);
	const struct {
		off_t off;
		size_t len;
	} ranges[] = {
		{ 0, 0 }, { 0, 1 }, { 1, 1 }, { (off_t)p - 1, 2 }, { 123, 3 * p + 5 },
		{ (off_t)(3 * p), 0 }, { (off_t)(3 * p + 17), 0 }, { (off_t)size - 1, 1 },
		{ (off_t)size - 1, 0 }, { (off_t)(2 * p + 7), 4 * size }, { (off_t)(9 * p), p },
		{ 5, size - 10 }, { (off_t)(4 * p), p },
	};
	for (size_t a = 0; a < sizeof common_advice / sizeof common_advice[0]; a++) {
		for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
			int le, oe;
			int lr = lib_madvise(f, ranges[r].off, ranges[r].len, common_advice[a], &le);
			int orr = oracle_madvise(&o, ranges[r].off, ranges[r].len, common_advice[a], &oe);
			ck_assert_msg(lr == orr && le == oe,
				      "%s off %lld len %zu: library %d (%s), plain mapping %d (%s)",
				      mmapfile_madvise_name(common_advice[a]),
				      (long long)ranges[r].off, ranges[r].len, lr, strerror(le), orr,
				      strerror(oe));
			ck_assert_msg(lr == 0, "%s off %lld len %zu failed: %s",
				      mmapfile_madvise_name(common_advice[a]),
				      (long long)ranges[r].off, ranges[r].len, strerror(le));
		}
	}
	/* Data is untouched by any of it. */
	size_t n;
	unsigned char *want = tu_read_file(path, &n);
	ck_assert_uint_eq(n, size);
	unsigned char *got = malloc(size);
	ck_assert_int_eq(mmapfile_readat(f, got, size, 0), (ssize_t)size);
	ck_assert_mem_eq(got, want, size);
	free(got);
	free(want);
	oracle_close(&o);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* Every advice (except the two that poison pages) and some invalid values,
 * on the whole file and on a sub-range: the library's answer is the
 * kernel's answer for an equivalent shared file mapping. */
START_TEST(test_madvise_kernel_answer)
{
	int ro = _i;
	size_t p = page_size();
	size_t size = 16 * p;
	const char *path = tu_path("f");
	free(tu_make_file(path, size, 5, false));
	mmapfile_t *f = mmapfile_open(path, ro ? O_RDONLY : O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	struct oracle o;
	oracle_open(&o, path, !ro);

	int values[N_ADVICE + 16];
	size_t nv = 0;
	for (size_t i = 0; i < N_ADVICE; i++)
		if (!dangerous(all_advice[i].value))
			values[nv++] = all_advice[i].value;
	static const int invalid[] = { 5, 6, 7, 26, 27, 99, 104, 999, -1, INT_MAX, INT_MIN };
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
		values[nv++] = invalid[i];

	const struct {
		off_t off;
		size_t len;
	} ranges[] = { { 0, 0 }, { (off_t)p + 1, 2 * p }, { (off_t)(3 * p), 0 } };

	int rejected = 0;
	for (size_t v = 0; v < nv; v++) {
		int adv = values[v];
		ck_assert(!dangerous(adv));
		for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
			int le, oe;
			int lr = lib_madvise(f, ranges[r].off, ranges[r].len, adv, &le);
			int orr = oracle_madvise(&o, ranges[r].off, ranges[r].len, adv, &oe);
			if (adv == MMAPFILE_MADV_GUARD_INSTALL) {
				/* DESIGN.md: refused, since guard pages would turn the
				 * library's own copies into SIGSEGV. */
				ck_assert_msg(lr == -1 && le == EINVAL, "GUARD_INSTALL: %d (%s)", lr,
					      le ? strerror(le) : "ok");
				if (orr == 0)
					ck_assert_int_eq(oracle_madvise(&o, ranges[r].off, ranges[r].len,
									MMAPFILE_MADV_GUARD_REMOVE, &oe), 0);
				continue;
			}
			ck_assert_msg(lr == orr && le == oe,
				      "advice %d (%s) off %lld len %zu: library %d (%s), plain mapping %d (%s)",
				      adv, mmapfile_madvise_name(adv) ? mmapfile_madvise_name(adv) : "?",
				      (long long)ranges[r].off, ranges[r].len, lr,
				      le ? strerror(le) : "ok", orr, oe ? strerror(oe) : "ok");
			if (orr != 0)
				rejected++;
		}
	}
	/* The invalid values at least are refused, so the comparison covered
	 * failures as well as successes. */
	ck_assert_int_ge(rejected, (int)(sizeof invalid / sizeof invalid[0]) * 3);
	/* The handle still reads what the file holds. */
	size_t n;
	unsigned char *want = tu_read_file(path, &n);
	unsigned char *got = malloc(size);
	ck_assert_int_eq(mmapfile_readat(f, got, size, 0), (ssize_t)n);
	ck_assert_mem_eq(got, want, n);
	free(got);
	free(want);
	oracle_close(&o);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Data intact after advice that drops pages */

START_TEST(test_madvise_data_intact)
{
	static const int adv[] = { MMAPFILE_MADV_DONTNEED, MMAPFILE_MADV_PAGEOUT, MMAPFILE_MADV_COLD };
	size_t p = page_size();
	size_t size = 5 * p + 77;
	const char *path = tu_path("f");
	unsigned char *data = malloc(size), *got = malloc(size), *plain = malloc(size);
	tu_fill(data, size, 6);

	for (size_t a = 0; a < sizeof adv / sizeof adv[0]; a++) {
		mmapfile_t *f = mmapfile_create(path, 0, O_RDWR, 0644);
		ck_assert_ptr_nonnull(f);
		/* Written through the handle, in pieces, not yet synced. */
		ck_assert_int_eq(mmapfile_write(f, data, 1000), 1000);
		ck_assert_int_eq(mmapfile_write(f, data + 1000, size - 1000), (ssize_t)(size - 1000));
		ck_assert_int_eq(mmapfile_madvise(f, (off_t)p + 3, 2 * p, adv[a]), 0);
		ck_assert_int_eq(mmapfile_madvise(f, 0, 0, adv[a]), 0);
		memset(got, 0, size);
		ck_assert_int_eq(mmapfile_readat(f, got, size, 0), (ssize_t)size);
		ck_assert_msg(memcmp(got, data, size) == 0, "%s lost data (readat)",
			      mmapfile_madvise_name(adv[a]));
		/* A plain descriptor sees it too, before any sync. */
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(pread(fd, plain, size, 0), (ssize_t)size);
		ck_assert_msg(memcmp(plain, data, size) == 0, "%s lost data (pread)",
			      mmapfile_madvise_name(adv[a]));
		/* Write after the advice, advise again, then sync and compare. */
		ck_assert_int_eq(mmapfile_writeat(f, "0123456789", 10, (off_t)(2 * p - 5)), 10);
		memcpy(data + 2 * p - 5, "0123456789", 10);
		ck_assert_int_eq(mmapfile_madvise(f, 0, 0, adv[a]), 0);
		ck_assert_int_eq(mmapfile_sync(f), 0);
		ck_assert_int_eq(pread(fd, plain, size, 0), (ssize_t)size);
		ck_assert_mem_eq(plain, data, size);
		close(fd);
		ck_assert_int_eq(mmapfile_close(f), 0);
		size_t n;
		unsigned char *disk = tu_read_file(path, &n);
		ck_assert_uint_eq(n, size);
		ck_assert_mem_eq(disk, data, size);
		free(disk);
		tu_fill(data, size, 60 + a); /* fresh data for the next round */
	}
	free(data);
	free(got);
	free(plain);
}
END_TEST

/* MADV_REMOVE frees the widened range of the file: same bytes as the
 * oracle doing it on a copy. */
START_TEST(test_madvise_remove_matches_oracle)
{
	size_t p = page_size();
	size_t size = 7 * p + 300;
	const char *a = tu_path("a"), *b = tu_path("b");
	free(tu_make_file(a, size, 7, false));
	free(tu_make_file(b, size, 7, false));
	mmapfile_t *f = mmapfile_open(a, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	struct oracle o;
	oracle_open(&o, b, 1);
	const struct {
		off_t off;
		size_t len;
	} ranges[] = { { (off_t)p + 10, 2 * p }, { (off_t)(6 * p) + 1, 0 } };
	for (size_t r = 0; r < 2; r++) {
		int le, oe;
		int lr = lib_madvise(f, ranges[r].off, ranges[r].len, MMAPFILE_MADV_REMOVE, &le);
		int orr = oracle_madvise(&o, ranges[r].off, ranges[r].len, MMAPFILE_MADV_REMOVE, &oe);
		ck_assert_msg(lr == orr && le == oe, "MADV_REMOVE: library %d (%s), plain mapping %d (%s)",
			      lr, strerror(le), orr, strerror(oe));
	}
	ck_assert_int_eq(mmapfile_size(f), (off_t)size);
	unsigned char *got = malloc(size);
	ck_assert_int_eq(mmapfile_readat(f, got, size, 0), (ssize_t)size);
	ck_assert_mem_eq(got, o.base, size);
	ck_assert_int_eq(mmapfile_close(f), 0);
	oracle_close(&o);
	size_t na, nb;
	unsigned char *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
	ck_assert_uint_eq(na, nb);
	ck_assert_mem_eq(da, db, na);
	/* It did remove something (the test can fail). */
	unsigned char *orig = malloc(size);
	tu_fill(orig, size, 7);
	ck_assert(memcmp(orig, db, size) != 0);
	free(orig);
	free(da);
	free(db);
	free(got);
}
END_TEST

/* ------------------------------------------------------------------ */
/* /proc/self/smaps: the VMAs that map a file, and their VmFlags. */

/* The VMAs mapping `path`, except those inside [skip, skip + skip_len)
 * (copies, their path left NULL). */
static int file_vmas(const char *path, struct tu_vma *out, int max, const void *skip, size_t skip_len)
{
	char real[PATH_MAX];
	ck_assert_msg(realpath(path, real) != NULL, "realpath %s: %s", path, strerror(errno));
	struct tu_vma *v;
	int nv = tu_read_vmas(&v), n = 0;
	for (int i = 0; i < nv; i++) {
		if (strcmp(v[i].path, real) != 0)
			continue;
		if (skip && v[i].start >= (uintptr_t)skip && v[i].start < (uintptr_t)skip + skip_len)
			continue;
		ck_assert_int_lt(n, max);
		out[n] = v[i];
		out[n++].path = NULL;
	}
	tu_free_vmas(v, nv);
	return n;
}

/* The oracle mapping: check that its VmFlags lack `flag` without advice and
 * carry it with `advice` - so a check for the flag can fail. */
static void check_flag_discriminates(const char *path, int advice, const char *flag)
{
	struct oracle o;
	oracle_open(&o, path, 1);
	ck_assert_ptr_nonnull(o.base);
	struct tu_vma v[8];
	int n = file_vmas(path, v, 8, NULL, 0);
	int found = 0;
	for (int i = 0; i < n; i++)
		if (v[i].start == (uintptr_t)o.base) {
			found = 1;
			ck_assert_msg(!tu_vm_flag(v[i].flags, flag),
				      "a plain mapping already carries \"%s\" (%s)", flag, v[i].flags);
		}
	ck_assert_msg(found, "the plain mapping is not in /proc/self/smaps");
	int err;
	ck_assert_int_eq(oracle_madvise(&o, 0, 0, advice, &err), 0);
	n = file_vmas(path, v, 8, NULL, 0);
	found = 0;
	for (int i = 0; i < n; i++)
		if (v[i].start == (uintptr_t)o.base) {
			found = 1;
			ck_assert_msg(tu_vm_flag(v[i].flags, flag), "%s did not set \"%s\" (%s)",
				      mmapfile_madvise_name(advice), flag, v[i].flags);
		}
	ck_assert(found);
	oracle_close(&o);
}

/* Every VMA of the library's mapping of `path` carries (or lacks) `flag`;
 * returns the bytes they cover from file offset 0. */
static size_t check_lib_flag(const char *path, const char *flag, int want, uintptr_t *start)
{
	struct tu_vma v[64];
	int n = file_vmas(path, v, 64, NULL, 0);
	ck_assert_msg(n > 0, "the library's mapping of %s is not in /proc/self/smaps", path);
	size_t covered = 0;
	*start = 0;
	for (int i = 0; i < n; i++) {
		ck_assert_msg(tu_vm_flag(v[i].flags, flag) == want,
			      "VMA %#lx-%#lx (file offset %#llx) %s \"%s\": VmFlags:%s",
			      (unsigned long)v[i].start, (unsigned long)v[i].end, v[i].pgoff,
			      want ? "lacks" : "carries", flag, v[i].flags);
		if (v[i].pgoff == 0)
			*start = v[i].start;
		covered += v[i].end - v[i].start;
	}
	return covered;
}

/* Per page of the mapping (by file offset): whether `flag` is set. */
START_TEST(test_madvise_widened_range_smaps)
{
	size_t p = page_size();
	size_t size = 8 * p + 100; /* 9 pages mapped */
	const char *path = tu_path("f");
	free(tu_make_file(path, size, 8, false));
	check_flag_discriminates(path, MMAPFILE_MADV_DONTDUMP, "dd");
	const struct {
		off_t off;
		size_t len;
		size_t first, last; /* pages expected to carry "dd": [first, last) */
	} cases[] = {
		{ (off_t)(2 * p + 10), 3 * p, 2, 6 }, /* [2p+10, 5p+10) -> pages 2..5 */
		{ (off_t)(6 * p + 1), 0, 6, 9 },     /* to the end */
		{ (off_t)(p - 1), 2, 0, 2 },         /* straddles a page boundary */
		{ (off_t)(8 * p + 50), 1, 8, 9 },    /* in the last, partial page */
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		mmapfile_t *f = mmapfile_open(path, O_RDONLY, 0);
		ck_assert_ptr_nonnull(f);
		struct tu_vma v[32];
		int n = file_vmas(path, v, 32, NULL, 0);
		for (int i = 0; i < n; i++)
			ck_assert_msg(!tu_vm_flag(v[i].flags, "dd"), "dd set before any advice");
		ck_assert_int_eq(mmapfile_madvise(f, cases[c].off, cases[c].len, MMAPFILE_MADV_DONTDUMP), 0);
		n = file_vmas(path, v, 32, NULL, 0);
		ck_assert_int_gt(n, 0);
		for (size_t pg = 0; pg < 9; pg++) {
			int seen = 0, dd = 0;
			for (int i = 0; i < n; i++) {
				size_t first = (size_t)v[i].pgoff / p;
				size_t npg = (v[i].end - v[i].start) / p;
				if (pg >= first && pg < first + npg) {
					seen = 1;
					dd = tu_vm_flag(v[i].flags, "dd");
				}
			}
			ck_assert_msg(seen, "case %zu: page %zu of the file is not mapped", c, pg);
			int want = pg >= cases[c].first && pg < cases[c].last;
			ck_assert_msg(dd == want, "case %zu (off %lld len %zu): page %zu %s \"dd\"", c,
				      (long long)cases[c].off, cases[c].len, pg,
				      dd ? "carries" : "lacks");
		}
		ck_assert_int_eq(mmapfile_close(f), 0);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Advice on part of the file splits the mapping into several VMAs with
 * different flags; growing, shrinking and writing must work all the same
 * (as they do on a descriptor, whatever madvise said).  The oracle is a
 * plain descriptor doing the same writes and truncates on a second file. */

static const int splitting_advice[] = {
	MMAPFILE_MADV_RANDOM, MMAPFILE_MADV_SEQUENTIAL, MMAPFILE_MADV_DONTDUMP,
	MMAPFILE_MADV_DONTFORK, MMAPFILE_MADV_NOHUGEPAGE,
};
#define N_SPLITTING (sizeof splitting_advice / sizeof splitting_advice[0])

START_TEST(test_madvise_range_then_resize)
{
	int adv = splitting_advice[_i];
	size_t p = page_size();
	const char *path = tu_path("f"), *opath = tu_path("oracle");
	size_t n0 = 4 * p + 10;
	unsigned char *buf = malloc(1 << 20);
	ck_assert_ptr_nonnull(buf);
	tu_fill(buf, 1 << 20, 13);
	mmapfile_t *f = mmapfile_create(path, 0, O_RDWR, 0644);
	ck_assert_ptr_nonnull(f);
	int fd = open(opath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);

	ck_assert_int_eq(mmapfile_write(f, buf, n0), (ssize_t)n0);
	ck_assert_int_eq(write(fd, buf, n0), (ssize_t)n0);
	/* The second page only: the mapping is now three VMAs. */
	ck_assert_int_eq(mmapfile_madvise(f, (off_t)p, p, adv), 0);

	errno = 0;
	ssize_t w = mmapfile_write(f, buf, 1 << 20);
	ck_assert_msg(w == 1 << 20, "%s on one page, then a 1 MiB append: %zd (%s)",
		      mmapfile_madvise_name(adv), w, strerror(errno));
	ck_assert_int_eq(write(fd, buf, 1 << 20), 1 << 20);
	errno = 0;
	int r = mmapfile_truncate(f, 8 << 20);
	ck_assert_msg(r == 0, "%s on one page, then truncate up: %s", mmapfile_madvise_name(adv),
		      strerror(errno));
	ck_assert_int_eq(ftruncate(fd, 8 << 20), 0);
	errno = 0;
	w = mmapfile_writeat(f, buf, 5000, (off_t)(12 << 20) + 3);
	ck_assert_msg(w == 5000, "%s on one page, then writeat past the end: %zd (%s)",
		      mmapfile_madvise_name(adv), w, strerror(errno));
	ck_assert_int_eq(pwrite(fd, buf, 5000, (off_t)(12 << 20) + 3), 5000);
	errno = 0;
	r = mmapfile_truncate(f, (off_t)(2 * p + 5));
	ck_assert_msg(r == 0, "%s on one page, then truncate down: %s", mmapfile_madvise_name(adv),
		      strerror(errno));
	ck_assert_int_eq(ftruncate(fd, (off_t)(2 * p + 5)), 0);
	w = mmapfile_writeat(f, buf + 7, 3 * p, (off_t)p + 1);
	ck_assert_msg(w == (ssize_t)(3 * p), "writeat after the shrink: %zd (%s)", w, strerror(errno));
	ck_assert_int_eq(pwrite(fd, buf + 7, 3 * p, (off_t)p + 1), (ssize_t)(3 * p));

	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(mmapfile_size(f), st.st_size);
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
	size_t na, nb;
	unsigned char *a = tu_read_file(path, &na), *b = tu_read_file(opath, &nb);
	ck_assert_uint_eq(na, nb);
	ck_assert_mem_eq(a, b, na);
	free(a);
	free(b);
	free(buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Whole-file advice survives growth and a move of the mapping. */

static const struct {
	int advice;
	const char *flag;
} lasting[] = {
	{ MMAPFILE_MADV_RANDOM, "rr" },
	{ MMAPFILE_MADV_DONTDUMP, "dd" },
	{ MMAPFILE_MADV_DONTFORK, "dc" },
	{ MMAPFILE_MADV_SEQUENTIAL, "sr" },
};
#define N_LASTING (sizeof lasting / sizeof lasting[0])

#define GROW_TO (64u << 20)
#define CHUNK (1u << 20)

/* Put an anonymous page right after the mapping so that it cannot grow in
 * place; returns it (to unmap), or NULL when something already sits there. */
static void *block_after(const char *path)
{
	struct tu_vma v[64];
	int n = file_vmas(path, v, 64, NULL, 0);
	ck_assert_int_gt(n, 0);
	uintptr_t end = 0;
	for (int i = 0; i < n; i++)
		if (v[i].end > end)
			end = v[i].end;
	void *m = mmap((void *)end, page_size(), PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED || m != (void *)end) {
		if (m != MAP_FAILED)
			munmap(m, page_size());
		fprintf(stderr, "check_madvise: note: another mapping already follows the "
				"handle's (%s), so it cannot grow in place anyway\n",
			m == MAP_FAILED ? strerror(errno) : "placed elsewhere");
		return NULL;
	}
	return m;
}

static void grow_by_writes(mmapfile_t *f, size_t to)
{
	unsigned char *chunk = malloc(CHUNK);
	ck_assert_ptr_nonnull(chunk);
	memset(chunk, 0x5a, CHUNK);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), mmapfile_size(f));
	while ((size_t)mmapfile_size(f) < to) {
		size_t n = to - (size_t)mmapfile_size(f);
		if (n > CHUNK)
			n = CHUNK;
		ck_assert_int_eq(mmapfile_write(f, chunk, n), (ssize_t)n);
	}
	free(chunk);
	ck_assert_int_eq(mmapfile_size(f), (off_t)to);
}

START_TEST(test_madvise_whole_file_kept_after_growth)
{
	int k = _i;
	size_t p = page_size();
	const char *path = tu_path("f");
	free(tu_make_file(path, 4096, 9, false));
	check_flag_discriminates(path, lasting[k].advice, lasting[k].flag);

	mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	/* A small file is mapped when first written (or advised). */
	unsigned char b;
	ck_assert_int_eq(mmapfile_readat(f, &b, 1, 0), 1);
	ck_assert_int_eq(mmapfile_writeat(f, &b, 1, 0), 1);
	uintptr_t start0, start1;
	check_lib_flag(path, lasting[k].flag, 0, &start0);
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, lasting[k].advice), 0);
	check_lib_flag(path, lasting[k].flag, 1, &start0);

	void *blocker = block_after(path);
	grow_by_writes(f, GROW_TO);
	size_t covered = check_lib_flag(path, lasting[k].flag, 1, &start1);
	ck_assert_msg(covered >= GROW_TO, "the mapping covers %zu bytes, the file has %u", covered,
		      GROW_TO);
	if (start1 == start0)
		fprintf(stderr, "check_madvise: %s: the mapping grew without moving\n",
			mmapfile_madvise_name(lasting[k].advice));

	/* Growth by truncate too. */
	ck_assert_int_eq(mmapfile_truncate(f, (off_t)GROW_TO + 16 * (off_t)p + 1), 0);
	covered = check_lib_flag(path, lasting[k].flag, 1, &start1);
	ck_assert_uint_ge(covered, GROW_TO + 16 * p + 1);
	ck_assert_int_eq(mmapfile_close(f), 0);
	if (blocker)
		munmap(blocker, p);
	ck_assert_int_eq(tu_file_size(path), (off_t)GROW_TO + 16 * (off_t)p + 1);
}
END_TEST

/* Advice given before the first write, on an empty file. */
START_TEST(test_madvise_before_first_write)
{
	int k = _i;
	const char *path = tu_path("f");
	tu_write_file(path, "", 0);
	mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, lasting[k].advice), 0);
	unsigned char buf[3000];
	tu_fill(buf, sizeof buf, 10);
	ck_assert_int_eq(mmapfile_write(f, buf, sizeof buf), (ssize_t)sizeof buf);
	uintptr_t s;
	size_t covered = check_lib_flag(path, lasting[k].flag, 1, &s);
	ck_assert_uint_ge(covered, sizeof buf);
	void *blocker = block_after(path);
	grow_by_writes(f, 8u << 20);
	covered = check_lib_flag(path, lasting[k].flag, 1, &s);
	ck_assert_uint_ge(covered, 8u << 20);
	ck_assert_int_eq(mmapfile_close(f), 0);
	if (blocker)
		munmap(blocker, page_size());
}
END_TEST

/* Truncating to 0 unmaps; growing again must give the advice again. */
START_TEST(test_madvise_kept_after_truncate_to_zero)
{
	const char *path = tu_path("f");
	free(tu_make_file(path, 10000, 11, false));
	check_flag_discriminates(path, MMAPFILE_MADV_RANDOM, "rr");
	mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, MMAPFILE_MADV_RANDOM), 0);
	ck_assert_int_eq(mmapfile_truncate(f, 0), 0);
	ck_assert_int_eq(mmapfile_truncate(f, 3 << 20), 0);
	uintptr_t s;
	ck_assert_uint_ge(check_lib_flag(path, "rr", 1, &s), 3u << 20);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* The latest whole-file advice of a kind wins: RANDOM then SEQUENTIAL, or
 * DONTDUMP then DODUMP, leave "sr" / no "dd" after growth. */
START_TEST(test_madvise_latest_advice_wins_after_growth)
{
	const char *path = tu_path("f");
	free(tu_make_file(path, 4096, 12, false));
	mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, MMAPFILE_MADV_RANDOM), 0);
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, MMAPFILE_MADV_DONTDUMP), 0);
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, MMAPFILE_MADV_SEQUENTIAL), 0);
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, MMAPFILE_MADV_DODUMP), 0);
	void *blocker = block_after(path);
	grow_by_writes(f, 16u << 20);
	uintptr_t s;
	check_lib_flag(path, "sr", 1, &s);
	check_lib_flag(path, "rr", 0, &s);
	check_lib_flag(path, "dd", 0, &s);
	/* NORMAL clears the access pattern. */
	ck_assert_int_eq(mmapfile_madvise(f, 0, 0, MMAPFILE_MADV_NORMAL), 0);
	grow_by_writes(f, 40u << 20);
	check_lib_flag(path, "sr", 0, &s);
	check_lib_flag(path, "rr", 0, &s);
	ck_assert_int_eq(mmapfile_close(f), 0);
	if (blocker)
		munmap(blocker, page_size());
}
END_TEST

/* A range's answer does not depend on the reserve a writing handle had:
 * after sync trimmed it, advice past the file is refused as on a fresh
 * handle, and advice inside it succeeds (POPULATE_READ would fault on pages
 * the mapping still covers but the file no longer has). */
START_TEST(test_madvise_after_trim_like_fresh)
{
	const char *path = tu_path("f");
	mmapfile_t *f = mmapfile_open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	size_t n = 300000;
	unsigned char *buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	tu_fill(buf, n, 11);
	for (size_t i = 0; i < n; i += 1000) /* appends: the reserve grows past n */
		ck_assert_int_eq(mmapfile_write(f, buf + i, 1000), 1000);
	ck_assert_int_gt(tu_file_size(path), (off_t)n);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	mmapfile_t *fresh = mmapfile_open(path, O_RDWR, 0);
	ck_assert_ptr_nonnull(fresh);
	const struct {
		off_t off;
		size_t len;
		int advice;
	} cases[] = {
		{ 150000, 300000, MMAPFILE_MADV_POPULATE_READ },
		{ 150000, 0, MMAPFILE_MADV_POPULATE_READ },
		{ 310000, 10, MMAPFILE_MADV_WILLNEED },
		{ 400000, 0, MMAPFILE_MADV_WILLNEED },
		{ 0, 500000, MMAPFILE_MADV_COLD },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		errno = 0;
		int a = mmapfile_madvise(f, cases[i].off, cases[i].len, cases[i].advice);
		int ea = errno;
		errno = 0;
		int b = mmapfile_madvise(fresh, cases[i].off, cases[i].len, cases[i].advice);
		int eb = errno;
		ck_assert_msg(a == b && (a == 0 || ea == eb), "case %zu: %d (%s) after trim, %d (%s) fresh", i,
			      a, strerror(ea), b, strerror(eb));
	}
	free(buf);
	ck_assert_int_eq(mmapfile_close(fresh), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("madvise");
	TCase *tc;

	tc = tu_tcase("constants", 10);
	tcase_add_test(tc, test_constants_count_and_distinct);
	tcase_add_test(tc, test_constants_match_system);
	tcase_add_test(tc, test_name_each);
	tcase_add_test(tc, test_name_unknown_null);
	suite_add_tcase(s, tc);

	tc = tu_tcase("parse", 10);
	tcase_add_test(tc, test_parse_roundtrip_all);
	tcase_add_test(tc, test_parse_variants);
	tcase_add_test(tc, test_parse_rejects);
	suite_add_tcase(s, tc);

	tc = tu_tcase("errors", 10);
	tcase_add_test(tc, test_madvise_null_handle);
	tcase_add_test(tc, test_madvise_negative_offset);
	tcase_add_test(tc, test_madvise_overflow);
	tcase_add_test(tc, test_madvise_past_end_enomem);
	tcase_add_test(tc, test_madvise_empty_file);
	suite_add_tcase(s, tc);

	tc = tu_tcase("ranges", 30);
	tcase_add_loop_test(tc, test_madvise_ranges_succeed, 0, 2);
	tcase_add_loop_test(tc, test_madvise_kernel_answer, 0, 2);
	tcase_add_test(tc, test_madvise_after_trim_like_fresh);
	tcase_add_test(tc, test_madvise_data_intact);
	tcase_add_test(tc, test_madvise_remove_matches_oracle);
	tcase_add_test(tc, test_madvise_widened_range_smaps);
	tcase_add_loop_test(tc, test_madvise_range_then_resize, 0, (int)N_SPLITTING);
	suite_add_tcase(s, tc);

	tc = tu_tcase("lasting", 60);
	tcase_add_loop_test(tc, test_madvise_whole_file_kept_after_growth, 0, (int)N_LASTING);
	tcase_add_loop_test(tc, test_madvise_before_first_write, 0, (int)N_LASTING);
	tcase_add_test(tc, test_madvise_kept_after_truncate_to_zero);
	tcase_add_test(tc, test_madvise_latest_advice_wins_after_growth);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
