/* guard.c - a fault in a copy to or from the mapping becomes an answer.
 *
 * A shared file mapping raises SIGBUS when a page has no file behind it any
 * more (another process shrank the file), when a hole cannot be allocated
 * (a full disk) or when the device fails.  The library never lets that kill
 * the program.  Each copy publishes what it is copying in a per-thread mark;
 * the handler, finding the faulting address inside the marked range, maps
 * anonymous memory over the rest of the copy so that the copy can finish, and
 * counts the fault on the handle.  The call, seeing the mark, puts the file back
 * under the mapping, learns the file's length and does its work again with
 * pread(2)/pwrite(2), which answer exactly as read(2)/write(2) would.  The
 * fast path pays two thread-local stores and a load, no system call.
 *
 * A SIGBUS that is not ours goes to the handler the program installed, or,
 * with none, kills the program as it would have.  The program may install
 * that handler after the library's first use too (or a runtime or crash
 * reporter in it may): the library defines sigaction, signal and
 * bsd_signal, which, once the guard is in place, record the program's
 * SIGBUS disposition for the guard to pass foreign faults on to, and
 * report it back, instead of replacing the guard in the kernel
 * (MMF_INTERPOSE_SIGNAL; the JVM's libjsig chains signals the same way).
 * Code that calls rt_sigaction(2) directly still replaces it. */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef HAVE_LINUX_MEMBARRIER_H
#include <linux/membarrier.h>
#endif
#if defined(SYS_membarrier) && HAVE_DECL_MEMBARRIER_CMD_PRIVATE_EXPEDITED
#define MMF_MEMBARRIER 1
#endif

__thread struct mmf_guard mmf_guard_self __attribute__((tls_model("initial-exec")));
bool mmf_guard_self_fence = true;

static uintptr_t page_mask;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

#ifdef MMF_INTERPOSE_SIGNAL
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);
#define real_sigaction __sigaction
#else
#define real_sigaction sigaction
#endif

/* The program's SIGBUS disposition: two slots, the one in use named by
 * program_slot, so that the handler never reads one half written; writers
 * take program_lock with SIGBUS blocked. */
static struct sigaction program[2];
static _Atomic int program_slot;
static _Atomic bool guarding; /* the guard's handler is the kernel's */

static void program_get(struct sigaction *out)
{
	*out = program[atomic_load_explicit(&program_slot, memory_order_acquire)];
}

static void program_set(const struct sigaction *act)
{
	int next = !atomic_load_explicit(&program_slot, memory_order_relaxed);
	program[next] = *act;
	atomic_store_explicit(&program_slot, next, memory_order_release);
}

static void pass_on(int sig, siginfo_t *si, void *ctx)
{
	struct sigaction prog;
	program_get(&prog);
	if (prog.sa_handler != SIG_DFL && prog.sa_handler != SIG_IGN) {
		/* As the kernel would run it: its mask, and SA_RESETHAND. */
		sigset_t old;
		pthread_sigmask(SIG_BLOCK, &prog.sa_mask, &old);
		if (prog.sa_flags & SA_RESETHAND) {
			struct sigaction dfl = { .sa_handler = SIG_DFL };
			sigemptyset(&dfl.sa_mask);
			program_set(&dfl);
		}
		if (prog.sa_flags & SA_SIGINFO)
			prog.sa_sigaction(sig, si, ctx);
		else
			prog.sa_handler(sig);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return;
	}
	bool sent = si->si_code <= 0; /* by kill(2) or raise(3), not a fault */
	if (sent && prog.sa_handler == SIG_IGN)
		return;
	/* Die of it as if the library were not here: a fault happens again on
	 * return (the kernel kills for an ignored fault too); a signal that was
	 * sent is sent again. */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	atomic_store(&guarding, false);
	real_sigaction(sig, &dfl, NULL);
	if (sent)
		raise(sig);
}

#ifdef MMF_INTERPOSE_SIGNAL
static atomic_flag program_lock = ATOMIC_FLAG_INIT;

MMAPFILE_API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig != SIGBUS || !atomic_load_explicit(&guarding, memory_order_acquire))
		return real_sigaction(sig, act, old);
	sigset_t bus, mask;
	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &bus, &mask);
	while (atomic_flag_test_and_set_explicit(&program_lock, memory_order_acquire))
		sched_yield();
	struct sigaction was;
	program_get(&was);
	if (act)
		program_set(act);
	atomic_flag_clear_explicit(&program_lock, memory_order_release);
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	if (old)
		*old = was;
	return 0;
}

/* signal(3) as glibc's: BSD semantics (the handler stays, calls restart,
 * the signal is blocked while it runs). */
MMAPFILE_API __sighandler_t signal(int sig, __sighandler_t handler)
{
	struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_RESTART }, old;
	sigemptyset(&sa.sa_mask);
	if (handler == SIG_ERR || sigaddset(&sa.sa_mask, sig) != 0) {
		errno = EINVAL;
		return SIG_ERR;
	}
	if (sigaction(sig, &sa, &old) != 0)
		return SIG_ERR;
	return old.sa_handler;
}

MMAPFILE_API __sighandler_t bsd_signal(int sig, __sighandler_t handler)
{
	return signal(sig, handler);
}
#endif

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	struct mmf_guard *g = &mmf_guard_self;
	struct mmapfile *f = atomic_load_explicit(&g->f, memory_order_relaxed);
	uintptr_t addr = (uintptr_t)si->si_addr;
	if (f && si->si_code > 0 && addr >= g->lo && addr < g->hi) {
		/* Counted first: any copy that meets the patch must find it. */
		atomic_fetch_add_explicit(&f->faults, 1, memory_order_seq_cst);
		int saved = errno;
		/* Whole pages of the mapping: huge ones on hugetlbfs. */
		uintptr_t mask = f->page - 1 > page_mask ? f->page - 1 : page_mask;
		uintptr_t start = addr & ~mask, end = (g->hi + mask) & ~mask;
		/* A private handle's pages past the file's are its own anonymous
		 * memory, which never faults: the patch stops short of them. */
		uintptr_t own = (uintptr_t)f->base + f->private_file;
		if (f->private_map && f->base && end > own && start < own)
			end = own;
		void *p = mmap((void *)start, end - start, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		errno = saved;
		if (p != MAP_FAILED)
			return;
	}
	pass_on(sig, si, ctx);
}

/* membarrier(2) lets mmf_quiesce put a full fence into every running thread
 * of the process, so a copy needs none of its own between raising its mark
 * and reading cut_seq (the asymmetric fence of user-space RCU). */
static bool membarrier_ready(void)
{
#ifdef MMF_MEMBARRIER
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
	return false;
#endif
}

/* Every thread's mark that has made a lock-free copy, for mmf_quiesce. */
static pthread_mutex_t marks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mmf_guard *marks;
static pthread_key_t marks_key;

static void unlink_mark(struct mmf_guard *g)
{
	if (g->prev)
		g->prev->next = g->next;
	else
		marks = g->next;
	if (g->next)
		g->next->prev = g->prev;
	g->next = g->prev = NULL;
}

/* At thread exit, before its mark's storage goes. */
static void forget_mark(void *p)
{
	pthread_mutex_lock(&marks_lock);
	unlink_mark(p);
	pthread_mutex_unlock(&marks_lock);
}

/* In a child of fork only the forking thread lives on. */
static void after_fork_child(void)
{
	pthread_mutex_init(&marks_lock, NULL);
	marks = NULL;
	struct mmf_guard *g = &mmf_guard_self;
	g->next = g->prev = NULL;
	if (g->registered)
		marks = g;
	/* The child is a new process to membarrier(2); it has one thread, so
	 * no copy is between its mark and its fence now. */
	if (!mmf_guard_self_fence)
		mmf_guard_self_fence = !membarrier_ready();
}

void mmf_guard_register(void)
{
	struct mmf_guard *g = &mmf_guard_self;
	pthread_mutex_lock(&marks_lock);
	g->prev = NULL;
	g->next = marks;
	if (marks)
		marks->prev = g;
	marks = g;
	g->registered = true;
	pthread_mutex_unlock(&marks_lock);
	pthread_setspecific(marks_key, g);
}

void mmf_quiesce(struct mmapfile *f)
{
	if (!mmf_guard_self_fence) {
#ifdef MMF_MEMBARRIER
		syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
#endif
	}
	pthread_mutex_lock(&marks_lock);
	for (struct mmf_guard *g = marks; g; g = g->next)
		while (atomic_load_explicit(&g->f, memory_order_acquire) == f && g != &mmf_guard_self)
			sched_yield();
	pthread_mutex_unlock(&marks_lock);
}

static void install(void)
{
	page_mask = (uintptr_t)sysconf(_SC_PAGESIZE) - 1;
	pthread_key_create(&marks_key, forget_mark);
	pthread_atfork(NULL, NULL, after_fork_child);
	mmf_guard_self_fence = !membarrier_ready();
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_ONSTACK }, was;
	sigemptyset(&sa.sa_mask);
	if (real_sigaction(SIGBUS, &sa, &was) == 0) {
		program_set(&was);
		atomic_store_explicit(&guarding, true, memory_order_release);
	}
}

void mmf_guard_install(void)
{
	pthread_once(&installed, install);
}
