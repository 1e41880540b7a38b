/* seek.c - the cursor. */
#include "internal.h"

#include <errno.h>
#include <unistd.h>

/* Past the end, ask the kernel whether the file system allows the offset
 * (lseek's EINVAL beyond its largest file); the descriptor's own offset is
 * otherwise unused, so moving it costs nothing else. */
static int offset_allowed(struct mmapfile *f, off_t pos)
{
	if (pos <= mmf_size(f))
		return 0;
	return mmf_sys.lseek(f->fd, pos, SEEK_SET) < 0 ? -1 : 0;
}

off_t mmapfile_seek(mmapfile_t *f, off_t off, int whence)
{
	if (!f || (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)) {
		errno = EINVAL;
		return -1;
	}
	if (whence == SEEK_END && mmf_refresh(f) != 0)
		return -1;
	bool locked = mmf_cursor_lock(f);
	off_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->cursor : mmf_size(f);
	off_t pos = -1;
	if ((off > 0 && base > MMF_OFF_MAX - off) || base + off < 0)
		errno = EINVAL;
	else if (offset_allowed(f, base + off) == 0)
		pos = f->cursor = base + off;
	mmf_cursor_unlock(f, locked);
	return pos;
}
