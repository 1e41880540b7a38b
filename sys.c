/* sys.c - the system calls the library makes, in one table.
 *
 * Every module calls the kernel through mmf_sys, never directly, so that a
 * test can replace an entry and make a call fail (ENOSPC, EIO, a refused
 * mremap) at the point it chooses. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifdef MMF_HAVE_LIBURING
#include <liburing.h>
#endif

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static int sys_fcntl_setfl(int fd, int flags)
{
	return fcntl(fd, F_SETFL, flags);
}

static int sys_fallocate(int fd, int mode, off_t off, off_t len)
{
#ifdef HAVE_FALLOCATE
	return fallocate(fd, mode, off, len);
#else
	/* posix_fallocate returns the error instead of setting errno. */
	(void)mode;
	int err = posix_fallocate(fd, off, len);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
#endif
}

static void *sys_mremap(void *old, size_t old_len, size_t new_len, int flags)
{
#ifdef MMF_USE_MREMAP
	return mremap(old, old_len, new_len, flags);
#else
	(void)old; (void)old_len; (void)new_len; (void)flags;
	errno = ENOSYS;
	return MAP_FAILED;
#endif
}

static int sys_fdatasync(int fd)
{
#ifdef HAVE_FDATASYNC
	return fdatasync(fd);
#else
	return fsync(fd);
#endif
}

#ifdef MMF_HAVE_LIBURING
/* Tags (user_data) of the ring's requests: the asynchronous flush's are
 * below MMF_RING_TAG_SYNC (flush.c); every datasync here takes a tag of its
 * own above, so a completion left by an earlier one whose wait failed is
 * never taken for its own. */
static _Atomic uint64_t sync_tags = MMF_RING_TAG_SYNC;

static int ring_wait_datasync(struct io_uring *ring, int fd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe)
		return -EBUSY;
	uint64_t tag = atomic_fetch_add_explicit(&sync_tags, 1, memory_order_relaxed);
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	sqe->user_data = tag; /* set_data64 is liburing 2.2 */
	int rc = io_uring_submit(ring);
	if (rc < 0)
		return rc;
	/* A signal interrupts the wait, not the flush: wait for this very
	 * completion, or the next sync would take it for its own. */
	for (;;) {
		struct io_uring_cqe *cqe;
		do
			rc = io_uring_wait_cqe(ring, &cqe);
		while (rc == -EINTR);
		if (rc < 0)
			return rc;
		bool mine = cqe->user_data == tag;
		rc = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		if (mine)
			return rc < 0 ? rc : 0;
	}
}

/* fdatasync(2) as an io_uring request on the handle's ring. */
static int sys_ring_datasync(void *ring, int fd)
{
	int rc = ring_wait_datasync(ring, fd);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return 0;
}

/* A ring of `entries` submissions (twice as many completions), malloc'd:
 * flush.c ends it with io_uring_queue_exit and free. */
static void *sys_ring_new(unsigned int entries)
{
	struct io_uring *ring = malloc(sizeof *ring);
	if (!ring)
		return NULL;
	int rc = io_uring_queue_init(entries, ring, 0);
	if (rc < 0) {
		free(ring);
		errno = -rc;
		return NULL;
	}
	return ring;
}

static int sys_ring_submit(void *ring)
{
	int rc = io_uring_submit(ring);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return rc;
}

/* Wait for the next completion and take its tag and result (-errno or >= 0).  A
 * signal interrupts the wait, never the request: wait again. */
static int sys_ring_reap(void *ring, uint64_t *tag, int *res)
{
	struct io_uring_cqe *cqe;
	int rc;
	do
		rc = io_uring_wait_cqe(ring, &cqe);
	while (rc == -EINTR);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	*tag = cqe->user_data;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}
#else
static int sys_ring_datasync(void *ring, int fd)
{
	(void)ring;
	return sys_fdatasync(fd);
}

static void *sys_ring_new(unsigned int entries)
{
	(void)entries;
	errno = ENOSYS;
	return NULL;
}

static int sys_ring_submit(void *ring)
{
	(void)ring;
	errno = ENOSYS;
	return -1;
}

static int sys_ring_reap(void *ring, uint64_t *tag, int *res)
{
	(void)ring; (void)tag; (void)res;
	errno = ENOSYS;
	return -1;
}
#endif

/* Start writeback of a range (Linux); elsewhere there is nothing to start,
 * and the fdatasync(2) of the wait does the work. */
static int sys_sync_file_range(int fd, off_t off, off_t len, unsigned int flags)
{
#ifdef SYNC_FILE_RANGE_WRITE
	return sync_file_range(fd, off, len, flags);
#else
	(void)fd; (void)off; (void)len; (void)flags;
	errno = ENOSYS;
	return -1;
#endif
}

struct mmf_syscalls mmf_sys = {
	.open = sys_open,
	.close = close,
	.fstat = fstat,
	.fcntl_setfl = sys_fcntl_setfl,
	.lseek = lseek,
	.ftruncate = ftruncate,
	.fallocate = sys_fallocate,
	.mmap = mmap,
	.mremap = sys_mremap,
	.munmap = munmap,
	.msync = msync,
	.fsync = fsync,
	.fdatasync = sys_fdatasync,
	.ring_datasync = sys_ring_datasync,
	.sync_file_range = sys_sync_file_range,
	.ring_new = sys_ring_new,
	.ring_submit = sys_ring_submit,
	.ring_reap = sys_ring_reap,
	.madvise = madvise,
	.pread = pread,
	.pwrite = pwrite,
	.write = write,
	.fstatfs = fstatfs,
	.mincore = mincore,
};

uint64_t mmf_read_number(const char *path, const char *key)
{
	char text[4096];
	int saved = errno;
	int fd = mmf_sys.open(path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t n = fd >= 0 ? mmf_sys.pread(fd, text, sizeof text - 1, 0) : -1;
	if (fd >= 0)
		mmf_sys.close(fd);
	errno = saved;
	if (n <= 0)
		return 0;
	text[n] = 0;
	const char *p = key ? strstr(text, key) : text;
	if (!p)
		return 0;
	p += key ? strlen(key) : 0;
	while (*p == ' ' || *p == ':' || *p == '\t')
		p++;
	return *p >= '0' && *p <= '9' ? strtoull(p, NULL, 10) : 0;
}
