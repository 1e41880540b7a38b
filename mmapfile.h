/* mmapfile.h - a memory-mapped file with the interface of a file descriptor.
 *
 * An mmapfile_t keeps a cursor over a shared mapping of a regular file and
 * offers read/write/readat/writeat/seek/truncate with the semantics of
 * read(2)/write(2)/pread(2)/pwrite(2)/lseek(2)/ftruncate(2) on a descriptor
 * opened with the same flags.  Every function returns -1 (NULL for the
 * constructors) and sets errno on failure.  See mmapfile(3).
 */
#ifndef MMAPFILE_H
#define MMAPFILE_H

/* off_t is 64-bit on every build.  This only takes effect when the header is
 * included before any system header; the static assertion below catches the
 * other order (the pkg-config Cflags define it too). */
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
static_assert(sizeof(off_t) == 8, "libmmapfile needs a 64-bit off_t: define _FILE_OFFSET_BITS=64");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(off_t) == 8, "libmmapfile needs a 64-bit off_t: define _FILE_OFFSET_BITS=64");
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define MMAPFILE_API __attribute__((visibility("default")))
#else
#define MMAPFILE_API
#endif

#define MMAPFILE_VERSION_MAJOR 0
#define MMAPFILE_VERSION_MINOR 2
#define MMAPFILE_VERSION_PATCH 0

typedef struct mmapfile mmapfile_t; /* opaque */

/* Open path with open(2) flags: the access mode, O_CREAT, O_EXCL, O_TRUNC,
 * O_APPEND, O_CLOEXEC, O_NOFOLLOW, O_NOATIME, O_SYNC, O_DSYNC.  Anything else
 * is EINVAL.  The descriptor is always close-on-exec.  A directory is
 * EISDIR; any other file that is not regular is ENODEV (never blocks). */
MMAPFILE_API mmapfile_t *mmapfile_open(const char *path, int flags, mode_t mode);

/* Open read-write with O_CREAT | O_TRUNC added to flags, then set the size. */
MMAPFILE_API mmapfile_t *mmapfile_create(const char *path, off_t size, int flags, mode_t mode);

/* Trim any reserve, unmap and close.  The handle is freed even on error. */
MMAPFILE_API int mmapfile_close(mmapfile_t *f);

/* read(2)/write(2) at the cursor; write at the end for O_APPEND. */
MMAPFILE_API ssize_t mmapfile_read(mmapfile_t *f, void *buf, size_t n);
MMAPFILE_API ssize_t mmapfile_write(mmapfile_t *f, const void *buf, size_t n);

/* pread(2)/pwrite(2): the cursor does not move.  writeat on an O_APPEND
 * handle is EINVAL. */
MMAPFILE_API ssize_t mmapfile_readat(mmapfile_t *f, void *buf, size_t n, off_t off);
MMAPFILE_API ssize_t mmapfile_writeat(mmapfile_t *f, const void *buf, size_t n, off_t off);

/* lseek(2) with SEEK_SET, SEEK_CUR or SEEK_END. */
MMAPFILE_API off_t mmapfile_seek(mmapfile_t *f, off_t off, int whence);

/* ftruncate(2): set the size; the cursor stays where it was. */
MMAPFILE_API int mmapfile_truncate(mmapfile_t *f, off_t size);

/* Return once every byte written through the handle and the size are on
 * stable storage (msync(2) + fdatasync(2)); a writeback error is EIO. */
MMAPFILE_API int mmapfile_sync(mmapfile_t *f);

/* The file's size as this handle knows it. */
MMAPFILE_API off_t mmapfile_size(mmapfile_t *f);

/* The path the handle was opened with, and its descriptor. */
MMAPFILE_API const char *mmapfile_name(const mmapfile_t *f);
MMAPFILE_API int mmapfile_fd(const mmapfile_t *f);

/* The madvise module: the kernel's values, defined even where libc lacks them. */
#define MMAPFILE_MADV_NORMAL          0
#define MMAPFILE_MADV_RANDOM          1
#define MMAPFILE_MADV_SEQUENTIAL      2
#define MMAPFILE_MADV_WILLNEED        3
#define MMAPFILE_MADV_DONTNEED        4
#define MMAPFILE_MADV_FREE            8
#define MMAPFILE_MADV_REMOVE          9
#define MMAPFILE_MADV_DONTFORK        10
#define MMAPFILE_MADV_DOFORK          11
#define MMAPFILE_MADV_MERGEABLE       12
#define MMAPFILE_MADV_UNMERGEABLE     13
#define MMAPFILE_MADV_HUGEPAGE        14
#define MMAPFILE_MADV_NOHUGEPAGE      15
#define MMAPFILE_MADV_DONTDUMP        16
#define MMAPFILE_MADV_DODUMP          17
#define MMAPFILE_MADV_WIPEONFORK      18
#define MMAPFILE_MADV_KEEPONFORK      19
#define MMAPFILE_MADV_COLD            20
#define MMAPFILE_MADV_PAGEOUT         21
#define MMAPFILE_MADV_POPULATE_READ   22
#define MMAPFILE_MADV_POPULATE_WRITE  23
#define MMAPFILE_MADV_DONTNEED_LOCKED 24
#define MMAPFILE_MADV_COLLAPSE        25
#define MMAPFILE_MADV_HWPOISON        100
#define MMAPFILE_MADV_SOFT_OFFLINE    101
#define MMAPFILE_MADV_GUARD_INSTALL   102
#define MMAPFILE_MADV_GUARD_REMOVE    103

/* Advise the kernel about bytes [off, off + len) of the file (len == 0: to
 * the end), widened to whole pages.  Advice for the whole file (off == 0,
 * len == 0) stays in force after the mapping grows or moves. */
MMAPFILE_API int mmapfile_madvise(mmapfile_t *f, off_t off, size_t len, int advice);

/* "MADV_WILLNEED" for MMAPFILE_MADV_WILLNEED; NULL for an unknown value. */
MMAPFILE_API const char *mmapfile_madvise_name(int advice);

/* "willneed", "MADV_WILLNEED" (any case, '-' for '_') -> value; -1 if unknown. */
MMAPFILE_API int mmapfile_madvise_parse(const char *s);

/* Hand bytes [off, off + len) of the file (len == 0: to its end) to fn in
 * successive chunks of at most chunk bytes (0: 64 KiB), each a copy, with
 * its offset.  Stops at the end of the file, on a read error (-1, errno),
 * or when fn returns non-zero, which mmapfile_foreach then returns.  The
 * cursor does not move. */
typedef int (*mmapfile_chunk_fn)(const void *chunk, size_t n, off_t off, void *arg);
MMAPFILE_API int mmapfile_foreach(mmapfile_t *f, off_t off, size_t len, size_t chunk,
                                  mmapfile_chunk_fn fn, void *arg);

/* Page-cache residency and locking in RAM of bytes [off, off + len) of the
 * file (len == 0: to the end), widened to whole pages and limited to the
 * file (unlock: to what the handle has mapped, so that pages locked before
 * the file shrank are let go too).  mmapfile_resident returns how many of
 * those bytes are resident (mincore(2), counted as vmtouch does: whole
 * pages, the last one only to the file's end). */
MMAPFILE_API off_t mmapfile_resident(mmapfile_t *f, off_t off, size_t len);
MMAPFILE_API int mmapfile_lock(mmapfile_t *f, off_t off, size_t len);
MMAPFILE_API int mmapfile_unlock(mmapfile_t *f, off_t off, size_t len);

/* A stdio stream over the handle (fopencookie(3)): reads, writes and seeks
 * of the stream are the handle's cursor calls.  mode as fopen's ("r", "w",
 * "r+", "a", ...), limited to what the handle allows.  fclose(3) of the
 * stream does not close the handle. */
MMAPFILE_API FILE *mmapfile_fopen(mmapfile_t *f, const char *mode);

/* Options for mmapfile_open_ex.  size is sizeof(struct mmapfile_options)
 * as the caller was compiled: a caller built against an older, shorter
 * struct still works, and bytes past what this library knows must be zero
 * (E2BIG otherwise), as openat2(2) does.  A zeroed struct asks for nothing
 * beyond mmapfile_open.  See mmapfile_open_ex(3). */
struct mmapfile_options {
	uint64_t size;         /* sizeof(struct mmapfile_options); fixed-width fields give
	                        * every ABI the same layout */
	unsigned int flags;    /* MMAPFILE_OPT_* */
	int advice;            /* access pattern kept across remaps: MMAPFILE_MADV_NORMAL,
	                        * _RANDOM or _SEQUENTIAL */
	off_t prefetch;        /* start reading the first prefetch bytes in (MADV_WILLNEED) */
	off_t max_size;        /* address space reserved at open: the mapping never moves
	                        * while the file stays within max_size bytes (0: none) */
};
#define MMAPFILE_OPTIONS_SIZE_VER0 32 /* the first version's size */
#define MMAPFILE_OPTIONS_SIZE_MAX 4096 /* larger: E2BIG, unread */

#define MMAPFILE_OPT_PRIVATE  0x1u /* copy-on-write: writes never reach the file */
#define MMAPFILE_OPT_POPULATE 0x2u /* fault the pages in at open and after growth */
#define MMAPFILE_OPT_LOCK     0x4u /* keep the file locked in RAM, also after growth */
#define MMAPFILE_OPT_HUGEPAGE 0x8u /* transparent huge pages (MADV_HUGEPAGE), kept */
#define MMAPFILE_OPT_NOHUGEPAGE 0x10u /* none of the default huge pages a mapping of a
                                       * PMD (2 MiB) or more gets */

MMAPFILE_API mmapfile_t *mmapfile_open_ex(const char *path, int flags, mode_t mode,
                                          const struct mmapfile_options *opts);

/* A handle over memory rather than a named file: a memfd (memfd_create(2)),
 * read-write, of size bytes, that grows like a file and whose descriptor
 * (mmapfile_fd) another process can map.  name is for /proc only (NULL:
 * "mmapfile").  flags: MMAPFILE_MEMFD_*; opts as for mmapfile_open_ex
 * (NULL: none). */
#define MMAPFILE_MEMFD_SEALABLE 0x1u /* MFD_ALLOW_SEALING */
#define MMAPFILE_MEMFD_HUGETLB  0x2u /* MFD_HUGETLB: huge pages of the default size */
MMAPFILE_API mmapfile_t *mmapfile_memfd(const char *name, off_t size, unsigned int flags,
                                        const struct mmapfile_options *opts);

/* Zero-copy views: a pointer to bytes [off, off + len) of the file inside
 * the mapping, readable, and writable when the handle is.  It stays valid
 * until mmapfile_release or close, whatever the file's growth: the mapping
 * never moves.  While it is held, cutting the file below its end by this
 * handle fails with EBUSY. */
MMAPFILE_API void *mmapfile_view(mmapfile_t *f, off_t off, size_t len);
MMAPFILE_API int mmapfile_release(mmapfile_t *f, void *view);

/* Asynchronous durable flush: mmapfile_flush_start starts writing back
 * what was written since the last flush or sync (io_uring SYNC_FILE_RANGE
 * and FSYNC; sync_file_range(2) without liburing) and returns at once;
 * mmapfile_flush_wait waits for every flush started, makes it durable
 * (fdatasync(2) without liburing) and returns its error (EIO). */
MMAPFILE_API int mmapfile_flush_start(mmapfile_t *f);
MMAPFILE_API int mmapfile_flush_wait(mmapfile_t *f);

#ifdef __cplusplus
}
#endif

#endif /* MMAPFILE_H */
