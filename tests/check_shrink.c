/* check_shrink.c - another process shrinking the file under a live mapping
 * never crashes the caller (spec, semantics point 10): reads and writes
 * answer as read(2)/write(2) would on the shrunken file, and a SIGBUS that is
 * not the library's still reaches the program's own handler, or kills it. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define KiB ((off_t)1024)

/* Append text to the file from another process, as O_APPEND does. */
static void append_in_child(const char *p, const char *text)
{
	char *argv[] = { "sh", "-c", "printf %s \"$1\" >> \"$2\"", "sh", (char *)text, (char *)p, NULL };
	tu_run_other(argv);
}

START_TEST(test_read_after_shrink)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 256 * KiB);
	mmapfile_t *f = mmapfile_open(p, _i ? O_RDWR : O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	int fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	tu_truncate_by_other(p, 10 * KiB + 7);

	/* On the heap: a deep stack under valgrind cannot always take the
	 * signal frame the guard's SIGBUS needs. */
	const size_t N = 8192;
	unsigned char *a = malloc(N), *b = malloc(N);
	ck_assert(a && b);
	/* Past the new end: 0, like pread on the shrunken file. */
	ck_assert_int_eq(mmapfile_readat(f, a, N, 100 * KiB), pread(fd, b, N, 100 * KiB));
	ck_assert_int_eq(mmapfile_size(f), 10 * KiB + 7);
	/* Across the new end: the bytes before it. */
	ssize_t got = mmapfile_readat(f, a, N, 8 * KiB);
	ck_assert_int_eq(got, pread(fd, b, N, 8 * KiB));
	ck_assert_int_eq(got, 2 * KiB + 7);
	ck_assert_mem_eq(a, b, (size_t)got);
	/* The cursor: read to the end, then 0. */
	ck_assert_int_eq(mmapfile_seek(f, 6 * KiB, SEEK_SET), 6 * KiB);
	ssize_t total = 0, r;
	while ((r = mmapfile_read(f, a, 1000)) > 0) {
		ck_assert_int_eq(pread(fd, b, (size_t)r, 6 * KiB + total), r);
		ck_assert_mem_eq(a, b, (size_t)r);
		total += r;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(total, 4 * KiB + 7);
	free(a);
	free(b);
	close(fd);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* The handle does not learn the new size before it reads: the first read
 * meets the missing pages themselves. */
START_TEST(test_read_inside_old_size)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 64 * KiB);
	mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	tu_truncate_by_other(p, 0);
	unsigned char a[100];
	ck_assert_int_eq(mmapfile_readat(f, a, sizeof a, 32 * KiB), 0);
	ck_assert_int_eq(mmapfile_read(f, a, sizeof a), 0);
	ck_assert_int_eq(mmapfile_size(f), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* A write where the file was: write(2) would grow it again, with zeros
 * between the new end and the write. */
START_TEST(test_write_after_shrink)
{
	const char *p = tu_path("f"), *q = tu_path("twin");
	tu_make_pattern_file(p, 128 * KiB);
	tu_make_pattern_file(q, 128 * KiB);
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	int fd = open(q, O_RDWR);
	ck_assert_int_ge(fd, 0);
	tu_truncate_by_other(p, 5 * KiB);
	ck_assert_int_eq(ftruncate(fd, 5 * KiB), 0);

	unsigned char w[3000];
	tu_fill(w, sizeof w, 7);
	off_t offs[] = {100 * KiB, 2 * KiB, 60 * KiB + 5};
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(mmapfile_writeat(f, w, sizeof w, offs[i]), pwrite(fd, w, sizeof w, offs[i]));
	ck_assert_int_eq(mmapfile_seek(f, 200 * KiB, SEEK_SET), 200 * KiB);
	tu_truncate_by_other(p, 1 * KiB);
	ck_assert_int_eq(ftruncate(fd, 1 * KiB), 0);
	ck_assert_int_eq(mmapfile_write(f, w, 100), pwrite(fd, w, 100, 200 * KiB));
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);

	size_t n1, n2;
	unsigned char *a = tu_read_file(p, &n1), *b = tu_read_file(q, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(a, b, n1) == 0);
	free(a);
	free(b);
}
END_TEST

/* Closing (or syncing) a handle with a reserve never grows back a file that
 * another process cut below the handle's size: a descriptor's close leaves
 * the file as the other process made it. */
START_TEST(test_close_after_shrink_keeps_it)
{
	const char *p = tu_path("f");
	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	unsigned char w[1000];
	tu_fill(w, sizeof w, 3);
	ck_assert_int_eq(mmapfile_write(f, w, sizeof w), (ssize_t)sizeof w);
	ck_assert_int_gt(tu_file_size(p), (off_t)sizeof w); /* the reserve is there */
	tu_truncate_by_other(p, 300);
	if (_i)
		ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), 300);
	size_t n;
	unsigned char *a = tu_read_file(p, &n);
	ck_assert_mem_eq(a, w, 300);
	free(a);
}
END_TEST

/* A shrink that leaves the last page in place raises no fault; a read that
 * reaches the handle's end still learns the new size, as pread would. */
START_TEST(test_shrink_within_last_page)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 10000);
	mmapfile_t *f = mmapfile_open(p, _i ? O_RDWR : O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	int fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	tu_truncate_by_other(p, 9000);
	unsigned char *a = malloc(10000), *b = malloc(10000);
	ck_assert(a && b);
	ssize_t got = mmapfile_readat(f, a, 10000, 0);
	ck_assert_int_eq(got, pread(fd, b, 10000, 0));
	ck_assert_int_eq(got, 9000);
	ck_assert_mem_eq(a, b, 9000);
	ck_assert_int_eq(mmapfile_size(f), 9000);
	free(a);
	free(b);
	close(fd);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* A cut inside the last page leaves that page mapped, with no fault to
 * tell: a read that reaches the handle's end asks the file, so it answers
 * as read(2) does, also after the other process appends again.  _i: the
 * handle reads with readat, read at the cursor; read-only, read-write. */
START_TEST(test_read_to_end_after_cut_in_page)
{
	const char *p = tu_path("f");
	const off_t size = 64 * KiB + 100, cut = 64 * KiB + 50; /* mapped at open */
	tu_make_pattern_file(p, size);
	mmapfile_t *f = mmapfile_open(p, _i & 2 ? O_RDWR : O_RDONLY, 0);
	ck_assert_ptr_nonnull(f);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	tu_truncate_by_other(p, cut);
	append_in_child(p, "xy");
	char a[128], b[128];
	struct { off_t off; size_t n; } reads[] = {
		{ size - 1, 1 },      /* the last byte the handle knew of */
		{ size - 100, 100 },  /* up to its end, from before the cut */
		{ cut, (size_t)(size - cut) }, /* the bytes appended, then the end */
	};
	for (size_t k = 0; k < sizeof reads / sizeof reads[0]; k++) {
		memset(a, 0x55, sizeof a);
		ssize_t got;
		if (_i & 1) {
			ck_assert_int_eq(mmapfile_seek(f, reads[k].off, SEEK_SET), reads[k].off);
			got = mmapfile_read(f, a, reads[k].n);
		} else {
			got = mmapfile_readat(f, a, reads[k].n, reads[k].off);
		}
		ssize_t want = pread(fd, b, reads[k].n, reads[k].off);
		ck_assert_msg(got == want, "read of %zu at %lld: %zd, read(2) %zd", reads[k].n,
		              (long long)reads[k].off, got, want);
		if (want > 0)
			ck_assert_mem_eq(a, b, (size_t)want);
		ck_assert_int_eq(mmapfile_size(f), cut + 2);
	}
	close(fd);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), cut + 2);
}
END_TEST

/* An O_SYNC / O_DSYNC write lands in the page a cut by another process left
 * mapped, past the file's new end: the msync after it would zero those
 * bytes (writeback zeroes a page past the end), so the handle learns the
 * cut first and the file is what write(2) would have made.  The fuzzer's
 * finding, spelled out.  _i: O_SYNC, O_DSYNC. */
START_TEST(test_sync_write_after_cut_in_page)
{
	const char *p = tu_path("f"), *q = tu_path("twin");
	mmapfile_t *f = mmapfile_open(p, O_WRONLY | O_CREAT | O_TRUNC | (_i ? O_DSYNC : O_SYNC), 0644);
	ck_assert_ptr_nonnull(f);
	int fd = open(q, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	unsigned char *data = tu_random_bytes(20480, 31);
	ck_assert_int_eq(mmapfile_write(f, data, 20480), 20480);
	ck_assert_int_eq(write(fd, data, 20480), 20480);
	ck_assert_int_eq(mmapfile_seek(f, 8192, SEEK_SET), 8192);
	ck_assert_int_eq(lseek(fd, 8192, SEEK_SET), 8192);
	/* Cut to 4096, grown to 8192, and 3 bytes appended, by others. */
	tu_truncate_by_other(p, 4096);
	tu_truncate_by_other(p, 8192);
	append_in_child(p, "xyz");
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	ck_assert_int_eq(ftruncate(fd, 8192), 0);
	ck_assert_int_eq(pwrite(fd, "xyz", 3, 8192), 3);
	ck_assert_int_eq(mmapfile_write(f, "0123456789", 10), 10);
	ck_assert_int_eq(write(fd, "0123456789", 10), 10);
	ck_assert_int_eq(tu_file_size(p), 8202); /* durable when the write returned */
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
	size_t na, nb;
	unsigned char *a = tu_read_file(p, &na), *b = tu_read_file(q, &nb);
	ck_assert_uint_eq(na, nb);
	ck_assert_mem_eq(a, b, na);
	free(a);
	free(b);
	free(data);
}
END_TEST

/* Another process appends while this handle has no reserve (after a sync):
 * an O_APPEND write lands after what it appended, as write(2) would. */
START_TEST(test_append_after_foreign_append)
{
	const char *p = tu_path("f");
	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_APPEND, 0644);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_write(f, "A", 1), 1);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	append_in_child(p, "BBB");
	ck_assert_int_eq(mmapfile_write(f, "C", 1), 1);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), 5);
	ck_assert_int_eq(mmapfile_close(f), 0);
	size_t n;
	unsigned char *a = tu_read_file(p, &n);
	ck_assert_uint_eq(n, 5);
	ck_assert_mem_eq(a, "ABBBC", 5);
	free(a);
}
END_TEST

/* Another process appends after this handle's reserve: close must not cut
 * what it wrote. */
START_TEST(test_close_keeps_foreign_append)
{
	const char *p = tu_path("f");
	mmapfile_t *f = mmapfile_open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(mmapfile_write(f, "hello", 5), 5);
	off_t reserved = tu_file_size(p);
	ck_assert_int_gt(reserved, 5);
	append_in_child(p, "world");
	if (_i)
		ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	size_t n;
	unsigned char *a = tu_read_file(p, &n);
	ck_assert_uint_eq(n, (size_t)reserved + 5);
	ck_assert_mem_eq(a, "hello", 5);
	ck_assert_mem_eq(a + reserved, "world", 5);
	for (off_t i = 5; i < reserved; i++)
		ck_assert_uint_eq(a[i], 0);
	free(a);
}
END_TEST

/* A child shrinks, extends and rewrites the file in a loop while this
 * process reads, writes and seeks: no signal, and every byte read is the
 * pattern or a zero, every count within what was asked. */
START_TEST(test_churn)
{
	const char *p = tu_path("f");
	const off_t max = 512 * KiB;
	tu_make_pattern_file(p, max);
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	pid_t pid = tu_fork();
	if (pid == 0) {
		int fd = open(p, O_RDWR);
		unsigned char page[4096];
		for (uint64_t s = 1;; s++) {
			off_t len = (off_t)(tu_rand(&s) % (uint64_t)max);
			if (ftruncate(fd, len) != 0)
				_exit(2);
			off_t at = len & ~(off_t)4095;
			tu_fill_pattern(page, at, sizeof page);
			if (pwrite(fd, page, sizeof page, at) < 0)
				_exit(3);
		}
	}
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t s = 99;
	unsigned long ops = 0;
	unsigned char *buf = malloc(20000);
	ck_assert_ptr_nonnull(buf);
	do {
		size_t n = (size_t)(tu_rand(&s) % 20000) + 1;
		off_t off = (off_t)(tu_rand(&s) % (uint64_t)max);
		ssize_t r;
		switch (tu_rand(&s) % 4) {
		case 0:
			r = mmapfile_readat(f, buf, n, off);
			ck_assert_msg(r >= 0 && (size_t)r <= n, "readat: %zd (%s)", r, strerror(errno));
			for (ssize_t i = 0; i < r; i++)
				ck_assert_msg(buf[i] == 0 || buf[i] == tu_pattern(off + i),
				              "byte at %lld is %u", (long long)(off + i), buf[i]);
			break;
		case 1:
			tu_fill_pattern(buf, off, n);
			r = mmapfile_writeat(f, buf, n, off);
			ck_assert_msg(r == (ssize_t)n, "writeat: %zd (%s)", r, strerror(errno));
			break;
		case 2:
			ck_assert_int_eq(mmapfile_seek(f, off, SEEK_SET), off);
			r = mmapfile_read(f, buf, n);
			ck_assert_msg(r >= 0 && (size_t)r <= n, "read: %zd (%s)", r, strerror(errno));
			for (ssize_t i = 0; i < r; i++)
				ck_assert(buf[i] == 0 || buf[i] == tu_pattern(off + i));
			break;
		default:
			ck_assert_int_ge(mmapfile_size(f), 0);
		}
		ops++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 1000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	free(buf);
	ck_assert_int_eq(mmapfile_close(f), 0);
	printf("churn: %lu operations while another process resized the file\n", ops);
}
END_TEST

/* A program's own mapping faults outside any library call. */
static void fault_outside_library(const char *p)
{
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 8192) != 0)
		_exit(10);
	volatile char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || ftruncate(fd, 0) != 0)
		_exit(11);
	(void)m[100];
	_exit(12); /* not reached: the fault either kills or is handled */
}

static void own_handler(int sig)
{
	_exit(sig == SIGBUS ? 42 : 43);
}

/* Child: maybe install a handler, maybe use the library, then fault outside
 * it (or raise SIGBUS).  Returns the child's wait status. */
static int run_child_with(void (*first)(int), bool use_library, bool handler_after, bool raise_it)
{
	const char *p = tu_path("m"), *q = tu_path("lib");
	pid_t pid = tu_fork();
	if (pid == 0) {
		if (first)
			signal(SIGBUS, first);
		if (use_library) {
			mmapfile_t *f = mmapfile_create(q, 100, 0, 0644);
			if (!f || mmapfile_close(f) != 0)
				_exit(13);
		}
		if (handler_after)
			signal(SIGBUS, own_handler);
		if (raise_it) {
			raise(SIGBUS);
			_exit(14);
		}
		fault_outside_library(p);
	}
	int st = tu_wait(pid);
	return st;
}

static int run_child(bool handler_first, bool use_library, bool handler_after, bool raise_it)
{
	return run_child_with(handler_first ? own_handler : NULL, use_library, handler_after, raise_it);
}

START_TEST(test_foreign_sigbus_reaches_handler_before)
{
	int st = run_child(true, true, false, false);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 42, "status %#x", st);
}
END_TEST

START_TEST(test_foreign_sigbus_reaches_handler_after)
{
	int st = run_child(false, true, true, false);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 42, "status %#x", st);
}
END_TEST

/* A handler installed after the first open that passes on what it does not
 * handle, as chaining handlers do: the library's copies stay protected.
 * Where the library keeps the kernel's handler (it defines sigaction), the
 * fault never reaches the program's handler at all (check_chain); either
 * way the copy answers as pread would. */
static struct sigaction replaced;
static volatile sig_atomic_t chained;

static void chaining_handler(int sig, siginfo_t *si, void *ctx)
{
	chained++;
	if (replaced.sa_flags & SA_SIGINFO)
		replaced.sa_sigaction(sig, si, ctx);
	else
		_exit(44);
}

START_TEST(test_chaining_handler_after_keeps_guard)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 128 * KiB);
	pid_t pid = tu_fork();
	if (pid == 0) {
		mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
		if (!f)
			_exit(20);
		struct sigaction sa = { .sa_sigaction = chaining_handler, .sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &replaced) != 0 || truncate(p, 4 * KiB) != 0)
			_exit(21);
		char buf[100];
		/* Inside the size the handle knows: a copy through the mapping. */
		ssize_t r = mmapfile_readat(f, buf, sizeof buf, 100 * KiB);
		_exit(r == 0 && mmapfile_close(f) == 0 ? 0 : 22);
	}
	int st = tu_wait(pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}
END_TEST

/* With no handler of the program's, a SIGBUS ends the program exactly as it
 * would have without the library: killed by the signal, or, under a
 * sanitizer, by the sanitizer's own report.  The oracle is the same child
 * that never touched the library. */
START_TEST(test_foreign_sigbus_fatal_as_without_library)
{
	bool raise_it = _i == 1;
	int without = run_child(false, false, false, raise_it);
	int with = run_child(false, true, false, raise_it);
	ck_assert_msg(WIFSIGNALED(without) || (WIFEXITED(without) && WEXITSTATUS(without) != 12 &&
	                                       WEXITSTATUS(without) != 14 && WEXITSTATUS(without) != 0),
	              "the SIGBUS was not fatal even without the library: status %#x", without);
	ck_assert_msg(with == without, "%s: status %#x with the library, %#x without",
	              raise_it ? "raise" : "fault", with, without);
}
END_TEST

/* SIGBUS ignored by the program: a raised one stays ignored, a fault still
 * kills, exactly as without the library. */
START_TEST(test_ignored_sigbus_as_without_library)
{
	bool raise_it = _i == 1;
	int without = run_child_with(SIG_IGN, false, false, raise_it);
	int with = run_child_with(SIG_IGN, true, false, raise_it);
	if (raise_it)
		ck_assert_msg(WIFEXITED(without) && WEXITSTATUS(without) == 14, "status %#x", without);
	ck_assert_msg(with == without, "%s: status %#x with the library, %#x without",
	              raise_it ? "raise" : "fault", with, without);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shrink");
	TCase *tc = tu_tcase("shrunk", 30);
	tcase_add_loop_test(tc, test_read_after_shrink, 0, 2);
	tcase_add_test(tc, test_read_inside_old_size);
	tcase_add_test(tc, test_write_after_shrink);
	tcase_add_loop_test(tc, test_close_after_shrink_keeps_it, 0, 2);
	tcase_add_loop_test(tc, test_shrink_within_last_page, 0, 2);
	tcase_add_loop_test(tc, test_read_to_end_after_cut_in_page, 0, 4);
	tcase_add_loop_test(tc, test_sync_write_after_cut_in_page, 0, 2);
	tcase_add_test(tc, test_append_after_foreign_append);
	tcase_add_loop_test(tc, test_close_keeps_foreign_append, 0, 2);
	tcase_add_test(tc, test_churn);
	suite_add_tcase(s, tc);
	tc = tu_tcase("chaining", 30);
	tcase_add_test(tc, test_foreign_sigbus_reaches_handler_before);
	tcase_add_test(tc, test_foreign_sigbus_reaches_handler_after);
	tcase_add_test(tc, test_chaining_handler_after_keeps_guard);
	tcase_add_loop_test(tc, test_foreign_sigbus_fatal_as_without_library, 0, 2);
	tcase_add_loop_test(tc, test_ignored_sigbus_as_without_library, 0, 2);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
