/* truncate.c - setting the size. */
#include "internal.h"

#include <errno.h>

static int set_size(struct mmapfile *f, off_t size)
{
	off_t cur = mmf_size(f);
	if (size >= cur && size <= f->file_len) {
		/* Within the reserve, which is zeros already. */
		mmf_set_size(f, size);
		return 0;
	}
	if (size < cur) {
		if (mmf_views_past(f, size)) {
			errno = EBUSY; /* a view held would point past the end */
			return -1;
		}
		return mmf_cut(f, size);
	}
	if (mmf_grow(f, cur, size, false) != 0)
		return -1;
	mmf_set_size(f, size);
	return 0;
}

int mmapfile_truncate(mmapfile_t *f, off_t size)
{
	if (!f || !f->writable || size < 0) {
		errno = EINVAL;
		return -1;
	}
	mmf_wrlock(f);
	/* The reserve is zeros only while the file ends where this handle
	 * left it: learn first what another process did to the length. */
	int rc = mmf_relearn(f);
	if (rc == 0) {
		/* No lock-free write may move the size while it is decided. */
		mmf_cut_begin(f);
		rc = set_size(f, size);
		mmf_cut_end(f);
	}
	mmf_unlock(f);
	return rc;
}
