/* view.c - zero-copy views: pointers into the mapping, handed out and
 * taken back.  The mapping never moves or shrinks while the handle is open
 * (map.c), so a view needs no pinning; what it needs is that this handle
 * does not cut the file from under it. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

static void *fail_view(struct mmf_held *h, int err)
{
	free(h);
	errno = err;
	return NULL;
}

void *mmapfile_view(mmapfile_t *f, off_t off, size_t len)
{
	if (!f || off < 0 || len == 0 || len > (size_t)MMF_OFF_MAX || (off_t)len > MMF_OFF_MAX - off)
		return fail_view(NULL, EINVAL);
	struct mmf_held *h = malloc(sizeof *h);
	if (!h)
		return fail_view(NULL, ENOMEM);
	/* Pages the fault guard patched are anonymous: put the file back first. */
	if (mmf_patched(f) && mmf_recover(f) != 0)
		return fail_view(h, errno);
	mmf_wrlock(f);
	off_t end = off + (off_t)len;
	int err = 0;
	if (f->mapless)
		err = f->no_memory ? ENOMEM : EACCES; /* no address space left; not open for reading */
	else if (end > mmf_size(f) && mmf_relearn(f) != 0) /* grown by another process? */
		err = errno;
	else if (end > mmf_size(f))
		err = ENXIO;
	else if (!f->base && mmf_map_to(f, f->file_len) != 0)
		err = errno;
	else if ((size_t)end > f->map_len && mmf_map_to(f, f->file_len) != 0)
		err = errno; /* growth not mapped yet (an O_APPEND handle's) */
	else if ((size_t)end > f->map_len)
		err = ENXIO;
	if (!err) {
		*h = (struct mmf_held){ .ptr = f->base + off, .off = off, .end = end, .next = f->held };
		f->held = h;
		if (f->writable && !f->private_map)
			mmf_mark_dirty(f, off, end);
	}
	mmf_unlock(f);
	return err ? fail_view(h, err) : h->ptr;
}

int mmapfile_release(mmapfile_t *f, void *view)
{
	if (!f || !view) {
		errno = EINVAL;
		return -1;
	}
	mmf_wrlock(f);
	/* Views of one offset share a pointer: take back the shortest, so
	 * that the ones left cover whatever the caller may still hold. */
	struct mmf_held **p = NULL;
	for (struct mmf_held **q = &f->held; *q; q = &(*q)->next)
		if ((*q)->ptr == view && (!p || (*q)->end < (*p)->end))
			p = q;
	struct mmf_held *h = p ? *p : NULL;
	if (h) {
		*p = h->next;
		/* What the caller wrote through it is for the next flush. */
		if (f->writable && !f->private_map)
			mmf_mark_dirty(f, h->off, h->end);
	}
	mmf_unlock(f);
	if (!h) {
		errno = EINVAL;
		return -1;
	}
	free(h);
	return 0;
}

bool mmf_views_past(const struct mmapfile *f, off_t size)
{
	for (const struct mmf_held *h = f->held; h; h = h->next)
		if (h->end > size)
			return true;
	return false;
}
