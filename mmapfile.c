/* mmapfile.c - the handle: open, close, and reads and writes through the
 * mapping. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef O_LARGEFILE
#define O_LARGEFILE 0
#endif

#define MMF_OPEN_FLAGS (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_CLOEXEC | \
                        O_NOFOLLOW | O_NOATIME | O_SYNC | O_DSYNC | O_LARGEFILE)

/* Writes of at least this many bytes past the logical end go through
 * pwrite(2) into the same page cache: the pages there are untouched, and
 * filling them through the mapping costs a page fault each.  Measured on
 * fallocated pages: 4 KiB chunks equal, 16 KiB 3.2 vs 2.8 GB/s, 1 MiB 5.8 vs
 * 3.1 GB/s in favour of pwrite. */
#define MMF_PWRITE_MIN ((size_t)16 << 10)

/* Mapping a file costs more than reading a few KiB of it (about 6.5 us
 * against 1.5 us for open/fstat/pread of 4 KiB): a smaller file is mapped
 * when it is first written, advised, or read for the MMF_LAZY_READS-th time;
 * until then reads are pread(2). */
#define MMF_MAP_AT_OPEN ((off_t)64 << 10)
#define MMF_LAZY_READS 8

/* Copies to and from the mapping.  Threads may copy the same file bytes at
 * once, exactly as pread/pwrite on one descriptor may; that is the file's
 * data, not the library's state, so ThreadSanitizer is told not to look. */
#if defined(__SANITIZE_THREAD__)
#define MMF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MMF_TSAN 1
#endif
#endif

#ifdef MMF_TSAN
__attribute__((no_sanitize("thread"), noinline))
static void mmf_copy(void *dst, const void *src, size_t n)
{
	volatile unsigned char *d = dst;
	const volatile unsigned char *s = src;
	while (n--)
		*d++ = *s++;
}
#else
/* Records of a few dozen bytes are the common case: copied inline with two
 * overlapping moves, they skip a call into the C library.  The moves are of
 * vector type, so that they stay in registers (byte arrays went through the
 * stack). */
typedef char mmf_v16 __attribute__((vector_size(16), aligned(1), may_alias));
typedef uint64_t mmf_u64 __attribute__((aligned(1), may_alias));
typedef uint32_t mmf_u32 __attribute__((aligned(1), may_alias));

static inline __attribute__((always_inline)) void mmf_copy_record(void *dst, const void *src, size_t n)
{
	char *d = dst;
	const char *s = src;
	if (__builtin_expect(n >= 32, 1)) {
		mmf_v16 a0 = *(const mmf_v16 *)s, a1 = *(const mmf_v16 *)(s + 16);
		mmf_v16 b0 = *(const mmf_v16 *)(s + n - 32), b1 = *(const mmf_v16 *)(s + n - 16);
		*(mmf_v16 *)d = a0;
		*(mmf_v16 *)(d + 16) = a1;
		*(mmf_v16 *)(d + n - 32) = b0;
		*(mmf_v16 *)(d + n - 16) = b1;
	} else if (n >= 16) {
		mmf_v16 a = *(const mmf_v16 *)s, b = *(const mmf_v16 *)(s + n - 16);
		*(mmf_v16 *)d = a;
		*(mmf_v16 *)(d + n - 16) = b;
	} else if (n >= 8) {
		uint64_t a = *(const mmf_u64 *)s, b = *(const mmf_u64 *)(s + n - 8);
		*(mmf_u64 *)d = a;
		*(mmf_u64 *)(d + n - 8) = b;
	} else if (n >= 4) {
		uint32_t a = *(const mmf_u32 *)s, b = *(const mmf_u32 *)(s + n - 4);
		*(mmf_u32 *)d = a;
		*(mmf_u32 *)(d + n - 4) = b;
	} else if (n > 0) {
		char a = s[0], b = s[n / 2], c = s[n - 1];
		d[0] = a;
		d[n / 2] = b;
		d[n - 1] = c;
	}
}

static inline __attribute__((always_inline)) void mmf_copy(void *dst, const void *src, size_t n)
{
	if (n > 64)
		memcpy(dst, src, n);
	else
		mmf_copy_record(dst, src, n);
}
#endif

/* Copy to or from the mapping with the fault guard up: a fault inside
 * [map_side, map_side + n) is counted on the handle and patched over, so the
 * copy always finishes; the caller then looks at the count.  The mark is
 * raised already on the lock-free paths. */
static void copy_marked(struct mmapfile *f, const char *map_side, void *dst, const void *src, size_t n)
{
	struct mmf_guard *g = &mmf_guard_self;
	g->lo = (uintptr_t)map_side;
	g->hi = (uintptr_t)map_side + n;
	atomic_store_explicit(&g->f, f, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	mmf_copy(dst, src, n);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&g->f, NULL, memory_order_release);
}

/* A copy under map_lock.  Returns whether it met a fault: its own, or pages
 * another copy's fault patched.  The handler counts a fault before it
 * patches, so no load may pass the copy (nor, for a write, its stores). */
static bool guarded_copy(struct mmapfile *f, void *dst, const void *src, size_t n, off_t off)
{
	copy_marked(f, f->base + off, dst, src, n);
	atomic_thread_fence(memory_order_seq_cst);
	return mmf_patched(f);
}

/* The lock-free paths.  A copy there uses the published view (never
 * unmapped while the handle is open).  Its thread's mark, raised before it
 * looks at cut_seq, makes a cut of the file wait for it (mmf_quiesce); a
 * cut in progress sends it to the locked path.  A fault patched meanwhile
 * (its own, or another copy's) has it done again under the lock.  The
 * public calls' inline copies leave a thread's first registration to the
 * out-of-line path (without FAST_MAY_CALL), so that they call nothing.
 * FAST_ALONE: the caller saw the process with one thread, so no cut is in
 * progress on another and no other thread needs the mark fenced (a cut is
 * begun and ended within one call; a child forked by a threaded process
 * mid-cut is past what POSIX allows a child before exec, and glibc does not
 * count it as single-threaded).
 * FAST_AHEAD: a cursor call, which is usually one of a sequence: the line
 * MMF_AHEAD bytes on is asked for in advance. */
enum { FAST_MAY_CALL = 1, FAST_ALONE = 2, FAST_AHEAD = 4 };

/* Records read or written in sequence wait on memory less when the lines a
 * few dozen records on are already coming.  Measured over a 64 MiB file of
 * 64-byte records: reads against a bare cursor call, 256 bytes ahead gained
 * nothing, 1 KiB 1 ns a record, 2 and 4 KiB 2 ns (faster than the bare
 * call); appends 2 KiB ahead, 5-10 ns a record. */
#define MMF_AHEAD 2048

static inline __attribute__((always_inline)) bool fast_begin(struct mmapfile *f, unsigned long *faults,
                                                             unsigned how)
{
	struct mmf_guard *g = &mmf_guard_self;
	if (__builtin_expect(!g->registered, 0)) {
		if (!(how & FAST_MAY_CALL))
			return false;
		mmf_guard_register();
	}
	atomic_store_explicit(&g->f, f, memory_order_relaxed);
	if (!(how & FAST_ALONE) && mmf_guard_self_fence)
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
	*faults = atomic_load_explicit(&f->faults, memory_order_acquire);
	if (((how & FAST_ALONE) || !(atomic_load_explicit(&f->cut_seq, memory_order_acquire) & 1)) &&
	    *faults == atomic_load_explicit(&f->restored, memory_order_acquire))
		return true;
	atomic_store_explicit(&g->f, NULL, memory_order_release);
	return false;
}

/* Copy with the mark already raised, then lower it. */
static inline __attribute__((always_inline)) void fast_copy(const char *map_side, void *dst, const void *src, size_t n)
{
	struct mmf_guard *g = &mmf_guard_self;
	g->lo = (uintptr_t)map_side;
	g->hi = (uintptr_t)map_side + n;
	atomic_signal_fence(memory_order_seq_cst);
	mmf_copy(dst, src, n);
	atomic_signal_fence(memory_order_seq_cst);
}

static inline __attribute__((always_inline)) void fast_end(void)
{
	atomic_store_explicit(&mmf_guard_self.f, NULL, memory_order_release);
}

/* A read that ends before the size; -1 for the locked path (which also
 * learns whether another process changed a file read to its end). */
static inline __attribute__((always_inline)) ssize_t read_fast(struct mmapfile *f, void *buf, size_t n, off_t off,
                                                               unsigned how)
{
	unsigned long faults;
	if (!fast_begin(f, &faults, how))
		return -1;
	off_t size = mmf_size(f);
	const struct mmf_view *v = atomic_load_explicit(&f->view, memory_order_acquire);
	ssize_t k = -1;
	if (v && off < size && (off_t)n < size - off && off + (off_t)n <= (off_t)v->len) {
		if (how & FAST_AHEAD) /* never faults, whatever the address */
			__builtin_prefetch((const void *)((uintptr_t)(v->base + off) + MMF_AHEAD));
		fast_copy(v->base + off, buf, v->base + off, n);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&f->faults, memory_order_relaxed) == faults)
			k = (ssize_t)n;
	}
	fast_end();
	return k;
}

static inline __attribute__((always_inline)) void raise_size(struct mmapfile *f, off_t end)
{
	off_t cur = mmf_size(f);
	if (mmf_one_thread()) {
		if (end > cur)
			mmf_set_size(f, end);
		return;
	}
	while (end > cur && !atomic_compare_exchange_weak(&f->size, &cur, end))
		;
}

/* Appending through the mapping costs a page fault per new page; faulting
 * the next stretch of the reserve in with one madvise(MADV_POPULATE_WRITE)
 * costs a fraction of that.  Only pages past the size, which appends are
 * about to write, are populated, so no page of data is dirtied for
 * nothing.  Kernels without it (before 5.14) refuse, and appends fault. */
#define MMF_POPULATE_STEP ((off_t)1 << 20)

static void populate_ahead(struct mmapfile *f, const struct mmf_view *v, off_t end, off_t size,
                           off_t limit)
{
	off_t done = atomic_load_explicit(&f->populated, memory_order_relaxed);
	off_t mask = (off_t)f->page - 1;
	off_t start = size & ~mask;
	if (end <= done || atomic_load_explicit(&f->no_populate, memory_order_relaxed))
		return;
	if (start < done)
		start = done;
	off_t stop = start + MMF_POPULATE_STEP < limit ? start + MMF_POPULATE_STEP : limit & ~mask;
	if (stop < end || stop > (off_t)v->len)
		return; /* not an append into the reserve */
	if (mmf_sys.madvise(v->base + start, (size_t)(stop - start), MMAPFILE_MADV_POPULATE_WRITE) != 0 &&
	    errno == EINVAL)
		atomic_store_explicit(&f->no_populate, true, memory_order_relaxed);
	atomic_compare_exchange_strong(&f->populated, &done, stop);
}

/* A write inside what is mapped and allocated: 1 done, 0 for the locked
 * path, -1 when a fault met it and it must be written again. */
static inline __attribute__((always_inline)) int write_fast(struct mmapfile *f, const void *buf, size_t n, off_t off,
                                                           unsigned how)
{
	unsigned long faults;
	if (f->sync_mode || !fast_begin(f, &faults, how))
		return 0;
	off_t limit = atomic_load_explicit(&f->limit, memory_order_acquire);
	const struct mmf_view *v = atomic_load_explicit(&f->view, memory_order_acquire);
	off_t size = mmf_size(f);
	int rc = 0;
	if (v && off <= limit && (off_t)n <= limit - off && off + (off_t)n <= (off_t)v->len &&
	    !(n >= MMF_PWRITE_MIN && off >= size)) {
		off_t end = off + (off_t)n;
		if (end > size && end > atomic_load_explicit(&f->populated, memory_order_relaxed) &&
		    !atomic_load_explicit(&f->no_populate, memory_order_relaxed)) {
			if (!(how & FAST_MAY_CALL))
				goto out;
			populate_ahead(f, v, end, size, limit);
		}
		if (how & FAST_AHEAD) /* for writing; never faults */
			__builtin_prefetch((const void *)((uintptr_t)(v->base + off) + MMF_AHEAD), 1);
		fast_copy(v->base + off, v->base + off, buf, n);
		/* No load of the count may pass the copy's stores, if another
		 * thread could have patched the pages they went to. */
		if (end > size) {
			if (how & FAST_ALONE)
				mmf_set_size(f, end);
			else
				raise_size(f, end);
		}
		/* Appends past the size at the last flush are dirty already. */
		if (off < atomic_load_explicit(&f->dirty_base, memory_order_relaxed))
			mmf_mark_dirty(f, off, off + (off_t)n);
		if (!(how & FAST_ALONE) && !mmf_one_thread())
			atomic_thread_fence(memory_order_seq_cst);
		rc = atomic_load_explicit(&f->faults, memory_order_seq_cst) == faults ? 1 : -1;
		/* A write that met a fault is done again (or fails, ENOSPC from
		 * a file system that allocates at the fault, as btrfs does): the
		 * size goes back, unless another write raised it further. */
		if (rc < 0 && end > size)
			atomic_compare_exchange_strong(&f->size, &end, size);
	}
out:
	fast_end();
	return rc;
}

static void *fail(int err)
{
	errno = err;
	return NULL;
}

static int fail_int(int err)
{
	errno = err;
	return -1;
}

static void handle_free(struct mmapfile *f)
{
	while (f->held) {
		struct mmf_held *h = f->held;
		f->held = h->next;
		free(h);
	}
	mmf_touch_free(f);
	pthread_mutex_destroy(&f->pos_lock);
	pthread_mutex_destroy(&f->flush_lock);
	pthread_rwlock_destroy(&f->map_lock);
	free(f->name);
	free(f);
}

struct mmapfile *mmf_handle_new(const char *path, int flags)
{
	struct mmapfile *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->name = strdup(path);
	if (!f->name) {
		free(f);
		return NULL;
	}
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
#ifdef __GLIBC__
	/* Growth must not starve behind a stream of readers.  (glibc's kind
	 * constants are enumerators, not macros: test for glibc itself.) */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
	pthread_rwlock_init(&f->map_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&f->pos_lock, NULL);
	pthread_mutex_init(&f->flush_lock, NULL);

	int acc = flags & O_ACCMODE;
	f->fd = -1;
	f->readable = acc != O_WRONLY;
	f->writable = acc != O_RDONLY;
	f->append = (flags & O_APPEND) != 0;
	f->sync_mode = (flags & O_SYNC) == O_SYNC ? O_SYNC : (flags & O_DSYNC) ? O_DSYNC : 0;
	f->prot = f->writable ? PROT_READ | PROT_WRITE : PROT_READ;
	f->page = f->sys_page = (size_t)sysconf(_SC_PAGESIZE);
	for (int i = 0; i < MMF_STICKY_COUNT; i++)
		f->sticky[i] = -1;
	f->thp_default = true;
	atomic_init(&f->dirty_lo, MMF_OFF_MAX);
	return f;
}

/* Open the descriptor.  O_NONBLOCK keeps a FIFO from blocking the open; a
 * mapping needs a readable descriptor, so write-only asks for O_RDWR first
 * and works without a mapping when the file may not be read. */
static int open_fd(struct mmapfile *f, const char *path, int flags, mode_t mode)
{
	int acc = flags & O_ACCMODE;
	int sys_flags = (flags & ~O_ACCMODE) | O_CLOEXEC | O_NONBLOCK;
	int fd = mmf_sys.open(path, sys_flags | (acc == O_RDONLY ? O_RDONLY : O_RDWR), mode);
	if (fd < 0 && errno == EACCES && acc == O_WRONLY) {
		fd = mmf_sys.open(path, sys_flags | O_WRONLY, mode);
		f->mapless = true;
	}
	if (fd < 0 && errno == ENXIO) {
		/* A FIFO with no reader, or a socket. */
		struct stat st;
		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			errno = ENODEV;
	}
	return fd;
}

static int check_file(struct mmapfile *f, struct stat *st)
{
	if (mmf_sys.fstat(f->fd, st) != 0)
		return -1;
	if (S_ISDIR(st->st_mode))
		return fail_int(EISDIR);
	if (!S_ISREG(st->st_mode))
		return fail_int(ENODEV);
	return 0;
}

/* File systems whose files report no size they hold to (procfs, sysfs and
 * their kind): a mapping of such a file would read as empty, so the open
 * fails with ENODEV, as for any other file that cannot be mapped. */
static bool pseudo_fs(long type)
{
	switch (type) {
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case DEBUGFS_MAGIC:
	case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC:
	case CGROUP_SUPER_MAGIC:
	case CGROUP2_SUPER_MAGIC:
	case BPF_FS_MAGIC:
	case 0x62656570: /* configfs */
		return true;
	}
	return false;
}

/* On hugetlbfs the page is the huge page (st_blksize), and the file takes
 * no write(2): the handle writes through its mapping alone.  Only an empty
 * file (a pseudo file's size is 0) or one whose blocks are larger than a
 * page (hugetlbfs) is asked about: the common case costs no statfs. */
static int learn_fs(struct mmapfile *f, const struct stat *st)
{
	struct statfs sfs;
	bool big_blocks = st->st_blksize > (blksize_t)f->sys_page;
	if ((!big_blocks && st->st_size != 0) || mmf_sys.fstatfs(f->fd, &sfs) != 0)
		return 0;
	if (st->st_size == 0 && pseudo_fs((long)sfs.f_type))
		return fail_int(ENODEV);
	if (!big_blocks || sfs.f_type != HUGETLBFS_MAGIC)
		return 0;
	if (f->mapless || st->st_blksize <= 0 || ((size_t)st->st_blksize & ((size_t)st->st_blksize - 1)))
		return fail_int(EACCES);
	f->hugetlb = true;
	f->thp_default = false; /* its pages are huge already */
	f->page = (size_t)st->st_blksize;
	atomic_store(&f->no_populate, true);
	return 0;
}

int mmf_attach(struct mmapfile *f, const struct mmapfile_options *o)
{
	struct stat st;
	if (check_file(f, &st) != 0 || learn_fs(f, &st) != 0)
		return -1;
	f->file_len = st.st_size;
	if (f->writable) /* only a handle that writes trims or reserves */
		f->owner = getpid();
	mmf_set_size(f, st.st_size);
	atomic_store(&f->dirty_base, st.st_size); /* nothing written yet */
	if (o)
		mmf_options_apply(f, o);
	f->kernel_append = f->append && !f->private_map && !f->hugetlb;
	/* A private handle's bytes past what it maps are its own, so it maps
	 * at open; options ask for a mapping too. */
	if (o && f->mapless) {
		errno = EACCES; /* options about a mapping, and the file cannot be mapped */
		return -1;
	}
	if ((f->file_len >= MMF_MAP_AT_OPEN || o) && mmf_map_to(f, f->file_len) != 0 &&
	    (o || !mmf_go_mapless(f, errno)))
		return -1;
	/* A maximum is reserved at open, also for an empty file. */
	if (o && o->max_size && !f->base && mmf_reserve(f) != 0)
		return -1;
	mmf_update_limit(f);
	return o ? mmf_options_start(f, o) : 0;
}

void mmf_handle_abort(struct mmapfile *f)
{
	int err = errno;
	mmf_unmap(f);
	if (f->fd >= 0)
		mmf_sys.close(f->fd);
	handle_free(f);
	errno = err;
}

static mmapfile_t *open_handle(const char *path, int flags, mode_t mode,
                               const struct mmapfile_options *o)
{
	if (!path || (flags & ~MMF_OPEN_FLAGS) || (flags & O_ACCMODE) == O_ACCMODE)
		return fail(EINVAL);
	bool priv = o && (o->flags & MMAPFILE_OPT_PRIVATE);
	/* Private: writes never reach the file, so none of these can mean
	 * anything but a mistake. */
	if (priv && (flags & (O_TRUNC | O_SYNC | O_DSYNC)))
		return fail(EINVAL);
	mmf_guard_install();
	struct mmapfile *f = mmf_handle_new(path, flags);
	if (!f)
		return fail(ENOMEM);
	/* An O_APPEND handle appends with the kernel's atomic append, so its
	 * descriptor keeps the flag (a private one writes nothing to the file). */
	if (priv)
		flags = (flags & ~(O_ACCMODE | O_APPEND)) | O_RDONLY;
	f->fd = open_fd(f, path, flags, mode);
	/* O_NONBLOCK, which kept a FIFO from blocking the open, does nothing
	 * to a regular file's I/O: it is cleared when the program asks for the
	 * descriptor (mmapfile_fd), not with a system call at every open. */
	f->fd_flags = flags & (O_NOATIME | O_APPEND);
	if (f->fd < 0 || mmf_attach(f, o) != 0) {
		mmf_handle_abort(f);
		return NULL;
	}
	return f;
}

mmapfile_t *mmapfile_open(const char *path, int flags, mode_t mode)
{
	return open_handle(path, flags, mode, NULL);
}

mmapfile_t *mmapfile_open_ex(const char *path, int flags, mode_t mode,
                             const struct mmapfile_options *opts)
{
	struct mmapfile_options o;
	if (opts && mmf_options_read(opts, &o) != 0)
		return NULL;
	return open_handle(path, flags, mode, opts ? &o : NULL);
}

mmapfile_t *mmapfile_create(const char *path, off_t size, int flags, mode_t mode)
{
	if (size < 0)
		return fail(EINVAL);
	mmapfile_t *f = mmapfile_open(path, (flags & ~O_ACCMODE) | O_RDWR | O_CREAT | O_TRUNC, mode);
	if (f && size > 0 && mmapfile_truncate(f, size) != 0) {
		int err = errno;
		mmapfile_close(f);
		return fail(err);
	}
	return f;
}

int mmapfile_close(mmapfile_t *f)
{
	if (!f)
		return fail_int(EINVAL);
	int err = 0;
	if (f->writable && !f->private_map && mmf_trim(f) != 0)
		err = errno;
	if (mmf_flush_close(f) != 0 && !err)
		err = errno;
	int lost = mmf_take_lost(f);
	if (lost && (!err || err == EIO))
		err = lost;
	mmf_unmap(f);
	mmf_flush_release(f);
	if (mmf_sys.close(f->fd) != 0 && !err)
		err = errno;
	handle_free(f);
	return err ? fail_int(err) : 0;
}

/* The checks every read and write makes, in the kernel's order. */
static inline __attribute__((always_inline)) int check_io(const struct mmapfile *f, bool write, const void *buf, size_t n, off_t off)
{
	if (!f || off < 0) /* pread/pwrite refuse a negative offset before anything */
		return fail_int(EINVAL);
	if (write ? !f->writable : !f->readable)
		return fail_int(EBADF);
	if (n > SSIZE_MAX || (off_t)n > MMF_OFF_MAX - off)
		return fail_int(EINVAL);
	if (n > 0 && !buf)
		return fail_int(EINVAL);
	return 0;
}

/* Without a mapping, or after a fault, when the file is not what the
 * mapping showed: pread(2), limited to the size (the file on disk may be
 * longer by the reserve). */
static ssize_t pread_size(struct mmapfile *f, void *buf, size_t n, off_t off)
{
	off_t size = mmf_size(f);
	if (off >= size)
		return 0;
	if ((off_t)n > size - off)
		n = (size_t)(size - off);
	ssize_t r;
	do
		r = mmf_sys.pread(f->fd, buf, n, off);
	while (r < 0 && errno == EINTR);
	return r;
}

/* How a read goes (touch.c): through the mapping, through pread(2), or as
 * the record of large reads says. */
enum { ROUTE_MAP, ROUTE_KERNEL, ROUTE_ASK };

static ssize_t readat_mapped(struct mmapfile *f, void *buf, size_t n, off_t off, int route,
                             bool *faulted, bool *short_read)
{
	mmf_rdlock(f);
	off_t size = mmf_size(f);
	/* pread(2) answers from the file itself: a cut shows as a short count. */
	bool by_kernel = f->mapless || !f->base || route == ROUTE_KERNEL ||
	                 (route == ROUTE_ASK && mmf_read_by_kernel(f, off, n, size));
	if ((off_t)n == size - off && by_kernel) {
		/* Reaching the end exactly through pread: the size is learned
		 * when it is next asked for (mmapfile_size), which saves the
		 * system call where nothing asks (open, read, close). */
		atomic_store_explicit(&f->end_reached, true, memory_order_relaxed);
	} else if ((off_t)n >= size - off) {
		/* Reaching or passing the end through the mapping: ask the file
		 * whether another process grew or shrank it (a cut inside the
		 * last page leaves that page mapped, with no fault to tell). */
		mmf_unlock(f);
		if (mmf_refresh(f) != 0)
			return -1;
		mmf_rdlock(f);
		size = mmf_size(f);
	}
	if (f->base && !f->mapless && off < size && (uint64_t)size > f->map_len) {
		/* Growth the mapping does not cover yet (an O_APPEND handle's
		 * appends, another process's): map it, or pread without. */
		mmf_unlock(f);
		mmf_wrlock(f);
		mmf_map_to(f, f->file_len);
		mmf_unlock(f);
		mmf_rdlock(f);
		size = mmf_size(f);
	}
	ssize_t k = 0;
	if (by_kernel || f->mapless || !f->base) {
		k = pread_size(f, buf, n, off);
		/* Short of the size: another process cut the file. */
		*short_read = k >= 0 && (size_t)k < n && off + k < size;
	} else if (off < size) {
		k = (off_t)n < size - off ? (ssize_t)n : (ssize_t)(size - off);
		if ((size_t)(off + k) <= f->map_len)
			*faulted = guarded_copy(f, buf, f->base + off, (size_t)k, off);
		else /* never, while the mapping covers the size; never read past it */
			k = pread_size(f, buf, n, off);
	}
	mmf_unlock(f);
	return k;
}

/* A handle not mapped at open maps once its reads show it is used. */
static void map_if_used(struct mmapfile *f)
{
	if (atomic_fetch_add_explicit(&f->lazy_reads, 1, memory_order_relaxed) < MMF_LAZY_READS)
		return;
	mmf_wrlock(f);
	if (!f->base && !f->mapless)
		mmf_map_to(f, f->file_len); /* without it, reads stay pread(2) */
	mmf_unlock(f);
}

/* The locked path, out of line so that the lock-free one stays short. */
static __attribute__((noinline)) ssize_t readat_slow(struct mmapfile *f, void *buf, size_t n, off_t off,
                                                     int route)
{
	ssize_t k;
	if (!atomic_load_explicit(&f->view, memory_order_relaxed) && !f->mapless)
		map_if_used(f);
	bool faulted = false, short_read = false;
	k = readat_mapped(f, buf, n, off, route, &faulted, &short_read);
	if (short_read) {
		if (mmf_refresh(f) != 0)
			return -1;
		/* Learning the cut wrote again what this handle had written
		 * past it inside the cut's page (DESIGN.md, "Faults"): those
		 * bytes are the file's now, as write(2) would have made them. */
		mmf_rdlock(f);
		ssize_t more = off + k < mmf_size(f) ? pread_size(f, (char *)buf + k, n - (size_t)k, off + k) : 0;
		mmf_unlock(f);
		if (more > 0)
			k += more;
	}
	if (!faulted)
		return k;
	if (mmf_recover(f) != 0)
		return -1;
	if (f->private_map) /* its bytes are in the mapping alone; patched ones read zeros */
		return mmf_readat(f, buf, n, off);
	mmf_rdlock(f);
	k = pread_size(f, buf, n, off);
	mmf_unlock(f);
	return k;
}

/* A random read past memory goes through pread(2), and a large read may be
 * cheaper that way (touch.c): both take the locked path, which decides the
 * second under map_lock. */
ssize_t mmf_readat(struct mmapfile *f, void *buf, size_t n, off_t off)
{
	if (mmf_read_cold(f, off, n))
		return readat_slow(f, buf, n, off, ROUTE_KERNEL);
	if (n >= MMF_KERNEL_READ_MIN && !f->private_map && !f->hugetlb)
		return readat_slow(f, buf, n, off, ROUTE_ASK);
	ssize_t k = read_fast(f, buf, n, off, FAST_MAY_CALL);
	return k >= 0 ? k : readat_slow(f, buf, n, off, ROUTE_MAP);
}

static ssize_t pwrite_all(struct mmapfile *f, const char *buf, size_t n, off_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = mmf_sys.pwrite(f->fd, buf + done, n - done, off + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return done ? (ssize_t)done : -1;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* Write under map_lock (shared, or exclusive after growth).  A faulted copy
 * does not raise the size: the call is made again once recovered. */
static ssize_t copy_in(struct mmapfile *f, const void *buf, size_t n, off_t off, bool *faulted)
{
	ssize_t k = (ssize_t)n;
	if (f->mapless || !f->base || (n >= MMF_PWRITE_MIN && off >= mmf_size(f) && !mmf_map_only(f)))
		k = pwrite_all(f, buf, n, off);
	else if ((*faulted = guarded_copy(f, f->base + off, buf, n, off)))
		return k;
	if (k > 0) {
		raise_size(f, off + k);
		mmf_mark_dirty(f, off, off + k);
	}
	return k;
}

static ssize_t writeat_mapped(struct mmapfile *f, const void *buf, size_t n, off_t *at, bool append,
                              bool *faulted)
{
	off_t off = *at;
	mmf_rdlock(f);
	if (append)
		off = mmf_size(f);
	if ((off_t)n > MMF_OFF_MAX - off) {
		mmf_unlock(f);
		return fail_int(EFBIG);
	}
	/* Growth, and a write that will be a pwrite(2) (no fault would tell it
	 * that another process cut the file), learn the length first. */
	if (off + (off_t)n > f->limit || (n >= MMF_PWRITE_MIN && off >= mmf_size(f))) {
		mmf_unlock(f);
		mmf_wrlock(f);
		/* Growing: first learn whether another process changed the length
		 * (an append then lands after what it appended). */
		if (mmf_relearn(f) != 0) {
			mmf_unlock(f);
			return -1;
		}
		if (append)
			off = mmf_size(f);
		if ((off_t)n > MMF_OFF_MAX - off) {
			mmf_unlock(f);
			return fail_int(EFBIG);
		}
		if (off + (off_t)n > f->limit && mmf_grow(f, off, off + (off_t)n, true) != 0) {
			mmf_unlock(f);
			return -1;
		}
	}
	ssize_t k = copy_in(f, buf, n, off, faulted);
	mmf_unlock(f);
	*at = off;
	return k;
}

/* After a fault: the write again, through pwrite(2), which answers exactly
 * as write(2) would (growing the file again, ENOSPC, EIO). */
static ssize_t writeat_direct(struct mmapfile *f, const void *buf, size_t n, off_t *at, bool append)
{
	mmf_wrlock(f);
	off_t off = append ? mmf_size(f) : *at;
	ssize_t k = pwrite_all(f, buf, n, off);
	int err = errno;
	/* The size may only cover what is mapped (or, without a mapping, what
	 * the file holds). */
	if (mmf_relearn(f) == 0 && k > 0)
		raise_size(f, off + k < f->limit ? off + k : f->limit);
	if (k > 0)
		mmf_mark_dirty(f, off, off + k);
	if (k != (ssize_t)n) {
		/* The faulted copy may have left bytes past the size, in pages
		 * that were the file's: zeros again, so that the trim (which
		 * keeps what is not zeros, mmf_trim) cuts them. */
		off_t from = off + (k > 0 ? k : 0);
		off_t to = off + (off_t)n < f->limit ? off + (off_t)n : f->limit;
		if (from < mmf_size(f))
			from = mmf_size(f);
		if (f->base && !f->mapless && from < to && (size_t)to <= f->map_len) {
			mmf_cut_begin(f); /* no lock-free write past the size meanwhile */
			mmf_guarded_fill(f, f->base + from, f->base + from, NULL, (size_t)(to - from));
			mmf_cut_end(f);
		}
		mmf_trim(f);
	}
	mmf_unlock(f);
	*at = off;
	errno = err;
	return k;
}

/* After a fault: the write again, through pwrite(2), or through the
 * mapping when the handle takes no pwrite.  A private handle's patched pages
 * hold its bytes from then on; on hugetlbfs a second fault means no huge
 * page could be had for the bytes. */
static ssize_t write_again(struct mmapfile *f, const void *buf, size_t n, off_t *at, bool append)
{
	if (!mmf_map_only(f))
		return writeat_direct(f, buf, n, at, append);
	for (int tries = 0; tries < 4; tries++) {
		bool faulted = false;
		ssize_t k = writeat_mapped(f, buf, n, at, append, &faulted);
		if (!faulted)
			return k;
		if (mmf_recover(f) != 0)
			return -1;
	}
	/* What the faulted copies left past the size must read as zeros. */
	mmf_wrlock(f);
	mmf_cut_begin(f); /* no lock-free write past the size meanwhile */
	off_t from = *at > mmf_size(f) ? *at : mmf_size(f);
	off_t to = *at + (off_t)n < f->limit ? *at + (off_t)n : f->limit;
	if (f->base && from < to)
		mmf_guarded_fill(f, f->base + from, f->base + from, NULL, (size_t)(to - from));
	mmf_cut_end(f);
	mmf_unlock(f);
	return fail_int(f->hugetlb ? ENOMEM : EIO);
}

/* Past the lock-free path: fast is what it answered (0: not taken, -1: met
 * a fault). */
static __attribute__((noinline)) ssize_t writeat_slow(struct mmapfile *f, const void *buf, size_t n,
                                                      off_t *at, bool append, int fast)
{
	bool faulted = fast < 0;
	ssize_t k = (ssize_t)n;
	if (fast == 0)
		k = writeat_mapped(f, buf, n, at, append, &faulted);
	if (faulted)
		k = mmf_recover(f) == 0 ? write_again(f, buf, n, at, append) : -1;
	if (k > 0 && f->sync_mode && mmf_sync_write(f, *at, (size_t)k) != 0)
		return -1;
	return k;
}

/* An O_APPEND handle's append: write(2) on its O_APPEND descriptor, which
 * lands whole at the file's end whatever other processes append beside it,
 * and leaves no reserve for them to see.  The descriptor's offset then says
 * where the bytes went.  The mapping is not grown for them: reads past it
 * map further (readat_slow) or pread. */
static ssize_t append_kernel(struct mmapfile *f, const char *buf, size_t n, off_t *at)
{
	size_t done = 0;
	mmf_wrlock(f);
	while (done < n) {
		ssize_t w = mmf_sys.write(f->fd, buf + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	int err = errno;
	off_t end = done ? mmf_sys.lseek(f->fd, 0, SEEK_CUR) : -1;
	if (end >= (off_t)done) {
		*at = end - (off_t)done;
		if (end < mmf_size(f)) {
			mmf_relearn(f); /* below the size: another process cut the file */
		} else {
			if (end > f->file_len)
				f->file_len = end;
			raise_size(f, end);
			mmf_update_limit(f);
		}
		mmf_mark_dirty(f, *at, end);
	} else if (done) {
		err = errno; /* written, but where is unknown: learn the length */
		mmf_relearn(f);
		*at = mmf_size(f) - (off_t)done;
	}
	mmf_unlock(f);
	if (!done) {
		errno = err;
		return -1;
	}
	return (ssize_t)done;
}

ssize_t mmf_writeat(struct mmapfile *f, const void *buf, size_t n, off_t *at, bool append)
{
	if (append && f->kernel_append)
		return append_kernel(f, buf, n, at);
	/* Appends take the lock: where they land depends on the size.  The
	 * lock-free path is never taken by O_SYNC / O_DSYNC handles. */
	int fast = append ? 0 : write_fast(f, buf, n, *at, FAST_MAY_CALL);
	return fast > 0 ? (ssize_t)n : writeat_slow(f, buf, n, at, append, fast);
}

/* The public calls try the lock-free copy of a record (1 to 64 bytes)
 * inline, so that the common case saves no register and calls nothing; the
 * rest, from the errno for bad arguments to a copy by memcpy, is out of
 * line. */
#define MMF_RECORD_MAX ((size_t)64)

static inline __attribute__((always_inline)) bool io_plain(const struct mmapfile *f, bool write, const void *buf,
                                                           size_t n)
{
	return f && buf && n - 1 < MMF_RECORD_MAX && (write ? f->writable : f->readable);
}

static __attribute__((noinline)) ssize_t readat_rest(struct mmapfile *f, void *buf, size_t n, off_t off)
{
	if (check_io(f, false, buf, n, off) != 0)
		return -1;
	if (n == 0)
		return 0;
	return mmf_readat(f, buf, n, off);
}

ssize_t mmapfile_readat(mmapfile_t *f, void *buf, size_t n, off_t off)
{
	if (io_plain(f, false, buf, n) && off >= 0) {
		ssize_t k = read_fast(f, buf, n, off, 0);
		if (k >= 0)
			return k;
	}
	return readat_rest(f, buf, n, off);
}

/* fast is what the inline copy answered: 0 when not taken, -1 when it met
 * a fault (the arguments were good then). */
static __attribute__((noinline)) ssize_t writeat_rest(struct mmapfile *f, const void *buf, size_t n, off_t off,
                                                      int fast)
{
	if (fast == 0) {
		if (check_io(f, true, buf, n, off) != 0)
			return -1;
		if (f->append)
			return fail_int(EINVAL);
		if (n == 0)
			return 0;
		fast = write_fast(f, buf, n, off, FAST_MAY_CALL);
		if (fast > 0)
			return (ssize_t)n;
	}
	return writeat_slow(f, buf, n, &off, false, fast);
}

ssize_t mmapfile_writeat(mmapfile_t *f, const void *buf, size_t n, off_t off)
{
	int fast = 0;
	if (io_plain(f, true, buf, n) && off >= 0 && !f->append) {
		fast = write_fast(f, buf, n, off, 0);
		if (fast > 0)
			return (ssize_t)n;
	}
	return writeat_rest(f, buf, n, off, fast);
}

/* The cursor call with its lock (while the process has threads) and every
 * case the lock-free copy does not take. */
static __attribute__((noinline)) ssize_t read_rest(struct mmapfile *f, void *buf, size_t n)
{
	if (check_io(f, false, buf, n, 0) != 0)
		return -1;
	if (n == 0)
		return 0;
	bool locked = mmf_cursor_lock(f);
	ssize_t k = (off_t)n > MMF_OFF_MAX - f->cursor ? fail_int(EINVAL)
	                                                : mmf_readat(f, buf, n, f->cursor);
	if (k > 0)
		f->cursor += k;
	mmf_cursor_unlock(f, locked);
	return k;
}

/* One thread: no lock, and a read that ends before the size (which also
 * keeps cursor + n in range) is one copy. */
ssize_t mmapfile_read(mmapfile_t *f, void *buf, size_t n)
{
	if (io_plain(f, false, buf, n) && mmf_one_thread()) {
		ssize_t k = read_fast(f, buf, n, f->cursor, FAST_ALONE | FAST_AHEAD);
		if (k >= 0) {
			f->cursor += k;
			return k;
		}
	}
	return read_rest(f, buf, n);
}

static __attribute__((noinline)) ssize_t write_rest(struct mmapfile *f, const void *buf, size_t n)
{
	if (check_io(f, true, buf, n, 0) != 0)
		return -1;
	if (n == 0)
		return 0;
	return mmf_cursor_write(f, buf, n, f->append);
}

/* One thread: a write inside what is mapped and allocated (which keeps
 * cursor + n in range) is one copy. */
ssize_t mmapfile_write(mmapfile_t *f, const void *buf, size_t n)
{
	if (io_plain(f, true, buf, n) && mmf_one_thread() && !f->append &&
	    write_fast(f, buf, n, f->cursor, FAST_ALONE | FAST_AHEAD) > 0) {
		f->cursor += (off_t)n;
		return (ssize_t)n;
	}
	return write_rest(f, buf, n);
}

ssize_t mmf_cursor_write(struct mmapfile *f, const void *buf, size_t n, bool append)
{
	bool locked = mmf_cursor_lock(f);
	off_t off = f->cursor;
	ssize_t k = !append && (off_t)n > MMF_OFF_MAX - off ? fail_int(EINVAL)
	                                                     : mmf_writeat(f, buf, n, &off, append);
	if (k > 0)
		f->cursor = off + k;
	mmf_cursor_unlock(f, locked);
	return k;
}

off_t mmapfile_size(mmapfile_t *f)
{
	if (!f)
		return fail_int(EINVAL);
	/* A read reached the end: growth or a cut by another process is seen
	 * (spec, point 6); if the file cannot be asked, what is known stands. */
	if (atomic_load_explicit(&f->end_reached, memory_order_relaxed) &&
	    atomic_exchange_explicit(&f->end_reached, false, memory_order_relaxed)) {
		int err = errno;
		mmf_refresh(f);
		errno = err;
	}
	return mmf_size(f);
}

const char *mmapfile_name(const mmapfile_t *f)
{
	if (!f)
		return fail(EINVAL);
	return f->name;
}

int mmapfile_fd(const mmapfile_t *f)
{
	if (!f)
		return fail_int(EINVAL);
	/* The descriptor as open(2) with the handle's flags would give it
	 * (the library's O_NONBLOCK cleared; see open_handle). */
	int err = errno;
	if (f->fd_flags >= 0)
		mmf_sys.fcntl_setfl(f->fd, f->fd_flags);
	errno = err;
	return f->fd;
}
