/* map.c - the mapping and the file's length on disk.
 *
 * Everything here runs with map_lock held exclusively, except mmf_refresh
 * and mmf_recover, which take it.  Invariants: bytes [size, file_len) are
 * zeros (the reserve); the mapping covers [0, limit) and
 * limit = min(file_len, map_len) (file_len without a mapping). */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

/* The reserve (file length past the size) grows geometrically from 64 KiB
 * and is never more than one 2 MiB step: that is all a killed program can
 * leave behind and all another process can see (spec, point 8).  At 2 MiB
 * an append of 64-byte records makes one fallocate(2) per 32,768 records. */
#define MMF_RESERVE_MIN ((off_t)64 << 10)
#define MMF_RESERVE_MAX ((off_t)2 << 20)
#define MMF_LOCKED_RESERVE_MAX ((off_t)1 << 20)
/* Once a reserve was refused for want of space, growth asks for the page
 * the write ends in (what write(2) would allocate), and tries a whole step
 * again only every this many growths: a nearly full disk costs one
 * fallocate(2) a page, not a failing call and its cleanup a record. */
#define MMF_SHORT_RETRY 256

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

/* len rounded up to the handle's page, where that stays an off_t. */
static off_t round_len(const struct mmapfile *f, off_t len)
{
	off_t mask = (off_t)f->page - 1;
	return len <= MMF_OFF_MAX - mask ? (len + mask) & ~mask : len;
}

/* Publish the current mapping for lock-free copies (none without one, or
 * when there is no memory to describe it: copies then take the lock). */
static void publish_view(struct mmapfile *f)
{
	struct mmf_view *v = NULL;
	if (f->base && !f->mapless && (v = malloc(sizeof *v))) {
		*v = (struct mmf_view){ .base = f->base, .len = f->map_len, .older = f->views };
		f->views = v;
	}
	atomic_store_explicit(&f->view, v, memory_order_release);
}

/* Set the current region aside, mapped, until close: a copy without the
 * lock may still be inside it. */
static int retire_region(struct mmapfile *f)
{
	if (!f->base)
		return 0;
	struct mmf_region *r = malloc(sizeof *r);
	if (!r)
		return -1;
	*r = (struct mmf_region){ .base = f->base, .mapped = f->map_len, .reserved = f->reserved,
	                          .older = f->retired };
	if (f->locked)
		mmf_unlock_pages(f->base, f->locked); /* mapped still, not locked twice */
	f->locked = f->prefaulted = 0;
	f->retired = r;
	f->base = NULL;
	f->map_len = f->reserved = 0;
	return 0;
}

/* Copy n bytes from src (or zeros, src NULL) to dst, with the fault guard
 * over map_side, the side in the mapping: bytes whose file another process
 * cut read as zeros, and writes to them are dropped, as they would be. */
void mmf_guarded_fill(struct mmapfile *f, const char *map_side, char *dst, const char *src, size_t n)
{
	struct mmf_guard *g = &mmf_guard_self;
	g->lo = (uintptr_t)map_side;
	g->hi = (uintptr_t)map_side + n;
	atomic_store_explicit(&g->f, f, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	if (src)
		memcpy(dst, src, n);
	else
		memset(dst, 0, n);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&g->f, NULL, memory_order_release);
}

/* The end of the last non-zero byte of [from, to) in the mapping, or from
 * when all are zeros; under the fault guard (a page another process cut
 * reads as zeros).  Only pages in RAM are looked at: a page of the file
 * that is in none was written by no one since it was allocated, and
 * faulting it in would allocate it for nothing. */
static off_t last_written(struct mmapfile *f, off_t from, off_t to)
{
	size_t pg = f->sys_page;
	uintptr_t lo = ((uintptr_t)f->base + (size_t)from) & ~(uintptr_t)(pg - 1);
	size_t pages = ((uintptr_t)f->base + (size_t)to - lo + pg - 1) / pg;
	unsigned char *in = pages ? malloc(pages) : NULL;
	/* Not known which are in RAM: every page is looked at. */
	if (in && mmf_sys.mincore((void *)lo, pages * pg, in) != 0) {
		free(in);
		in = NULL;
	}
	const char *start = f->base + from, *p = f->base + to;
	struct mmf_guard *g = &mmf_guard_self;
	g->lo = (uintptr_t)start;
	g->hi = (uintptr_t)p;
	atomic_store_explicit(&g->f, f, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	while (p > start) {
		size_t i = ((uintptr_t)p - 1 - lo) / pg;
		const char *page = (const char *)(lo + i * pg);
		const char *stop = page > start ? page : start;
		if (!in || (in[i] & 1)) {
			while (p > stop && !p[-1])
				p--;
			if (p > stop)
				break;
		}
		p = stop;
	}
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&g->f, NULL, memory_order_release);
	free(in);
	return from + (off_t)(p - start);
}

/* Map the handle's bytes [off, off + len) at addr, over what is there.  A
 * private handle maps the file copy-on-write as far as the file reached at
 * open, and anonymous zeros past that. */
static int map_fixed(struct mmapfile *f, char *addr, size_t off, size_t len, size_t file_end)
{
	if (!f->private_map)
		return mmf_sys.mmap(addr, len, f->prot, MAP_SHARED | MAP_FIXED, f->fd, (off_t)off) ==
		               MAP_FAILED ? -1 : 0;
	size_t file_part = off < file_end ? file_end - off : 0;
	if (file_part > len)
		file_part = len;
	if (file_part && mmf_sys.mmap(addr, file_part, f->prot, MAP_PRIVATE | MAP_FIXED, f->fd,
	                              (off_t)off) == MAP_FAILED)
		return -1;
	if (len > file_part && mmf_sys.mmap(addr + file_part, len - file_part, f->prot,
	                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -1;
	return 0;
}

/* The regions of every handle.  Each is up to two of the process's
 * mappings (the file's and the address space reserved after it), and the
 * kernel allows vm.max_map_count mappings in all (65530 by default), which
 * the program needs too (malloc among them): past 1,024 regions, the
 * library takes no more than a quarter of that in regions (half the maps),
 * and further handles go on without a mapping (mmf_go_mapless). */
#define MMF_REGIONS_FREE 1024
static _Atomic long regions_live;

static long region_budget(void)
{
	static _Atomic long budget; /* 0: not read yet */
	long b = atomic_load_explicit(&budget, memory_order_relaxed);
	if (b)
		return b;
	uint64_t v = mmf_read_number("/proc/sys/vm/max_map_count", NULL);
	long max = v > 0 && v <= LONG_MAX ? (long)v : 65530;
	b = max / 4 > MMF_REGIONS_FREE ? max / 4 : MMF_REGIONS_FREE;
	atomic_store_explicit(&budget, b, memory_order_relaxed);
	return b;
}

static void region_gone(void)
{
	atomic_fetch_sub_explicit(&regions_live, 1, memory_order_relaxed);
}

/* The kernel's PMD size where it has transparent huge pages (read once);
 * 0 where it has none. */
size_t mmf_pmd_size(void)
{
	static _Atomic size_t pmd = 1; /* 1: not read yet */
	size_t v = atomic_load_explicit(&pmd, memory_order_relaxed);
	if (v != 1)
		return v;
	uint64_t p = mmf_read_number("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", NULL);
	v = p > 4096 && !(p & (p - 1)) && p <= ((uint64_t)1 << 30) ? (size_t)p : 0;
	atomic_store_explicit(&pmd, v, memory_order_relaxed);
	return v;
}

/* What a region of resv bytes starts on: the huge page on hugetlbfs; a PMD
 * for a region of a PMD or more, so that file offset k * PMD falls on a PMD
 * boundary and the kernel can map a PMD-sized folio of the page cache with
 * one entry (DESIGN.md, "Huge pages"); else a page. */
static size_t region_align(const struct mmapfile *f, size_t resv)
{
	if (f->page > f->sys_page)
		return f->page;
	size_t pmd = mmf_pmd_size();
	return pmd && resv >= pmd ? pmd : f->sys_page;
}

/* Address space for resv bytes, aligned as region_align says; NULL when
 * there is none.  The alignment costs a PMD of address space more for a
 * moment, and two munmap(2)s. */
static char *reserve_space(struct mmapfile *f, size_t resv)
{
	size_t align = region_align(f, resv);
	size_t extra = align > f->sys_page ? align : 0;
	if (resv > SIZE_MAX - extra)
		return NULL;
	long live = atomic_load_explicit(&regions_live, memory_order_relaxed);
	if (live >= MMF_REGIONS_FREE && live >= region_budget()) {
		errno = ENOMEM;
		return NULL;
	}
	char *r = mmf_sys.mmap(NULL, resv + extra, PROT_NONE,
	                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	atomic_fetch_add_explicit(&regions_live, 1, memory_order_relaxed);
	if (extra) {
		uintptr_t a = ((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1);
		size_t head = a - (uintptr_t)r;
		if (head)
			mmf_sys.munmap(r, head);
		if (extra - head)
			mmf_sys.munmap((char *)a + resv, extra - head);
		r = (char *)a;
	}
	return r;
}

/* A new region: address space for twice the length (or the maximum the
 * handle was opened with), so that growth can stay in place, with the file
 * mapped over its start.  Without the address space for that, just the
 * file. */
static char *map_region(struct mmapfile *f, size_t want, size_t file_end, size_t *reserved)
{
	size_t resv = want <= (SIZE_MAX >> 2) ? 2 * want : want;
	size_t max = page_round(f, f->max_size);
	if (max > resv)
		resv = max;
	/* Whole PMDs, so that growth in PMD steps stays in place. */
	size_t pmd = mmf_pmd_size();
	if (pmd && resv >= pmd && !f->hugetlb && resv <= SIZE_MAX - pmd)
		resv = (resv + pmd - 1) & ~(pmd - 1);
	if (f->max_size && !max) {
		errno = ENOMEM;
		return NULL;
	}
	char *r = reserve_space(f, resv);
	/* Less than the maximum asked for would break its promise. */
	if (!r && (f->max_size || !(r = reserve_space(f, resv = want)))) {
		errno = ENOMEM;
		return NULL;
	}
	if (map_fixed(f, r, 0, want, file_end) != 0) {
		int err = errno;
		mmf_sys.munmap(r, resv);
		region_gone();
		errno = err;
		return NULL;
	}
	*reserved = resv;
	return r;
}

int mmf_reserve(struct mmapfile *f)
{
	size_t max = page_round(f, f->max_size);
	char *r = max ? reserve_space(f, max) : NULL;
	if (!r) {
		errno = ENOMEM;
		return -1;
	}
	f->base = r;
	f->map_len = 0;
	f->reserved = max;
	return 0;
}

/* Map the file further into the current region's reserve: with mremap(2),
 * which grows the mapping in place once the reserved pages after it are
 * released; without it, by mapping over those pages. */
static int extend_in_place(struct mmapfile *f, size_t want)
{
	if (!f->base || want > f->reserved)
		return -1;
	size_t add = want - f->map_len;
#ifdef MMF_USE_MREMAP
	/* A mapping that must not move (a reserved maximum), or that mremap
	 * cannot grow here (private, hugetlbfs), is mapped over its reserve
	 * instead: that leaves no moment when another mapping can take the
	 * released pages. */
	if (f->max_size || f->private_map || f->hugetlb)
		return map_fixed(f, f->base + f->map_len, f->map_len, add, f->private_file);
	if (mmf_sys.munmap(f->base + f->map_len, add) != 0)
		return -1;
	if (mmf_sys.mremap(f->base, f->map_len, want, 0) == f->base)
		return 0;
	/* The released pages may belong to another mapping by now: the region
	 * ends at the mapping, and the rest of its reserve goes back. */
	if (f->reserved > want)
		mmf_sys.munmap(f->base + want, f->reserved - want);
	f->reserved = f->map_len;
	return -1;
#else
	return map_fixed(f, f->base + f->map_len, f->map_len, add, f->private_file);
#endif
}

/* A new region for the file.  A private handle's bytes live in its mapping
 * alone: the new region (all anonymous) takes a copy of them inside the cut
 * bracket, published before any lock-free copy may start again, and the old
 * one is then no one's and goes; views held would be left on the old copy,
 * so it waits for none of them. */
static int move_region(struct mmapfile *f, size_t want)
{
	bool copy = f->private_map && f->base;
	if (copy && f->held) {
		errno = EBUSY;
		return -1;
	}
	size_t resv;
	char *p = map_region(f, want, copy ? 0 : f->private_file, &resv);
	if (!p)
		return -1;
	if (copy) {
		/* truncate's growth runs inside its own bracket already */
		bool bracket = !(atomic_load(&f->cut_seq) & 1);
		if (bracket)
			mmf_cut_begin(f);
		mmf_guarded_fill(f, f->base, p, f->base, f->map_len);
		char *old = f->base;
		size_t old_resv = f->reserved;
		if (f->locked)
			mmf_unlock_pages(old, f->locked);
		f->locked = f->prefaulted = 0;
		f->base = p;
		f->map_len = want;
		f->reserved = resv;
		publish_view(f);
		if (bracket)
			mmf_cut_end(f);
		mmf_sys.munmap(old, old_resv);
		region_gone();
		return 0;
	}
	if (retire_region(f) != 0) {
		mmf_sys.munmap(p, resv);
		region_gone();
		errno = ENOMEM;
		return -1;
	}
	f->base = p;
	f->map_len = want;
	f->reserved = resv;
	publish_view(f);
	return 0;
}

/* No address space or mapping left for the file (RLIMIT_AS, the map count,
 * ENOMEM): the handle goes on with pread(2)/pwrite(2), which need none,
 * when nothing it was asked for needs the mapping.  Earlier regions stay
 * until close, for copies still in them. */
bool mmf_go_mapless(struct mmapfile *f, int err)
{
	if (f->mapless || (err != ENOMEM && err != EAGAIN) || mmf_map_only(f) || f->lock_all ||
	    f->populate || f->max_size)
		return f->mapless;
	f->mapless = f->no_memory = true;
	retire_region(f);
	publish_view(f);
	mmf_update_limit(f);
	return true;
}

/* Map the file's first round_up(len) bytes.  A mapping never shrinks or
 * moves away: copies without the lock may be inside it.  Pages past the
 * file's end fault, and the guard answers for them. */
int mmf_map_to(struct mmapfile *f, off_t len)
{
	if (f->mapless)
		return 0;
	size_t want = page_round(f, len);
	if (want == 0 && len > 0) {
		errno = ENOMEM;
		return -1;
	}
	if (want <= f->map_len)
		return 0;
	if (extend_in_place(f, want) == 0) {
		f->map_len = want;
		publish_view(f);
	} else if (move_region(f, want) != 0) {
		return -1;
	}
	mmf_update_limit(f);
	mmf_reapply_advice(f);
	return 0;
}

/* At close: every region and view goes. */
void mmf_unmap(struct mmapfile *f)
{
	atomic_store_explicit(&f->view, NULL, memory_order_release);
	if (f->base) {
		mmf_sys.munmap(f->base, f->reserved);
		region_gone();
	}
	f->base = NULL;
	f->map_len = f->reserved = 0;
	while (f->retired) {
		struct mmf_region *r = f->retired;
		f->retired = r->older;
		mmf_sys.munmap(r->base, r->reserved);
		region_gone();
		free(r);
	}
	while (f->views) {
		struct mmf_view *v = f->views;
		f->views = v->older;
		free(v);
	}
}

/* Where the file should end when a write needs end: geometric, so that
 * appends cost amortised O(1) system calls. */
static off_t reserve_target(struct mmapfile *f, off_t end)
{
	if (f->space_short && f->space_short++ % MMF_SHORT_RETRY)
		return round_len(f, end);
	off_t step = f->file_len;
	if (step < MMF_RESERVE_MIN)
		step = MMF_RESERVE_MIN;
	if (step > MMF_RESERVE_MAX)
		step = MMF_RESERVE_MAX;
	/* A locked reserve is memory the program cannot use: keep it short. */
	if (f->lock_all && step > MMF_LOCKED_RESERVE_MAX)
		step = MMF_LOCKED_RESERVE_MAX;
	off_t target = f->file_len <= MMF_OFF_MAX - step ? f->file_len + step : end;
	if (target < end)
		target = end;
	target = round_len(f, target);
	/* Past a PMD, the file ends on a PMD boundary: the page cache can then
	 * make a PMD-sized folio of its last stretch too (a folio never reaches
	 * past the end), and it is still less than a step past the write. */
	off_t pmd = (off_t)mmf_pmd_size();
	if (pmd && f->thp_default && !f->lock_all && end > pmd && end <= MMF_OFF_MAX - pmd)
		target = (end + pmd - 1) & ~(pmd - 1);
	/* Never more than one step past what the write needs. */
	if (end <= MMF_OFF_MAX - MMF_RESERVE_MAX && target > end + MMF_RESERVE_MAX)
		target = (end + MMF_RESERVE_MAX) & ~((off_t)f->page - 1);
	return target > end ? target : end;
}

/* Extend the file to target, allocating [start, target) so that a full disk
 * is ENOSPC now rather than a fault later.  On failure the file keeps its
 * old length. */
static int extend_file(struct mmapfile *f, off_t start, off_t target)
{
	if (f->private_map)
		return 0; /* the bytes past the file are anonymous memory */
	int rc;
	do /* hugetlbfs stops at any signal, keeping the pages it got */
		rc = mmf_sys.fallocate(f->fd, 0, start, target - start);
	while (rc != 0 && errno == EINTR);
	if (rc == 0)
		return 0;
	int err = errno;
	if (err == EOPNOTSUPP || err == ENOSYS)
		return mmf_sys.ftruncate(f->fd, target); /* no fallocate: sparse */
	/* Back to the old length if the failed call changed it (but not over
	 * another process's growth past the target); hugetlbfs keeps the pages
	 * a failed fallocate got past the end until a truncate lets them go. */
	struct stat st;
	if (mmf_sys.fstat(f->fd, &st) == 0 &&
	    ((st.st_size > f->file_len && st.st_size <= target) || (f->hugetlb && st.st_size == f->file_len)))
		mmf_sys.ftruncate(f->fd, f->file_len);
	errno = err;
	return -1;
}

static int grow_to(struct mmapfile *f, off_t off, off_t end, bool reserve)
{
	off_t old_len = f->file_len;
	if (end > old_len) {
		/* A copy inherited through fork(2) never keeps a reserve: it
		 * never trims one (mmf_trim). */
		bool ahead = reserve && !f->sync_mode && !f->mapless && !mmf_inherited(f);
		off_t target = ahead ? reserve_target(f, end) : end;
		/* The reserve never takes the mapping out of the address space
		 * reserved for it when the write itself fits there. */
		if (f->base && target > end && end <= (off_t)f->reserved && target > (off_t)f->reserved)
			target = (off_t)f->reserved;
		if (f->hugetlb)
			target = round_len(f, target); /* hugetlbfs takes whole huge pages only */
		off_t start = off & ~((off_t)f->page - 1);
		if (start < old_len || f->hugetlb) /* no holes on hugetlbfs: no pool to fault from */
			start = old_len;
		if (target > end && f->sealable) {
			/* A reserve that F_SEAL_SHRINK would keep past the size for good */
			int seals = fcntl(f->fd, F_GET_SEALS);
			if (seals > 0 && (seals & F_SEAL_SHRINK))
				target = end;
		}
		int rc = extend_file(f, start, target);
		off_t exact = f->hugetlb ? round_len(f, end) : end;
		if (rc != 0 && target > exact && (errno == ENOSPC || errno == EFBIG)) {
			if (errno == ENOSPC && !f->space_short)
				f->space_short = 1;
			rc = extend_file(f, start, target = exact);
		} else if (rc == 0 && target > round_len(f, end)) {
			f->space_short = 0; /* a whole step again: space was freed */
		}
		if (rc != 0)
			return -1;
		f->file_len = target;
	}
	bool unmapped = !f->mapless && (size_t)f->file_len > f->map_len && mmf_map_to(f, f->file_len) != 0;
	if (unmapped && mmf_go_mapless(f, errno))
		unmapped = false;
	if (unmapped || (!f->mapless && mmf_keep_options(f) != 0)) {
		int err = errno;
		if (f->file_len != old_len && (f->private_map || mmf_sys.ftruncate(f->fd, old_len) == 0))
			f->file_len = old_len;
		mmf_update_limit(f);
		/* A move to a new region let the old one's locks go: lock the old
		 * length again there. */
		mmf_keep_options(f);
		errno = err;
		return -1;
	}
	mmf_update_limit(f);
	return 0;
}

/* Make [off, end) writable: the file at least end long, the mapping over it.
 * With reserve, the file grows ahead geometrically; a gap between the old
 * length and off stays a hole.  A limit that leaves no room for the reserve
 * (locked memory) still lets the write have what it needs. */
int mmf_grow(struct mmapfile *f, off_t off, off_t end, bool reserve)
{
	int rc = grow_to(f, off, end, reserve);
	if (rc != 0 && reserve && f->lock_all && (errno == ENOMEM || errno == EAGAIN || errno == EPERM))
		rc = grow_to(f, off, end, false);
	return rc;
}

/* The file now ends at len: its pages past that are gone, so they are let
 * go of (growth locks and populates them again). */
static void forget_past(struct mmapfile *f, off_t len)
{
	size_t from = (size_t)round_len(f, len);
	if (from < f->locked) {
		mmf_unlock_pages(f->base + from, f->locked - from);
		f->locked = from;
	}
	if (from < f->prefaulted)
		f->prefaulted = from;
	atomic_store(&f->populated, 0);
}

/* Cut the file to len (below its current length).  The caller brackets it
 * with mmf_cut_begin/end, so that no lock-free write moves the size.  The
 * mapping stays: pages past the new end fault, and the guard answers. */
int mmf_cut(struct mmapfile *f, off_t len)
{
	off_t keep = f->hugetlb ? round_len(f, len) : len;
	if (!f->private_map && keep < f->file_len && mmf_sys.ftruncate(f->fd, keep) != 0)
		return -1;
	if (f->private_map || f->hugetlb) {
		/* The bytes past len must read as zeros when the size grows again:
		 * a private handle keeps them in memory, hugetlbfs keeps the rest
		 * of the huge page. */
		off_t stop = f->private_map ? mmf_size(f) : keep;
		if (stop > f->limit)
			stop = f->limit;
		if (f->base && len < stop)
			mmf_guarded_fill(f, f->base + len, f->base + len, NULL, (size_t)(stop - len));
	}
	forget_past(f, keep);
	f->file_len = keep;
	if (mmf_size(f) > len)
		mmf_set_size(f, len);
	mmf_update_limit(f);
	return 0;
}

/* Another process cut the file to disk, below the size.  Writes that came
 * after the cut and stayed inside the page the file now ends in reached no
 * file and raised no fault: the page is past the end.  A cut zeroes the
 * rest of that page, so bytes other than zeros there came after it; they
 * are written again with pwrite(2), which makes the file as long as a
 * write(2) would have.  Writes past that page faulted and were done again
 * already.  Returns the file's length after, or -1 (errno EIO) when the
 * bytes could not be kept: the loss is then reported to the caller, and
 * again at sync and close. */
static off_t keep_after_cut(struct mmapfile *f, off_t disk)
{
	off_t page_end = round_len(f, disk);
	off_t stop = mmf_size(f) < page_end ? mmf_size(f) : page_end;
	if (stop > (off_t)f->map_len)
		stop = (off_t)f->map_len;
	if (f->mapless || !f->base || f->private_map || f->hugetlb || stop <= disk)
		return disk;
	off_t end = last_written(f, disk, stop);
	if (end == disk)
		return disk;
	size_t n = (size_t)(end - disk);
	char *copy = malloc(n);
	ssize_t w = -1;
	if (copy) {
		mmf_guarded_fill(f, f->base + disk, copy, f->base + disk, n);
		do
			w = mmf_sys.pwrite(f->fd, copy, n, disk);
		while (w < 0 && errno == EINTR);
		free(copy);
	}
	if (w == (ssize_t)n)
		return end;
	atomic_store(&f->lost, EIO);
	return -1;
}

/* Growth by another process: map what it added.  Shrinking by another
 * process: forget what it cut.  Our own reserve looks the same as the file's
 * length, so neither is mistaken for the other. */
static int apply_length(struct mmapfile *f, off_t disk)
{
	if (disk < f->file_len) {
		mmf_cut_begin(f);
		off_t kept = disk < mmf_size(f) ? keep_after_cut(f, disk) : disk;
		bool lost = kept < 0;
		if (lost)
			kept = disk;
		forget_past(f, kept);
		f->file_len = kept;
		if (mmf_size(f) > kept)
			mmf_set_size(f, kept);
		mmf_update_limit(f);
		mmf_cut_end(f);
		if (lost)
			errno = EIO;
		return lost ? -1 : 0;
	}
	if (!f->mapless && page_round(f, disk) > f->map_len && mmf_map_to(f, disk) != 0)
		return -1;
	f->file_len = disk;
	mmf_set_size(f, disk);
	mmf_update_limit(f);
	/* Growth by another process cannot be refused: what it added is
	 * locked or populated as far as the limits allow. */
	if (!f->mapless)
		mmf_keep_options(f);
	return 0;
}

int mmf_refresh(struct mmapfile *f)
{
	struct stat st;
	if (f->private_map)
		return 0; /* its size is its own */
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

static bool remap_file(struct mmapfile *f, char *base, size_t len)
{
	return !len || mmf_sys.mmap(base, len, f->prot, MAP_SHARED | MAP_FIXED, f->fd, 0) != MAP_FAILED;
}

/* A writable mapping of a hugetlbfs file makes the file as long as the
 * mapping, so after a cut only what the file still holds is mapped again
 * (the rest goes back to reserve), with no copy in flight; on failure the
 * call reports ENOMEM and the next one tries again (hugetlbfs has no
 * write(2) to go on without the mapping). */
static size_t remap_hugetlb(struct mmapfile *f, char *base, size_t mapped, size_t keep, bool *ok)
{
	size_t len = mapped < keep ? mapped : keep;
	*ok = remap_file(f, base, len) && *ok;
	if (len < mapped)
		*ok = mmf_sys.mmap(base + len, mapped - len, PROT_NONE,
		                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) !=
		              MAP_FAILED && *ok;
	return len;
}

static int restore_hugetlb(struct mmapfile *f)
{
	struct stat st;
	if (mmf_sys.fstat(f->fd, &st) != 0)
		return -1;
	size_t keep = page_round(f, st.st_size);
	bool ok = true;
	mmf_cut_begin(f);
	forget_past(f, (off_t)keep);
	if (f->base)
		f->map_len = remap_hugetlb(f, f->base, f->map_len, keep, &ok);
	for (struct mmf_region *r = f->retired; r; r = r->older)
		r->mapped = remap_hugetlb(f, r->base, r->mapped, keep, &ok);
	publish_view(f);
	mmf_update_limit(f);
	mmf_cut_end(f);
	if (!ok) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Put the file back under every page the fault guard patched: one mapping
 * over each region's addresses replaces them all. */
static int restore_mapping(struct mmapfile *f)
{
	unsigned long seen = atomic_load(&f->faults);
	if (seen == atomic_load(&f->restored))
		return 0;
	if (f->private_map) {
		/* The file is not its copy's to put back: bytes another process
		 * cut from under pages never written stay zeros. */
		atomic_store(&f->restored, seen);
		return 0;
	}
	if (f->hugetlb && restore_hugetlb(f) != 0)
		return -1;
	bool ok = f->hugetlb || !f->base || remap_file(f, f->base, f->map_len);
	for (struct mmf_region *r = f->retired; r && !f->hugetlb; r = r->older)
		ok = remap_file(f, r->base, r->mapped) && ok;
	if (!ok) {
		/* Patched pages may remain: go on without the mapping, through
		 * pread/pwrite; the regions stay reserved until close. */
		f->mapless = true;
		retire_region(f);
		publish_view(f);
		mmf_update_limit(f);
		mmf_trim(f);
	}
	atomic_store(&f->restored, seen);
	if (f->base && !f->mapless) {
		mmf_reapply_advice(f);
		/* The new mapping holds no lock: lock it again, as far as the
		 * limit allows. */
		f->locked = f->prefaulted = 0;
		mmf_keep_options(f);
	}
	mmf_update_limit(f);
	return 0;
}

/* Drop the reserve from the file; the mapping stays for the next growth.
 * The reserve is cut only while the file still ends where this handle left
 * it (or inside the reserve): a file another process grew past it, or cut
 * below the size, is learned instead, never cut or grown back. */
int mmf_trim(struct mmapfile *f)
{
	struct stat st;
	if (f->private_map)
		return 0;
	if (mmf_inherited(f))
		return mmf_relearn(f); /* the reserve is the parent's to cut */
	off_t end = f->hugetlb ? round_len(f, mmf_size(f)) : mmf_size(f);
	if (f->file_len <= end)
		return mmf_relearn(f); /* nothing to cut; learn what others did */
	if (mmf_sys.fstat(f->fd, &st) != 0)
		return -1;
	if (st.st_size > f->file_len || st.st_size <= end)
		return apply_length(f, st.st_size);
	/* Lock-free writes into the reserve may still raise the size: stop
	 * them first, then cut at the size they leave. */
	mmf_cut_begin(f);
	off_t size = mmf_size(f);
	/* Bytes another process wrote into the reserve (a child of fork
	 * appending through its copy of the handle, a pwrite(2)) are not the
	 * reserve's zeros: they stay, and the size covers them. */
	off_t mapped_end = f->file_len < (off_t)f->map_len ? f->file_len : (off_t)f->map_len;
	if (f->base && !f->mapless && !f->hugetlb && size < mapped_end) {
		off_t used = last_written(f, size, mapped_end);
		if (used > size)
			mmf_set_size(f, size = used);
	}
	int rc = (f->hugetlb ? round_len(f, size) : size) < f->file_len ? mmf_cut(f, size) : 0;
	mmf_cut_end(f);
	return rc;
}

int mmf_trim_locked(struct mmapfile *f)
{
	mmf_wrlock(f);
	int rc = mmf_trim(f);
	mmf_unlock(f);
	return rc;
}

/* Learn the file's length from the file itself. */
int mmf_relearn(struct mmapfile *f)
{
	struct stat st;
	if (f->private_map)
		return 0;
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
	/* Locks and populate asked for before the length was learned stopped
	 * at the first page the cut took: ask again for what remains. */
	if (rc == 0 && !f->mapless)
		mmf_keep_options(f);
	mmf_unlock(f);
	return rc;
}
