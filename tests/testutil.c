#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <spawn.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[4096];
static char paths[8][sizeof dir + 256];
static unsigned next_path;
static int child_report = -1; /* in a child: its end of the pipe to the parent */

/* Fail the test, or in a child the child (see tu_child_reports_to). */
extern char **environ;

static void fail_test(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_test(const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (child_report >= 0) {
		dprintf(child_report, "%s", msg);
		_exit(1);
	}
	ck_abort_msg("%s", msg);
}

/* Map the first 256 KiB of the test's stack now.  valgrind grows the main
 * stack on a fault, but not while it delivers a signal: a SIGBUS the
 * library's guard answers, arriving with the stack just past a page it had
 * not used yet, would end the test with "Can't extend stack". */
static __attribute__((noinline)) void grow_stack(void)
{
	volatile char pad[256 << 10];
	for (size_t i = 0; i < sizeof pad; i += 1024)
		pad[i] = 0;
}

void tu_setup(void)
{
	grow_stack();
	/* A failed assertion ends the forked test with exit(): clean up then too. */
	static bool registered;
	if (!registered) {
		atexit(tu_teardown);
		registered = true;
	}
	snprintf(dir, sizeof dir, "%s/mmapfile-test-XXXXXX", tu_tmpdir());
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
	tu_unmount_all();
	if (dir[0])
		nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}

const char *tu_tmpdir(void)
{
	const char *tmp = getenv("TMPDIR");
	return tmp && *tmp ? tmp : "/tmp";
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

void *tu_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		fail_test("malloc(%zu) failed", n);
	return p;
}

unsigned char *tu_random_bytes(size_t n, uint64_t seed)
{
	unsigned char *p = tu_xmalloc(n);
	tu_fill(p, n, seed);
	return p;
}

size_t tu_first_diff(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return i;
	return n;
}

unsigned char *tu_make_file(const char *path, size_t n, uint64_t seed, bool sync)
{
	unsigned char *buf = tu_random_bytes(n, seed);
	tu_write_file(path, buf, n);
	if (sync) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
		ck_assert_msg(fsync(fd) == 0, "fsync %s: %s", path, strerror(errno));
		close(fd);
	}
	return buf;
}

void tu_fill_pattern(unsigned char *buf, off_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = tu_pattern(off + (off_t)i);
}

void tu_make_pattern_file(const char *path, off_t size)
{
	unsigned char *buf = tu_xmalloc((size_t)size);
	tu_fill_pattern(buf, 0, (size_t)size);
	tu_write_file(path, buf, (size_t)size);
	free(buf);
}

off_t tu_fd_size(int fd)
{
	struct stat st;
	ck_assert_msg(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
	return st.st_size;
}

void tu_pread_all(int fd, void *buf, size_t n, off_t off)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = pread(fd, (unsigned char *)buf + got, n - got, off + (off_t)got);
		if (r <= 0)
			fail_test("pread of %zu bytes at %lld: %s", n - got, (long long)(off + (off_t)got),
			          r < 0 ? strerror(errno) : "end of file");
		got += (size_t)r;
	}
}

void tu_run_other(char *const argv[])
{
	pid_t pid;
	fflush(NULL);
	int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (rc != 0)
		fail_test("posix_spawnp %s: %s", argv[0], strerror(rc));
	int st;
	if (waitpid(pid, &st, 0) != pid)
		fail_test("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_test("%s: status %#x", argv[0], st);
}

void tu_truncate_by_other(const char *path, off_t len)
{
	char arg[32];
	snprintf(arg, sizeof arg, "%lld", (long long)len);
	char *argv[] = { "truncate", "-s", arg, (char *)path, NULL };
	tu_run_other(argv);
}

void tu_evict(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fdatasync(fd), 0);
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
}

/* ---- the process as the kernel sees it ---- */

int tu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		fail_test("/proc/self/fd: %s", strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

long tu_proc_value(const char *file, const char *key)
{
	FILE *fp = fopen(file, "re");
	if (!fp)
		return -1;
	char line[256];
	long v = -1;
	size_t k = strlen(key);
	while (fgets(line, sizeof line, fp))
		if (strncmp(line, key, k) == 0 && line[k] == ':') {
			v = strtol(line + k + 1, NULL, 10);
			break;
		}
	fclose(fp);
	return v;
}

long tu_vm_locked(void)
{
	long kb = tu_proc_value("/proc/self/status", "VmLck");
	if (kb < 0)
		fail_test("no VmLck in /proc/self/status");
	return kb;
}

int tu_sys_mlock(const void *p, size_t n)
{
	return (int)syscall(SYS_mlock, p, n);
}

int tu_sys_munlock(const void *p, size_t n)
{
	return (int)syscall(SYS_munlock, p, n);
}

bool tu_may_lock(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(p != MAP_FAILED);
	int rc = tu_sys_mlock(p, n), err = errno;
	munmap(p, n);
	if (rc != 0) {
		printf("SKIPPED: locking %zu bytes: %s (RLIMIT_MEMLOCK too low)\n", n, strerror(err));
		fflush(stdout);
	}
	return rc == 0;
}

size_t tu_pmd_size(void)
{
	FILE *fp = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
	unsigned long long v = 0;
	if (fp) {
		if (fscanf(fp, "%llu", &v) != 1)
			v = 0;
		fclose(fp);
	}
	return (size_t)v;
}

int tu_read_vmas(struct tu_vma **out)
{
	FILE *fp = fopen("/proc/self/smaps", "re");
	if (!fp)
		fail_test("/proc/self/smaps: %s", strerror(errno));
	struct tu_vma *v = NULL;
	int n = 0, cap = 0;
	char line[PATH_MAX + 256];
	while (fgets(line, sizeof line, fp)) {
		unsigned long s, e, ino;
		unsigned long long off;
		unsigned int maj, min;
		char perms[5];
		int pos = 0;
		long kb;
		if (sscanf(line, "%lx-%lx %4s %llx %x:%x %lu %n", &s, &e, perms, &off, &maj, &min, &ino,
		           &pos) == 7 && pos > 0) {
			if (n == cap) {
				cap = cap ? 2 * cap : 256;
				struct tu_vma *nv = realloc(v, (size_t)cap * sizeof *v);
				if (!nv)
					fail_test("reading /proc/self/smaps: out of memory");
				v = nv;
			}
			char *name = line + pos;
			name[strcspn(name, "\n")] = '\0';
			v[n] = (struct tu_vma){ .start = s, .end = e, .pgoff = off, .dev_major = maj,
			                        .dev_minor = min, .inode = ino, .path = strdup(name) };
			if (!v[n].path)
				fail_test("reading /proc/self/smaps: out of memory");
			memcpy(v[n].perms, perms, sizeof v[n].perms);
			n++;
		} else if (n > 0 && strncmp(line, "VmFlags:", 8) == 0) {
			size_t k = strcspn(line + 8, "\n");
			if (k >= sizeof v[n - 1].flags)
				k = sizeof v[n - 1].flags - 1;
			memcpy(v[n - 1].flags, line + 8, k);
			v[n - 1].flags[k] = '\0';
		} else if (n > 0 && sscanf(line, "Rss: %ld kB", &kb) == 1) {
			v[n - 1].rss_kb = kb;
		} else if (n > 0 && sscanf(line, "FilePmdMapped: %ld kB", &kb) == 1) {
			v[n - 1].pmd_kb = kb;
		} else if (n > 0 && (sscanf(line, "Shared_Dirty: %ld kB", &kb) == 1 ||
		                     sscanf(line, "Private_Dirty: %ld kB", &kb) == 1)) {
			v[n - 1].dirty_kb += kb;
		}
	}
	fclose(fp);
	*out = v;
	return n;
}

void tu_free_vmas(struct tu_vma *v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

bool tu_find_vma(const void *p, struct tu_vma *out)
{
	struct tu_vma *v;
	int n = tu_read_vmas(&v);
	bool found = false;
	for (int i = 0; i < n && !found; i++)
		if ((uintptr_t)p >= v[i].start && (uintptr_t)p < v[i].end) {
			*out = v[i];
			out->path = NULL;
			found = true;
		}
	tu_free_vmas(v, n);
	return found;
}

bool tu_vm_flag(const char *flags, const char *flag)
{
	size_t k = strlen(flag);
	for (const char *s = flags; (s = strstr(s, flag)) != NULL; s += k)
		if ((s == flags || s[-1] == ' ') && (s[k] == ' ' || s[k] == '\0'))
			return true;
	return false;
}

/* ---- other processes ---- */

pid_t tu_fork(void)
{
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	return pid;
}

int tu_wait(pid_t pid)
{
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

const char *tu_public_dir(void)
{
	ck_assert_int_eq(chmod(tu_dir(), 0711), 0);
	const char *d = tu_path("pub");
	ck_assert_int_eq(mkdir(d, 0777), 0);
	ck_assert_int_eq(chmod(d, 0777), 0);
	return d;
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

void tu_child_reports_to(int fd)
{
	child_report = fd;
}

mmapfile_t *tu_child_open_write_only(const char *dir, char *path, size_t len)
{
	snprintf(path, len, "%s/wo", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0200);
	TU_CCHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	TU_CCHECK(write(fd, "0123456789", 10) == 10, "write: %s", strerror(errno));
	close(fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		tu_child_skip("uid %d may read a 0200 file", (int)geteuid());
	mmapfile_t *f = mmapfile_open(path, O_WRONLY, 0);
	TU_CCHECK(f != NULL, "open O_WRONLY: %s", strerror(errno));
	return f;
}

bool tu_run_unprivileged(const char *what, const char *reach, int mode, void (*fn)(void *),
                         void *arg)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = tu_fork();
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
	int status = tu_wait(pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("SKIPPED %s: %s\n", what, msg);
		fflush(stdout);
		return false;
	}
	ck_assert_msg(WIFEXITED(status), "%s: unprivileged child died (status %#x) %s", what, status, msg);
	ck_assert_msg(WEXITSTATUS(status) == 0, "%s: unprivileged child failed: %s", what, msg);
	return true;
}

/* ---- mounts ---- */

static char mounts[8][sizeof dir + 256];
static int nmounts;

int tu_private_mounts(const char **step)
{
	*step = "unshare(CLONE_NEWNS)";
	if (unshare(CLONE_NEWNS) != 0)
		return -1;
	*step = "making the mount namespace private";
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
		return -1;
	*step = NULL;
	return 0;
}

const char *tu_mount(const char *name, const char *type, const char *opts)
{
	ck_assert_int_lt(nmounts, (int)(sizeof mounts / sizeof mounts[0]));
	char *d = mounts[nmounts];
	snprintf(d, sizeof mounts[0], "%s", tu_path(name));
	ck_assert_msg(mkdir(d, 0700) == 0, "mkdir %s: %s", d, strerror(errno));
	if (mount("mmapfile-test", d, type, MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0) {
		int err = errno;
		rmdir(d);
		errno = err;
		return NULL;
	}
	nmounts++;
	return d;
}

void tu_unmount_all(void)
{
	while (nmounts > 0) {
		nmounts--;
		umount2(mounts[nmounts], MNT_DETACH);
		rmdir(mounts[nmounts]);
	}
}
