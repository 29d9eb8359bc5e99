/* raw_syscall.h - a system call without glibc's syscall(), which the
 * dispatcher interposes (wrap_syscall.c): for the few calls made before
 * anything may be looked up or instrumented code may run (the
 * sanitizers' runtimes call setrlimit and prctl while they start). Returns
 * as syscall() does: the result, or -1 with errno. */
#ifndef RAW_SYSCALL_H
#define RAW_SYSCALL_H

#include <errno.h>

#if defined(__x86_64__)
static inline __attribute__((always_inline)) long raw_syscall5(long nr, long a, long b, long c, long d, long e)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}
#elif defined(__aarch64__)
static inline __attribute__((always_inline)) long raw_syscall5(long nr, long a, long b, long c, long d, long e)
{
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    if (x0 < 0 && x0 > -4096) {
        errno = (int)-x0;
        return -1;
    }
    return x0;
}
#else
#include <unistd.h>
/* Elsewhere glibc's own entry (then interposed, which is harmless after
 * start-up). */
#define raw_syscall5(nr, a, b, c, d, e) syscall((nr), (a), (b), (c), (d), (e))
#endif

#endif
