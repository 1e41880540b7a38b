/* sync.c - durability: trimming the reserve and flushing to stable storage.
 * The ring and the flush itself are flush.c's (mmf_flush_durable). */
#include "internal.h"

#include <errno.h>
#include <sys/mman.h>

/* msync the pages of [off, off + len) that are mapped. */
static int flush_mapped(struct mmapfile *f, off_t off, off_t len)
{
	int rc = 0;
	mmf_rdlock(f);
	off_t start = off & ~((off_t)f->page - 1);
	off_t end = len < f->limit - off ? off + len : f->limit;
	if (f->base && start < end && (rc = mmf_sys.msync(f->base + start, (size_t)(end - start), MS_SYNC)))
		errno = mmf_writeback_err(errno);
	mmf_unlock(f);
	return rc;
}

/* After each write of an O_SYNC / O_DSYNC handle.  The file's length is
 * learned first, as sync and close learn it before they flush: writeback
 * zeroes a page's bytes past the file's end, so bytes this write left past
 * a cut it could not see must be written again before msync, or they are
 * gone without a trace (DESIGN.md, "Faults"). */
int mmf_sync_write(struct mmapfile *f, off_t off, size_t len)
{
	/* Best effort: where the length cannot be had, the write is as it
	 * was; a loss found on the way is kept for sync and close (f->lost). */
	int saved = errno;
	mmf_refresh(f);
	errno = saved;
	if (flush_mapped(f, off, (off_t)len) != 0)
		return -1;
	return mmf_flush_durable(f);
}

int mmapfile_sync(mmapfile_t *f)
{
	if (!f) {
		errno = EINVAL;
		return -1;
	}
	if (f->private_map)
		return 0; /* nothing of it is the file's */
	int lost = 0;
	if (f->writable && mmf_trim_locked(f) != 0) {
		if (errno != EIO || !(lost = mmf_take_lost(f)))
			return -1;
	}
	/* Only what was written since the last flush is msync'd; the
	 * fdatasync after it covers the file whole. */
	off_t lo, hi;
	if (mmf_take_dirty(f, &lo, &hi) && flush_mapped(f, lo, hi - lo) != 0) {
		int err = errno;
		mmf_mark_dirty(f, lo, hi); /* for the next sync */
		errno = err;
		return -1;
	}
	if (mmf_flush_durable(f) != 0)
		return -1;
	/* A write that could not be kept (another process's cut) is reported
	 * once the rest is durable. */
	if (lost || (lost = mmf_take_lost(f))) {
		errno = lost;
		return -1;
	}
	return 0;
}
