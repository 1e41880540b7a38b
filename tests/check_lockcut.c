/* check_lockcut.c - a locked handle (MMAPFILE_OPT_LOCK) whose file another
 * process cuts: the pages that remain stay locked (DESIGN.md, "Lock": a cut
 * unlocks the pages past the end), once the handle has learned of the cut
 * through a read past it.  The oracle is the process's VmLck. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB (1024 * KiB)

static off_t page_round(off_t x)
{
	off_t pg = (off_t)sysconf(_SC_PAGESIZE);
	return (x + pg - 1) / pg * pg;
}

static const struct lock_case {
	const char *name;
	int flags;
	off_t cut;
} lock_cases[] = {
	{ "read-only, cut to 4 MiB", O_RDONLY, 4 * MiB },
	{ "read-write, cut to 4 MiB", O_RDWR, 4 * MiB },
	{ "read-only, cut to 4 MiB + 100", O_RDONLY, 4 * MiB + 100 },
	{ "read-write, cut to 4 MiB + 100", O_RDWR, 4 * MiB + 100 },
};

START_TEST(test_lock_after_cut)
{
	const struct lock_case *c = &lock_cases[_i];
	const char *p = tu_path("f");
	if (!tu_may_lock((size_t)(16 * MiB)))
		return;
	tu_make_pattern_file(p, 8 * MiB);
	long base = tu_vm_locked();
	struct mmapfile_options o = { .size = sizeof o, .flags = MMAPFILE_OPT_LOCK };
	mmapfile_t *f = mmapfile_open_ex(p, c->flags, 0, &o);
	ck_assert_msg(f != NULL, "%s: open: %s", c->name, strerror(errno));
	long kb = tu_vm_locked() - base;
	ck_assert_msg(kb == 8192, "%s: %ld KiB locked after the open of an 8 MiB file", c->name, kb);

	tu_truncate_by_other(p, c->cut);
	unsigned char buf[4096];
	ck_assert_int_eq(mmapfile_readat(f, buf, sizeof buf, 6 * MiB), 0);
	ck_assert_int_eq(mmapfile_size(f), c->cut);
	long want = (long)(page_round(c->cut) / 1024);
	kb = tu_vm_locked() - base;
	ck_assert_msg(kb == want, "%s: %ld KiB locked after the cut was learned, want %ld (the pages left)",
	              c->name, kb, want);
	/* What remains still reads. */
	ck_assert_int_eq(mmapfile_readat(f, buf, sizeof buf, 4 * MiB - 4096), 4096);
	unsigned char want_b[4096];
	tu_fill_pattern(want_b, 4 * MiB - 4096, sizeof want_b);
	ck_assert_mem_eq(buf, want_b, sizeof buf);
	kb = tu_vm_locked() - base;
	ck_assert_msg(kb == want, "%s: %ld KiB locked after a read, want %ld", c->name, kb, want);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_vm_locked(), base);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lockcut");
	TCase *tc = tu_tcase("lock", 30);
	tcase_add_loop_test(tc, test_lock_after_cut, 0, (int)(sizeof lock_cases / sizeof lock_cases[0]));
	suite_add_tcase(s, tc);
	return tu_run(s);
}
