/* touch.c - which way a read goes: through the mapping, or through
 * pread(2) into the same page cache (large reads of what the handle has not
 * read; random reads past memory, further down).
 *
 * Through the mapping, a read's first touch of each page behind a 4 KiB PTE
 * costs a fault, and on some machines far more than the copy: 1.6-2 us a
 * page on the AMD EPYC VM (DESIGN.md, "The cheaper path per call"), eight
 * times what pread(2) takes for the same MiB.  A page touched once costs
 * nothing more.  So the handle keeps, per 64 KiB of the file, whether it has
 * read it and how: a large read of a stretch it has not read goes through
 * pread(2); a stretch read a second time goes through the mapping (a program
 * that reads it again is likely to go on reading it), and from then on
 * always does. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MMF_TOUCH_SHIFT 16
/* Past this many chunks (16 TiB) nothing is recorded: the mapping. */
#define MMF_TOUCH_MAX ((size_t)1 << 28)

enum { UNREAD = 0, READ_ONCE = 1, MAPPED = 2 };

struct mmf_touch {
	size_t n;                 /* chunks covered */
	struct mmf_touch *older;  /* smaller tables, freed at close */
	_Atomic unsigned char state[];
};

/* The table covering chunk last, grown geometrically.  Threads may grow it
 * at once: one table wins, and a state set in an older one meanwhile may be
 * lost, which costs a read through the other path, never a wrong byte. */
static struct mmf_touch *table_for(struct mmapfile *f, size_t last)
{
	struct mmf_touch *t = atomic_load_explicit(&f->touch, memory_order_acquire);
	while (!t || last >= t->n) {
		size_t old_n = t ? t->n : 0;
		size_t n = last + 1 > 2 * old_n ? last + 1 : 2 * old_n;
		size_t file = (size_t)((uint64_t)f->file_len >> MMF_TOUCH_SHIFT) + 1;
		if (n < file && file <= MMF_TOUCH_MAX)
			n = file;
		struct mmf_touch *nt = calloc(1, sizeof *nt + n);
		if (!nt)
			return NULL;
		nt->n = n;
		nt->older = t;
		for (size_t i = 0; i < old_n; i++)
			atomic_store_explicit(&nt->state[i],
			                      atomic_load_explicit(&t->state[i], memory_order_relaxed),
			                      memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&f->touch, &t, nt, memory_order_acq_rel,
		                                            memory_order_acquire))
			return nt;
		free(nt);
	}
	return t;
}

bool mmf_read_by_kernel(struct mmapfile *f, off_t off, size_t n, off_t size)
{
	if (off >= size)
		return false;
	off_t end = (off_t)n < size - off ? off + (off_t)n : size;
	size_t first = (size_t)((uint64_t)off >> MMF_TOUCH_SHIFT);
	size_t last = (size_t)((uint64_t)(end - 1) >> MMF_TOUCH_SHIFT);
	if (last >= MMF_TOUCH_MAX)
		return false;
	struct mmf_touch *t = table_for(f, last);
	if (!t)
		return false;
	bool unread = false;
	for (size_t i = first; i <= last && !unread; i++)
		unread = atomic_load_explicit(&t->state[i], memory_order_relaxed) == UNREAD;
	unsigned char to = unread ? READ_ONCE : MAPPED;
	for (size_t i = first; i <= last; i++)
		if (atomic_load_explicit(&t->state[i], memory_order_relaxed) < to)
			atomic_store_explicit(&t->state[i], to, memory_order_relaxed);
	return unread;
}

void mmf_touch_free(struct mmapfile *f)
{
	struct mmf_touch *t = atomic_load_explicit(&f->touch, memory_order_relaxed);
	while (t) {
		struct mmf_touch *older = t->older;
		free(t);
		t = older;
	}
	atomic_store_explicit(&f->touch, NULL, memory_order_relaxed);
}

/* Random reads past memory.  Through the mapping, a random read of a page
 * not in memory is a fault that reads in the kernel's read-around, a whole
 * PMD where the mapping has huge pages; pread(2) reads in about the page (the
 * kernel's readahead sees the pattern).  So random reads sample whether their
 * pages are in memory with mincore(2): the first one, and then every gap-th,
 * the gap doubling while samples find the pages there (up to
 * MMF_SAMPLE_GAP_MAX, so that a warm file pays one call in a thousand reads)
 * and back to MMF_SAMPLE_GAP once one does not.  A sample not in memory makes
 * the handle cold: random reads go through pread(2), and the mapping is
 * advised RANDOM without huge pages (madvise.c), for the small reads that
 * still take it.  Not while the file fits in memory (half of what
 * memory_room says): there the mapping's read-around brings it in sooner, a
 * PMD a fault (3x pread(2) on a cold 256 MiB file).  MMF_WARM_SAMPLES
 * samples in memory in a row, or MMF_SEQ_READS sequential reads in a row,
 * make it warm again. */
#define MMF_SAMPLE_GAP 8u
#define MMF_SAMPLE_GAP_MAX 1024u
#define MMF_WARM_SAMPLES 4u
#define MMF_SEQ_READS 16u
#define MMF_SAMPLE_PAGES 16u

/* 1: every page of the read (its first MMF_SAMPLE_PAGES) is in memory; 0:
 * one is not; -1: cannot tell. */
static int in_memory(struct mmapfile *f, off_t off, size_t n)
{
	unsigned char vec[MMF_SAMPLE_PAGES];
	int res = -1, saved = errno;
	mmf_rdlock(f);
	off_t start = off & ~(off_t)(f->page - 1);
	size_t len = n + (size_t)(off - start);
	if (len > MMF_SAMPLE_PAGES * f->page)
		len = MMF_SAMPLE_PAGES * f->page;
	if (f->base && (uint64_t)start + len <= f->map_len &&
	    mmf_sys.mincore(f->base + start, len, vec) == 0) {
		res = 1;
		for (size_t i = 0; i < (len + f->page - 1) / f->page; i++)
			if (!(vec[i] & 1))
				res = 0;
	}
	mmf_unlock(f);
	errno = saved;
	return res;
}

/* ---- the memory the page cache has: past it, a file does not fit ---- */

/* The smallest memory limit of the cgroup at dir + path and those above it
 * (file: memory.max in v2, memory.limit_in_bytes in v1); UINT64_MAX for none. */
static uint64_t cgroup_limit(const char *dir, char *path, const char *file)
{
	uint64_t lim = UINT64_MAX;
	char p[4096];
	for (;;) {
		snprintf(p, sizeof p, "%s%s/%s", dir, path, file);
		uint64_t v = mmf_read_number(p, NULL);
		if (v && v < lim)
			lim = v;
		char *slash = strrchr(path, '/');
		if (!slash || (slash == path && !path[1]))
			return lim;
		slash[slash == path] = 0; /* "/a/b" -> "/a" -> "/" */
	}
}

/* Bytes the page cache may hold for this process: MemAvailable, and no more
 * than its memory cgroup's limit (v2, or v1's memory controller). */
static uint64_t memory_room(void)
{
	int saved = errno; /* a file that is not there is no error of the call's */
	uint64_t room = mmf_read_number("/proc/meminfo", "MemAvailable") * 1024;
	char text[4096];
	int fd = mmf_sys.open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC, 0);
	ssize_t n = fd >= 0 ? mmf_sys.pread(fd, text, sizeof text - 1, 0) : -1;
	if (fd >= 0)
		mmf_sys.close(fd);
	for (char *line = n > 0 ? (text[n] = 0, text) : NULL, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b || b[1] != '/')
			continue;
		*b = 0;
		uint64_t lim = UINT64_MAX;
		if (!strcmp(a + 1, "")) /* v2: "0::/path" */
			lim = cgroup_limit("/sys/fs/cgroup", b + 1, "memory.max");
		else if (strstr(a + 1, "memory"))
			lim = cgroup_limit("/sys/fs/cgroup/memory", b + 1, "memory.limit_in_bytes");
		if (lim < room || !room)
			room = lim;
	}
	errno = saved;
	return room;
}

/* memory_room, read again at most once a second (the process's, not a
 * handle's); 0 when it cannot be told. */
static uint64_t memory_room_now(void)
{
	static _Atomic uint64_t room, at;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	uint64_t now = (uint64_t)ts.tv_sec + 1;
	if (atomic_load_explicit(&at, memory_order_relaxed) != now) {
		atomic_store_explicit(&room, memory_room(), memory_order_relaxed);
		atomic_store_explicit(&at, now, memory_order_relaxed);
	}
	return atomic_load_explicit(&room, memory_order_relaxed);
}

/* Each thread's own trace of its reads of the last handle it read: where
 * the last ended, random reads since its last sample, sequential ones in a
 * row.  Per thread, so that threads reading one handle neither share a line
 * written on every read nor make each other's sequential reads look random. */
static __thread struct {
	const struct mmapfile *f;
	off_t end;
	unsigned since, seq;
} trace __attribute__((tls_model("initial-exec")));

static void set_cold(struct mmapfile *f, bool cold)
{
	if (atomic_exchange_explicit(&f->pattern.cold, cold, memory_order_relaxed) == cold)
		return;
	atomic_store_explicit(&f->pattern.warm, 0, memory_order_relaxed);
	trace.seq = 0;
	mmf_advise_cold(f);
}

bool mmf_read_cold(struct mmapfile *f, off_t off, size_t n)
{
	if (f->private_map || f->hugetlb || f->mapless || !atomic_load_explicit(&f->view, memory_order_relaxed))
		return false;
	if (trace.f != f) { /* a first read at 0 is sequential */
		trace.f = f;
		trace.end = 0;
		trace.since = trace.seq = 0;
	}
	bool sequential = off == trace.end;
	trace.end = off + (off_t)n;
	bool cold = atomic_load_explicit(&f->pattern.cold, memory_order_relaxed);
	if (sequential) {
		if (cold && ++trace.seq >= MMF_SEQ_READS)
			set_cold(f, false);
		return false;
	}
	trace.seq = 0;
	unsigned gap = atomic_load_explicit(&f->pattern.gap, memory_order_relaxed);
	if (trace.since && trace.since < (gap ? gap : MMF_SAMPLE_GAP)) {
		trace.since++;
		return cold;
	}
	trace.since = 1;
	int res = in_memory(f, off, n);
	/* Pages not in memory of a file that fits: the mapping's read-around
	 * (a PMD at a time) brings it in sooner than pread would. */
	uint64_t room = res == 0 && !cold ? memory_room_now() : 0;
	if (res == 0 && !cold && room && (uint64_t)mmf_size(f) <= room / 2) {
		gap = MMF_SAMPLE_GAP;
	} else if (res == 0) {
		gap = MMF_SAMPLE_GAP;
		set_cold(f, cold = true);
		atomic_store_explicit(&f->pattern.warm, 0, memory_order_relaxed);
	} else if (res == 1) {
		gap = cold || gap < MMF_SAMPLE_GAP ? MMF_SAMPLE_GAP : gap < MMF_SAMPLE_GAP_MAX ? 2 * gap : gap;
		if (cold && atomic_fetch_add_explicit(&f->pattern.warm, 1, memory_order_relaxed) + 1 >= MMF_WARM_SAMPLES)
			set_cold(f, cold = false);
	}
	if (gap != atomic_load_explicit(&f->pattern.gap, memory_order_relaxed))
		atomic_store_explicit(&f->pattern.gap, gap, memory_order_relaxed);
	return cold;
}
