/* flush.c - the handle's flush ring, and the asynchronous durable flush.
 *
 * mmapfile_flush_start trims the reserve, takes the range written since the
 * last flush (mmf_take_dirty) and starts its writeback without waiting:
 * with a ring, one SYNC_FILE_RANGE over the range linked to one FSYNC
 * (datasync, or a full fsync for O_SYNC handles), submitted and left to
 * run; without one, sync_file_range(2) at once and an fdatasync(2) owed to
 * the wait.  mmapfile_flush_wait collects every completion the ring owes
 * (or makes the owed fdatasync) and reports the first error.
 *
 * Everything here is under flush_lock, which is never held while taking
 * map_lock.  The ring is shared with mmapfile_sync and the O_SYNC/O_DSYNC
 * writes (mmf_flush_durable): they collect what the flushes are owed before
 * they use it, so that a completion is never taken for another's.  An
 * error is reported once, by the first call that waits for it: the wait,
 * a sync, a synchronous write, or close. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef MMF_HAVE_LIBURING
#include <liburing.h>
#endif

#ifndef SYNC_FILE_RANGE_WRITE
#define SYNC_FILE_RANGE_WRITE 2
#endif

/* Submissions in the ring, and the most completions the flushes may be owed
 * at once (a flush is two: the range and the fsync).  Keeping what is owed
 * within the submission queue means a start always finds room once it has
 * collected the oldest, and the completion queue (twice as large) never
 * overflows. */
#define FLUSH_RING_ENTRIES 8u

/* The flush's requests' tags (user_data), below MMF_RING_TAG_SYNC. */
#define TAG_RANGE 1u
#define TAG_FSYNC 2u

static void note_err(struct mmapfile *f, int err)
{
	if (!f->flush_err)
		f->flush_err = mmf_writeback_err(err);
}

/* Take the first error not yet reported: 0, or -1 with errno. */
static int report(struct mmapfile *f)
{
	int err = f->flush_err;
	f->flush_err = 0;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* The handle's ring, made on first use; NULL when io_uring is not available
 * (built without liburing, a kernel without it or with it disabled, no
 * memory).  Whether it can start writeback of a range (SYNC_FILE_RANGE,
 * Linux 5.2) is asked once. */
static void *flush_ring(struct mmapfile *f)
{
	if (f->ring_tried)
		return f->ring;
	f->ring_tried = true;
	int err = errno;
	f->ring = mmf_sys.ring_new(FLUSH_RING_ENTRIES);
#ifdef MMF_HAVE_LIBURING
	if (f->ring) {
		struct io_uring_probe *probe = io_uring_get_probe_ring(f->ring);
		f->ring_sfr = probe && io_uring_opcode_supported(probe, IORING_OP_SYNC_FILE_RANGE);
		if (probe)
			io_uring_free_probe(probe);
	}
#endif
	errno = err; /* without a ring, the system calls do the work */
	return f->ring;
}

/* Start writeback of [lo, hi) with sync_file_range(2).  Its error (EIO,
 * ENOMEM, ENOSPC) is the flush's, reported by the wait; a system without it
 * (ENOSYS) leaves the work to the fdatasync. */
static void range_by_syscall(struct mmapfile *f, off_t lo, off_t hi)
{
	if (mmf_sys.sync_file_range(f->fd, lo, hi - lo, SYNC_FILE_RANGE_WRITE) != 0 && errno != ENOSYS)
		note_err(f, errno);
}

#ifdef MMF_HAVE_LIBURING
/* Collect one completion the flushes are owed, submitting first what a
 * failed submission left queued.  A request cancelled (ECANCELED) was not
 * done: either the writeback start linked before it failed (that error is
 * noted already), or the kernel gave the work up, as io_uring does when it
 * cannot start a worker thread under a storm of signals.  The wait then
 * makes the file durable by the system call.  A completion of a datasync
 * whose wait failed (its tag is not the flush's) is dropped.  -1 and errno
 * when the kernel could not be asked: what is owed stays owed. */
static int reap_one(struct mmapfile *f)
{
	struct io_uring *ring = f->ring;
	if (io_uring_sq_ready(ring) > 0 && mmf_sys.ring_submit(ring) < 0)
		return -1;
	uint64_t tag;
	int res;
	if (mmf_sys.ring_reap(ring, &tag, &res) != 0)
		return -1;
	if (tag >= MMF_RING_TAG_SYNC)
		return 0;
	f->flush_owed--;
	if (res == -ECANCELED)
		f->flush_fdatasync = true;
	else if (res < 0)
		note_err(f, -res);
	return 0;
}

/* Queue the flush of [lo, hi) (none when lo >= hi) on the ring and submit
 * it: 0, or -1 and errno.  *queued says whether it is queued all the same:
 * a submission the kernel refused stays queued, and the next collection
 * submits it. */
static int start_on_ring(struct mmapfile *f, off_t lo, off_t hi, bool *queued)
{
	struct io_uring *ring = f->ring;
	bool range = lo < hi;
	unsigned int need = range && f->ring_sfr ? 2 : 1;
	while (f->flush_owed + need > FLUSH_RING_ENTRIES || io_uring_sq_space_left(ring) < need)
		if (reap_one(f) != 0)
			return -1;
	if (range && !f->ring_sfr)
		range_by_syscall(f, lo, hi);
	struct io_uring_sqe *sqe;
	if (need == 2) {
		/* The length is 32 bits; 0 means to the end of the file. */
		off_t len = hi - lo;
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_sync_file_range(sqe, f->fd, len > UINT32_MAX ? 0 : (unsigned int)len,
		                              (uint64_t)lo, SYNC_FILE_RANGE_WRITE);
		sqe->flags |= IOSQE_IO_LINK;
		sqe->user_data = TAG_RANGE;
	}
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_fsync(sqe, f->fd, f->sync_mode == O_SYNC ? 0 : IORING_FSYNC_DATASYNC);
	sqe->user_data = TAG_FSYNC;
	f->flush_owed += need;
	*queued = true;
	return mmf_sys.ring_submit(ring) < 0 ? -1 : 0;
}
#endif

/* Collect every completion the ring owes; -1 and errno when the kernel
 * could not be asked (what is owed stays owed). */
/* A child of fork(2) has a copy of its parent's ring, whose queues are
 * memory shared with the parent, and whose requests and completions are
 * the parent's: the child lets its copy go and flushes with system calls
 * (flush_lock held).  Handles that do not write record no owner, so for
 * them every process is a child: they never flush by ring. */
static void leave_parents_ring(struct mmapfile *f)
{
	if (!f->ring || !mmf_inherited(f))
		return;
#ifdef MMF_HAVE_LIBURING
	io_uring_queue_exit(f->ring);
#endif
	free(f->ring);
	f->ring = NULL;
	f->ring_tried = true;
	f->flush_owed = 0;
	f->flush_err = 0;
}

static int collect(struct mmapfile *f)
{
#ifdef MMF_HAVE_LIBURING
	while (f->flush_owed > 0)
		if (reap_one(f) != 0)
			return -1;
#else
	(void)f;
#endif
	return 0;
}

static int fsync_or_datasync(struct mmapfile *f)
{
	int rc = f->sync_mode == O_SYNC ? mmf_sys.fsync(f->fd) : mmf_sys.fdatasync(f->fd);
	if (rc != 0)
		errno = mmf_writeback_err(errno);
	return rc;
}

/* Make everything written durable for mmapfile_sync and the synchronous
 * writes (after their msync): fsync(2) for O_SYNC handles, else fdatasync
 * on the ring, or fdatasync(2) without one.  Flushes started before are
 * collected first, and their error is this call's. */
int mmf_flush_durable(struct mmapfile *f)
{
	pthread_mutex_lock(&f->flush_lock);
	leave_parents_ring(f);
	/* When collecting fails, the ring still owes the flushes completions,
	 * which its datasync would have to pass over: use the system call. */
	bool ring_free = collect(f) == 0;
	int rc;
#ifdef MMF_HAVE_LIBURING
	void *ring = f->sync_mode == O_SYNC ? NULL : flush_ring(f);
	if (ring && ring_free) {
		f->flush_fdatasync = false;
		rc = mmf_sys.ring_datasync(ring, f->fd);
		if (rc != 0 && errno == ECANCELED) /* given up, not done (reap_one) */
			rc = fsync_or_datasync(f);
		if (rc != 0)
			note_err(f, errno);
		rc = report(f);
		pthread_mutex_unlock(&f->flush_lock);
		return rc;
	}
#else
	(void)ring_free;
#endif
	if (f->flush_fdatasync) {
		/* A wait in another thread must not return before this. */
		f->flush_fdatasync = false;
		if (fsync_or_datasync(f) != 0)
			note_err(f, errno);
		rc = report(f);
		pthread_mutex_unlock(&f->flush_lock);
		return rc;
	}
	int err = f->flush_err;
	f->flush_err = 0;
	pthread_mutex_unlock(&f->flush_lock);
	/* Nothing started waits for this one: concurrent synchronous writes
	 * need not queue behind each other's fsync. */
	rc = fsync_or_datasync(f);
	if (err) {
		errno = err;
		return -1;
	}
	return rc;
}

int mmapfile_flush_start(mmapfile_t *f)
{
	if (!f) {
		errno = EINVAL;
		return -1;
	}
	if (!f->writable || f->private_map)
		return 0; /* nothing of the handle's reaches the file */
	/* The size is made durable with the data: drop the reserve first, as
	 * mmapfile_sync does. */
	if (mmf_trim_locked(f) != 0)
		return -1;

	off_t lo, hi;
	if (!mmf_take_dirty(f, &lo, &hi))
		lo = hi = 0;
	int rc = 0;
	bool queued = false;
	pthread_mutex_lock(&f->flush_lock);
	leave_parents_ring(f);
	void *ring = flush_ring(f);
#ifdef MMF_HAVE_LIBURING
	if (ring) {
		rc = start_on_ring(f, lo, hi, &queued);
	} else
#else
	(void)ring;
#endif
	{
		if (lo < hi)
			range_by_syscall(f, lo, hi);
		f->flush_fdatasync = true;
		queued = true;
	}
	int err = errno;
	pthread_mutex_unlock(&f->flush_lock);
	/* A flush that could not even be queued leaves the range to the next. */
	if (!queued && lo < hi)
		mmf_mark_dirty(f, lo, hi);
	errno = err;
	return rc;
}

/* Wait for the flushes started, as the wait does: 0, or -1 and the first
 * error (the one a wait would have reported). */
static int settle(struct mmapfile *f)
{
	pthread_mutex_lock(&f->flush_lock);
	leave_parents_ring(f);
	if (collect(f) != 0)
		note_err(f, errno);
	if (f->flush_fdatasync) {
		f->flush_fdatasync = false;
		if (fsync_or_datasync(f) != 0)
			note_err(f, errno);
	}
	int rc = report(f);
	int err = errno;
	pthread_mutex_unlock(&f->flush_lock);
	errno = err;
	return rc;
}

int mmapfile_flush_wait(mmapfile_t *f)
{
	if (!f) {
		errno = EINVAL;
		return -1;
	}
	return settle(f);
}

/* Close: a flush started and not waited for is waited for, and its error
 * is close's. */
int mmf_flush_close(struct mmapfile *f)
{
	return settle(f);
}

/* End the ring, after waiting for what is still started (its error lost
 * here: mmf_flush_close reports it). */
void mmf_flush_release(struct mmapfile *f)
{
	int err = errno;
	settle(f);
	errno = err;
#ifdef MMF_HAVE_LIBURING
	if (f->ring) {
		/* Requests still owed (the kernel could not be asked for them)
		 * are cancelled or finished by the ring's end. */
		io_uring_queue_exit(f->ring);
		free(f->ring);
		f->ring = NULL;
	}
#endif
}
