/* map.c - the mapping and the file's length on disk.
 *
 * Everything here runs with map_lock held exclusively, except mmf_refresh
 * and mmf_recover, which take it.  Invariants: bytes [size, file_len) are
 * zeros (the reserve); the mapping covers [0, limit) and
 * limit = min(file_len, map_len) (file_len without a mapping). */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#define MMF_RESERVE_MIN ((off_t)64 << 10)
#define MMF_RESERVE_MAX ((off_t)1 << 30)

void mmf_update_limit(struct mmapfile *f)
{
	if (f->mapless)
		f->limit = f->file_len;
	else
		f->limit = (off_t)f->map_len < f->file_len ? (off_t)f->map_len : f->file_len;
}

/* Round len up to whole pages, or 0 when that cannot be a mapping length. */
static size_t page_round(const struct mmapfile *f, off_t len)
{
	if ((uint64_t)len > (uint64_t)SIZE_MAX - f->page)
		return 0;
	return ((size_t)len + f->page - 1) & ~(f->page - 1);
}

/* Map the new length first, so that a failure leaves the old mapping as it
 * was; shrinking unmaps the tail in place.  The path for systems without
 * mremap, and whenever mremap refuses: a mapping that range advice has split
 * into several areas (EFAULT), or valgrind's mremap (ENOMEM). */
static void *remap_fresh(struct mmapfile *f, size_t want)
{
	if (want < f->map_len) {
		if (mmf_sys.munmap(f->base + want, f->map_len - want) != 0)
			return MAP_FAILED;
		return f->base;
	}
	void *p = mmf_sys.mmap(NULL, want, f->prot, MAP_SHARED, f->fd, 0);
	if (p != MAP_FAILED)
		mmf_sys.munmap(f->base, f->map_len);
	return p;
}

static void *remap(struct mmapfile *f, size_t want)
{
#ifdef MMF_USE_MREMAP
	void *p = mmf_sys.mremap(f->base, f->map_len, want, MREMAP_MAYMOVE);
	if (p != MAP_FAILED)
		return p;
#endif
	return remap_fresh(f, want);
}

/* Make the mapping exactly [0, round_up(len)). */
int mmf_map_to(struct mmapfile *f, off_t len)
{
	if (f->mapless)
		return 0;
	size_t want = page_round(f, len);
	if (want == 0 && len > 0) {
		errno = ENOMEM;
		return -1;
	}
	if (want == f->map_len)
		return 0;
	if (want == 0) {
		mmf_unmap(f);
		mmf_update_limit(f);
		return 0;
	}
	void *p = f->base ? remap(f, want)
	                  : mmf_sys.mmap(NULL, want, f->prot, MAP_SHARED, f->fd, 0);
	if (p == MAP_FAILED)
		return -1;
	bool grew = want > f->map_len;
	f->base = p;
	f->map_len = want;
	mmf_update_limit(f);
	if (grew)
		mmf_reapply_advice(f);
	return 0;
}

void mmf_unmap(struct mmapfile *f)
{
	if (f->base)
		mmf_sys.munmap(f->base, f->map_len);
	f->base = NULL;
	f->map_len = 0;
}

/* Where the file should end when a write needs end: geometric, so that
 * appends cost amortised O(1) system calls. */
static off_t reserve_target(const struct mmapfile *f, off_t end)
{
	off_t step = f->file_len;
	if (step < MMF_RESERVE_MIN)
		step = MMF_RESERVE_MIN;
	if (step > MMF_RESERVE_MAX)
		step = MMF_RESERVE_MAX;
	off_t target = f->file_len <= MMF_OFF_MAX - step ? f->file_len + step : end;
	if (target < end)
		target = end;
	off_t mask = (off_t)f->page - 1;
	if (target <= MMF_OFF_MAX - mask)
		target = (target + mask) & ~mask;
	return target;
}

/* Extend the file to target, allocating [start, target) so that a full disk
 * is ENOSPC now rather than a fault later.  On failure the file keeps its
 * old length. */
static int extend_file(struct mmapfile *f, off_t start, off_t target)
{
	if (mmf_sys.fallocate(f->fd, 0, start, target - start) == 0)
		return 0;
	int err = errno;
	if (err == EOPNOTSUPP || err == ENOSYS)
		return mmf_sys.ftruncate(f->fd, target); /* no fallocate: sparse */
	struct stat st;
	if (mmf_sys.fstat(f->fd, &st) == 0 && st.st_size != f->file_len)
		mmf_sys.ftruncate(f->fd, f->file_len);
	errno = err;
	return -1;
}

/* Make [off, end) writable: the file at least end long, the mapping over it.
 * With reserve, the file grows ahead geometrically; a gap between the old
 * length and off stays a hole. */
int mmf_grow(struct mmapfile *f, off_t off, off_t end, bool reserve)
{
	off_t old_len = f->file_len;
	if (end > old_len) {
		off_t target = reserve && !f->sync_mode && !f->mapless ? reserve_target(f, end) : end;
		off_t start = off & ~((off_t)f->page - 1);
		if (start < old_len)
			start = old_len;
		int rc = extend_file(f, start, target);
		if (rc != 0 && target > end && (errno == ENOSPC || errno == EFBIG))
			rc = extend_file(f, start, target = end);
		if (rc != 0)
			return -1;
		f->file_len = target;
	}
	if (!f->mapless && (size_t)f->file_len > f->map_len &&
	    mmf_map_to(f, f->file_len) != 0) {
		int err = errno;
		if (f->file_len != old_len && mmf_sys.ftruncate(f->fd, old_len) == 0)
			f->file_len = old_len;
		mmf_update_limit(f);
		errno = err;
		return -1;
	}
	mmf_update_limit(f);
	return 0;
}

/* Cut the file to len (below its current length) and shrink the mapping. */
int mmf_cut(struct mmapfile *f, off_t len)
{
	if (mmf_sys.ftruncate(f->fd, len) != 0)
		return -1;
	f->file_len = len;
	if (mmf_size(f) > len)
		mmf_set_size(f, len);
	mmf_map_to(f, len); /* a failed shrink only leaves unused address space */
	mmf_update_limit(f);
	return 0;
}

/* Growth by another process: map what it added.  Shrinking by another
 * process: forget what it cut.  Our own reserve looks the same as the file's
 * length, so neither is mistaken for the other. */
static int apply_length(struct mmapfile *f, off_t disk)
{
	if (disk < f->file_len) {
		f->file_len = disk;
		if (mmf_size(f) > disk)
			mmf_set_size(f, disk);
		mmf_update_limit(f);
		return 0;
	}
	if (!f->mapless && page_round(f, disk) > f->map_len && mmf_map_to(f, disk) != 0)
		return -1;
	f->file_len = disk;
	mmf_set_size(f, disk);
	mmf_update_limit(f);
	return 0;
}

int mmf_refresh(struct mmapfile *f)
{
	struct stat st;
	mmf_rdlock(f);
	int rc = mmf_sys.fstat(f->fd, &st);
	bool same = rc == 0 && st.st_size == f->file_len;
	mmf_unlock(f);
	if (rc != 0 || same)
		return rc;
	mmf_wrlock(f);
	rc = mmf_relearn(f);
	mmf_unlock(f);
	return rc;
}

/* Put the file back under every page the fault guard patched: one mapping
 * over the same addresses replaces them all. */
static int restore_mapping(struct mmapfile *f)
{
	if (!atomic_load_explicit(&f->patched, memory_order_relaxed))
		return 0;
	void *p = mmf_sys.mmap(f->base, f->map_len, f->prot, MAP_SHARED | MAP_FIXED, f->fd, 0);
	if (p == MAP_FAILED) {
		/* The old pages may be gone already: go on without a mapping,
		 * through pread/pwrite, rather than leave a hole under base. */
		mmf_sys.munmap(f->base, f->map_len);
		f->base = NULL;
		f->map_len = 0;
		f->mapless = true;
		mmf_trim(f);
	}
	atomic_store_explicit(&f->patched, false, memory_order_relaxed);
	if (f->base)
		mmf_reapply_advice(f);
	mmf_update_limit(f);
	return 0;
}

/* Drop the reserve from the file; the mapping stays for the next growth.
 * The reserve is cut only while the file still ends where this handle left
 * it (or inside the reserve): a file another process grew past it, or cut
 * below the size, is learned instead, never cut or grown back. */
int mmf_trim(struct mmapfile *f)
{
	off_t size = mmf_size(f);
	struct stat st;
	if (f->file_len <= size)
		return 0;
	if (mmf_sys.fstat(f->fd, &st) != 0)
		return -1;
	if (st.st_size > f->file_len || st.st_size <= size)
		return apply_length(f, st.st_size);
	if (mmf_sys.ftruncate(f->fd, size) != 0)
		return -1;
	f->file_len = size;
	mmf_update_limit(f);
	return 0;
}

/* Learn the file's length from the file itself. */
int mmf_relearn(struct mmapfile *f)
{
	struct stat st;
	if (mmf_sys.fstat(f->fd, &st) != 0)
		return -1;
	return st.st_size == f->file_len ? 0 : apply_length(f, st.st_size);
}

int mmf_recover(struct mmapfile *f)
{
	mmf_wrlock(f);
	int rc = restore_mapping(f);
	if (rc == 0)
		rc = mmf_relearn(f);
	mmf_unlock(f);
	return rc;
}
