/* options.c - what mmapfile_open_ex adds to an open: a private mapping,
 * prefaulting, prefetch, locking in RAM, huge pages, an access pattern and a
 * reserved maximum; kept after every growth of the mapping. */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

_Static_assert(sizeof(struct mmapfile_options) == MMAPFILE_OPTIONS_SIZE_VER0,
               "the first version's size is part of the ABI");

#define MMF_OPT_KNOWN (MMAPFILE_OPT_PRIVATE | MMAPFILE_OPT_POPULATE | MMAPFILE_OPT_LOCK | \
                       MMAPFILE_OPT_HUGEPAGE | MMAPFILE_OPT_NOHUGEPAGE)
#define MMF_OPT_HUGE_BOTH (MMAPFILE_OPT_HUGEPAGE | MMAPFILE_OPT_NOHUGEPAGE)

/* The struct's size says which version the caller knows: a shorter one
 * gets zeros for the fields it lacks, and a longer one's extra bytes must
 * be zero, as openat2(2) takes its struct open_how. */
int mmf_options_read(const struct mmapfile_options *in, struct mmapfile_options *out)
{
	memset(out, 0, sizeof *out);
	if (in->size < MMAPFILE_OPTIONS_SIZE_VER0) {
		errno = EINVAL;
		return -1;
	}
	if (in->size > MMAPFILE_OPTIONS_SIZE_MAX) {
		errno = E2BIG; /* as openat2(2): past a page, not even read */
		return -1;
	}
	const unsigned char *bytes = (const unsigned char *)in;
	for (size_t i = sizeof *out; i < in->size; i++)
		if (bytes[i]) {
			errno = E2BIG;
			return -1;
		}
	memcpy(out, in, in->size < sizeof *out ? (size_t)in->size : sizeof *out);
	if ((out->flags & ~MMF_OPT_KNOWN) || (out->flags & MMF_OPT_HUGE_BOTH) == MMF_OPT_HUGE_BOTH ||
	    out->prefetch < 0 || out->max_size < 0 ||
	    (out->advice != MMAPFILE_MADV_NORMAL && out->advice != MMAPFILE_MADV_RANDOM &&
	     out->advice != MMAPFILE_MADV_SEQUENTIAL)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

void mmf_options_apply(struct mmapfile *f, const struct mmapfile_options *o)
{
	f->private_map = (o->flags & MMAPFILE_OPT_PRIVATE) != 0;
	f->populate = (o->flags & MMAPFILE_OPT_POPULATE) != 0;
	f->lock_all = (o->flags & MMAPFILE_OPT_LOCK) != 0;
	f->max_size = o->max_size;
	if (f->private_map) {
		size_t mask = f->page - 1;
		f->private_file = ((size_t)f->file_len + mask) & ~mask;
	}
	/* Advice the mapping keeps through every remap (madvise.c). */
	if (o->advice != MMAPFILE_MADV_NORMAL)
		f->sticky[MMF_STICKY_PATTERN] = o->advice;
	if ((o->flags & MMAPFILE_OPT_HUGEPAGE) && !f->hugetlb)
		f->sticky[MMF_STICKY_HUGE] = MMAPFILE_MADV_HUGEPAGE;
	/* An aligned mapping gets PMD entries for PMD-sized folios even
	 * unadvised: opting out is MADV_NOHUGEPAGE, kept. */
	if ((o->flags & MMAPFILE_OPT_NOHUGEPAGE) && !f->hugetlb && mmf_pmd_size())
		f->sticky[MMF_STICKY_HUGE] = MMAPFILE_MADV_NOHUGEPAGE;
	/* A private handle's written pages are anonymous copies: no advice
	 * makes the kernel copy a PMD for a byte. */
	if (f->private_map)
		f->thp_default = false;
}

/* Bytes [0, len) rounded to whole pages, limited to what is mapped. */
static size_t mapped_span(const struct mmapfile *f, off_t len)
{
	size_t mask = f->page - 1;
	size_t end = ((size_t)len + mask) & ~mask;
	return end < f->map_len ? end : f->map_len;
}

int mmf_options_start(struct mmapfile *f, const struct mmapfile_options *o)
{
	/* The rest of a private handle's last file page follows the file (the
	 * page is shared until written), yet must read as zeros when the size
	 * grows: it is written now. */
	if (f->private_map && f->writable && f->base && (size_t)f->file_len < f->private_file)
		mmf_guarded_fill(f, f->base + f->file_len, f->base + f->file_len, NULL,
		                 f->private_file - (size_t)f->file_len);
	/* Advice the kernel refuses (huge pages without THP) fails the open
	 * here, rather than being dropped without a word at every remap. */
	if (f->base) {
		if (mmf_reapply_advice(f) != 0)
			return -1;
	} else if (o->flags & MMAPFILE_OPT_HUGEPAGE && !f->hugetlb &&
	           mmf_sys.madvise(NULL, 0, MMAPFILE_MADV_HUGEPAGE) != 0) {
		return -1;
	}
	if (mmf_keep_options(f) != 0)
		return -1;
	off_t ahead = o->prefetch < f->file_len ? o->prefetch : f->file_len;
	size_t span = f->base ? mapped_span(f, ahead) : 0;
	if (span && mmf_sys.madvise(f->base, span, MMAPFILE_MADV_WILLNEED) != 0)
		return -1;
	return 0;
}

/* Fault pages in: MADV_POPULATE_READ (Linux 5.14), else readahead.  Read,
 * not write: writing would dirty every page of a shared mapping, and copy
 * every page of a private one. */
static int populate(struct mmapfile *f, size_t from, size_t to)
{
	if (mmf_sys.madvise(f->base + from, to - from, MMAPFILE_MADV_POPULATE_READ) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	return mmf_sys.madvise(f->base + from, to - from, MMAPFILE_MADV_WILLNEED);
}

int mmf_keep_options(struct mmapfile *f)
{
	if (!f->base || !(f->populate || f->lock_all))
		return 0;
	size_t end = mapped_span(f, f->file_len);
	if (f->populate && f->prefaulted < end) {
		if (populate(f, f->prefaulted, end) != 0)
			return -1;
		f->prefaulted = end;
	}
	if (f->lock_all && f->locked < end) {
		if (mmf_lock_pages(f->base + f->locked, end - f->locked) != 0) {
			/* Nothing half-locked: a refused mlock may have locked some. */
			int err = errno;
			mmf_unlock_pages(f->base + f->locked, end - f->locked);
			errno = err;
			return -1;
		}
		f->locked = end;
	}
	return 0;
}
