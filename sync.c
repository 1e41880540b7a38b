/* sync.c - durability: trimming the reserve and flushing to stable storage. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef MMF_HAVE_LIBURING
#include <liburing.h>

/* The handle's ring, made on the first flush; NULL when io_uring is not
 * available (kernel too old, disabled by sysctl, no memory). */
static struct io_uring *flush_ring(struct mmapfile *f)
{
	if (!f->ring_tried) {
		f->ring_tried = true;
		struct io_uring *ring = malloc(sizeof *ring);
		if (ring && io_uring_queue_init(2, ring, 0) == 0)
			f->ring = ring;
		else
			free(ring);
	}
	return f->ring;
}
#endif

/* fdatasync(2), through io_uring when the handle has a ring. */
static int datasync(struct mmapfile *f)
{
	int rc;
	pthread_mutex_lock(&f->flush_lock);
#ifdef MMF_HAVE_LIBURING
	struct io_uring *ring = flush_ring(f);
	if (ring)
		rc = mmf_sys.ring_datasync(ring, f->fd);
	else
#endif
		rc = mmf_sys.fdatasync(f->fd);
	pthread_mutex_unlock(&f->flush_lock);
	return rc;
}

void mmf_flush_release(struct mmapfile *f)
{
#ifdef MMF_HAVE_LIBURING
	if (f->ring) {
		io_uring_queue_exit(f->ring);
		free(f->ring);
		f->ring = NULL;
	}
#else
	(void)f;
#endif
}

/* msync the pages of [off, off + len) that are mapped. */
static int flush_mapped(struct mmapfile *f, off_t off, off_t len)
{
	int rc = 0;
	mmf_rdlock(f);
	off_t start = off & ~((off_t)f->page - 1);
	off_t end = off + len < f->limit ? off + len : f->limit;
	if (f->base && start < end)
		rc = mmf_sys.msync(f->base + start, (size_t)(end - start), MS_SYNC);
	mmf_unlock(f);
	return rc;
}

/* After each write of an O_SYNC / O_DSYNC handle. */
int mmf_sync_write(struct mmapfile *f, off_t off, size_t len)
{
	if (flush_mapped(f, off, (off_t)len) != 0)
		return -1;
	return f->sync_mode == O_SYNC ? mmf_sys.fsync(f->fd) : datasync(f);
}

int mmapfile_sync(mmapfile_t *f)
{
	if (!f) {
		errno = EINVAL;
		return -1;
	}
	if (f->writable) {
		mmf_wrlock(f);
		int rc = mmf_trim(f);
		mmf_unlock(f);
		if (rc != 0)
			return -1;
	}
	if (flush_mapped(f, 0, MMF_OFF_MAX) != 0)
		return -1;
	return f->sync_mode == O_SYNC ? mmf_sys.fsync(f->fd) : datasync(f);
}
