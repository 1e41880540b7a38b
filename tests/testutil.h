/* testutil.h - small helpers the test programs share. */
#ifndef MMAPFILE_TESTUTIL_H
#define MMAPFILE_TESTUTIL_H

#include "mmapfile.h"

#include <check.h>
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

/* Add a test case with the fixture and a timeout, run the suite, print
 * Check's summary, return 0 when every test passed, 1 otherwise. */
TCase *tu_tcase(const char *name, double timeout_s);
int tu_run(Suite *s);

#endif
