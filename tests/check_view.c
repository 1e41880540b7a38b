/* check_view.c - zero-copy views (mmapfile_view, mmapfile_release).
 *
 * The oracles: a plain descriptor on the same file (pread, and a second
 * mapping of its own), the kernel's account of the process's mappings
 * (/proc/self/smaps: which file, at which offset, with which protection a
 * view's bytes are mapped), and, for the rule that a held view cannot be
 * cut, the largest end among the views a test still holds. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((off_t)1024)
#define MiB ((off_t)1024 * 1024)

/* A pattern file of size bytes at p and a handle on it (open flags); with
 * fd, a plain descriptor on the file too, opened with fd_flags. */
static mmapfile_t *pattern_handle(const char *p, off_t size, int flags, int *fd, int fd_flags)
{
	tu_make_pattern_file(p, size);
	mmapfile_t *f = mmapfile_open(p, flags, 0);
	ck_assert_msg(f != NULL, "open %s (%#x): %s", p, flags, strerror(errno));
	if (fd) {
		*fd = open(p, fd_flags);
		ck_assert_int_ge(*fd, 0);
	}
	return f;
}

/* Whether n bytes at p are the pattern from offset off; the first bad
 * offset in *bad. */
static bool is_pattern(const unsigned char *p, off_t off, size_t n, off_t *bad)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != tu_pattern(off + (off_t)i)) {
			*bad = off + (off_t)i;
			return false;
		}
	return true;
}

#define ck_assert_pattern(p, off, n)                                                       \
	do {                                                                               \
		off_t bad_ = -1;                                                           \
		ck_assert_msg(is_pattern((const unsigned char *)(p), (off), (n), &bad_),   \
		              "byte at file offset %lld is not the file's", (long long)bad_); \
	} while (0)

/* A call that must fail with err. */
#define ck_assert_fails(call, err)                                                          \
	do {                                                                                \
		errno = 0;                                                                  \
		bool failed_ = (call);                                                      \
		int e_ = errno;                                                             \
		ck_assert_msg(failed_ && e_ == (err), "%s: expected %s, got %s", #call,     \
		              strerror(err), failed_ ? strerror(e_) : "success");           \
	} while (0)

/* The bytes of the file at [off, off + n) by pread on a plain descriptor,
 * compared with n bytes at p. */
static void ck_same_as_file(int fd, const void *p, off_t off, size_t n)
{
	unsigned char *b = tu_xmalloc(n);
	tu_pread_all(fd, b, n, off);
	ck_assert_msg(memcmp(p, b, n) == 0, "view of [%lld, +%zu) differs from the file",
	              (long long)off, n);
	free(b);
}

/* ---- the kernel's account of a mapping: /proc/self/smaps ---- */

/* Byte off of the file behind handle f is at p in a mapping of that file
 * (the same inode, at that file offset), with the protection given
 * ("r--s", "rw-s", "rw-p", ...). */
static void ck_maps_file_byte(mmapfile_t *f, const void *p, off_t off, const char *perms)
{
	struct stat st;
	ck_assert_int_eq(fstat(mmapfile_fd(f), &st), 0);
	struct tu_vma r;
	ck_assert_msg(tu_find_vma(p, &r), "%p (file byte %lld) is in no mapping", p, (long long)off);
	ck_assert_msg(strcmp(r.perms, perms) == 0, "file byte %lld is mapped %s, not %s", (long long)off,
	              r.perms, perms);
	ck_assert_msg(r.inode == (unsigned long)st.st_ino, "file byte %lld: mapping of inode %lu, not %lu",
	              (long long)off, r.inode, (unsigned long)st.st_ino);
	ck_assert_msg(r.pgoff + ((uintptr_t)p - r.start) == (unsigned long long)off,
	              "the pointer for file byte %lld maps file byte %llu", (long long)off,
	              r.pgoff + ((uintptr_t)p - r.start));
}

/* The handle still answers as the file does: size, cursor, bytes. */
static void ck_handle_intact(mmapfile_t *f, int fd, off_t size, off_t cursor)
{
	ck_assert_int_eq(mmapfile_size(f), size);
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_CUR), cursor);
	unsigned char a[3000];
	off_t at = size > (off_t)sizeof a ? size - (off_t)sizeof a : 0;
	ssize_t k = mmapfile_readat(f, a, sizeof a, at);
	ck_assert_int_eq(k, size - at);
	ck_same_as_file(fd, a, at, (size_t)k);
}

/* ------------------------------------------------------------------ */
/* Arguments */

/* Every refused argument is EINVAL or ENXIO, and the handle goes on as
 * before.  _i: 0 a small file (mapped when first used), 1 a larger one
 * (mapped at open). */
START_TEST(test_argument_errors)
{
	const off_t size = _i ? 200 * KiB + 17 : 10000;
	const char *p = tu_path("f");
	int fd;
	mmapfile_t *f = pattern_handle(p, size, O_RDWR, &fd, O_RDONLY);
	ck_assert_int_eq(mmapfile_seek(f, 123, SEEK_SET), 123);

	ck_assert_fails(mmapfile_view(NULL, 0, 1) == NULL, EINVAL);
	ck_assert_fails(mmapfile_view(f, 0, 0) == NULL, EINVAL);
	ck_assert_fails(mmapfile_view(f, size, 0) == NULL, EINVAL);
	ck_assert_fails(mmapfile_view(f, -1, 1) == NULL, EINVAL);
	ck_assert_fails(mmapfile_view(f, INT64_MIN, 1) == NULL, EINVAL);
	/* off + len past the largest off_t; exactly to it is only past the end. */
	ck_assert_fails(mmapfile_view(f, INT64_MAX - 10, 11) == NULL, EINVAL);
	ck_assert_fails(mmapfile_view(f, 1, SIZE_MAX) == NULL, EINVAL);
	ck_assert_fails(mmapfile_view(f, 0, (size_t)INT64_MAX + 1) == NULL, EINVAL);
	ck_assert_fails(mmapfile_view(f, INT64_MAX - 10, 10) == NULL, ENXIO);
	ck_assert_fails(mmapfile_view(f, INT64_MAX, 1) == NULL, EINVAL);
	ck_handle_intact(f, fd, size, 123);

	/* Past the size: ENXIO, however little. */
	ck_assert_fails(mmapfile_view(f, size, 1) == NULL, ENXIO);
	ck_assert_fails(mmapfile_view(f, size - 1, 2) == NULL, ENXIO);
	ck_assert_fails(mmapfile_view(f, 0, (size_t)size + 1) == NULL, ENXIO);
	ck_assert_fails(mmapfile_view(f, 10 * size, 1) == NULL, ENXIO);
	ck_handle_intact(f, fd, size, 123);

	/* The last byte, and the whole file. */
	unsigned char *last = mmapfile_view(f, size - 1, 1);
	ck_assert_ptr_nonnull(last);
	ck_assert_uint_eq(*last, tu_pattern(size - 1));
	unsigned char *all = mmapfile_view(f, 0, (size_t)size);
	ck_assert_ptr_nonnull(all);
	ck_assert_ptr_eq(all + size - 1, last);
	ck_same_as_file(fd, all, 0, (size_t)size);

	/* Release: only pointers handed out, each once. */
	unsigned char stack_byte = 0;
	ck_assert_fails(mmapfile_release(NULL, all) != 0, EINVAL);
	ck_assert_fails(mmapfile_release(f, NULL) != 0, EINVAL);
	ck_assert_fails(mmapfile_release(f, all + 1) != 0, EINVAL);
	ck_assert_fails(mmapfile_release(f, last - 1) != 0, EINVAL);
	ck_assert_fails(mmapfile_release(f, &stack_byte) != 0, EINVAL);
	ck_assert_int_eq(mmapfile_release(f, all), 0);
	ck_assert_fails(mmapfile_release(f, all) != 0, EINVAL);
	ck_assert_int_eq(mmapfile_release(f, last), 0);
	ck_assert_fails(mmapfile_release(f, last) != 0, EINVAL);
	ck_handle_intact(f, fd, size, 123);

	/* A pointer of another handle of the same file is not this one's. */
	mmapfile_t *g = mmapfile_open(p, O_RDONLY, 0);
	ck_assert_ptr_nonnull(g);
	void *other = mmapfile_view(g, 0, 10);
	ck_assert_ptr_nonnull(other);
	ck_assert_fails(mmapfile_release(f, other) != 0, EINVAL);
	ck_assert_int_eq(mmapfile_release(g, other), 0);
	ck_assert_int_eq(mmapfile_close(g), 0);

	/* With nothing held, the handle cuts and writes as ever. */
	ck_assert_int_eq(mmapfile_truncate(f, 1), 0);
	ck_assert_int_eq(mmapfile_write(f, "xy", 2), 2);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), 125);
	close(fd);
}
END_TEST

/* An empty file has no byte to view, on any handle. */
START_TEST(test_empty_file)
{
	const char *p = tu_path("empty");
	tu_write_file(p, "", 0);
	int modes[] = { O_RDONLY, O_RDWR, O_WRONLY };
	for (int i = 0; i < 3; i++) {
		mmapfile_t *f = mmapfile_open(p, modes[i], 0);
		ck_assert_ptr_nonnull(f);
		ck_assert_fails(mmapfile_view(f, 0, 1) == NULL, ENXIO);
		ck_assert_fails(mmapfile_view(f, 0, 0) == NULL, EINVAL);
		ck_assert_int_eq(mmapfile_close(f), 0);
	}
	ck_assert_int_eq(tu_file_size(p), 0);
}
END_TEST

/* A range past the size that another process's growth made part of the
 * file is accepted: the view learns the growth, as a read reaching the end
 * would.  _i: 0 read-only, 1 read-write; the growth small (within the
 * mapping's last page) and large (far past the mapping). */
START_TEST(test_growth_by_another_process)
{
	const char *p = tu_path("f");
	const off_t size = 5000;
	int fd;
	mmapfile_t *f = pattern_handle(p, size, _i ? O_RDWR : O_RDONLY, &fd, O_RDWR);
	ck_assert_fails(mmapfile_view(f, size, 1000) == NULL, ENXIO);

	/* Another descriptor grows the file: the kernel's file, not this
	 * handle's doing. */
	off_t ends[] = { 8000, 3 * MiB + 5 };
	off_t at = size;
	for (int k = 0; k < 2; k++) {
		size_t n = (size_t)(ends[k] - at);
		unsigned char *b = malloc(n);
		ck_assert_ptr_nonnull(b);
		tu_fill_pattern(b, at, n);
		ck_assert_int_eq(pwrite(fd, b, n, at), (ssize_t)n);
		free(b);
		unsigned char *v = mmapfile_view(f, at, n);
		ck_assert_msg(v != NULL, "view of what another process added: %s", strerror(errno));
		ck_assert_int_eq(mmapfile_size(f), ends[k]);
		ck_same_as_file(fd, v, at, n);
		ck_assert_pattern(v, at, n);
		ck_maps_file_byte(f, v, at, _i ? "rw-s" : "r--s");
		ck_maps_file_byte(f, v + n - 1, ends[k] - 1, _i ? "rw-s" : "r--s");
		ck_assert_fails(mmapfile_view(f, ends[k], 1) == NULL, ENXIO);
		ck_assert_int_eq(mmapfile_release(f, v), 0);
		at = ends[k];
	}
	/* A view that starts before the old end and reaches into the new. */
	unsigned char *v = mmapfile_view(f, 100, (size_t)(at - 100));
	ck_assert_ptr_nonnull(v);
	ck_same_as_file(fd, v, 100, (size_t)(at - 100));
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), at);
	close(fd);
}
END_TEST

/* ------------------------------------------------------------------ */
/* What a view shows */

/* A view's bytes are the file's, at every size and range, for files mapped
 * when first used (under 64 KiB) and at open; the pointer is in a mapping
 * of that file at that offset, readable, writable when the handle is.
 * _i: the access mode (0 O_RDONLY, 1 O_RDWR, 2 O_WRONLY on a readable file). */
START_TEST(test_bytes_are_the_files)
{
	static const off_t sizes[] = { 1, 4095, 4096, 4097, 10000, 65535, 65536, 65537, 300000 + 3 };
	static const int modes[] = { O_RDONLY, O_RDWR, O_WRONLY };
	const char *perms = _i == 0 ? "r--s" : "rw-s";
	uint64_t s = 42 + (uint64_t)_i;
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		off_t size = sizes[k];
		const char *p = tu_path("f");
		int fd;
		mmapfile_t *f = pattern_handle(p, size, modes[_i], &fd, O_RDONLY);
		if (_i != 2) {
			/* A few reads first: a small file is still read with pread. */
			unsigned char b[100];
			ck_assert_int_eq(mmapfile_readat(f, b, 1, size - 1), 1);
			ck_assert_uint_eq(b[0], tu_pattern(size - 1));
		}
		unsigned char *all = mmapfile_view(f, 0, (size_t)size);
		ck_assert_msg(all != NULL, "view of a %lld-byte file: %s", (long long)size, strerror(errno));
		ck_same_as_file(fd, all, 0, (size_t)size);
		ck_maps_file_byte(f, all, 0, perms);
		ck_maps_file_byte(f, all + size - 1, size - 1, perms);
		for (int j = 0; j < 40; j++) {
			off_t off = (off_t)(tu_rand(&s) % (uint64_t)size);
			size_t len = (size_t)(tu_rand(&s) % (uint64_t)(size - off)) + 1;
			if (len > 20000)
				len = 20000;
			unsigned char *v = mmapfile_view(f, off, len);
			ck_assert_msg(v != NULL, "view [%lld, +%zu): %s", (long long)off, len, strerror(errno));
			/* Every view is a pointer into the same mapping. */
			ck_assert_ptr_eq(v, all + off);
			ck_same_as_file(fd, v, off, len);
			ck_assert_int_eq(mmapfile_release(f, v), 0);
		}
		ck_assert_int_eq(mmapfile_release(f, all), 0);
		if (_i != 2) {
			/* Reads after the view (through the mapping now) agree. */
			unsigned char *b = malloc((size_t)size);
			ck_assert_ptr_nonnull(b);
			ck_assert_int_eq(mmapfile_readat(f, b, (size_t)size, 0), size);
			ck_assert_pattern(b, 0, (size_t)size);
			free(b);
		}
		ck_assert_int_eq(mmapfile_close(f), 0);
		ck_assert_int_eq(tu_file_size(p), size);
		close(fd);
		unlink(p);
	}
}
END_TEST

/* Writes through views on a writable handle are the file's at once: pread
 * on a plain descriptor and a second mapping of the file see them, and so do
 * the handle's reads; mmapfile_sync leaves the file on disk exactly the
 * model, and they survive close.  _i: 0 a small file mapped by the view,
 * 1 a larger one. */
START_TEST(test_writes_through_views)
{
	const off_t size = _i ? 300 * KiB + 11 : 7000;
	const char *p = tu_path("f");
	tu_make_pattern_file(p, size);
	unsigned char *model = malloc((size_t)size);
	ck_assert_ptr_nonnull(model);
	tu_fill_pattern(model, 0, (size_t)size);
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	int fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	unsigned char *twin = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(twin, MAP_FAILED);

	uint64_t s = 7 + (uint64_t)_i;
	unsigned char *views[16];
	off_t offs[16];
	size_t lens[16];
	for (int j = 0; j < 16; j++) {
		offs[j] = (off_t)(tu_rand(&s) % (uint64_t)size);
		lens[j] = (size_t)(tu_rand(&s) % (uint64_t)(size - offs[j])) + 1;
		if (lens[j] > 5000)
			lens[j] = 5000;
		views[j] = mmapfile_view(f, offs[j], lens[j]);
		ck_assert_ptr_nonnull(views[j]);
		tu_fill(views[j], lens[j], 1000 + (uint64_t)j);
		tu_fill(model + offs[j], lens[j], 1000 + (uint64_t)j);
		/* At once, before any sync or release. */
		ck_same_as_file(fd, views[j], offs[j], lens[j]);
		ck_assert_mem_eq(twin + offs[j], model + offs[j], lens[j]);
	}
	ck_same_as_file(fd, model, 0, (size_t)size);
	ck_assert(memcmp(twin, model, (size_t)size) == 0);
	unsigned char *b = malloc((size_t)size);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(mmapfile_readat(f, b, (size_t)size, 0), size);
	ck_assert(memcmp(b, model, (size_t)size) == 0);

	/* Sync with the views still held: the file on disk is the model. */
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(tu_file_size(p), size);
	size_t n;
	unsigned char *disk = tu_read_file(p, &n);
	ck_assert_uint_eq(n, (size_t)size);
	ck_assert(memcmp(disk, model, n) == 0);
	free(disk);

	/* Writes through a view held across that sync, then released, then
	 * synced again. */
	tu_fill(views[0], lens[0], 77);
	tu_fill(model + offs[0], lens[0], 77);
	for (int j = 0; j < 16; j++)
		ck_assert_int_eq(mmapfile_release(f, views[j]), 0);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	disk = tu_read_file(p, &n);
	ck_assert_uint_eq(n, (size_t)size);
	ck_assert(memcmp(disk, model, n) == 0);
	free(disk);

	/* A write through a view taken after the handle grew the file, closed
	 * without release. */
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), size);
	ck_assert_int_eq(mmapfile_write(f, "tail", 4), 4);
	unsigned char *v = mmapfile_view(f, size - 2, 6);
	ck_assert_ptr_nonnull(v);
	memcpy(v, "ABCDEF", 6);
	memcpy(model + size - 2, "AB", 2);
	ck_assert_int_eq(mmapfile_close(f), 0);
	disk = tu_read_file(p, &n);
	ck_assert_uint_eq(n, (size_t)size + 4);
	ck_assert(memcmp(disk, model, (size_t)size) == 0);
	ck_assert_mem_eq(disk + size, "CDEF", 4);
	free(disk);
	munmap(twin, (size_t)size);
	close(fd);
	free(b);
	free(model);
}
END_TEST

/* A read-only handle's view is mapped readable and not writable (a write
 * would raise SIGSEGV); a read-write one's is both.  Each is the file's
 * own shared mapping, not a copy. */
START_TEST(test_protection)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 100 * KiB);
	mmapfile_t *r = mmapfile_open(p, O_RDONLY, 0);
	mmapfile_t *w = mmapfile_open(p, O_RDWR, 0);
	ck_assert(r && w);
	unsigned char *vr = mmapfile_view(r, 5000, 1000);
	unsigned char *vw = mmapfile_view(w, 5000, 1000);
	ck_assert(vr && vw);
	ck_assert_ptr_ne(vr, vw);
	ck_maps_file_byte(r, vr, 5000, "r--s");
	ck_maps_file_byte(w, vw, 5000, "rw-s");
	/* One file: a write through one handle's view is the other's. */
	vw[0] = (unsigned char)~tu_pattern(5000);
	ck_assert_uint_eq(vr[0], (unsigned char)~tu_pattern(5000));
	ck_assert_int_eq(mmapfile_release(r, vr), 0);
	ck_assert_int_eq(mmapfile_release(w, vw), 0);
	ck_assert_int_eq(mmapfile_close(r), 0);
	ck_assert_int_eq(mmapfile_close(w), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Validity across growth */

/* Views taken while the file grows a hundredfold through writes (so the
 * mapping is made afresh elsewhere, several times) stay valid: each old
 * pointer still shows the file's current bytes, including bytes written
 * through the handle after the growth; released in a shuffled order.
 * _i: 0 a small file mapped by the first view, 1 a 64 KiB file. */
START_TEST(test_views_survive_growth)
{
	const off_t start = _i ? 64 * KiB : 1000;
	const off_t target = 100 * start;
	const char *p = tu_path("f");
	int fd;
	mmapfile_t *f = pattern_handle(p, start, O_RDWR, &fd, O_RDONLY);

	enum { NV = 40 };
	unsigned char *views[NV];
	off_t offs[NV];
	size_t lens[NV];
	int nv = 0;
	uint64_t s = 5 + (uint64_t)_i;
	unsigned char *first = mmapfile_view(f, 0, (size_t)start);
	ck_assert_ptr_nonnull(first);

	const size_t chunk = (size_t)(start / 2 > 64 * KiB ? 64 * KiB : start / 2);
	unsigned char *buf = malloc(chunk);
	ck_assert_ptr_nonnull(buf);
	off_t size = start;
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), size);
	while (size < target) {
		tu_fill_pattern(buf, size, chunk);
		ck_assert_int_eq(mmapfile_write(f, buf, chunk), (ssize_t)chunk);
		size += (off_t)chunk;
		if (nv < NV && tu_rand(&s) % 3 == 0) {
			off_t off = (off_t)(tu_rand(&s) % (uint64_t)size);
			size_t len = (size_t)(tu_rand(&s) % (uint64_t)(size - off)) + 1;
			if (len > 8192)
				len = 8192;
			unsigned char *v = mmapfile_view(f, off, len);
			ck_assert_ptr_nonnull(v);
			ck_assert_pattern(v, off, len);
			views[nv] = v;
			offs[nv] = off;
			lens[nv++] = len;
		}
	}
	ck_assert_int_eq(mmapfile_size(f), size);
	/* Not a requirement, but the point of the test: the mapping moved. */
	unsigned char *now = mmapfile_view(f, 0, 1);
	ck_assert_ptr_nonnull(now);
	if (now == first)
		printf("views_survive_growth(%d): the mapping never moved\n", _i);
	ck_assert_int_eq(mmapfile_release(f, now), 0);

	/* Every old pointer still shows the file. */
	ck_assert_pattern(first, 0, (size_t)start);
	ck_same_as_file(fd, first, 0, (size_t)start);
	for (int j = 0; j < nv; j++) {
		ck_assert_pattern(views[j], offs[j], lens[j]);
		ck_same_as_file(fd, views[j], offs[j], lens[j]);
	}
	/* New bytes written through the handle after the growth, at each
	 * view's offset, read through the old pointers. */
	unsigned char *nb = malloc(8192);
	ck_assert_ptr_nonnull(nb);
	tu_fill(nb, (size_t)start < 8192 ? (size_t)start : 8192, 99);
	size_t n0 = (size_t)start < 8192 ? (size_t)start : 8192;
	ck_assert_int_eq(mmapfile_writeat(f, nb, n0, 0), (ssize_t)n0);
	ck_assert_mem_eq(first, nb, n0);
	for (int j = 0; j < nv; j++) {
		tu_fill(nb, lens[j], 200 + (uint64_t)j);
		ck_assert_int_eq(mmapfile_writeat(f, nb, lens[j], offs[j]), (ssize_t)lens[j]);
		ck_assert_mem_eq(views[j], nb, lens[j]);
		ck_same_as_file(fd, views[j], offs[j], lens[j]);
	}
	/* Written through old pointers: the handle reads it. */
	if (nv > 0) {
		views[0][0] ^= 0x5a;
		unsigned char c;
		ck_assert_int_eq(mmapfile_readat(f, &c, 1, offs[0]), 1);
		ck_assert_uint_eq(c, views[0][0]);
	}

	/* Released in a shuffled order, each exactly once. */
	for (int j = nv - 1; j > 0; j--) {
		int k = (int)(tu_rand(&s) % (uint64_t)(j + 1));
		unsigned char *tv = views[j];
		views[j] = views[k];
		views[k] = tv;
	}
	for (int j = 0; j < nv; j++)
		ck_assert_int_eq(mmapfile_release(f, views[j]), 0);
	ck_assert_int_eq(mmapfile_release(f, first), 0);
	for (int j = 0; j < nv; j++)
		ck_assert_fails(mmapfile_release(f, views[j]) != 0, EINVAL);
	ck_assert_int_eq(mmapfile_truncate(f, 1), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), 1);
	free(nb);
	free(buf);
	close(fd);
}
END_TEST

/* A reserved maximum (mmapfile_open_ex max_size): the mapping never moves
 * while the file stays within it, so a view of offset 0 taken after any
 * growth is the same pointer. */
START_TEST(test_max_size_keeps_pointers)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 3000);
	struct mmapfile_options o = { .size = sizeof o, .max_size = 8 * MiB };
	mmapfile_t *f = mmapfile_open_ex(p, O_RDWR, 0, &o);
	ck_assert_ptr_nonnull(f);
	unsigned char *v0 = mmapfile_view(f, 0, 3000);
	ck_assert_ptr_nonnull(v0);
	unsigned char *buf = malloc(256 * KiB);
	ck_assert_ptr_nonnull(buf);
	off_t size = 3000;
	while (size + 256 * KiB <= 8 * MiB) {
		tu_fill_pattern(buf, size, 256 * KiB);
		ck_assert_int_eq(mmapfile_writeat(f, buf, 256 * KiB, size), 256 * KiB);
		size += 256 * KiB;
		unsigned char *v = mmapfile_view(f, 0, (size_t)size);
		ck_assert_ptr_eq(v, v0);
		ck_assert_int_eq(mmapfile_release(f, v), 0);
	}
	unsigned char *v = mmapfile_view(f, 0, (size_t)size);
	ck_assert_ptr_eq(v, v0);
	ck_assert_pattern(v, 0, (size_t)size);
	ck_maps_file_byte(f, v + size - 1, size - 1, "rw-s");
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	ck_assert_int_eq(mmapfile_release(f, v0), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), size);
	free(buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A held view cannot be cut by its handle */

/* truncate below a held view's end is EBUSY with nothing changed; to
 * exactly its end, or growing, works; after release, anything works. */
START_TEST(test_truncate_busy)
{
	const char *p = tu_path("f"), *q = tu_path("twin");
	const off_t size = 100000;
	tu_make_pattern_file(p, size);
	tu_make_pattern_file(q, size);
	mmapfile_t *f = mmapfile_open(p, O_RDWR, 0);
	ck_assert_ptr_nonnull(f);
	int fd = open(p, O_RDONLY), tw = open(q, O_RDWR);
	ck_assert(fd >= 0 && tw >= 0);

	unsigned char *v = mmapfile_view(f, 1000, 5000); /* ends at 6000 */
	ck_assert_ptr_nonnull(v);
	off_t below[] = { 5999, 3000, 1000, 0 };
	for (size_t k = 0; k < 4; k++) {
		ck_assert_fails(mmapfile_truncate(f, below[k]) != 0, EBUSY);
		ck_assert_int_eq(mmapfile_size(f), size);
		ck_assert_int_ge(tu_file_size(p), size);
	}
	unsigned char *b = malloc((size_t)size);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(mmapfile_readat(f, b, (size_t)size, 0), size);
	ck_assert_pattern(b, 0, (size_t)size);
	ck_same_as_file(fd, b, 0, (size_t)size);

	/* To the view's end exactly, then growth, then back to its end. */
	off_t sizes[] = { 6000, 50000, 6000, 2 * MiB, 6001, 6000 };
	for (size_t k = 0; k < 6; k++) {
		ck_assert_int_eq(mmapfile_truncate(f, sizes[k]), 0);
		ck_assert_int_eq(ftruncate(tw, sizes[k]), 0);
		ck_assert_int_eq(mmapfile_size(f), sizes[k]);
		ck_assert_fails(mmapfile_truncate(f, 5999) != 0, EBUSY);
		ck_assert_pattern(v, 1000, 5000);
	}
	/* The handle's bytes are the twin's: grown parts read as zeros. */
	ck_assert_int_eq(mmapfile_truncate(f, 70000), 0);
	ck_assert_int_eq(ftruncate(tw, 70000), 0);
	ck_assert_int_eq(mmapfile_readat(f, b, 70000, 0), 70000);
	ck_same_as_file(tw, b, 0, 70000);
	/* Sync with a view held trims the reserve, nothing more. */
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_assert_int_eq(tu_file_size(p), 70000);

	/* A second view further out: the larger end counts. */
	unsigned char *v2 = mmapfile_view(f, 20000, 100); /* ends at 20100 */
	ck_assert_ptr_nonnull(v2);
	ck_assert_fails(mmapfile_truncate(f, 20099) != 0, EBUSY);
	ck_assert_int_eq(mmapfile_release(f, v2), 0);
	ck_assert_int_eq(mmapfile_truncate(f, 20099), 0);
	ck_assert_fails(mmapfile_truncate(f, 5999) != 0, EBUSY);

	/* Released: cutting below works, down to 0. */
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	ck_assert_int_eq(mmapfile_truncate(f, 5999), 0);
	ck_assert_int_eq(mmapfile_truncate(f, 0), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), 0);
	free(b);
	close(fd);
	close(tw);
}
END_TEST

/* Many views at distinct places, released in a random order: after each
 * release, cutting just below the largest end still held is EBUSY, and
 * cutting to it works, so the file shrinks with the views; the views still
 * held keep showing the file. */
START_TEST(test_release_any_order)
{
	const char *p = tu_path("f");
	const off_t size = 256 * KiB;
	mmapfile_t *f = pattern_handle(p, size, O_RDWR, NULL, 0);
	enum { NV = 64 };
	unsigned char *views[NV];
	off_t offs[NV], ends[NV];
	bool held[NV];
	uint64_t s = 31;
	for (int j = 0; j < NV; j++) {
		/* Distinct offsets: a pointer names one view. */
		offs[j] = (off_t)j * 4000 + (off_t)(tu_rand(&s) % 3000);
		size_t len = (size_t)(tu_rand(&s) % 30000) + 1;
		if ((off_t)len > size - offs[j])
			len = (size_t)(size - offs[j]);
		ends[j] = offs[j] + (off_t)len;
		views[j] = mmapfile_view(f, offs[j], len);
		ck_assert_ptr_nonnull(views[j]);
		held[j] = true;
	}
	off_t cur = size;
	for (int left = NV; left > 0; left--) {
		int k = (int)(tu_rand(&s) % (uint64_t)left), j = -1;
		while (k >= 0)
			if (held[++j])
				k--;
		ck_assert_int_eq(mmapfile_release(f, views[j]), 0);
		held[j] = false;
		off_t max_end = 0;
		for (int i = 0; i < NV; i++)
			if (held[i] && ends[i] > max_end)
				max_end = ends[i];
		if (max_end > 0)
			ck_assert_fails(mmapfile_truncate(f, max_end - 1) != 0, EBUSY);
		ck_assert_int_eq(mmapfile_size(f), cur);
		ck_assert_int_eq(mmapfile_truncate(f, max_end), 0);
		cur = max_end;
		for (int i = 0; i < NV && left % 8 == 0; i++)
			if (held[i])
				ck_assert_pattern(views[i], offs[i], (size_t)(ends[i] - offs[i]));
	}
	ck_assert_int_eq(cur, 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), 0);
}
END_TEST

/* Views of the same offset share a pointer: each release takes back one,
 * and while any is held the handle may not cut below the end of any view
 * the caller may still hold.  Whichever of the two the caller means by the
 * pointer, after one release the other may be the longer one. */
START_TEST(test_same_pointer_views)
{
	const char *p = tu_path("f");
	mmapfile_t *f = pattern_handle(p, 20000, O_RDWR, NULL, 0);
	/* _i: 0 the short view first, 1 the long view first. */
	size_t first_len = _i ? 10000 : 100, second_len = _i ? 100 : 10000;
	unsigned char *a = mmapfile_view(f, 0, first_len);
	unsigned char *b = mmapfile_view(f, 0, second_len);
	ck_assert(a && b);
	ck_assert_ptr_eq(a, b);
	ck_assert_int_eq(mmapfile_release(f, a), 0);
	/* One view of 100 or 10000 bytes is still held: the caller may be
	 * holding the long one, and a cut below its end would leave its
	 * pointer over pages that fault. */
	ck_assert_fails(mmapfile_truncate(f, 5000) != 0, EBUSY);
	ck_assert_int_eq(mmapfile_size(f), 20000);
	ck_assert_pattern(b, 0, 10000);
	ck_assert_int_eq(mmapfile_release(f, b), 0);
	ck_assert_fails(mmapfile_release(f, b) != 0, EINVAL);
	ck_assert_int_eq(mmapfile_truncate(f, 5000), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Private handles */

struct filestamp {
	off_t size;
	struct timespec mtime;
	unsigned char *bytes;
};

static struct filestamp stamp(const char *p)
{
	struct filestamp t;
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	t.size = st.st_size;
	t.mtime = st.st_mtim;
	size_t n;
	t.bytes = tu_read_file(p, &n);
	ck_assert_uint_eq(n, (size_t)t.size);
	return t;
}

static void ck_unchanged(const char *p, struct filestamp *t)
{
	struct filestamp now = stamp(p);
	ck_assert_int_eq(now.size, t->size);
	ck_assert(now.mtime.tv_sec == t->mtime.tv_sec && now.mtime.tv_nsec == t->mtime.tv_nsec);
	ck_assert(memcmp(now.bytes, t->bytes, (size_t)t->size) == 0);
	free(now.bytes);
}

/* A pattern file of size bytes at p, its stamp in *before (taken before
 * the open), and a private handle on it (open flags, max_size). */
static mmapfile_t *stamped_private(const char *p, off_t size, int flags, off_t max_size,
                                   struct filestamp *before)
{
	tu_make_pattern_file(p, size);
	*before = stamp(p);
	struct mmapfile_options o = { .size = sizeof o, .flags = MMAPFILE_OPT_PRIVATE, .max_size = max_size };
	mmapfile_t *f = mmapfile_open_ex(p, flags, 0, &o);
	ck_assert_msg(f != NULL, "private open of %s: %s", p, strerror(errno));
	return f;
}

/* A private handle's views are its own copy: writes through them change
 * what the handle reads and never the file (bytes, size, mtime), not even
 * after sync and close; a cut below a view is EBUSY.  Growth by a few bytes
 * (well within the address space the handle reserved) keeps the views. */
START_TEST(test_private_views)
{
	const char *p = tu_path("f");
	const off_t size = 50000;
	struct filestamp before;
	mmapfile_t *f = stamped_private(p, size, O_RDWR, 0, &before);
	int fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);

	unsigned char *v = mmapfile_view(f, 1000, 3000);
	ck_assert_ptr_nonnull(v);
	ck_assert_pattern(v, 1000, 3000);
	struct tu_vma r;
	ck_assert(tu_find_vma(v, &r));
	ck_assert_str_eq(r.perms, "rw-p");
	memset(v, 0xee, 3000);
	unsigned char b[3000];
	ck_assert_int_eq(mmapfile_readat(f, b, 3000, 1000), 3000);
	for (int i = 0; i < 3000; i++)
		ck_assert_uint_eq(b[i], 0xee);
	/* The file: untouched. */
	ck_assert_int_eq(pread(fd, b, 3000, 1000), 3000);
	ck_assert_pattern(b, 1000, 3000);
	ck_unchanged(p, &before);

	/* A cut below the view: EBUSY, nothing changed; to its end: fine. */
	ck_assert_fails(mmapfile_truncate(f, 3999) != 0, EBUSY);
	ck_assert_int_eq(mmapfile_size(f), size);
	ck_assert_int_eq(mmapfile_truncate(f, 4000), 0);
	ck_assert_int_eq(mmapfile_truncate(f, size), 0);
	ck_assert_int_eq(mmapfile_readat(f, b, 1000, 4000), 1000);
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(b[i], 0); /* what the cut dropped reads as zeros */
	ck_assert_uint_eq(v[2999], 0xee);
	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_unchanged(p, &before);

	/* Growth by a few bytes: the view stays, and a view of the new bytes
	 * shows the handle's. */
	ck_assert_int_eq(mmapfile_writeat(f, "grown", 5, size + 100), 5);
	unsigned char *g = mmapfile_view(f, size, 105);
	ck_assert_ptr_nonnull(g);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq(g[i], 0);
	ck_assert_mem_eq(g + 100, "grown", 5);
	ck_assert_uint_eq(v[0], 0xee);
	ck_assert_int_eq(mmapfile_release(f, g), 0);
	ck_assert_int_eq(mmapfile_size(f), size + 105);

	ck_assert_int_eq(mmapfile_sync(f), 0);
	ck_unchanged(p, &before);
	ck_assert_int_eq(mmapfile_close(f), 0); /* with the view held */
	ck_unchanged(p, &before);
	free(before.bytes);
	close(fd);
}
END_TEST

/* Growth far past a private handle's address space would move its bytes
 * from under a held view: EBUSY, with the handle as it was (its size, its
 * bytes; whatever it accepts afterwards is its own zeroed memory, never
 * memory it does not own).  After release the growth works and carries the
 * handle's bytes along. */
START_TEST(test_private_far_growth_busy)
{
	const char *p = tu_path("f");
	const off_t size = 50000;
	struct filestamp before;
	mmapfile_t *f = stamped_private(p, size, O_RDWR, 0, &before);
	unsigned char *v = mmapfile_view(f, 1000, 3000);
	ck_assert_ptr_nonnull(v);
	memset(v, 0xee, 3000);

	ck_assert_fails(mmapfile_writeat(f, "far", 3, 4 * MiB) < 0, EBUSY);
	ck_assert_int_eq(mmapfile_size(f), size);
	struct tu_vma r;
	int rc = mmapfile_truncate(f, 2 * MiB);
	if (rc == 0) {
		/* Accepted: then the handle must really have zeros past its old
		 * end, in memory of its own. */
		ck_assert_int_eq(mmapfile_size(f), 2 * MiB);
		unsigned char z[4096];
		ck_assert_int_eq(mmapfile_readat(f, z, sizeof z, 3 * MiB / 2), (ssize_t)sizeof z);
		for (size_t i = 0; i < sizeof z; i++)
			ck_assert_msg(z[i] == 0, "byte %zu past the old end reads %u", i, z[i]);
		unsigned char *far = mmapfile_view(f, 3 * MiB / 2, 4096);
		ck_assert_ptr_nonnull(far);
		ck_assert(tu_find_vma(far, &r));
		ck_assert_msg(strcmp(r.perms, "rw-p") == 0 && r.inode == 0,
		              "the handle's byte %lld is in a mapping %s of inode %lu", (long long)(3 * MiB / 2),
		              r.perms, r.inode);
		ck_assert_int_eq(mmapfile_release(f, far), 0);
		ck_assert_int_eq(mmapfile_truncate(f, size), 0);
	} else {
		ck_assert_int_eq(errno, EBUSY);
	}
	ck_assert_int_eq(mmapfile_size(f), size);
	ck_assert_uint_eq(v[0], 0xee);
	unsigned char b[3000];
	ck_assert_int_eq(mmapfile_readat(f, b, 100, size - 100), 100);
	ck_assert_pattern(b, size - 100, 100);

	/* Released: the growth works, and moves the handle's bytes with it. */
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	ck_assert_int_eq(mmapfile_writeat(f, "far", 3, 4 * MiB), 3);
	ck_assert_int_eq(mmapfile_readat(f, b, 3000, 1000), 3000);
	for (int i = 0; i < 3000; i++)
		ck_assert_uint_eq(b[i], 0xee);
	v = mmapfile_view(f, 4 * MiB - 1, 4);
	ck_assert_ptr_nonnull(v);
	ck_assert_mem_eq(v, "\0far", 4);
	ck_assert_int_eq(mmapfile_close(f), 0); /* with the view held */
	ck_unchanged(p, &before);
	free(before.bytes);
}
END_TEST

/* With a reserved maximum, a private handle grows under its views: they
 * keep showing the handle's bytes, the file never changes. */
START_TEST(test_private_views_max_size)
{
	const char *p = tu_path("f");
	struct filestamp before;
	mmapfile_t *f = stamped_private(p, 20000, O_RDWR, 4 * MiB, &before);
	unsigned char *v = mmapfile_view(f, 0, 20000);
	ck_assert_ptr_nonnull(v);
	unsigned char *buf = malloc(64 * KiB);
	ck_assert_ptr_nonnull(buf);
	off_t size = 20000;
	ck_assert_int_eq(mmapfile_seek(f, 0, SEEK_END), size);
	while (size + 64 * KiB <= 4 * MiB) {
		tu_fill_pattern(buf, size, 64 * KiB);
		ck_assert_int_eq(mmapfile_write(f, buf, 64 * KiB), 64 * KiB);
		size += 64 * KiB;
	}
	ck_assert_int_eq(mmapfile_size(f), size);
	unsigned char *w = mmapfile_view(f, 0, (size_t)size);
	ck_assert_ptr_eq(w, v);
	ck_assert_pattern(w, 0, (size_t)size);
	memcpy(v, "private", 7);
	unsigned char b[7];
	ck_assert_int_eq(mmapfile_readat(f, b, 7, 0), 7);
	ck_assert_mem_eq(b, "private", 7);
	ck_assert_int_eq(mmapfile_release(f, w), 0);
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_unchanged(p, &before);
	free(before.bytes);
	free(buf);
}
END_TEST

/* A private read-only handle: its views are readable copies on write
 * (never writable). */
START_TEST(test_private_readonly)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 9000);
	struct mmapfile_options o = { .size = sizeof o, .flags = MMAPFILE_OPT_PRIVATE };
	mmapfile_t *f = mmapfile_open_ex(p, O_RDONLY, 0, &o);
	ck_assert_ptr_nonnull(f);
	unsigned char *v = mmapfile_view(f, 10, 8990);
	ck_assert_ptr_nonnull(v);
	ck_assert_pattern(v, 10, 8990);
	struct tu_vma r;
	ck_assert(tu_find_vma(v, &r));
	ck_assert_str_eq(r.perms, "r--p");
	ck_assert_fails(mmapfile_truncate(f, 5) != 0, EINVAL);
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Other handles */

/* A memfd handle's views are its memory: what they write, the descriptor
 * shows, to pread and to another mapping of it. */
START_TEST(test_memfd_views)
{
	mmapfile_t *f = mmapfile_memfd("view-test", 10000, 0, NULL);
	ck_assert_ptr_nonnull(f);
	int fd = mmapfile_fd(f);
	unsigned char *v = mmapfile_view(f, 0, 10000);
	ck_assert_ptr_nonnull(v);
	for (int i = 0; i < 10000; i++)
		ck_assert_uint_eq(v[i], 0);
	tu_fill(v, 10000, 3);
	ck_same_as_file(fd, v, 0, 10000);
	unsigned char *m = mmap(NULL, 10000, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	ck_assert(memcmp(m, v, 10000) == 0);
	ck_maps_file_byte(f, v + 9999, 9999, "rw-s");
	ck_assert_fails(mmapfile_view(f, 10000, 1) == NULL, ENXIO);
	ck_assert_fails(mmapfile_truncate(f, 9999) != 0, EBUSY);
	/* Growth keeps the view. */
	ck_assert_int_eq(mmapfile_truncate(f, 5 * MiB), 0);
	ck_assert(memcmp(m, v, 10000) == 0);
	munmap(m, 10000);
	ck_assert_int_eq(mmapfile_release(f, v), 0);
	ck_assert_int_eq(mmapfile_close(f), 0);
}
END_TEST

/* A write-only handle on a file its user may not read has no mapping:
 * views are EACCES (arguments are still checked first). */
static void child_mapless(void *arg)
{
	char p[4096];
	mmapfile_t *f = tu_child_open_write_only(arg, p, sizeof p);
	errno = 0;
	TU_CCHECK(mmapfile_view(f, 0, 5) == NULL && errno == EACCES, "view: %s", strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_view(f, 0, 0) == NULL && errno == EINVAL, "view of 0 bytes: %s",
	          strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_view(f, -1, 5) == NULL && errno == EINVAL, "view at -1: %s", strerror(errno));
	errno = 0;
	TU_CCHECK(mmapfile_release(f, p) == -1 && errno == EINVAL, "release: %s", strerror(errno));
	/* The handle writes on, and cuts freely: nothing is held. */
	TU_CCHECK(mmapfile_write(f, "abc", 3) == 3, "write: %s", strerror(errno));
	TU_CCHECK(mmapfile_truncate(f, 2) == 0, "truncate: %s", strerror(errno));
	TU_CCHECK(mmapfile_close(f) == 0, "close: %s", strerror(errno));
	struct stat st;
	TU_CCHECK(stat(p, &st) == 0 && st.st_size == 2, "size after close: %lld",
	          (long long)st.st_size);
}

START_TEST(test_mapless_handle)
{
	const char *d = tu_public_dir();
	tu_run_unprivileged("write-only handle", d, F_OK, child_mapless, (void *)d);
}
END_TEST

/* ------------------------------------------------------------------ */
/* What the library cannot guard: another process cutting the file */

static void on_sigbus(int sig)
{
	_exit(sig == SIGBUS ? 42 : 43);
}

/* Another process cuts the file under a view: the handle's own reads stay
 * safe (they answer as read(2) on the shorter file), but a touch of the
 * view's cut pages, in the caller's code, raises SIGBUS there, which goes to
 * the program's handler. */
START_TEST(test_cut_by_another_process_raises_sigbus)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 64 * KiB);
	pid_t pid = tu_fork();
	if (pid == 0) {
		mmapfile_t *f = mmapfile_open(p, O_RDONLY, 0);
		if (!f)
			_exit(20);
		volatile unsigned char *v = mmapfile_view(f, 0, 64 * KiB);
		if (!v || v[40000] != tu_pattern(40000))
			_exit(21);
		if (truncate(p, 8 * KiB) != 0) /* as another process would */
			_exit(22);
		unsigned char b[100];
		if (mmapfile_readat(f, b, sizeof b, 40000) != 0)
			_exit(23);
		if (mmapfile_readat(f, b, sizeof b, 8 * KiB - 50) != 50)
			_exit(24);
		if (v[100] != tu_pattern(100)) /* the part still in the file is fine */
			_exit(25);
		/* The program's own handler, installed after the library's
		 * first open, gets every SIGBUS from then on. */
		signal(SIGBUS, on_sigbus);
		(void)v[40000];
		_exit(26);
	}
	int st = tu_wait(pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 42,
	              "child status %#x (exit 42: SIGBUS reached the program's handler)", st);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Threads */

struct shared {
	mmapfile_t *f;
	_Atomic bool done;
	_Atomic unsigned long views, busy, seed;
};

/* Appends the pattern at the end while readers view it, and tries now and
 * then to cut the last 40 KiB: EBUSY while a reader holds a view there. */
static void *writer(void *arg)
{
	struct shared *s = arg;
	enum { MAXW = 24 * 1024 };
	unsigned char *buf = malloc(MAXW);
	ck_assert_ptr_nonnull(buf);
	uint64_t rng = 17;
	off_t size = mmapfile_size(s->f);
	/* MMAPFILE_STRESS_MS (as check_threads takes it; 2000 by default)
	 * scales the run down for slow runs such as valgrind's. */
	const char *env = getenv("MMAPFILE_STRESS_MS");
	long ms = env && *env ? strtol(env, NULL, 10) : 2000;
	int rounds = ms >= 2000 ? 300 : ms <= 200 ? 30 : (int)(300 * ms / 2000);
	for (int i = 0; i < rounds; i++) {
		size_t n = (size_t)(tu_rand(&rng) % MAXW) + 1;
		tu_fill_pattern(buf, size, n);
		ck_assert_int_eq(mmapfile_writeat(s->f, buf, n, size), (ssize_t)n);
		size += (off_t)n;
		if (i % 8 == 7) {
			errno = 0;
			int rc = mmapfile_truncate(s->f, size - 40 * KiB);
			ck_assert_msg(rc == 0 || errno == EBUSY, "truncate: %s", strerror(errno));
			if (rc == 0)
				size -= 40 * KiB;
			else
				s->busy++;
		}
		ck_assert_int_eq(mmapfile_size(s->f), size);
	}
	free(buf);
	s->done = true;
	return NULL;
}

/* Takes views of what the file holds, keeps up to eight, checks them
 * again now and then, releases them in a random order. */
static void *viewer(void *arg)
{
	struct shared *s = arg;
	enum { KEEP = 8 };
	unsigned char *held[KEEP];
	off_t offs[KEEP];
	size_t lens[KEEP];
	int nh = 0;
	uint64_t rng = 1000 + s->seed++;
	unsigned long taken = 0;
	while (!s->done || taken < 50) {
		off_t size = mmapfile_size(s->f);
		off_t off = (off_t)(tu_rand(&rng) % (uint64_t)size);
		size_t len = (size_t)(tu_rand(&rng) % 8192) + 1;
		if ((off_t)len > size - off)
			len = (size_t)(size - off);
		errno = 0;
		unsigned char *v = mmapfile_view(s->f, off, len);
		if (!v) {
			/* The writer cut the file between the size and the view. */
			ck_assert_msg(errno == ENXIO, "view: %s", strerror(errno));
			continue;
		}
		taken++;
		ck_assert_pattern(v, off, len);
		if (nh == KEEP) {
			int k = (int)(tu_rand(&rng) % KEEP);
			ck_assert_pattern(held[k], offs[k], lens[k]);
			ck_assert_int_eq(mmapfile_release(s->f, held[k]), 0);
			held[k] = held[--nh];
			offs[k] = offs[nh];
			lens[k] = lens[nh];
		}
		held[nh] = v;
		offs[nh] = off;
		lens[nh++] = len;
		if (taken % 16 == 0)
			for (int k = 0; k < nh; k++)
				ck_assert_pattern(held[k], offs[k], lens[k]);
		/* Under valgrind one thread runs at a time: without a turn given
		 * up now and then, the viewers starve the writer. */
		if (taken % 4 == 0)
			sched_yield();
	}
	while (nh > 0) {
		int k = (int)(tu_rand(&rng) % (uint64_t)nh);
		ck_assert_pattern(held[k], offs[k], lens[k]);
		ck_assert_int_eq(mmapfile_release(s->f, held[k]), 0);
		held[k] = held[--nh];
		offs[k] = offs[nh];
		lens[k] = lens[nh];
	}
	s->views += taken;
	return NULL;
}

/* Several threads take, read and release views while another grows the
 * file (moving the mapping) and tries to cut it: every view shows the
 * file's bytes for as long as it is held, and at the end the file is the
 * pattern to the size the writer knows. */
START_TEST(test_threads)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 64 * KiB);
	struct shared s = { .f = mmapfile_open(p, O_RDWR, 0) };
	ck_assert_ptr_nonnull(s.f);
	enum { NR = 3 };
	pthread_t w, r[NR];
	for (int i = 0; i < NR; i++)
		ck_assert_int_eq(pthread_create(&r[i], NULL, viewer, &s), 0);
	ck_assert_int_eq(pthread_create(&w, NULL, writer, &s), 0);
	ck_assert_int_eq(pthread_join(w, NULL), 0);
	for (int i = 0; i < NR; i++)
		ck_assert_int_eq(pthread_join(r[i], NULL), 0);
	off_t size = mmapfile_size(s.f);
	ck_assert_int_eq(mmapfile_truncate(s.f, 0), 0); /* nothing is held */
	ck_assert_int_eq(mmapfile_truncate(s.f, size), 0);
	ck_assert_int_eq(mmapfile_close(s.f), 0);
	ck_assert_int_eq(tu_file_size(p), size);
	printf("threads: %lu views while the file grew to %lld bytes (%lu cuts refused)\n",
	       (unsigned long)s.views, (long long)size, (unsigned long)s.busy);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Close */

/* Close with views still held frees them (valgrind and ASan see any leak)
 * and trims the file as ever; shared, private and memfd handles. */
START_TEST(test_close_with_views_held)
{
	const char *p = tu_path("f");
	tu_make_pattern_file(p, 100 * KiB);
	struct mmapfile_options o = { .size = sizeof o, .flags = MMAPFILE_OPT_PRIVATE };
	mmapfile_t *f = _i == 0 ? mmapfile_open(p, O_RDWR, 0)
	                : _i == 1 ? mmapfile_open_ex(p, O_RDWR, 0, &o)
	                          : mmapfile_memfd(NULL, 100 * KiB, 0, NULL);
	ck_assert_ptr_nonnull(f);
	for (int j = 0; j < 30; j++)
		ck_assert_ptr_nonnull(mmapfile_view(f, (off_t)(j % 10) * 1000, 1000 + (size_t)j));
	/* Growth while they are held (a write at the end), then close. */
	ck_assert_int_eq(mmapfile_writeat(f, "end", 3, 100 * KiB), 3);
	ck_assert_int_eq(mmapfile_close(f), 0);
	ck_assert_int_eq(tu_file_size(p), _i == 0 ? 100 * KiB + 3 : 100 * KiB);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("view");
	TCase *tc = tu_tcase("arguments", 30);
	tcase_add_loop_test(tc, test_argument_errors, 0, 2);
	tcase_add_test(tc, test_empty_file);
	tcase_add_loop_test(tc, test_growth_by_another_process, 0, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("bytes", 60);
	tcase_add_loop_test(tc, test_bytes_are_the_files, 0, 3);
	tcase_add_loop_test(tc, test_writes_through_views, 0, 2);
	tcase_add_test(tc, test_protection);
	suite_add_tcase(s, tc);
	tc = tu_tcase("growth", 60);
	tcase_add_loop_test(tc, test_views_survive_growth, 0, 2);
	tcase_add_test(tc, test_max_size_keeps_pointers);
	suite_add_tcase(s, tc);
	tc = tu_tcase("busy", 30);
	tcase_add_test(tc, test_truncate_busy);
	tcase_add_test(tc, test_release_any_order);
	tcase_add_loop_test(tc, test_same_pointer_views, 0, 2);
	suite_add_tcase(s, tc);
	tc = tu_tcase("private", 30);
	tcase_add_test(tc, test_private_views);
	tcase_add_test(tc, test_private_far_growth_busy);
	tcase_add_test(tc, test_private_views_max_size);
	tcase_add_test(tc, test_private_readonly);
	suite_add_tcase(s, tc);
	tc = tu_tcase("other", 30);
	tcase_add_test(tc, test_memfd_views);
	tcase_add_test(tc, test_mapless_handle);
	tcase_add_test(tc, test_cut_by_another_process_raises_sigbus);
	suite_add_tcase(s, tc);
	tc = tu_tcase("threads", 60);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	tc = tu_tcase("close", 30);
	tcase_add_loop_test(tc, test_close_with_views_held, 0, 3);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
