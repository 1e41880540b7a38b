/* memfd.c - handles over memory: a memfd is a file with no name in any
 * directory, so everything a file handle does works on it unchanged, and
 * its descriptor can be passed to another process to map. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#define MMF_MEMFD_KNOWN (MMAPFILE_MEMFD_SEALABLE | MMAPFILE_MEMFD_HUGETLB)

mmapfile_t *mmapfile_memfd(const char *name, off_t size, unsigned int flags,
                           const struct mmapfile_options *opts)
{
	struct mmapfile_options o;
	if (size < 0 || (flags & ~MMF_MEMFD_KNOWN)) {
		errno = EINVAL;
		return NULL;
	}
	if (opts && mmf_options_read(opts, &o) != 0)
		return NULL;
	if (opts && (o.flags & MMAPFILE_OPT_PRIVATE)) {
		errno = EINVAL; /* writes that reach no one: surely a mistake */
		return NULL;
	}
	if (!name)
		name = "mmapfile";
	mmf_guard_install();
	struct mmapfile *f = mmf_handle_new(name, O_RDWR);
	if (!f) {
		errno = ENOMEM;
		return NULL;
	}
	unsigned int mfd = MFD_CLOEXEC;
	if (flags & MMAPFILE_MEMFD_SEALABLE)
		mfd |= MFD_ALLOW_SEALING;
	if (flags & MMAPFILE_MEMFD_HUGETLB)
		mfd |= MFD_HUGETLB;
	f->fd = memfd_create(name, mfd);
	f->fd_flags = -1; /* as memfd_create made it */
	f->sealable = (flags & MMAPFILE_MEMFD_SEALABLE) != 0;
	if (f->fd < 0 || mmf_attach(f, opts ? &o : NULL) != 0) {
		mmf_handle_abort(f);
		return NULL;
	}
	if (size > 0 && mmapfile_truncate(f, size) != 0) {
		int err = errno;
		mmapfile_close(f);
		errno = err;
		return NULL;
	}
	return f;
}
