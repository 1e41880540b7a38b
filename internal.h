/* internal.h - the handle and the helpers the modules share.  Not installed. */
#ifndef MMAPFILE_INTERNAL_H
#define MMAPFILE_INTERNAL_H

#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mmapfile.h"

#define MMF_HIDDEN __attribute__((visibility("hidden")))

#define MMF_OFF_MAX ((off_t)INT64_MAX)

/* System calls, reached through one table so that tests can make any of them
 * fail (see sys.c). */
struct mmf_syscalls {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	int (*fstat)(int fd, struct stat *st);
	int (*fcntl_setfl)(int fd, int flags);
	off_t (*lseek)(int fd, off_t off, int whence);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
	void *(*mremap)(void *old, size_t old_len, size_t new_len, int flags);
	int (*munmap)(void *addr, size_t len);
	int (*msync)(void *addr, size_t len, int flags);
	int (*fsync)(int fd);
	int (*fdatasync)(int fd);
	int (*ring_datasync)(void *ring, int fd); /* fdatasync through an io_uring */
	int (*madvise)(void *addr, size_t len, int advice);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
};
extern MMF_HIDDEN struct mmf_syscalls mmf_sys;

/* Advice that is a lasting property of the mapping, one slot per kind, kept
 * so it can be given again after the mapping grows or moves. */
enum mmf_sticky {
	MMF_STICKY_PATTERN, /* NORMAL / RANDOM / SEQUENTIAL */
	MMF_STICKY_FORK,    /* DONTFORK / DOFORK */
	MMF_STICKY_WIPE,    /* WIPEONFORK / KEEPONFORK */
	MMF_STICKY_MERGE,   /* MERGEABLE / UNMERGEABLE */
	MMF_STICKY_HUGE,    /* HUGEPAGE / NOHUGEPAGE */
	MMF_STICKY_DUMP,    /* DONTDUMP / DODUMP */
	MMF_STICKY_COUNT
};

/* Locking: pos_lock serialises the cursor calls (read, write, seek), as the
 * kernel's f_pos lock does; map_lock is held shared by every copy to or from
 * the mapping and exclusively by whatever moves it or changes the file's
 * length.  Order: pos_lock, then map_lock. */
struct mmapfile {
	int fd;
	bool readable, writable, append;
	int sync_mode;          /* 0, O_DSYNC or O_SYNC */
	char *name;
	size_t page;

	pthread_mutex_t pos_lock;
	off_t cursor;           /* under pos_lock */

	pthread_rwlock_t map_lock;
	char *base;             /* NULL when nothing is mapped */
	size_t map_len;         /* bytes mapped, a multiple of page */
	int prot;
	bool mapless;           /* the descriptor cannot be mapped: pread/pwrite */
	off_t file_len;         /* the file's length on disk: size + reserve */
	off_t limit;            /* writes below this need no growth */
	_Atomic off_t size;     /* the logical size */
	int sticky[MMF_STICKY_COUNT]; /* -1: none given; under map_lock */

	_Atomic bool patched;   /* the fault guard put anonymous pages in the mapping */

	pthread_mutex_t flush_lock;
	void *ring;             /* io_uring for the flush, made on first use */
	bool ring_tried;
};


static inline void mmf_rdlock(struct mmapfile *f) { pthread_rwlock_rdlock(&f->map_lock); }
static inline void mmf_wrlock(struct mmapfile *f) { pthread_rwlock_wrlock(&f->map_lock); }
static inline void mmf_unlock(struct mmapfile *f) { pthread_rwlock_unlock(&f->map_lock); }

static inline off_t mmf_size(struct mmapfile *f)
{
	return atomic_load_explicit(&f->size, memory_order_acquire);
}

static inline void mmf_set_size(struct mmapfile *f, off_t size)
{
	atomic_store_explicit(&f->size, size, memory_order_release);
}

/* map.c: the mapping and the file's length.  All need map_lock exclusive. */
MMF_HIDDEN int mmf_map_to(struct mmapfile *f, off_t len);
MMF_HIDDEN int mmf_grow(struct mmapfile *f, off_t off, off_t end, bool reserve);
MMF_HIDDEN int mmf_cut(struct mmapfile *f, off_t len);
MMF_HIDDEN int mmf_trim(struct mmapfile *f);
MMF_HIDDEN void mmf_unmap(struct mmapfile *f);
MMF_HIDDEN void mmf_update_limit(struct mmapfile *f);
/* Learn growth or shrinking by others; takes map_lock itself. */
MMF_HIDDEN int mmf_refresh(struct mmapfile *f);

/* guard.c: the per-thread mark a copy to or from the mapping publishes, so
 * that a SIGBUS inside it becomes an answer instead of a crash. */
struct mmf_guard {
	uintptr_t lo, hi;       /* the mapping's side of the copy */
	struct mmapfile *f;     /* whose patched flag a fault sets */
};
extern MMF_HIDDEN __thread struct mmf_guard *mmf_guard_active
	__attribute__((tls_model("initial-exec")));
MMF_HIDDEN void mmf_guard_install(void);

/* map.c: after a copy met the guard (map_lock not held): put the file back
 * under the mapping and learn its length. */
MMF_HIDDEN int mmf_recover(struct mmapfile *f);
/* map.c: learn the file's length from the file (map_lock exclusive). */
MMF_HIDDEN int mmf_relearn(struct mmapfile *f);

/* mmapfile.c: positional I/O shared by the cursor calls. */
MMF_HIDDEN ssize_t mmf_readat(struct mmapfile *f, void *buf, size_t n, off_t off);
/* Writes at *at, or at the end when append; *at is where it wrote. */
MMF_HIDDEN ssize_t mmf_writeat(struct mmapfile *f, const void *buf, size_t n, off_t *at, bool append);

/* sync.c */
MMF_HIDDEN int mmf_sync_write(struct mmapfile *f, off_t off, size_t len);
MMF_HIDDEN void mmf_flush_release(struct mmapfile *f);

/* madvise.c */
MMF_HIDDEN void mmf_reapply_advice(struct mmapfile *f);

#endif
