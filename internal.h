/* internal.h - the handle and the helpers the modules share.  Not installed. */
#ifndef MMAPFILE_INTERNAL_H
#define MMAPFILE_INTERNAL_H

#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#ifdef HAVE_SYS_SINGLE_THREADED_H
#include <sys/single_threaded.h>
#endif

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
	/* The asynchronous flush (flush.c).  Without liburing the ring entries
	 * fail with ENOSYS and are never reached.  Its requests' tags are below
	 * MMF_RING_TAG_SYNC; ring_datasync tags its own above. */
	int (*sync_file_range)(int fd, off_t off, off_t len, unsigned int flags);
	void *(*ring_new)(unsigned int entries); /* an io_uring, or NULL and errno */
	int (*ring_submit)(void *ring);          /* submit what is queued: -1 and errno, or >= 0 */
	/* Wait for one completion: its tag (user_data) and result. */
	int (*ring_reap)(void *ring, uint64_t *tag, int *res);
	int (*madvise)(void *addr, size_t len, int advice);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	ssize_t (*write)(int fd, const void *buf, size_t n); /* O_APPEND handles' appends */
	int (*fstatfs)(int fd, struct statfs *sfs);
	int (*mincore)(void *addr, size_t len, unsigned char *vec);
};
#define MMF_RING_TAG_SYNC 16
extern MMF_HIDDEN struct mmf_syscalls mmf_sys;
/* sys.c: the number after key ("MemAvailable") in a /proc or /sys file, or
 * its first number (key NULL); 0 when there is none (also for "max").
 * errno is left as it was. */
MMF_HIDDEN uint64_t mmf_read_number(const char *path, const char *key);

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

/* What a copy without locks may use: a mapping of the file's first len bytes
 * at base.  Views are never freed, nor (but for a private handle's, see
 * below) unmapped, while the handle is open, so a copy that loaded an old
 * one still touches the file's own pages. */
struct mmf_view {
	char *base;
	size_t len;
	struct mmf_view *older;
};

/* Address space the handle mapped: a region reserved at base, the file
 * mapped over its first mapped bytes.  Kept until close; a private
 * handle's old region, a copy no one else maps, is unmapped when its bytes
 * move to a new one, with no lock-free copy in flight and no view held
 * (map.c, move_region). */
struct mmf_region {
	char *base;
	size_t mapped, reserved;
	struct mmf_region *older;
};

/* Locking: pos_lock serialises the cursor calls (read, write, seek), as the
 * kernel's f_pos lock does; it is skipped while the process has one thread.
 * map_lock is held
 * exclusively by whatever changes the mapping or the file's length, and
 * shared by the copies that do not take the lock-free path (mmapfile.c).
 * Order: pos_lock, then map_lock. */
struct mmf_touch; /* touch.c */

struct mmapfile {
	int fd;
	int fd_flags;           /* F_SETFL flags the descriptor should have; -1 for memfds */
	bool readable, writable, append;
	int sync_mode;          /* 0, O_DSYNC or O_SYNC */
	char *name;
	size_t page;

	pthread_mutex_t pos_lock;
	off_t cursor;           /* under pos_lock */

	pthread_rwlock_t map_lock;
	char *base;             /* the current region's; NULL when nothing is mapped */
	size_t map_len;         /* bytes of the file mapped at base, whole pages */
	size_t reserved;        /* address space reserved at base, >= map_len */
	struct mmf_region *retired; /* earlier regions, unmapped at close */
	_Atomic(struct mmf_view *) view; /* for lock-free copies; NULL: none */
	struct mmf_view *views; /* every view published, freed at close */
	_Atomic unsigned lazy_reads; /* reads before a small file is mapped */
	_Atomic bool end_reached; /* a read ended at the size: mmapfile_size asks the file */
	_Atomic(struct mmf_touch *) touch; /* how large reads have read the file (touch.c) */
	struct {                  /* random reads past memory (touch.c) */
		_Atomic unsigned gap;    /* random reads between mincore samples */
		_Atomic unsigned warm;   /* samples in memory in a row, while cold */
		_Atomic bool cold;       /* random and past memory: pread, RANDOM advice */
	} pattern;
	_Atomic off_t populated;  /* the reserve is faulted in below this */
	_Atomic bool no_populate; /* the kernel lacks MADV_POPULATE_WRITE */
	int prot;
	bool mapless;           /* the descriptor cannot be mapped: pread/pwrite */
	bool no_memory;         /* mapless for want of address space or map count */
	bool kernel_append;     /* appends are write(2) on the O_APPEND descriptor */
	pid_t owner;            /* the process that opened it: only it trims or reserves */
	_Atomic int lost;       /* EIO: a write could not be kept; sync and close report it */
	off_t file_len;         /* the file's length on disk: size + reserve */
	unsigned space_short;   /* non-zero: a reserve was refused (ENOSPC); growths since */
	_Atomic off_t limit;    /* writes below this need no growth */
	_Atomic off_t size;     /* the logical size */
	int sticky[MMF_STICKY_COUNT]; /* -1: none given; under map_lock */

	/* Odd while the file is being cut (truncate, trim, a learned shrink):
	 * a lock-free copy that saw it change is done again under the lock. */
	_Atomic unsigned cut_seq;
	/* Faults the guard patched, and how many of them the mapping has been
	 * restored after: unequal, the mapping holds anonymous pages. */
	_Atomic unsigned long faults, restored;

	/* Options from mmapfile_open_ex (zero for mmapfile_open). */
	bool private_map;       /* MAP_PRIVATE: nothing reaches the file */
	size_t private_file;    /* private: the file's pages at open, mapped from it */
	bool hugetlb;           /* on hugetlbfs: page is the huge page size */
	bool thp_default;       /* MADV_HUGEPAGE once the mapping reaches a PMD (map.c) */
	size_t sys_page;        /* the system's page size */
	bool populate, lock_all;
	bool sealable;          /* a memfd that takes seals (memfd.c) */
	off_t max_size;         /* reserve at least this much address space */
	size_t locked;          /* lock_all: bytes from 0 locked in RAM */
	size_t prefaulted;      /* populate: bytes from 0 populated */
	struct mmf_held *held;  /* zero-copy views handed out; under map_lock */

	/* The range written since the last flush, [dirty_lo, dirty_hi); empty
	 * when dirty_lo >= dirty_hi.  It bounds what msync and the writeback
	 * start cover; fdatasync(2) after them covers the file whole, so a
	 * mark lost to a race with a flush costs time, never data.  Bytes from
	 * dirty_base (the size at the last flush) to the size are dirty too, so
	 * that appends mark nothing. */
	_Atomic off_t dirty_lo, dirty_hi;
	_Atomic off_t dirty_base;

	pthread_mutex_t flush_lock;
	void *ring;             /* io_uring for the flush, made on first use */
	bool ring_tried;
	/* The asynchronous flush, under flush_lock (flush.c). */
	bool ring_sfr;          /* the ring does SYNC_FILE_RANGE (Linux 5.2) */
	bool flush_fdatasync;   /* started without a ring: the wait must fdatasync */
	unsigned int flush_owed; /* completions the ring owes the flushes started */
	int flush_err;          /* the first error of a started flush, not yet reported */
};

/* A zero-copy view handed out by mmapfile_view. */
struct mmf_held {
	char *ptr;
	off_t off, end;
	struct mmf_held *next;
};



static inline void mmf_rdlock(struct mmapfile *f) { pthread_rwlock_rdlock(&f->map_lock); }
static inline void mmf_wrlock(struct mmapfile *f) { pthread_rwlock_wrlock(&f->map_lock); }
static inline void mmf_unlock(struct mmapfile *f) { pthread_rwlock_unlock(&f->map_lock); }

MMF_HIDDEN void mmf_quiesce(struct mmapfile *f);

/* Whether the process has a single thread (glibc says so, and only this
 * thread could start another): then no lock or fence is needed against
 * other threads, and a fault can only come from this one.  The cursor's
 * lock is not taken then; mmf_cursor_lock returns whether it was. */
static inline bool mmf_one_thread(void)
{
#ifdef HAVE_SYS_SINGLE_THREADED_H
	return __libc_single_threaded;
#else
	return false;
#endif
}

static inline bool mmf_cursor_lock(struct mmapfile *f)
{
	if (mmf_one_thread())
		return false;
	pthread_mutex_lock(&f->pos_lock);
	return true;
}

static inline void mmf_cursor_unlock(struct mmapfile *f, bool locked)
{
	if (locked)
		pthread_mutex_unlock(&f->pos_lock);
}

/* Brackets around cutting the file (map_lock held exclusively): no
 * lock-free copy runs in between. */
static inline void mmf_cut_begin(struct mmapfile *f)
{
	atomic_fetch_add(&f->cut_seq, 1);
	mmf_quiesce(f);
}
static inline void mmf_cut_end(struct mmapfile *f) { atomic_fetch_add(&f->cut_seq, 1); }

/* A writeback error as sync, the flush and close report it (spec, point
 * 7): EIO, also where the kernel says ENOSPC or EDQUOT (a device under the
 * file system, or an allocation at writeback, ran out of space: the pages
 * are lost all the same; the library's own writes allocate at the write). */
static inline int mmf_writeback_err(int err)
{
	return err == ENOSPC || err == EDQUOT ? EIO : err;
}

/* Whether this is a child's copy of a handle, inherited through fork(2). */
static inline bool mmf_inherited(const struct mmapfile *f)
{
	return getpid() != f->owner;
}

/* The loss of a write recorded on the handle (keep_after_cut), taken: its
 * errno once, then 0. */
static inline int mmf_take_lost(struct mmapfile *f)
{
	return atomic_load_explicit(&f->lost, memory_order_relaxed) ? atomic_exchange(&f->lost, 0) : 0;
}

/* Whether the mapping holds pages the fault guard patched. */
static inline bool mmf_patched(struct mmapfile *f)
{
	return atomic_load_explicit(&f->faults, memory_order_acquire) !=
	       atomic_load_explicit(&f->restored, memory_order_acquire);
}

static inline off_t mmf_size(struct mmapfile *f)
{
	return atomic_load_explicit(&f->size, memory_order_acquire);
}

static inline void mmf_set_size(struct mmapfile *f, off_t size)
{
	atomic_store_explicit(&f->size, size, memory_order_release);
}

/* Widen the dirty range to cover [off, end).  Appends widen it every time:
 * one thread needs no atomic operation for that. */
static inline __attribute__((always_inline)) void mmf_mark_dirty(struct mmapfile *f, off_t off, off_t end)
{
	if (off >= atomic_load_explicit(&f->dirty_base, memory_order_relaxed) && end <= mmf_size(f))
		return;
	off_t lo = atomic_load_explicit(&f->dirty_lo, memory_order_relaxed);
	off_t hi = atomic_load_explicit(&f->dirty_hi, memory_order_relaxed);
	if (off >= lo && end <= hi)
		return;
	if (mmf_one_thread()) {
		if (off < lo)
			atomic_store_explicit(&f->dirty_lo, off, memory_order_relaxed);
		if (end > hi)
			atomic_store_explicit(&f->dirty_hi, end, memory_order_relaxed);
		return;
	}
	while (off < lo && !atomic_compare_exchange_weak(&f->dirty_lo, &lo, off))
		;
	while (end > hi && !atomic_compare_exchange_weak(&f->dirty_hi, &hi, end))
		;
}

/* Take the dirty range, leaving it empty; false when it was empty. */
static inline bool mmf_take_dirty(struct mmapfile *f, off_t *lo, off_t *hi)
{
	*lo = atomic_exchange(&f->dirty_lo, MMF_OFF_MAX);
	*hi = atomic_exchange(&f->dirty_hi, 0);
	off_t size = mmf_size(f);
	off_t base = atomic_exchange(&f->dirty_base, size);
	if (base < size) {
		*lo = base < *lo ? base : *lo;
		*hi = size > *hi ? size : *hi;
	}
	return *lo < *hi;
}

/* map.c: the mapping and the file's length.  All need map_lock exclusive. */
MMF_HIDDEN int mmf_map_to(struct mmapfile *f, off_t len);
/* Address space for the handle's maximum, nothing mapped yet (open). */
MMF_HIDDEN int mmf_reserve(struct mmapfile *f);
MMF_HIDDEN int mmf_grow(struct mmapfile *f, off_t off, off_t end, bool reserve);
/* Cut the file to len, between mmf_cut_begin and mmf_cut_end. */
MMF_HIDDEN int mmf_cut(struct mmapfile *f, off_t len);
MMF_HIDDEN int mmf_trim(struct mmapfile *f);
/* mmf_trim, taking map_lock itself (sync, flush). */
MMF_HIDDEN int mmf_trim_locked(struct mmapfile *f);
MMF_HIDDEN void mmf_unmap(struct mmapfile *f);
/* After a mapping failed with err: go on without one (true) where that can
 * be done (map_lock exclusive). */
MMF_HIDDEN bool mmf_go_mapless(struct mmapfile *f, int err);
MMF_HIDDEN void mmf_update_limit(struct mmapfile *f);
/* The PMD size of transparent huge pages, or 0 without them. */
MMF_HIDDEN size_t mmf_pmd_size(void);
/* Learn growth or shrinking by others; takes map_lock itself. */
MMF_HIDDEN int mmf_refresh(struct mmapfile *f);

/* guard.c: the per-thread mark a copy to or from the mapping publishes, so
 * that a SIGBUS inside it becomes an answer instead of a crash, and so that
 * cutting a file can wait for the lock-free copies of it in flight. */
struct mmf_guard {
	uintptr_t lo, hi;                /* the mapping's side of the copy */
	_Atomic(struct mmapfile *) f;    /* whose copy; NULL outside copies */
	struct mmf_guard *next, *prev;   /* every thread's mark, once registered */
	bool registered;
};
extern MMF_HIDDEN __thread struct mmf_guard mmf_guard_self
	__attribute__((tls_model("initial-exec")));
MMF_HIDDEN void mmf_guard_install(void);
/* Make this thread's mark visible to mmf_quiesce (once per thread). */
MMF_HIDDEN void mmf_guard_register(void);
/* True when a lock-free copy must fence after raising its mark, because
 * mmf_quiesce cannot force the fence on it with membarrier(2). */
extern MMF_HIDDEN bool mmf_guard_self_fence;
/* Wait until no lock-free copy of f is in flight (map_lock exclusive, with
 * cut_seq odd, so that no new one starts). */
MMF_HIDDEN void mmf_quiesce(struct mmapfile *f);

/* Writes only through the mapping: pwrite(2) would reach the file (private)
 * or is refused (hugetlbfs). */
static inline bool mmf_map_only(const struct mmapfile *f)
{
	return f->private_map || f->hugetlb;
}

/* map.c: copy (or zero, src NULL) with the fault guard over map_side. */
MMF_HIDDEN void mmf_guarded_fill(struct mmapfile *f, const char *map_side, char *dst, const char *src,
                                 size_t n);

/* options.c: options given to mmapfile_open_ex, checked and copied into a
 * full struct (zeros past what the caller's size covered). */
MMF_HIDDEN int mmf_options_read(const struct mmapfile_options *in, struct mmapfile_options *out);
/* Before the first mapping: record them on the handle. */
MMF_HIDDEN void mmf_options_apply(struct mmapfile *f, const struct mmapfile_options *o);
/* After the file is mapped at open: prefetch, populate, lock. */
MMF_HIDDEN int mmf_options_start(struct mmapfile *f, const struct mmapfile_options *o);
/* After growth or a new region (map_lock exclusive): lock and populate
 * what the options ask and is not yet; -1 when the limits refuse. */
MMF_HIDDEN int mmf_keep_options(struct mmapfile *f);

/* view.c: whether a view held ends past size (map_lock held). */
MMF_HIDDEN bool mmf_views_past(const struct mmapfile *f, off_t size);

/* residency.c: mlock(2)/munlock(2) themselves (the sanitizers stub them). */
MMF_HIDDEN int mmf_lock_pages(const void *p, size_t n);
MMF_HIDDEN int mmf_unlock_pages(const void *p, size_t n);

/* mmapfile.c: a handle for a descriptor already open (f->fd set): learn the
 * file, apply the options (NULL: none), map it when that pays. */
MMF_HIDDEN int mmf_attach(struct mmapfile *f, const struct mmapfile_options *o);
MMF_HIDDEN struct mmapfile *mmf_handle_new(const char *name, int flags);
MMF_HIDDEN void mmf_handle_abort(struct mmapfile *f);

/* map.c: after a copy met the guard (map_lock not held): put the file back
 * under the mapping and learn its length. */
MMF_HIDDEN int mmf_recover(struct mmapfile *f);
/* map.c: learn the file's length from the file (map_lock exclusive). */
MMF_HIDDEN int mmf_relearn(struct mmapfile *f);

/* mmapfile.c: positional I/O shared by the cursor calls. */
MMF_HIDDEN ssize_t mmf_readat(struct mmapfile *f, void *buf, size_t n, off_t off);
/* Writes at *at, or at the end when append; *at is where it wrote. */
MMF_HIDDEN ssize_t mmf_writeat(struct mmapfile *f, const void *buf, size_t n, off_t *at, bool append);
/* A write at the cursor (at the end when append), moving it past the bytes. */
MMF_HIDDEN ssize_t mmf_cursor_write(struct mmapfile *f, const void *buf, size_t n, bool append);

/* touch.c: whether a read of n bytes at off (n >= MMF_KERNEL_READ_MIN, the
 * size as read under map_lock) goes through pread(2) instead of the
 * mapping; records the choice.  Smaller reads always take the mapping, and
 * so do private handles (their bytes are in the mapping alone) and
 * hugetlbfs (a fault a huge page): mmf_readat does not ask for them. */
#define MMF_KERNEL_READ_MIN ((size_t)64 << 10)
MMF_HIDDEN bool mmf_read_by_kernel(struct mmapfile *f, off_t off, size_t n, off_t size);
MMF_HIDDEN void mmf_touch_free(struct mmapfile *f);
/* touch.c: whether a read of n bytes at off is a random one past memory,
 * which goes through pread(2); called for every read mmf_readat sees. */
MMF_HIDDEN bool mmf_read_cold(struct mmapfile *f, off_t off, size_t n);

/* sync.c */
MMF_HIDDEN int mmf_sync_write(struct mmapfile *f, off_t off, size_t len);

/* flush.c: make what was written durable (fdatasync, or fsync for O_SYNC,
 * after collecting the flushes started); at close, wait for those and
 * report their error; then let the ring go. */
MMF_HIDDEN int mmf_flush_durable(struct mmapfile *f);
MMF_HIDDEN int mmf_flush_close(struct mmapfile *f);
MMF_HIDDEN void mmf_flush_release(struct mmapfile *f);

/* madvise.c */
MMF_HIDDEN int mmf_reapply_advice(struct mmapfile *f);
/* After pattern.cold changed: the advice that goes with it (takes map_lock). */
MMF_HIDDEN void mmf_advise_cold(struct mmapfile *f);

#endif
