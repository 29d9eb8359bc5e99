/* memcpy_count.so - LD_PRELOAD'd counter of bytes copied by memcpy and its
 * relatives, attributed to the object that made the call.
 *
 * Why: "how many times does the engine copy the payload" is answered by
 * the bytes that libdmm_rsocket.so asks libc to copy, divided by the bytes
 * the application sent or received. Every variable-length copy in the
 * engine is a call to memcpy through its PLT (the compiler inlines only
 * small fixed-size copies, which are headers, not payload), so
 * interposing the libc entry points sees all of them. The caller is the
 * return address, mapped to its object with dladdr().
 *
 * At exit one line per object class is written to $MEMCPY_COUNT_OUT
 * (append; default stderr):
 *   memcpy_count: pid P class C calls N bytes B
 * Classes: engine (libdmm_rsocket.so), framework (libnStackAPI.so),
 * softrdma (release/lib64/softrdma), libc, program, other.
 *
 * The copy itself is a plain byte loop (built with
 * -fno-tree-loop-distribute-patterns so it does not become a memcpy call):
 * this library measures, it is never used for speed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE            /* dladdr; the CMake build defines it already */
#endif
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum copy_class { CC_ENGINE, CC_FRAMEWORK, CC_SOFTRDMA, CC_LIBC, CC_PROGRAM, CC_OTHER, CC_N };
static const char *const class_name[CC_N] = {
    "engine", "framework", "softrdma", "libc", "program", "other"
};

/* Counters: updated with atomic adds from any thread, read once at exit. */
static atomic_ulong class_calls[CC_N], class_bytes[CC_N];

/* Set while classifying, so a copy made inside dladdr() is not counted
 * (and cannot recurse). One per thread, so no lock. */
static __thread int in_counter;

static enum copy_class classify(const void *caller)
{
    Dl_info info;
    if (!dladdr(caller, &info) || !info.dli_fname)
        return CC_OTHER;
    const char *f = info.dli_fname;
    if (strstr(f, "libdmm_rsocket.so"))
        return CC_ENGINE;
    if (strstr(f, "libnStackAPI.so"))
        return CC_FRAMEWORK;
    if (strstr(f, "/softrdma/"))
        return CC_SOFTRDMA;
    if (strstr(f, "libc.so"))
        return CC_LIBC;
    if (f[0] == '\0')
        return CC_PROGRAM;       /* the main executable has an empty name */
    return CC_OTHER;
}

static void count(const void *caller, size_t n)
{
    if (in_counter)
        return;
    in_counter = 1;
    enum copy_class c = classify(caller);
    atomic_fetch_add_explicit(&class_calls[c], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&class_bytes[c], n, memory_order_relaxed);
    in_counter = 0;
}

static void copy_forward(unsigned char *d, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
}

static void copy_backward(unsigned char *d, const unsigned char *s, size_t n)
{
    while (n--)
        d[n] = s[n];
}

void *memcpy(void *dst, const void *src, size_t n)
{
    count(__builtin_return_address(0), n);
    copy_forward(dst, src, n);
    return dst;
}

void *mempcpy(void *dst, const void *src, size_t n)
{
    count(__builtin_return_address(0), n);
    copy_forward(dst, src, n);
    return (unsigned char *)dst + n;
}

/* Overlap-safe: copy from the end when the source lies below. */
static void copy_overlapping(unsigned char *d, const unsigned char *s, size_t n)
{
    if (s < d)
        copy_backward(d, s, n);
    else
        copy_forward(d, s, n);
}

void *memmove(void *dst, const void *src, size_t n)
{
    count(__builtin_return_address(0), n);
    copy_overlapping(dst, src, n);
    return dst;
}

/* _FORTIFY_SOURCE variants: the caller's object, not ours, gets the count. */
void *__memcpy_chk(void *dst, const void *src, size_t n, size_t dstlen)
{
    (void)dstlen;
    count(__builtin_return_address(0), n);
    copy_forward(dst, src, n);
    return dst;
}

void *__memmove_chk(void *dst, const void *src, size_t n, size_t dstlen)
{
    (void)dstlen;
    count(__builtin_return_address(0), n);
    copy_overlapping(dst, src, n);
    return dst;
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("MEMCPY_COUNT_OUT");
    FILE *out = path ? fopen(path, "a") : NULL;
    in_counter = 1;
    for (int c = 0; c < CC_N; c++)
        fprintf(out ? out : stderr, "memcpy_count: pid %d class %s calls %lu bytes %lu\n",
                (int)getpid(), class_name[c], atomic_load(&class_calls[c]),
                atomic_load(&class_bytes[c]));
    if (out)
        fclose(out);
}
