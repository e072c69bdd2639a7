// Counts the heap allocations of the process it is preloaded into:
//
//   cc -shared -fPIC -O2 -o liballocation-counter.so allocation-counter.c
//   ALLOCATION_COUNTERS=/tmp/counters LD_PRELOAD=$PWD/liballocation-counter.so erp-gateway serve ...
//
// Used by the allocation budget test (Tests/EndToEndTests/AllocationBudgetTests.swift) and by
// bench/allocations.sh, which build it with the system C compiler and run the real gateway binary
// with it. Why a preloaded C shim rather than ordo-one/malloc-interposer: the interposer's
// counters are read through a Swift API inside the counted process, so the gateway would have to
// link it and expose them; here the counters live in a file the shim maps shared
// (MAP_SHARED), so the test or bench process reads them from outside at any moment with a plain
// read, the gateway binary is the one that ships, unchanged, and nothing is added to the build.
//
// The counted functions are glibc's public allocator entries; the real work is done by glibc's
// own `__libc_*` entries, so the allocator and its behaviour are unchanged (no header, no
// bootstrap allocator as a dlsym(RTLD_NEXT) shim needs). An allocation is every call that hands
// out a block: malloc, calloc, realloc (a moved or grown block is heap work like a new one, as
// in SwiftNIO's allocation counter), posix_memalign, aligned_alloc, memalign, valloc, pvalloc.
//
// File layout (ALLOCATION_COUNTERS, 4 KiB, little-endian uint64 words), see `struct counters`.
// Without ALLOCATION_COUNTERS the shim counts into memory nobody reads.
//
// Allocation sites: with ALLOCATION_BACKTRACES=FILE, while the `sampling` word of the counters
// file is non-zero (the reader sets it), every allocation appends one line to FILE: the
// instruction addresses of its call stack in hex, innermost first. bench/allocations.sh turns
// them into a table of call sites.
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void __libc_free(void *pointer);
extern void *__libc_memalign(size_t alignment, size_t size);

struct counters {
    _Atomic uint64_t allocations;     // every call that handed out a block (reallocations included)
    _Atomic uint64_t reallocations;   // realloc of an existing block, also counted above
    _Atomic uint64_t frees;           // free of a non-null pointer
    _Atomic uint64_t bytes;           // bytes requested by the counted allocations
    _Atomic uint64_t sampling;        // written by the reader: non-zero records call stacks
};

static struct counters unread;
static struct counters *counters = &unread;
static int backtrace_fd = -1;
// Set while this thread records a call stack: backtrace() allocates when it first loads the
// unwinder, and those allocations are the shim's, not the process's.
static __thread int recording __attribute__((tls_model("initial-exec")));

__attribute__((constructor)) static void map_counters(void) {
    const char *path = getenv("ALLOCATION_COUNTERS");
    if (path == NULL) return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) {
        fprintf(stderr, "allocation-counter: cannot open %s: %s\n", path, strerror(errno));
        return;
    }
    void *mapped = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mapped == MAP_FAILED) {
        fprintf(stderr, "allocation-counter: cannot map %s: %s\n", path, strerror(errno));
        return;
    }
    counters = mapped;
    const char *traces = getenv("ALLOCATION_BACKTRACES");
    if (traces != NULL) backtrace_fd = open(traces, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
}

static void record_stack(void) {
    if (backtrace_fd < 0 || recording || atomic_load_explicit(&counters->sampling, memory_order_relaxed) == 0) return;
    recording = 1;
    void *frames[32];
    int depth = backtrace(frames, 32);
    // One write per stack so lines of concurrent threads do not interleave (O_APPEND).
    char line[32 * 19 + 2];
    size_t length = 0;
    for (int index = 0; index < depth; index++) {
        length += (size_t)snprintf(line + length, sizeof line - length, index == 0 ? "%lx" : " %lx", (unsigned long)(uintptr_t)frames[index]);
    }
    line[length++] = '\n';
    ssize_t written = write(backtrace_fd, line, length);
    (void)written;
    recording = 0;
}

static void count(size_t size) {
    if (recording) return;
    atomic_fetch_add_explicit(&counters->allocations, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&counters->bytes, size, memory_order_relaxed);
    record_stack();
}

void *malloc(size_t size) {
    count(size);
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    count(count_ * size);
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    if (pointer != NULL && size == 0) {
        free(pointer);
        return NULL;
    }
    if (pointer != NULL && !recording) atomic_fetch_add_explicit(&counters->reallocations, 1, memory_order_relaxed);
    count(size);
    return __libc_realloc(pointer, size);
}

void *reallocarray(void *pointer, size_t count_, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count_, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(pointer, total);
}

void free(void *pointer) {
    if (pointer != NULL && !recording) atomic_fetch_add_explicit(&counters->frees, 1, memory_order_relaxed);
    __libc_free(pointer);
}

void *memalign(size_t alignment, size_t size) {
    count(size);
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *pointer = memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

void *valloc(size_t size) { return memalign((size_t)sysconf(_SC_PAGESIZE), size); }

void *pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return memalign(page, (size + page - 1) & ~(page - 1));
}
