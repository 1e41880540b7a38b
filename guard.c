/* guard.c - a fault in a copy to or from the mapping becomes an answer.
 *
 * A shared file mapping raises SIGBUS when a page has no file behind it any
 * more (another process shrank the file), when a hole cannot be allocated
 * (a full disk) or when the device fails.  The library never lets that kill
 * the program.  Each copy publishes what it is copying in a per-thread mark;
 * the handler, finding the faulting address inside the marked range, maps
 * anonymous memory over the rest of the copy so that the copy can finish, and
 * marks the handle patched.  The call, seeing the mark, puts the file back
 * under the mapping, learns the file's length and does its work again with
 * pread(2)/pwrite(2), which answer exactly as read(2)/write(2) would.  The
 * fast path pays two thread-local stores and a load, no system call.
 *
 * A SIGBUS that is not ours goes to the handler the program had installed
 * before, or, with none, kills the program as it would have. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

__thread struct mmf_guard *mmf_guard_active __attribute__((tls_model("initial-exec")));

static struct sigaction previous;
static uintptr_t page_mask;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void pass_on(int sig, siginfo_t *si, void *ctx)
{
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, si, ctx);
		return;
	}
	if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
		previous.sa_handler(sig);
		return;
	}
	bool sent = si->si_code <= 0; /* by kill(2) or raise(3), not a fault */
	if (sent && previous.sa_handler == SIG_IGN)
		return;
	/* Die of it as if the library were not here: a fault happens again on
	 * return (the kernel kills for an ignored fault too); a signal that was
	 * sent is sent again. */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	if (sent)
		raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	struct mmf_guard *g = mmf_guard_active;
	uintptr_t addr = (uintptr_t)si->si_addr;
	if (g && si->si_code > 0 && addr >= g->lo && addr < g->hi) {
		/* The flag first: any copy that meets the patch must find it set. */
		atomic_store_explicit(&g->f->patched, true, memory_order_seq_cst);
		int saved = errno;
		uintptr_t start = addr & ~page_mask, end = (g->hi + page_mask) & ~page_mask;
		void *p = mmap((void *)start, end - start, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		errno = saved;
		if (p != MAP_FAILED)
			return;
	}
	pass_on(sig, si, ctx);
}

static void install(void)
{
	page_mask = (uintptr_t)sysconf(_SC_PAGESIZE) - 1;
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &previous);
}

void mmf_guard_install(void)
{
	pthread_once(&installed, install);
}
