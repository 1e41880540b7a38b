/* testutil.h - small helpers the test programs share. */
#ifndef MMAPFILE_TESTUTIL_H
#define MMAPFILE_TESTUTIL_H

#include "mmapfile.h"

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A checked fixture: every test gets a fresh temporary directory (under
 * $TMPDIR, else /tmp), removed with its contents afterwards. */
void tu_setup(void);
void tu_teardown(void);

/* The fixture's directory, and a path inside it (valid until teardown). */
const char *tu_dir(void);
const char *tu_path(const char *name);

/* Whole-file helpers on plain descriptors: the tests' oracle. */
void tu_write_file(const char *path, const void *data, size_t n);
unsigned char *tu_read_file(const char *path, size_t *n); /* malloc'd */
off_t tu_file_size(const char *path);

/* n deterministic pseudo-random bytes from seed. */
void tu_fill(void *buf, size_t n, uint64_t seed);
uint64_t tu_rand(uint64_t *state); /* splitmix64 */

/* Helpers marked [child] may also be called in a child process that
 * reports to its parent (tu_run_unprivileged, tu_child_reports_to): there
 * a failure ends the child, its message sent to the parent. */

/* Memory and data.  tu_xmalloc [child]: malloc(n), 1 byte for 0, or fail.
 * tu_random_bytes [child]: n bytes of tu_fill(seed), malloc'd.
 * tu_first_diff: the index of the first byte where a and b differ, n when
 * none does. */
void *tu_xmalloc(size_t n);
unsigned char *tu_random_bytes(size_t n, uint64_t seed);
size_t tu_first_diff(const void *a, const void *b, size_t n);

/* A file of n bytes of tu_fill(seed), written through a plain descriptor;
 * with sync, also fsync'd (its pages clean, so that they can be evicted).
 * Returns the bytes (malloc'd). */
unsigned char *tu_make_file(const char *path, size_t n, uint64_t seed, bool sync);

/* The pattern files: byte o of the file is tu_pattern(o). */
static inline unsigned char tu_pattern(off_t o)
{
	return (unsigned char)(o * 131 + (o >> 9) + 1);
}
void tu_fill_pattern(unsigned char *buf, off_t off, size_t n); /* bytes [off, off + n) */
void tu_make_pattern_file(const char *path, off_t size);

/* fstat's size of a descriptor. */
off_t tu_fd_size(int fd);

/* [child] pread(2) all of [off, off + n) into buf; an error or the end of
 * the file fails. */
void tu_pread_all(int fd, void *buf, size_t n, off_t off);

/* Drop the file's clean, unmapped, unlocked pages from the page cache
 * (fdatasync, then POSIX_FADV_DONTNEED). */
void tu_evict(const char *path);

/* $TMPDIR, else /tmp: where the fixture makes its directories. */
const char *tu_tmpdir(void);

/* ---- the process as the kernel sees it ---- */

/* [child] Open descriptors of this process (/proc/self/fd). */
int tu_count_fds(void);

/* The number after "key:" on a line of a /proc file such as
 * /proc/meminfo; -1 when there is none or the file cannot be read (no
 * failure). */
long tu_proc_value(const char *file, const char *key);

/* [child] The process's locked memory (VmLck of /proc/self/status), in
 * KiB. */
long tu_vm_locked(void);

/* mlock(2) and munlock(2) as system calls: the sanitizers' wrappers of the
 * C library's do nothing. */
int tu_sys_mlock(const void *p, size_t n);
int tu_sys_munlock(const void *p, size_t n);

/* Whether this process may lock n bytes (root, CAP_IPC_LOCK or a large
 * enough RLIMIT_MEMLOCK), by locking that much anonymous memory; prints
 * why not ("SKIPPED: ...") when it may not. */
bool tu_may_lock(size_t n);

/* The process's mappings (VMAs), from /proc/self/smaps. */
struct tu_vma {
	uintptr_t start, end;
	char perms[5];                 /* "r--s", "rw-p", ... */
	unsigned long long pgoff;      /* file offset of start */
	unsigned int dev_major, dev_minor;
	unsigned long inode;           /* 0 for anonymous memory */
	char *path;                    /* "" when none */
	long dirty_kb;                 /* Shared_Dirty + Private_Dirty */
	long rss_kb;                   /* Rss */
	long pmd_kb;                   /* FilePmdMapped: file pages mapped by PMD entries */
	char flags[256];               /* what follows "VmFlags:" (" rd wr sh ...") */
};
/* [child] Every VMA of the process, in address order (*out malloc'd: give
 * it to tu_free_vmas); returns how many. */
int tu_read_vmas(struct tu_vma **out);
void tu_free_vmas(struct tu_vma *v, int n);
/* The kernel's PMD size for transparent huge pages, read independently of
 * the library; 0 without them. */
size_t tu_pmd_size(void);
/* [child] The VMA that holds address p (its path left NULL); false when
 * none does. */
bool tu_find_vma(const void *p, struct tu_vma *out);
/* Whether the VmFlags string flags holds the two-letter flag ("lo", "hg"). */
bool tu_vm_flag(const char *flags, const char *flag);

/* ---- other processes ---- */

/* [child] Run argv (searched in PATH) as another process, exec'd so that a
 * checker such as valgrind does not follow it; fail unless it exits 0. */
void tu_run_other(char *const argv[]);

/* [child] Set the file's length to len from another process: truncate(1). */
void tu_truncate_by_other(const char *path, off_t len);

/* fork(2) with stdio flushed first, failing the test if it fails. */
pid_t tu_fork(void);
/* waitpid(2) for the child, failing the test if it fails; the status. */
int tu_wait(pid_t pid);

/* The fixture's directory made reachable by others (0711) with a 0777
 * directory "pub" in it, which an unprivileged child can create files in;
 * returns pub's path. */
const char *tu_public_dir(void);

/* Checks as an unprivileged user: tu_run_unprivileged runs fn(arg) in a
 * child that is not root (uid/gid 65534 when we are root) and can reach
 * `reach` (access(2) with `mode`).  True when the checks ran and passed (a
 * failure fails the test); false, after printing why, when they could not
 * run.  In the child, TU_CCHECK fails with a message and tu_child_skip
 * gives up with a reason. */
bool tu_run_unprivileged(const char *what, const char *reach, int mode, void (*fn)(void *),
                         void *arg);
void tu_child_fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void tu_child_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define TU_CCHECK(cond, ...)                                  \
	do {                                                  \
		if (!(cond))                                  \
			tu_child_fail(__LINE__, __VA_ARGS__); \
	} while (0)

/* In a child the test forked itself: from now on TU_CCHECK, tu_child_skip
 * and the [child] helpers write their message to fd (the parent reads it)
 * and end the child. */
void tu_child_reports_to(int fd);

/* In an unprivileged child: a file "wo" in dir holding "0123456789", made
 * 0200 (write-only to its owner; the child gives up with tu_child_skip if
 * it can read it all the same), opened O_WRONLY with mmapfile_open.  Its
 * path in path[0, len). */
mmapfile_t *tu_child_open_write_only(const char *dir, char *path, size_t len);

/* ---- mounts ---- */

/* Move this process into a mount namespace of its own whose mounts do not
 * reach the system's: 0, or -1 with errno set and *step naming the call
 * that failed. */
int tu_private_mounts(const char **step);

/* Mount a file system of type (options opts) on a new directory name of
 * the fixture's; returns its path, or NULL with errno when the mount is
 * refused (the directory is removed).  The teardown (and exit) unmount
 * what is still mounted. */
const char *tu_mount(const char *name, const char *type, const char *opts);
/* Unmount (lazily) and remove every directory tu_mount made. */
void tu_unmount_all(void);

/* Add a test case with the fixture and a timeout, run the suite, print
 * Check's summary, return 0 when every test passed, 1 otherwise. */
TCase *tu_tcase(const char *name, double timeout_s);
int tu_run(Suite *s);

#endif
