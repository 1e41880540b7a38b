/* sys.c - the system calls the library makes, in one table.
 *
 * Every module calls the kernel through mmf_sys, never directly, so that a
 * test can replace an entry and make a call fail (ENOSPC, EIO, a refused
 * mremap) at the point it chooses. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
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
static int ring_wait_datasync(struct io_uring *ring, int fd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	int rc = io_uring_submit(ring);
	if (rc < 0)
		return rc;
	/* A signal interrupts the wait, not the flush: wait for this very
	 * completion, or the next sync would take it for its own. */
	struct io_uring_cqe *cqe;
	do
		rc = io_uring_wait_cqe(ring, &cqe);
	while (rc == -EINTR);
	if (rc < 0)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return rc < 0 ? rc : 0;
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
#else
static int sys_ring_datasync(void *ring, int fd)
{
	(void)ring;
	return sys_fdatasync(fd);
}
#endif

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
	.madvise = madvise,
	.pread = pread,
	.pwrite = pwrite,
};
