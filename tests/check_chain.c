/* check_chain.c - a SIGBUS handler the program installs after the
 * library's first use (spec, semantics point 10): another process shrinking
 * the file still never crashes the caller, reads and writes act as
 * pread(2)/pwrite(2) on the shrunken file, the program's handler is not
 * called for the library's faults, and a SIGBUS that is not the library's
 * (a fault in the program's own mapping, raise) reaches it.  sigaction(2)
 * reports the handler the program installed.
 *
 * Every case runs in a child of the test (its signal dispositions are its
 * own) that reports a failure to the parent through a pipe.  A fault the
 * program's handler gets jumps out of it (siglongjmp), so that a library
 * fault delivered to the program shows as a failure, not a loop. */
#define _GNU_SOURCE
#include "config.h" /* MMF_INTERPOSE_SIGNAL: whether the library defines sigaction */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define FILE_SIZE (256 * KiB)
#define CUT (10 * KiB + 7)

/* ---- the program's handler ---- */

static volatile sig_atomic_t handler_calls;
static volatile sig_atomic_t jump_armed;
static sigjmp_buf jump;

static void on_sigbus_info(int sig, siginfo_t *si, void *ctx)
{
	(void)si;
	(void)ctx;
	if (sig != SIGBUS)
		_exit(40);
	handler_calls++;
	if (jump_armed) {
		jump_armed = 0;
		siglongjmp(jump, 1);
	}
}

static void on_sigbus_plain(int sig)
{
	if (sig != SIGBUS)
		_exit(40);
	handler_calls++;
	if (jump_armed) {
		jump_armed = 0;
		siglongjmp(jump, 1);
	}
}

enum install { BY_SIGACTION, BY_SIGNAL };

static void install(enum install how)
{
	if (how == BY_SIGACTION) {
		struct sigaction sa = { .sa_sigaction = on_sigbus_info, .sa_flags = SA_SIGINFO };
		sigemptyset(&sa.sa_mask);
		TU_CCHECK(sigaction(SIGBUS, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
	} else {
		TU_CCHECK(signal(SIGBUS, on_sigbus_plain) != SIG_ERR, "signal: %s", strerror(errno));
	}
}

/* What sigaction(2) reports is the handler the program installed. */
static void check_reported(enum install how, const char *when)
{
	struct sigaction old;
	TU_CCHECK(sigaction(SIGBUS, NULL, &old) == 0, "sigaction: %s", strerror(errno));
	if (how == BY_SIGACTION)
		TU_CCHECK((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_sigbus_info,
		          "%s: sigaction reports another SIGBUS handler than the program's (flags %#x)", when,
		          (unsigned)old.sa_flags);
	else
		TU_CCHECK(!(old.sa_flags & SA_SIGINFO) && old.sa_handler == on_sigbus_plain,
		          "%s: sigaction reports another SIGBUS handler than signal() installed (flags %#x)",
		          when, (unsigned)old.sa_flags);
}

/* A library call, with the program's handler armed to jump out: if the
 * library's fault reaches the program, the child fails (rather than the
 * fault repeating). */
#define LIB_CALL(result, call)                                                                  \
	do {                                                                                    \
		jump_armed = 1;                                                                 \
		if (sigsetjmp(jump, 1) == 0) {                                                  \
			(result) = (call);                                                      \
			jump_armed = 0;                                                         \
		} else {                                                                        \
			tu_child_fail(__LINE__, "the program's SIGBUS handler got the fault of %s", \
			              #call);                                                   \
		}                                                                               \
	} while (0)

/* ---- other processes ---- */

/* Run fn(arg) in a child that reports through a pipe; the child's wait
 * status. */
static int in_child(void (*fn)(const void *), const void *arg, char *msg, size_t len)
{
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(pfd[0]);
		tu_child_reports_to(pfd[1]);
		fn(arg);
		_exit(0);
	}
	close(pfd[1]);
	size_t n = 0;
	ssize_t r;
	while (n < len - 1 && (r = read(pfd[0], msg + n, len - 1 - n)) > 0)
		n += (size_t)r;
	msg[n] = 0;
	close(pfd[0]);
	return tu_wait(pid);
}

static void run_case(void (*fn)(const void *), const void *arg, const char *what)
{
	char msg[1024];
	int st = in_child(fn, arg, msg, sizeof msg);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("SKIPPED: %s: %s\n", what, msg);
		return;
	}
	if (WIFSIGNALED(st))
		ck_abort_msg("%s: the program was killed by signal %d (%s) %s", what, WTERMSIG(st),
		             strsignal(WTERMSIG(st)), msg);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %s (status %#x)", what, msg, st);
}

/* ---- the checks ---- */

/* A handler installed after the first use keeps the library's only where
 * the library defines sigaction and signal; a sanitizer's interceptor (or a
 * C library without __sigaction) leaves the build without them, which
 * DESIGN.md documents. */
static void require_interposer(void)
{
#ifndef MMF_INTERPOSE_SIGNAL
	tu_child_skip("this build does not define sigaction/signal (a sanitizer's interceptor, or no "
	              "__sigaction): a handler installed after the first use replaces the library's");
#endif
}

/* [child] A SIGBUS that is not the library's: the program's own mapping
 * of another file, cut, touched; then raise.  Each must reach the
 * program's handler once. */
static void foreign_sigbus(const char *q)
{
	int fd = open(q, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	TU_CCHECK(fd >= 0 && ftruncate(fd, 8192) == 0, "%s: %s", q, strerror(errno));
	volatile char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	TU_CCHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
	TU_CCHECK(ftruncate(fd, 0) == 0, "ftruncate: %s", strerror(errno));
	int before = handler_calls;
	jump_armed = 1;
	if (sigsetjmp(jump, 1) == 0) {
		(void)m[100];
		jump_armed = 0;
		tu_child_fail(__LINE__, "touching a cut mapping raised no SIGBUS");
	}
	TU_CCHECK(handler_calls == before + 1,
	          "a fault in the program's own mapping: the program's handler was called %d times",
	          handler_calls - before);
	munmap((void *)m, 8192);
	close(fd);

	before = handler_calls;
	raise(SIGBUS);
	TU_CCHECK(handler_calls == before + 1, "raise(SIGBUS): the program's handler was called %d times",
	          handler_calls - before);
}

struct chain_case {
	const char *name;
	enum install how;
	bool before;  /* installed before the library's first use */
	const char *p, *twin, *other;
};

/* [child] */
static void chain_child(const void *arg)
{
	const struct chain_case *c = arg;
	if (!c->before)
		require_interposer();
	if (c->before)
		install(c->how);
	mmapfile_t *f = mmapfile_open(c->p, O_RDWR, 0);
	TU_CCHECK(f != NULL, "open: %s", strerror(errno));
	int fd = open(c->twin, O_RDWR | O_CLOEXEC);
	TU_CCHECK(fd >= 0, "open the twin: %s", strerror(errno));
	unsigned char *a = tu_xmalloc(8192), *b = tu_xmalloc(8192);
	/* The library's first use: reads through its mapping. */
	ssize_t r = -1;
	LIB_CALL(r, mmapfile_readat(f, a, 4096, 0));
	TU_CCHECK(r == 4096, "readat: %zd", r);
	LIB_CALL(r, mmapfile_readat(f, a, 4096, 200 * KiB));
	TU_CCHECK(r == 4096, "readat: %zd", r);
	tu_pread_all(fd, b, 4096, 200 * KiB);
	TU_CCHECK(memcmp(a, b, 4096) == 0, "the bytes read at 200 KiB differ from the twin's");
	/* Installed before, the program's handler is what sigaction reports
	 * too, where the library defines sigaction. */
	if (!c->before)
		install(c->how);
#ifdef MMF_INTERPOSE_SIGNAL
	check_reported(c->how, "after the program installed its handler");
#endif

	tu_truncate_by_other(c->p, CUT);
	TU_CCHECK(ftruncate(fd, CUT) == 0, "ftruncate the twin: %s", strerror(errno));

	/* Past the cut: 0, as pread on the shrunken file. */
	LIB_CALL(r, mmapfile_readat(f, a, 8192, 100 * KiB));
	TU_CCHECK(r == pread(fd, b, 8192, 100 * KiB), "readat past the cut: %zd (%s), pread 0", r,
	          r < 0 ? strerror(errno) : "");
	/* Across it: the bytes before it. */
	LIB_CALL(r, mmapfile_readat(f, a, 8192, 8 * KiB));
	ssize_t want = pread(fd, b, 8192, 8 * KiB);
	TU_CCHECK(r == want, "readat across the cut: %zd (%s), pread %zd", r, r < 0 ? strerror(errno) : "",
	          want);
	TU_CCHECK(memcmp(a, b, (size_t)want) == 0, "readat across the cut: the bytes differ from pread's");
	off_t size = -1;
	LIB_CALL(size, mmapfile_size(f));
	TU_CCHECK(size == CUT, "size after the cut: %lld", (long long)size);
	/* A write past the cut grows the file again, as pwrite would. */
	tu_fill(a, 3000, 5);
	LIB_CALL(r, mmapfile_writeat(f, a, 3000, 100 * KiB));
	TU_CCHECK(r == 3000, "writeat past the cut: %zd (%s)", r, r < 0 ? strerror(errno) : "");
	TU_CCHECK(pwrite(fd, a, 3000, 100 * KiB) == 3000, "pwrite the twin: %s", strerror(errno));
	/* And one inside what remains. */
	LIB_CALL(r, mmapfile_writeat(f, a, 100, 1000));
	TU_CCHECK(r == 100, "writeat inside: %zd", r);
	TU_CCHECK(pwrite(fd, a, 100, 1000) == 100, "pwrite the twin: %s", strerror(errno));

	TU_CCHECK(handler_calls == 0, "the program's SIGBUS handler was called %d times by the library's faults",
	          handler_calls);
#ifdef MMF_INTERPOSE_SIGNAL
	check_reported(c->how, "after the library met the cut");
#endif
	foreign_sigbus(c->other);
#ifdef MMF_INTERPOSE_SIGNAL
	check_reported(c->how, "after a foreign SIGBUS");
#endif

	int rc = -1;
	LIB_CALL(rc, mmapfile_close(f));
	TU_CCHECK(rc == 0, "close: %s", strerror(errno));
	close(fd);
	free(a);
	free(b);

	size_t n1, n2;
	unsigned char *x = tu_read_file(c->p, &n1), *y = tu_read_file(c->twin, &n2);
	TU_CCHECK(n1 == n2, "the file is %zu bytes, the twin %zu", n1, n2);
	TU_CCHECK(memcmp(x, y, n1) == 0, "the file differs from the twin at %zu", tu_first_diff(x, y, n1));
	free(x);
	free(y);
}

static const struct {
	const char *name;
	enum install how;
	bool before;
} chain_cases[] = {
	{ "sigaction after the first use", BY_SIGACTION, false },
	{ "signal() after the first use", BY_SIGNAL, false },
	{ "sigaction before the first use", BY_SIGACTION, true },
	{ "signal() before the first use", BY_SIGNAL, true },
};

START_TEST(test_handler_chain)
{
	struct chain_case c = {
		.name = chain_cases[_i].name, .how = chain_cases[_i].how, .before = chain_cases[_i].before,
		.p = tu_path("f"), .twin = tu_path("twin"), .other = tu_path("other"),
	};
	tu_make_pattern_file(c.p, FILE_SIZE);
	tu_make_pattern_file(c.twin, FILE_SIZE);
	run_case(chain_child, &c, c.name);
}
END_TEST

/* The program installs its handler after the library's first use, then
 * gives SIGBUS back to the default (or ignores it): a library call that
 * meets a cut still must not kill it. */
struct restore_case {
	void (*disp)(int);
	const char *p, *twin;
};

static void restore_child(const void *arg)
{
	const struct restore_case *c = arg;
	require_interposer();
	mmapfile_t *f = mmapfile_open(c->p, O_RDWR, 0);
	TU_CCHECK(f != NULL, "open: %s", strerror(errno));
	unsigned char *a = tu_xmalloc(8192);
	TU_CCHECK(mmapfile_readat(f, a, 4096, 200 * KiB) == 4096, "readat");
	install(BY_SIGACTION);
	TU_CCHECK(signal(SIGBUS, c->disp) != SIG_ERR, "signal: %s", strerror(errno));
	tu_truncate_by_other(c->p, CUT);
	ssize_t r = mmapfile_readat(f, a, 8192, 100 * KiB);
	TU_CCHECK(r == 0, "readat past the cut: %zd", r);
	r = mmapfile_readat(f, a, 8192, 8 * KiB);
	TU_CCHECK(r == CUT - 8 * KiB, "readat across the cut: %zd", r);
	tu_fill(a, 3000, 9);
	r = mmapfile_writeat(f, a, 3000, 100 * KiB);
	TU_CCHECK(r == 3000, "writeat past the cut: %zd (%s)", r, r < 0 ? strerror(errno) : "");
	TU_CCHECK(mmapfile_close(f) == 0, "close: %s", strerror(errno));
	TU_CCHECK(handler_calls == 0, "the handler the program replaced was called %d times",
	          handler_calls);
	free(a);
	TU_CCHECK(tu_file_size(c->p) == 100 * KiB + 3000, "the file is %lld bytes",
	          (long long)tu_file_size(c->p));
}

START_TEST(test_handler_restored)
{
	struct restore_case c = { .disp = _i ? SIG_IGN : SIG_DFL, .p = tu_path("f") };
	tu_make_pattern_file(c.p, FILE_SIZE);
	run_case(restore_child, &c, _i ? "SIG_IGN after the program's handler" : "SIG_DFL after the program's handler");
}
END_TEST

/* A SIGBUS outside library calls, with a handler installed after the
 * first use and no cut at all: the program gets it. */
static void plain_foreign_child(const void *arg)
{
	const char *const *paths = arg;
	mmapfile_t *f = mmapfile_open(paths[0], O_RDONLY, 0);
	TU_CCHECK(f != NULL, "open: %s", strerror(errno));
	char buf[100];
	TU_CCHECK(mmapfile_readat(f, buf, sizeof buf, 100 * KiB) == (ssize_t)sizeof buf, "readat");
	install(BY_SIGACTION);
	foreign_sigbus(paths[1]);
	check_reported(BY_SIGACTION, "after a foreign SIGBUS");
	TU_CCHECK(mmapfile_readat(f, buf, sizeof buf, 100 * KiB) == (ssize_t)sizeof buf, "readat");
	TU_CCHECK(mmapfile_close(f) == 0, "close");
}

START_TEST(test_foreign_only)
{
	const char *paths[2] = { tu_path("f"), tu_path("other") };
	tu_make_pattern_file(paths[0], FILE_SIZE);
	run_case(plain_foreign_child, paths, "a foreign SIGBUS with the handle open");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("chain");
	TCase *tc = tu_tcase("chain", 30);
	tcase_add_loop_test(tc, test_handler_chain, 0, (int)(sizeof chain_cases / sizeof chain_cases[0]));
	tcase_add_loop_test(tc, test_handler_restored, 0, 2);
	tcase_add_test(tc, test_foreign_only);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
