/* testutil.h - small helpers the test programs share. */
#ifndef MMAPFILE_TESTUTIL_H
#define MMAPFILE_TESTUTIL_H

#include "mmapfile.h"

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Add a test case with the fixture and a timeout, run the suite, print
 * Check's summary, return 0 when every test passed, 1 otherwise. */
TCase *tu_tcase(const char *name, double timeout_s);
int tu_run(Suite *s);

#endif
