/* madvise.c - the MADV_* constants, their names, and advice on a handle. */
#include "internal.h"

#include <errno.h>
#include <sys/mman.h>

#define ADVICE(name) { MMAPFILE_MADV_##name, "MADV_" #name }
static const struct {
	int value;
	const char *name;
} advice_names[] = {
	ADVICE(NORMAL), ADVICE(RANDOM), ADVICE(SEQUENTIAL), ADVICE(WILLNEED),
	ADVICE(DONTNEED), ADVICE(FREE), ADVICE(REMOVE), ADVICE(DONTFORK),
	ADVICE(DOFORK), ADVICE(MERGEABLE), ADVICE(UNMERGEABLE), ADVICE(HUGEPAGE),
	ADVICE(NOHUGEPAGE), ADVICE(DONTDUMP), ADVICE(DODUMP), ADVICE(WIPEONFORK),
	ADVICE(KEEPONFORK), ADVICE(COLD), ADVICE(PAGEOUT), ADVICE(POPULATE_READ),
	ADVICE(POPULATE_WRITE), ADVICE(DONTNEED_LOCKED), ADVICE(COLLAPSE),
	ADVICE(HWPOISON), ADVICE(SOFT_OFFLINE), ADVICE(GUARD_INSTALL),
	ADVICE(GUARD_REMOVE),
};
#define N_ADVICE (sizeof advice_names / sizeof advice_names[0])

const char *mmapfile_madvise_name(int advice)
{
	for (size_t i = 0; i < N_ADVICE; i++)
		if (advice_names[i].value == advice)
			return advice_names[i].name;
	return NULL;
}

/* Compare ignoring case and reading '-' as '_'. */
static bool same_name(const char *a, const char *b)
{
	for (;; a++, b++) {
		char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;
		if ((x | 0x20) != (y | 0x20) && !(x == '_' && y == '_'))
			return false;
		if (!x || !y)
			return x == y;
	}
}

/* s past prefix (compared as same_name does), or s when it does not start so. */
static const char *skip_prefix(const char *s, const char *prefix)
{
	const char *p = s;
	for (; *prefix; p++, prefix++) {
		char x = *p == '-' ? '_' : *p;
		if (!x || (x | 0x20) != (*prefix | 0x20))
			return s;
	}
	return p;
}

int mmapfile_madvise_parse(const char *s)
{
	if (s) {
		s = skip_prefix(skip_prefix(s, "MMAPFILE_"), "MADV_");
		for (size_t i = 0; i < N_ADVICE; i++)
			if (same_name(s, advice_names[i].name + 5))
				return advice_names[i].value;
	}
	errno = EINVAL;
	return -1;
}

/* Which lasting property of the mapping the advice sets, or -1. */
static int sticky_kind(int advice)
{
	switch (advice) {
	case MMAPFILE_MADV_NORMAL:
	case MMAPFILE_MADV_RANDOM:
	case MMAPFILE_MADV_SEQUENTIAL:
		return MMF_STICKY_PATTERN;
	case MMAPFILE_MADV_DONTFORK:
	case MMAPFILE_MADV_DOFORK:
		return MMF_STICKY_FORK;
	case MMAPFILE_MADV_WIPEONFORK:
	case MMAPFILE_MADV_KEEPONFORK:
		return MMF_STICKY_WIPE;
	case MMAPFILE_MADV_MERGEABLE:
	case MMAPFILE_MADV_UNMERGEABLE:
		return MMF_STICKY_MERGE;
	case MMAPFILE_MADV_HUGEPAGE:
	case MMAPFILE_MADV_NOHUGEPAGE:
		return MMF_STICKY_HUGE;
	case MMAPFILE_MADV_DONTDUMP:
	case MMAPFILE_MADV_DODUMP:
		return MMF_STICKY_DUMP;
	default:
		return -1;
	}
}

/* Reads found random and past memory (touch.c), where the program chose no
 * pattern: RANDOM, and no huge pages (a fault of a huge-advised mapping
 * reads a whole PMD in, whatever the pattern), for as long as they are. */
static bool auto_random(const struct mmapfile *f)
{
	return f->sticky[MMF_STICKY_PATTERN] < 0 && atomic_load_explicit(&f->pattern.cold, memory_order_relaxed);
}

/* The default for a mapping of a PMD or more where the program chose
 * nothing about huge pages: MADV_HUGEPAGE, or MADV_NOHUGEPAGE once it said
 * its reads are random (a fault of a huge-advised mapping reads a whole PMD
 * in).  No one asked for it, so a refusal is no one's error. */
static void thp_default_advice(struct mmapfile *f)
{
	size_t pmd = mmf_pmd_size();
	if (!f->base || !f->thp_default || !pmd || f->map_len < pmd || f->sticky[MMF_STICKY_HUGE] >= 0)
		return;
	bool random = f->sticky[MMF_STICKY_PATTERN] == MMAPFILE_MADV_RANDOM || auto_random(f);
	int saved = errno;
	mmf_sys.madvise(f->base, f->map_len, random ? MMAPFILE_MADV_NOHUGEPAGE : MMAPFILE_MADV_HUGEPAGE);
	errno = saved;
}

/* After the mapping grew or moved (map_lock held exclusively): 0, or -1
 * and the first refusal's errno (the rest is given all the same). */
int mmf_reapply_advice(struct mmapfile *f)
{
	int err = 0;
	thp_default_advice(f);
	for (int i = 0; i < MMF_STICKY_COUNT; i++)
		if (f->sticky[i] >= 0 && mmf_sys.madvise(f->base, f->map_len, f->sticky[i]) != 0 && !err)
			err = errno;
	if (auto_random(f)) { /* the library's own advice: a refusal is no one's error */
		int saved = errno;
		mmf_sys.madvise(f->base, f->map_len, MMAPFILE_MADV_RANDOM);
		errno = saved;
	}
	if (err)
		errno = err;
	return err ? -1 : 0;
}

void mmf_advise_cold(struct mmapfile *f)
{
	int saved = errno; /* advice no one asked for: a refusal is no one's error */
	mmf_rdlock(f);
	if (f->base && f->sticky[MMF_STICKY_PATTERN] < 0) {
		mmf_sys.madvise(f->base, f->map_len, auto_random(f) ? MMAPFILE_MADV_RANDOM : MMAPFILE_MADV_NORMAL);
		thp_default_advice(f);
	}
	mmf_unlock(f);
	errno = saved;
}

/* The kernel's verdict on the advice alone: a zero-length range is accepted
 * exactly when the advice is. */
static int advise_nothing(int advice)
{
	return mmf_sys.madvise(NULL, 0, advice);
}

/* Lasting advice for the whole file: the whole mapping, reserve included,
 * so that growth within it keeps the advice too; recorded for remaps. */
static int advise_lasting(struct mmapfile *f, int kind, int advice)
{
	mmf_wrlock(f);
	int rc = f->base ? mmf_sys.madvise(f->base, f->map_len, advice) : advise_nothing(advice);
	if (rc == 0) {
		f->sticky[kind] = advice;
		if (kind == MMF_STICKY_PATTERN)
			thp_default_advice(f);
		/* Earlier regions still map the file: the advice holds there too
		 * (the current one took it, so they can). */
		for (struct mmf_region *r = f->retired; r; r = r->older)
			if (r->mapped)
				mmf_sys.madvise(r->base, r->mapped, advice);
	}
	mmf_unlock(f);
	return rc;
}

/* Advice that throws pages' contents away: harmless over a shared mapping
 * (they come back from the file), data loss over a private one. */
static bool discards(int advice)
{
	return advice == MMAPFILE_MADV_DONTNEED || advice == MMAPFILE_MADV_FREE ||
	       advice == MMAPFILE_MADV_REMOVE || advice == MMAPFILE_MADV_DONTNEED_LOCKED;
}

/* A range of the file; one that starts past the mapping is not mapped. */
static int advise_range(struct mmapfile *f, off_t off, size_t len, int advice)
{
	mmf_rdlock(f);
	off_t page_mask = (off_t)f->page - 1;
	/* The pages that hold the file: the mapping may reach further, over a
	 * reserve that sync trimmed, and advice there would see no file. */
	off_t size_pages = (mmf_size(f) + page_mask) & ~page_mask;
	off_t extent = size_pages < (off_t)f->map_len ? size_pages : (off_t)f->map_len;
	off_t start = off & ~page_mask;
	off_t end = len ? off + (off_t)len : mmf_size(f);
	end = end > extent - page_mask ? extent : (end + page_mask) & ~page_mask;
	int rc;
	if (f->no_memory) {
		rc = advise_nothing(advice); /* no mapping to give it to, for want of memory */
	} else if (start >= extent && (off > 0 || len > 0)) {
		errno = ENOMEM; /* what the kernel says of an unmapped range */
		rc = -1;
	} else if (end <= start) {
		rc = advise_nothing(advice);
	} else {
		rc = mmf_sys.madvise(f->base + start, (size_t)(end - start), advice);
	}
	mmf_unlock(f);
	return rc;
}

int mmapfile_madvise(mmapfile_t *f, off_t off, size_t len, int advice)
{
	if (!f || off < 0 || len > (size_t)MMF_OFF_MAX || (off_t)len > MMF_OFF_MAX - off) {
		errno = EINVAL;
		return -1;
	}
	if (advice == MMAPFILE_MADV_GUARD_INSTALL || (f->private_map && discards(advice))) {
		/* Guard pages would turn the library's own copies into SIGSEGV;
		 * a private handle's bytes exist only in its pages. */
		errno = EINVAL;
		return -1;
	}
	mmf_wrlock(f);
	/* Advice is about a mapping: make it, over growth not mapped yet too
	 * (an O_APPEND handle's appends). */
	if (!f->mapless && mmf_size(f) > 0 && (!f->base || (uint64_t)mmf_size(f) > f->map_len))
		mmf_map_to(f, f->file_len);
	mmf_unlock(f);
	int kind = sticky_kind(advice);
	if (off == 0 && len == 0 && kind >= 0)
		return advise_lasting(f, kind, advice);
	return advise_range(f, off, len, advice);
}
