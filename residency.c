/* residency.c - which pages of the file are in RAM (mincore(2)), and keeping
 * them there (mlock(2)).  Everything runs under map_lock held exclusively. */
#include "internal.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The system calls themselves: the sanitizers' mlock and munlock do nothing. */
int mmf_lock_pages(const void *p, size_t n)
{
#ifdef SYS_mlock
	return (int)syscall(SYS_mlock, p, n);
#else
	return mlock(p, n);
#endif
}

int mmf_unlock_pages(const void *p, size_t n)
{
#ifdef SYS_munlock
	return (int)syscall(SYS_munlock, p, n);
#else
	return munlock(p, n);
#endif
}

/* Bytes [off, off + len) (len 0: up to limit) cut at limit, widened to whole
 * pages and kept inside the mapped bytes: [*start, *end).  False when that
 * leaves nothing. */
static bool page_span(const struct mmapfile *f, off_t off, size_t len, off_t limit,
                      size_t mapped, off_t *start, off_t *end)
{
	off_t mask = (off_t)f->page - 1;
	if (off >= limit)
		return false;
	off_t e = len && (off_t)len < limit - off ? off + (off_t)len : limit;
	*start = off & ~mask;
	*end = e > (off_t)mapped - mask ? (off_t)mapped : (e + mask) & ~mask;
	return *start < *end;
}

/* Check the arguments and take the lock, with the file mapped when map is
 * set (small files are mapped when first used).  0 with the lock held, or -1. */
static int begin(struct mmapfile *f, off_t off, size_t len, bool map)
{
	if (!f || off < 0 || len > (size_t)MMF_OFF_MAX || (off_t)len > MMF_OFF_MAX - off) {
		errno = EINVAL;
		return -1;
	}
	/* Pages the fault guard patched are anonymous: put the file back first. */
	if (mmf_patched(f) && mmf_recover(f) != 0)
		return -1;
	mmf_wrlock(f);
	int err = 0;
	if (f->mapless)
		err = ENODEV;
	else if (map && !f->base && mmf_size(f) > 0 && mmf_map_to(f, f->file_len) != 0)
		err = errno;
	if (err) {
		mmf_unlock(f);
		errno = err;
		return -1;
	}
	return 0;
}

off_t mmapfile_resident(mmapfile_t *f, off_t off, size_t len)
{
	if (begin(f, off, len, true) != 0)
		return -1;
	off_t size = mmf_size(f), page = (off_t)f->page, start, end, total = 0;
	/* mincore(2) answers per system page, also inside a huge page: the
	 * huge page is resident when its first system page is. */
	size_t step = f->page / f->sys_page;
	if (page_span(f, off, len, size, f->map_len, &start, &end)) {
		unsigned char vec[4096];
		while (start < end) {
			size_t n = (size_t)((end - start) / page);
			if (n > sizeof vec / step)
				n = sizeof vec / step;
			if (mincore(f->base + start, n * f->page, vec) != 0) {
				total = -1;
				break;
			}
			/* Whole pages; the file's last one only up to its end. */
			for (size_t i = 0; i < n; i++, start += page)
				if (vec[i * step] & 1)
					total += size - start < page ? size - start : page;
		}
	}
	mmf_unlock(f);
	return total;
}

int mmapfile_lock(mmapfile_t *f, off_t off, size_t len)
{
	if (begin(f, off, len, true) != 0)
		return -1;
	off_t start, end;
	int rc = 0;
	if (page_span(f, off, len, mmf_size(f), f->map_len, &start, &end) &&
	    (rc = mmf_lock_pages(f->base + start, (size_t)(end - start))) != 0) {
		/* mlock(2) may have locked part of the range before it failed. */
		int err = errno;
		mmf_unlock_pages(f->base + start, (size_t)(end - start));
		errno = err;
	}
	mmf_unlock(f);
	return rc;
}

/* Limited to what is mapped rather than to the file's size, so that pages
 * locked before the file shrank are let go too; and in every region, so
 * that those locked before the mapping moved are. */
int mmapfile_unlock(mmapfile_t *f, off_t off, size_t len)
{
	if (begin(f, off, len, false) != 0)
		return -1;
	off_t start, end;
	int rc = 0;
	if (page_span(f, off, len, (off_t)f->map_len, f->map_len, &start, &end))
		rc = mmf_unlock_pages(f->base + start, (size_t)(end - start));
	for (struct mmf_region *r = f->retired; r && rc == 0; r = r->older)
		if (page_span(f, off, len, (off_t)r->mapped, r->mapped, &start, &end))
			rc = mmf_unlock_pages(r->base + start, (size_t)(end - start));
	mmf_unlock(f);
	return rc;
}
