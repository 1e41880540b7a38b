#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[4096];
static char paths[8][sizeof dir + 256];
static unsigned next_path;

void tu_setup(void)
{
	/* A failed assertion ends the forked test with exit(): clean up then too. */
	static bool registered;
	if (!registered) {
		atexit(tu_teardown);
		registered = true;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/mmapfile-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st; (void)type; (void)ftw;
	remove(path);
	return 0;
}

void tu_teardown(void)
{
	if (dir[0])
		nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}

const char *tu_dir(void)
{
	return dir;
}

const char *tu_path(const char *name)
{
	char *p = paths[next_path++ % 8];
	int n = snprintf(p, sizeof paths[0], "%s/%s", dir, name);
	ck_assert_msg(n > 0 && (size_t)n < sizeof paths[0], "path too long: %s", name);
	return p;
}

void tu_write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	const char *p = data;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		ck_assert_msg(w > 0, "write %s: %s", path, strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	ck_assert_int_eq(close(fd), 0);
}

unsigned char *tu_read_file(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	size_t len = (size_t)st.st_size;
	unsigned char *buf = malloc(len + 1);
	ck_assert_ptr_nonnull(buf);
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, len - got);
		ck_assert_msg(r >= 0, "read %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*n = got;
	return buf;
}

off_t tu_file_size(const char *path)
{
	struct stat st;
	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return st.st_size;
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void tu_fill(void *buf, size_t n, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t s = seed;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = tu_rand(&s);
		size_t k = n - i < 8 ? n - i : 8;
		memcpy(p + i, &v, k);
	}
}

TCase *tu_tcase(const char *name, double timeout_s)
{
	TCase *tc = tcase_create(name);
	tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
	tcase_set_timeout(tc, timeout_s);
	return tc;
}

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

/* ---- checks as an unprivileged user ---- */

#define TU_NOBODY 65534

static int child_report = -1; /* the child's end of the pipe to the parent */

void tu_child_fail(int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dprintf(child_report, "line %d: %s", line, msg);
	_exit(1);
}

void tu_child_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vdprintf(child_report, fmt, ap);
	va_end(ap);
	_exit(77);
}

bool tu_run_unprivileged(const char *what, const char *reach, int mode, void (*fn)(void *),
                         void *arg)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child_report = p[1];
		if (geteuid() == 0) {
			if (setgroups(0, NULL) != 0 || setgid(TU_NOBODY) != 0 || setuid(TU_NOBODY) != 0)
				tu_child_skip("cannot switch to uid/gid %d: %s", TU_NOBODY, strerror(errno));
			if (geteuid() == 0 || setuid(0) == 0)
				tu_child_skip("still able to act as root after setuid(%d)", TU_NOBODY);
		}
		if (access(reach, mode) != 0)
			tu_child_skip("uid %d cannot reach %s: %s", (int)geteuid(), reach, strerror(errno));
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	char msg[1024];
	size_t got = 0;
	ssize_t r;
	while ((r = read(p[0], msg + got, sizeof msg - 1 - got)) > 0)
		got += (size_t)r;
	msg[got] = '\0';
	close(p[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("SKIPPED %s: %s\n", what, msg);
		fflush(stdout);
		return false;
	}
	ck_assert_msg(WIFEXITED(status), "%s: unprivileged child died (status %#x) %s", what, status, msg);
	ck_assert_msg(WEXITSTATUS(status) == 0, "%s: unprivileged child failed: %s", what, msg);
	return true;
}

