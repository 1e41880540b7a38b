/* check_limits.c - the handle when the process cannot map what it wants
 * (spec, errors: "Failure returns -1 ... nothing aborts"; semantics: every
 * call behaves as the matching call on a file descriptor).
 *
 * A descriptor reads and writes a file whatever the process's address
 * space or map count; so must a handle, by pread(2)/pwrite(2) when it
 * cannot map.  Three limits:
 *   (a) RLIMIT_AS just above what the process uses (in a forked child): a
 *       64 MiB file opens, and readat/writeat/read/write/seek give the bytes
 *       a plain descriptor on the same file gives; a view of the file
 *       (mmapfile_view, which needs the mapping) fails with ENOMEM;
 *   (b) vm.max_map_count lowered to the child's map count + 50 (root; the
 *       parent puts the old value back whatever happens to the child, and
 *       main once more at the end): 200 handles on 200 files of 64 KiB,
 *       each written and read correctly;
 *   (c) 100,000 handles open at once (RLIMIT_NOFILE raised to fit), 100 on
 *       each of 1,000 files of 64 KiB (large enough to be mapped at open):
 *       more mappings than the default vm.max_map_count allows.  Where the
 *       hard limit cannot be raised (no CAP_SYS_RESOURCE, as in some
 *       containers) it says SKIPPED and runs as many handles as the hard
 *       limit allows, with vm.max_map_count lowered to half as many.  A write
 *       and a read through every handle, checked against a descriptor;
 *       close of all of them; the files then hold every write.
 * The oracle throughout is pread(2) on a plain descriptor.
 *
 * vm.max_map_count is a limit of the whole machine: while it is lowered,
 * another program with more mappings could not map more.  The window is
 * short (a few milliseconds), and tests/Makefile.am runs this program
 * after the others of a make check.  Not under valgrind (.ci/run): valgrind
 * keeps its own address space and map count. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB (1024 * KiB)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZER 1
#endif
#endif

#define MAX_MAP_COUNT "/proc/sys/vm/max_map_count"

/* ---- a child that reports to its parent ---- */

/* Called once the child is gone, before its failure fails the test. */
static void (*after_child)(void);

/* Run fn in a forked child whose TU_CCHECK failures and tu_child_skip come
 * back here: a failure fails the test, a skip prints "SKIPPED: ..." and
 * returns false. */
static bool in_child(const char *what, void (*fn)(void *), void *arg)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(p[0]);
		tu_child_reports_to(p[1]);
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	char msg[1024];
	size_t n = 0;
	for (;;) {
		ssize_t r = read(p[0], msg + n, sizeof msg - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof msg - 1)
			break;
	}
	msg[n] = '\0';
	close(p[0]);
	int st = tu_wait(pid);
	if (after_child)
		after_child();
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("SKIPPED: %s: %s\n", what, msg);
		return false;
	}
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %s%s", what,
	              WIFSIGNALED(st) ? "killed by signal " : "", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : msg);
	return true;
}

/* The bytes [off, off + n) of the handle are those pread(2) gives. */
static void same_as_fd(mmapfile_t *f, int fd, unsigned char *a, unsigned char *b, size_t n, off_t off,
                       const char *what)
{
	ssize_t r = mmapfile_readat(f, a, n, off);
	TU_CCHECK(r >= 0, "%s: mmapfile_readat of %zu at %lld: %s", what, n, (long long)off, strerror(errno));
	ssize_t t = pread(fd, b, n, off);
	TU_CCHECK(r == t, "%s: mmapfile_readat of %zu at %lld: %zd, pread(2) %zd", what, n, (long long)off, r, t);
	size_t i = tu_first_diff(a, b, (size_t)r);
	TU_CCHECK(i == (size_t)r, "%s: byte %lld differs from pread(2)'s", what, (long long)off + (long long)i);
}

/* ---- (a) RLIMIT_AS ---- */

#define AS_FILE (64 * MiB)
#define AS_CHUNK ((size_t)64 << 10)

static void as_child(void *arg)
{
	const char *path = arg;
#ifdef SANITIZER
	(void)path;
	tu_child_skip("a sanitizer's shadow memory makes RLIMIT_AS meaningless");
#else
	unsigned char *a = tu_xmalloc(AS_CHUNK), *b = tu_xmalloc(AS_CHUNK), *w = tu_xmalloc(AS_CHUNK);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	TU_CCHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	long vm_kib = tu_proc_value("/proc/self/status", "VmSize");
	TU_CCHECK(vm_kib > 0, "no VmSize in /proc/self/status");
	/* 16 MiB to spare: the library's own needs, never the 64 MiB file. */
	struct rlimit rl = { .rlim_cur = (rlim_t)vm_kib * 1024 + 16 * 1024 * 1024,
	                     .rlim_max = (rlim_t)vm_kib * 1024 + 16 * 1024 * 1024 };
	TU_CCHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS): %s", strerror(errno));
	void *probe = mmap(NULL, (size_t)AS_FILE, PROT_READ, MAP_SHARED, fd, 0);
	TU_CCHECK(probe == MAP_FAILED && errno == ENOMEM,
	          "mmap of the 64 MiB file under RLIMIT_AS: %s (the limit does not bite)",
	          probe == MAP_FAILED ? strerror(errno) : "succeeded");

	mmapfile_t *f = mmapfile_open(path, O_RDWR, 0);
	TU_CCHECK(f != NULL, "mmapfile_open of a 64 MiB file under RLIMIT_AS (%ld KiB used, 16 MiB "
	          "spare): %s; a descriptor opens and reads it",
	          vm_kib, strerror(errno));
	TU_CCHECK(mmapfile_size(f) == AS_FILE, "size %lld", (long long)mmapfile_size(f));
	/* Every byte, by readat. */
	for (off_t o = 0; o < AS_FILE; o += (off_t)AS_CHUNK)
		same_as_fd(f, fd, a, b, AS_CHUNK, o, "readat under RLIMIT_AS");
	/* writeat at scattered places. */
	uint64_t rng = 5;
	for (int k = 0; k < 64; k++) {
		size_t n = 1 + tu_rand(&rng) % AS_CHUNK;
		off_t off = (off_t)(tu_rand(&rng) % (uint64_t)(AS_FILE - (off_t)n));
		tu_fill(w, n, tu_rand(&rng));
		ssize_t r = mmapfile_writeat(f, w, n, off);
		TU_CCHECK(r == (ssize_t)n, "mmapfile_writeat of %zu at %lld under RLIMIT_AS: %zd (%s)", n,
		          (long long)off, r, strerror(errno));
		TU_CCHECK(pread(fd, b, n, off) == (ssize_t)n, "pread: %s", strerror(errno));
		TU_CCHECK(tu_first_diff(w, b, n) == n, "writeat of %zu at %lld: pread(2) reads other bytes",
		          n, (long long)off);
		same_as_fd(f, fd, a, b, n, off, "readat after writeat");
	}
	/* The cursor: seek, read, write. */
	for (int k = 0; k < 64; k++) {
		size_t n = 1 + tu_rand(&rng) % AS_CHUNK;
		off_t off = (off_t)(tu_rand(&rng) % (uint64_t)AS_FILE);
		TU_CCHECK(mmapfile_seek(f, off, SEEK_SET) == off, "seek: %s", strerror(errno));
		ssize_t r = mmapfile_read(f, a, n);
		ssize_t t = pread(fd, b, n, off);
		TU_CCHECK(r == t, "mmapfile_read of %zu at %lld under RLIMIT_AS: %zd (%s), pread(2) %zd", n,
		          (long long)off, r, r < 0 ? strerror(errno) : "-", t);
		TU_CCHECK(tu_first_diff(a, b, (size_t)r) == (size_t)r, "read at %lld differs", (long long)off);
		TU_CCHECK(mmapfile_seek(f, 0, SEEK_CUR) == off + r, "cursor after read");
		tu_fill(w, n, tu_rand(&rng));
		off_t size = mmapfile_size(f);
		r = mmapfile_write(f, w, n);
		TU_CCHECK(r == (ssize_t)n, "mmapfile_write of %zu at %lld under RLIMIT_AS: %zd (%s)", n,
		          (long long)(off + t), r, strerror(errno));
		TU_CCHECK(pread(fd, b, n, off + t) == (ssize_t)n, "pread after write: %s", strerror(errno));
		TU_CCHECK(tu_first_diff(w, b, n) == n, "write at %lld: pread(2) reads other bytes",
		          (long long)(off + t));
		off_t end = off + t + (off_t)n;
		TU_CCHECK(mmapfile_size(f) == (end > size ? end : size), "size after write");
	}
	/* Appends past the end grow the file. */
	TU_CCHECK(mmapfile_seek(f, 0, SEEK_END) == mmapfile_size(f), "seek to the end");
	off_t end = mmapfile_size(f);
	for (int k = 0; k < 16; k++) {
		tu_fill(w, AS_CHUNK, 700 + (uint64_t)k);
		TU_CCHECK(mmapfile_write(f, w, AS_CHUNK) == (ssize_t)AS_CHUNK, "append under RLIMIT_AS: %s",
		          strerror(errno));
		same_as_fd(f, fd, a, b, AS_CHUNK, end, "readat of an append");
		TU_CCHECK(tu_first_diff(a, w, AS_CHUNK) == AS_CHUNK, "append at %lld differs", (long long)end);
		end += (off_t)AS_CHUNK;
	}
	TU_CCHECK(mmapfile_size(f) == end, "size after appends");
	/* A view needs the mapping: ENOMEM, and the handle goes on. */
	errno = 0;
	void *v = mmapfile_view(f, 0, (size_t)AS_FILE);
	TU_CCHECK(v == NULL && errno == ENOMEM, "mmapfile_view of 64 MiB under RLIMIT_AS: %s",
	          v ? "succeeded" : strerror(errno));
	same_as_fd(f, fd, a, b, AS_CHUNK, 0, "readat after the refused view");
	TU_CCHECK(mmapfile_sync(f) == 0, "sync under RLIMIT_AS: %s", strerror(errno));
	TU_CCHECK(mmapfile_close(f) == 0, "close under RLIMIT_AS: %s", strerror(errno));
	TU_CCHECK(tu_fd_size(fd) == end, "the file is %lld bytes after close, %lld written",
	          (long long)tu_fd_size(fd), (long long)end);
	close(fd);
#endif
}

START_TEST(test_rlimit_as)
{
	const char *path = tu_path("big");
	tu_make_pattern_file(path, AS_FILE);
	in_child("RLIMIT_AS", as_child, (void *)path);
}
END_TEST

/* ---- (b) vm.max_map_count ---- */

#define MC_FILES 200
#define MC_SIZE ((size_t)64 << 10)

static long read_long(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -1;
	long v = -1;
	if (fscanf(fp, "%ld", &v) != 1)
		v = -1;
	fclose(fp);
	return v;
}

static int write_long(const char *path, long v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char s[32];
	int n = snprintf(s, sizeof s, "%ld\n", v);
	int rc = write(fd, s, (size_t)n) == n ? 0 : -1;
	int err = errno;
	close(fd);
	errno = err;
	return rc;
}

/* The value main() saw at the start, put back at the end in any case. */
static long saved_map_count = -1;

static int count_maps(void)
{
	FILE *fp = fopen("/proc/self/maps", "r");
	if (!fp)
		return -1;
	int n = 0, c;
	while ((c = getc(fp)) != EOF)
		n += c == '\n';
	fclose(fp);
	return n;
}

static void mc_child(void *arg)
{
	(void)arg;
	static char paths[MC_FILES][4200];
	static int fds[MC_FILES];
	static mmapfile_t *h[MC_FILES];
	unsigned char *a = tu_xmalloc(MC_SIZE), *b = tu_xmalloc(MC_SIZE), w[100];
	for (int i = 0; i < MC_FILES; i++) {
		char name[32];
		snprintf(name, sizeof name, "m%d", i);
		snprintf(paths[i], sizeof paths[i], "%s", tu_path(name));
		tu_make_pattern_file(paths[i], (off_t)MC_SIZE);
		fds[i] = open(paths[i], O_RDWR | O_CLOEXEC);
		TU_CCHECK(fds[i] >= 0, "open: %s", strerror(errno));
	}
	int maps = count_maps();
	TU_CCHECK(maps > 0, "/proc/self/maps: %s", strerror(errno));
	long limit = maps + 50;
	if (write_long(MAX_MAP_COUNT, limit) != 0)
		tu_child_skip("cannot lower %s: %s", MAX_MAP_COUNT, strerror(errno));
	/* From here the parent puts the old value back. */
	int opened = 0, failed_at = -1, err = 0;
	for (int i = 0; i < MC_FILES; i++) {
		h[i] = mmapfile_open(paths[i], O_RDWR, 0);
		if (!h[i]) {
			err = errno;
			failed_at = i;
			break;
		}
		opened++;
	}
	int ok = 0;
	for (int i = 0; i < opened; i++) {
		tu_fill(w, sizeof w, 50 + (uint64_t)i);
		ssize_t r = mmapfile_writeat(h[i], w, sizeof w, 1000 + i);
		if (r != (ssize_t)sizeof w) {
			err = errno;
			write_long(MAX_MAP_COUNT, saved_map_count);
			TU_CCHECK(0, "with vm.max_map_count %ld (%d maps before): mmapfile_writeat on handle %d: %zd (%s)",
			          limit, maps, i, r, strerror(err));
		}
		same_as_fd(h[i], fds[i], a, b, MC_SIZE, 0, "readat with vm.max_map_count lowered");
		ok++;
	}
	int closed_bad = -1;
	for (int i = 0; i < opened; i++)
		if (mmapfile_close(h[i]) != 0 && closed_bad < 0) {
			closed_bad = i;
			err = errno;
		}
	int maps_now = count_maps();
	write_long(MAX_MAP_COUNT, saved_map_count);
	TU_CCHECK(failed_at < 0, "with vm.max_map_count %ld (%d maps before): mmapfile_open of handle %d "
	          "of %d failed: %s (a descriptor opens and reads every file)",
	          limit, maps, failed_at, MC_FILES, strerror(err));
	TU_CCHECK(closed_bad < 0, "mmapfile_close of handle %d: %s", closed_bad, strerror(err));
	TU_CCHECK(maps_now <= maps + 5, "%d maps after closing every handle, %d before", maps_now, maps);
	/* Every file: the pattern with the write in it. */
	unsigned char *want = tu_xmalloc(MC_SIZE);
	for (int i = 0; i < MC_FILES; i++) {
		tu_fill_pattern(want, 0, MC_SIZE);
		tu_fill(want + 1000 + i, sizeof w, 50 + (uint64_t)i);
		tu_pread_all(fds[i], a, MC_SIZE, 0);
		TU_CCHECK(tu_first_diff(a, want, MC_SIZE) == MC_SIZE, "file %d after close differs", i);
		TU_CCHECK(tu_fd_size(fds[i]) == (off_t)MC_SIZE, "file %d: size %lld", i,
		          (long long)tu_fd_size(fds[i]));
		close(fds[i]);
	}
	printf("check_limits: vm.max_map_count %ld: %d handles opened, written and read\n", limit, ok);
}

/* Whatever the child did: the old value back, before anything else. */
static long mc_old;
static bool mc_restore_failed;
static void mc_restore(void)
{
	mc_restore_failed = write_long(MAX_MAP_COUNT, mc_old) != 0 || read_long(MAX_MAP_COUNT) != mc_old;
}

/* A sanitizer's own allocator takes mappings as it goes: with the map
 * count lowered (or nearly used up) it aborts before the library is
 * tested.  The plain builds run these. */
static bool sanitizer_skip(const char *what)
{
#ifdef SANITIZER
	printf("SKIPPED: %s: a sanitizer's allocator needs mappings of its own, which the lowered "
	       "map count would starve\n", what);
	return true;
#else
	(void)what;
	return false;
#endif
}

START_TEST(test_max_map_count)
{
	if (sanitizer_skip("vm.max_map_count"))
		return;
	if (geteuid() != 0) {
		printf("SKIPPED: vm.max_map_count: lowering it needs root\n");
		return;
	}
	long old = read_long(MAX_MAP_COUNT);
	if (old <= 0) {
		printf("SKIPPED: vm.max_map_count: cannot read %s\n", MAX_MAP_COUNT);
		return;
	}
	if (saved_map_count < 0)
		saved_map_count = old;
	mc_old = old;
	after_child = mc_restore;
	in_child("vm.max_map_count", mc_child, NULL);
	after_child = NULL;
	ck_assert_msg(!mc_restore_failed, "could not restore %s to %ld", MAX_MAP_COUNT, old);
}
END_TEST

/* ---- (c) 100,000 handles ---- */

#define NH_FILES 1000
#define NH_PER 100
#define NH_SIZE ((size_t)64 << 10)
#define NH_REC 64

struct nh_case {
	int files, per;   /* handles: files * per, per on each file */
	long lower_maps;  /* > 0: vm.max_map_count lowered to the map count + this */
};

static void record(unsigned char *p, int file, int j)
{
	tu_fill(p, NH_REC, (uint64_t)file * 1000 + (uint64_t)j + 1);
}

static void nh_child(void *arg)
{
	const struct nh_case *c = arg;
	const int nh = c->files * c->per;
	char (*paths)[4200] = tu_xmalloc((size_t)c->files * sizeof *paths);
	int *fds = tu_xmalloc((size_t)c->files * sizeof *fds);
	unsigned char *buf = tu_xmalloc(NH_SIZE), *want_b = tu_xmalloc(NH_SIZE);
	mmapfile_t **h = tu_xmalloc((size_t)nh * sizeof *h);
	for (int i = 0; i < c->files; i++) {
		char name[32];
		snprintf(name, sizeof name, "h%d", i);
		snprintf(paths[i], sizeof paths[i], "%s", tu_path(name));
		tu_make_pattern_file(paths[i], (off_t)NH_SIZE);
		fds[i] = open(paths[i], O_RDONLY | O_CLOEXEC);
		TU_CCHECK(fds[i] >= 0, "open: %s", strerror(errno));
	}
	long limit = -1;
	if (c->lower_maps > 0) {
		limit = count_maps() + c->lower_maps;
		if (write_long(MAX_MAP_COUNT, limit) != 0)
			tu_child_skip("cannot lower %s: %s", MAX_MAP_COUNT, strerror(errno));
	}
	long max_maps = read_long(MAX_MAP_COUNT);
	int opened = 0, err = 0;
	for (int j = 0; j < c->per && !err; j++)
		for (int i = 0; i < c->files; i++) {
			mmapfile_t *f = mmapfile_open(paths[i], O_RDWR, 0);
			if (!f) {
				err = errno;
				break;
			}
			h[opened++] = f;
		}
	/* Handle k = j * files + i: file i, record j. */
	unsigned char rec[NH_REC], back[NH_REC], fdb[NH_REC];
	int bad = -1;
	char why[256] = "";
	for (int k = 0; k < opened && bad < 0; k++) {
		int i = k % c->files, j = k / c->files;
		off_t off = (off_t)j * NH_REC;
		record(rec, i, j);
		ssize_t r = mmapfile_writeat(h[k], rec, NH_REC, off);
		if (r != NH_REC) {
			snprintf(why, sizeof why, "mmapfile_writeat: %zd (%s)", r, strerror(errno));
		} else if ((r = mmapfile_readat(h[k], back, NH_REC, off)) != NH_REC) {
			snprintf(why, sizeof why, "mmapfile_readat: %zd (%s)", r, strerror(errno));
		} else if (memcmp(back, rec, NH_REC) != 0) {
			snprintf(why, sizeof why, "the write does not read back");
		} else if (pread(fds[i], fdb, NH_REC, off) != NH_REC || memcmp(fdb, rec, NH_REC) != 0) {
			snprintf(why, sizeof why, "pread(2) reads other bytes than were written");
		}
		if (why[0])
			bad = k;
	}
	/* Every handle sees the others' writes to its file. */
	for (int k = 0; k < opened && bad < 0 && !err; k += 997) {
		int i = k % c->files;
		if (mmapfile_readat(h[k], buf, NH_SIZE, 0) != (ssize_t)NH_SIZE) {
			snprintf(why, sizeof why, "mmapfile_readat of the file: %s", strerror(errno));
			bad = k;
			break;
		}
		tu_pread_all(fds[i], want_b, NH_SIZE, 0);
		if (tu_first_diff(buf, want_b, NH_SIZE) != NH_SIZE) {
			snprintf(why, sizeof why, "its file reads other bytes than pread(2)'s");
			bad = k;
		}
	}
	int close_bad = -1, close_err = 0;
	for (int k = 0; k < opened; k++)
		if (mmapfile_close(h[k]) != 0 && close_bad < 0) {
			close_bad = k;
			close_err = errno;
		}
	if (limit > 0)
		write_long(MAX_MAP_COUNT, saved_map_count);
	TU_CCHECK(!err, "mmapfile_open of handle %d of %d failed: %s (vm.max_map_count %ld; a "
	          "descriptor opens and reads every file)",
	          opened, nh, strerror(err), max_maps);
	TU_CCHECK(bad < 0, "handle %d of %d (file %d): %s", bad, nh, bad % c->files, why);
	TU_CCHECK(close_bad < 0, "mmapfile_close of handle %d: %s", close_bad, strerror(close_err));
	for (int i = 0; i < c->files; i++) {
		tu_fill_pattern(want_b, 0, NH_SIZE);
		for (int j = 0; j < c->per; j++)
			record(want_b + j * NH_REC, i, j);
		TU_CCHECK(tu_fd_size(fds[i]) == (off_t)NH_SIZE, "file %d: size %lld", i,
		          (long long)tu_fd_size(fds[i]));
		tu_pread_all(fds[i], buf, NH_SIZE, 0);
		TU_CCHECK(tu_first_diff(buf, want_b, NH_SIZE) == NH_SIZE, "file %d after close differs", i);
		close(fds[i]);
	}
	printf("check_limits: %d handles at once (vm.max_map_count %ld)\n", opened, max_maps);
}

START_TEST(test_many_handles)
{
	if (sanitizer_skip("many handles"))
		return;
	/* The handles, the oracle's descriptors, and some to spare. */
	const rlim_t want = NH_FILES * (NH_PER + 1) + 100;
	struct rlimit rl;
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	struct nh_case c = { NH_FILES, NH_PER, 0 };
	if (rl.rlim_cur < want) {
		struct rlimit nl = { .rlim_cur = want, .rlim_max = rl.rlim_max > want ? rl.rlim_max : want };
		if (setrlimit(RLIMIT_NOFILE, &nl) != 0) {
			printf("SKIPPED: 100,000 handles: RLIMIT_NOFILE cannot be raised to %lu (hard limit %lu): %s\n",
			       (unsigned long)want, (unsigned long)rl.rlim_max, strerror(errno));
			/* What the hard limit allows, with vm.max_map_count
			 * lowered to half as many: the same plight. */
			c.files = (int)(rl.rlim_max > 10200 ? (rl.rlim_max - 200) / (NH_PER + 1) : 0);
			if (c.files > NH_FILES)
				c.files = NH_FILES;
			if (c.files == 0 || geteuid() != 0 || saved_map_count <= 0) {
				printf("SKIPPED: many handles: %s\n",
				       c.files ? "lowering vm.max_map_count needs root" : "the hard limit is too low");
				return;
			}
			nl.rlim_cur = nl.rlim_max = rl.rlim_max;
			ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &nl), 0);
			c.lower_maps = c.files * NH_PER / 2;
			printf("check_limits: instead %d handles, vm.max_map_count lowered by the child to its "
			       "map count + %ld\n",
			       c.files * NH_PER, c.lower_maps);
		}
	}
	mc_old = saved_map_count;
	after_child = c.lower_maps ? mc_restore : NULL;
	in_child("many handles", nh_child, &c);
	after_child = NULL;
	ck_assert_msg(!mc_restore_failed, "could not restore %s to %ld", MAX_MAP_COUNT, mc_old);
}
END_TEST

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	saved_map_count = read_long(MAX_MAP_COUNT);
	Suite *s = suite_create("limits");
	TCase *tc = tu_tcase("address space", 30);
	tcase_add_test(tc, test_rlimit_as);
	suite_add_tcase(s, tc);
	tc = tu_tcase("map count", 30);
	tcase_add_test(tc, test_max_map_count);
	suite_add_tcase(s, tc);
	tc = tu_tcase("100,000 handles", 60);
	tcase_add_test(tc, test_many_handles);
	suite_add_tcase(s, tc);
	int rc = tu_run(s);
	/* A test killed while the limit was low (a timeout) leaves it so. */
	if (saved_map_count > 0 && geteuid() == 0 && read_long(MAX_MAP_COUNT) != saved_map_count)
		write_long(MAX_MAP_COUNT, saved_map_count);
	return rc;
}
