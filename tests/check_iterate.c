/* check_iterate.c - mmapfile_foreach against pread(2) on a plain descriptor:
 * the chunks, their offsets, where it stops and what it returns. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the callback saw, checked chunk by chunk against the file. */
struct seen {
	int fd;                /* plain descriptor on the same file: the oracle */
	off_t next;            /* where the next chunk must start */
	size_t chunk;          /* the largest chunk allowed */
	size_t calls, bytes;
	size_t stop_after;     /* return stop_value on this call (0: never) */
	int stop_value;
};

static int check_chunk(const void *chunk, size_t n, off_t off, void *arg)
{
	struct seen *s = arg;
	ck_assert_int_eq(off, s->next);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(n, s->chunk);
	unsigned char *want = malloc(n);
	ck_assert_int_eq(pread(s->fd, want, n, off), (ssize_t)n);
	ck_assert_msg(memcmp(want, chunk, n) == 0, "chunk at %lld differs", (long long)off);
	free(want);
	s->next = off + (off_t)n;
	s->calls++;
	s->bytes += n;
	return s->stop_after && s->calls == s->stop_after ? s->stop_value : 0;
}

static mmapfile_t *make(const char *name, size_t size, int *fd)
{
	const char *p = tu_path(name);
	unsigned char *data = malloc(size + 1);
	tu_fill(data, size, size * 31 + 7);
	tu_write_file(p, data, size);
	free(data);
	*fd = open(p, O_RDONLY);
	ck_assert_int_ge(*fd, 0);
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	return f;
}

/* Whole files of several sizes (lazily mapped and mapped at open), in
 * chunks of several sizes: every byte once, in order, up to the end. */
START_TEST(test_whole_file)
{
	static const size_t sizes[] = { 1, 4095, 4096, 70000, 300001 };
	static const size_t chunks[] = { 0, 1, 7, 4096, 65536, 1 << 20 };
	size_t size = sizes[_i];
	int fd;
	mmapfile_t *f = make("f", size, &fd);
	for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
		if (chunks[c] == 1 && size > 70000)
			continue; /* a byte at a time: enough on the smaller files */
		struct seen s = { .fd = fd, .chunk = chunks[c] ? chunks[c] : 64 << 10 };
		ck_assert_int_eq(mmapfile_foreach(f, 0, 0, chunks[c], check_chunk, &s), 0);
		ck_assert_uint_eq(s.bytes, size);
		ck_assert_int_eq(s.next, (off_t)size);
	}
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), 0); /* the cursor stays */
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
}
END_TEST

/* Ranges: inside, to past the end, starting past the end. */
START_TEST(test_ranges)
{
	int fd;
	const size_t size = 100000;
	mmapfile_t *f = make("f", size, &fd);
	struct {
		off_t off;
		size_t len, want;
	} cases[] = {
		{ 0, 1, 1 }, { 123, 4567, 4567 }, { 99990, 5000, 10 }, { 5000, 0, size - 5000 },
		{ (off_t)size, 10, 0 }, { (off_t)size + 4096, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct seen s = { .fd = fd, .next = cases[i].off, .chunk = 3000 };
		ck_assert_int_eq(mmapfile_foreach(f, cases[i].off, cases[i].len, 3000, check_chunk, &s), 0);
		ck_assert_msg(s.bytes == cases[i].want, "case %zu: %zu bytes, want %zu", i, s.bytes,
		              cases[i].want);
	}
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
}
END_TEST

/* The callback's non-zero answer stops the walk and is returned. */
START_TEST(test_callback_stops)
{
	int fd;
	mmapfile_t *f = make("f", 50000, &fd);
	struct seen s = { .fd = fd, .chunk = 1000, .stop_after = 7, .stop_value = 42 };
	ck_assert_int_eq(mmapfile_foreach(f, 0, 0, 1000, check_chunk, &s), 42);
	ck_assert_uint_eq(s.calls, 7);
	ck_assert_uint_eq(s.bytes, 7000);
	struct seen t = { .fd = fd, .chunk = 1000, .stop_after = 1, .stop_value = -5 };
	ck_assert_int_eq(mmapfile_foreach(f, 0, 0, 1000, check_chunk, &t), -5);
	ck_assert_uint_eq(t.calls, 1);
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
}
END_TEST

static int never_called(const void *chunk, size_t n, off_t off, void *arg)
{
	(void)chunk; (void)n; (void)off; (void)arg;
	ck_abort_msg("the callback was called");
	return 0;
}

/* Bad arguments: EINVAL; a write-only handle: EBADF; an empty file: no call. */
START_TEST(test_errors)
{
	int fd;
	mmapfile_t *f = make("f", 10, &fd);
	errno = 0;
	ck_assert_int_eq(mmapfile_foreach(NULL, 0, 0, 0, never_called, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_foreach(f, 0, 0, 0, NULL, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_foreach(f, -1, 0, 0, never_called, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mmapfile_foreach(f, INT64_MAX - 5, 10, 0, never_called, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(mmapfile_close(f), 0);

	mmapfile_t *w = mmapfile_open(tu_path("f"), O_WRONLY, 0);
	ck_assert_ptr_nonnull(w);
	errno = 0;
	ck_assert_int_eq(mmapfile_foreach(w, 0, 0, 0, never_called, NULL), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(mmapfile_close(w), 0);

	tu_write_file(tu_path("empty"), "", 0);
	mmapfile_t *e = mmapfile_open(tu_path("empty"), O_RDONLY, 0);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(mmapfile_foreach(e, 0, 0, 0, never_called, NULL), 0);
	ck_assert_int_eq(mmapfile_close(e), 0);
	close(fd);
}
END_TEST

/* Another process appends while the walk runs (len 0): the walk goes on to
 * the new end, as a read loop to EOF on a descriptor would. */
static int append_once(const void *chunk, size_t n, off_t off, void *arg)
{
	struct seen *s = arg;
	int rc = check_chunk(chunk, n, off, arg);
	if (s->calls == 1) {
		int w = open(tu_path("f"), O_WRONLY | O_APPEND);
		ck_assert_int_ge(w, 0);
		unsigned char more[5000];
		tu_fill(more, sizeof more, 99);
		ck_assert_int_eq(write(w, more, sizeof more), (ssize_t)sizeof more);
		close(w);
	}
	return rc;
}

START_TEST(test_follows_growth)
{
	int fd;
	mmapfile_t *f = make("f", 100000, &fd);
	struct seen s = { .fd = fd, .chunk = 8192 };
	ck_assert_int_eq(mmapfile_foreach(f, 0, 0, 8192, append_once, &s), 0);
	ck_assert_uint_eq(s.bytes, 105000);
	ck_assert_int_eq(mmapfile_close(f), 0);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("iterate");
	TCase *tc = tu_tcase("foreach", 30);
	tcase_add_loop_test(tc, test_whole_file, 0, 5);
	tcase_add_test(tc, test_ranges);
	tcase_add_test(tc, test_callback_stops);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_follows_growth);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
