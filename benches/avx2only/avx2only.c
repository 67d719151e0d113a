// avx2only: make a process on an AVX-512/AMX x86 CPU see an AVX2 + FMA CPU (the users' machines), so
// libraries that pick kernels from CPUID (ONNX Runtime's MLAS, oneDNN, FBGEMM, MKL, PyTorch's cpuinfo) run
// their AVX2 code. ONNX Runtime has no environment switch for its instruction set; this is the like-for-like
// way to measure it against pulso capped to AVX2 on the same machine.
//
// How: LD_PRELOAD this library. Its constructor turns on Linux CPUID faulting (arch_prctl ARCH_SET_CPUID 0,
// needs the `cpuid_fault` CPU flag), so every CPUID instruction in the process raises SIGSEGV; the handler
// runs the real CPUID (faulting briefly off), clears the AVX-512, AMX, AVX-VNNI and AVX512-BF16/FP16 bits,
// and steps over the instruction. The flag is per thread and inherited by new threads; execve resets it,
// and the constructor sets it again in the new program.
//
// Limits: code that ran CPUID before this constructor (other libraries' static constructors, glibc's own
// ifunc selection) saw the real CPU; set GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,... for glibc, and check
// the others with AVX2ONLY_LOG=1 (each trapped leaf is printed once) or with a kernel speed probe
// (benches/isa_check.py). A program that installs its own SIGSEGV handler later takes over the traps.
//
// Build: cc -O2 -shared -fPIC -o build/avx2only.so benches/avx2only/avx2only.c
// Use:   LD_PRELOAD=$PWD/build/avx2only.so python ...
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static struct sigaction previous;
static int log_leaves;
static volatile uint64_t traps;
static uint32_t logged[64];

static long set_cpuid(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, (unsigned long)enabled); }

static void real_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

// The bits an AMD EPYC (Zen 2/3: AVX2, FMA, no AVX-512, no AMX, no AVX-VNNI) does not have.
static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    if (leaf == 7 && sub == 0) {
        // EBX: avx512f 16, dq 17, ifma 21, pf 26, er 27, cd 28, bw 30, vl 31
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) |
                  (1u << 31));
        // ECX: avx512_vbmi 1, vbmi2 6, gfni stays, vnni 11, bitalg 12, vpopcntdq 14
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        // EDX: 4vnniw 2, 4fmaps 3, vp2intersect 8, amx_bf16 22, avx512_fp16 23, amx_tile 24, amx_int8 25
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        // EAX: avx_vnni 4, avx512_bf16 5, amx_fp16 21, avx_ifma 23; EDX: avx_vnni_int8 4, avx10 19
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        r[3] &= ~((1u << 4) | (1u << 19));
    } else if (leaf == 0xd && sub == 0) {
        // XSAVE components supported: drop opmask/ZMM (5-7) and AMX tile state (17, 18)
        r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));
    } else if (leaf == 0x1d || leaf == 0x1e || leaf == 0x24) {
        // AMX tile / TMUL information, AVX10: none
        r[0] = r[1] = r[2] = r[3] = 0;
    }
}

static void on_segv(int sig, siginfo_t *info, void *ctx_) {
    ucontext_t *ctx = ctx_;
    greg_t *g = ctx->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)g[REG_RIP];
    if (ip[0] == 0x0f && ip[1] == 0xa2) {
        uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], r[4];
        set_cpuid(1);
        real_cpuid(leaf, sub, r);
        set_cpuid(0);
        mask(leaf, sub, r);
        g[REG_RAX] = r[0];
        g[REG_RBX] = r[1];
        g[REG_RCX] = r[2];
        g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        __atomic_add_fetch(&traps, 1, __ATOMIC_RELAXED);
        if (log_leaves) {
            uint32_t key = (leaf << 8) ^ sub, slot = (leaf * 7 + sub) % 64;
            if (logged[slot] != key + 1) {
                logged[slot] = key + 1;
                char line[96];
                int n = snprintf(line, sizeof line, "avx2only: cpuid leaf %#x sub %u -> ebx %#x ecx %#x edx %#x\n",
                                 leaf, sub, r[1], r[2], r[3]);
                if (write(2, line, n) < 0) {
                }
            }
        }
        return;
    }
    // A real fault: hand it to whoever had SIGSEGV before (default: die with the signal).
    if (previous.sa_flags & SA_SIGINFO && previous.sa_sigaction) {
        previous.sa_sigaction(sig, info, ctx_);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        signal(SIGSEGV, SIG_DFL);
    }
}

static void report(void) {
    if (log_leaves) {
        char line[64];
        int n = snprintf(line, sizeof line, "avx2only: %llu cpuid traps\n", (unsigned long long)traps);
        if (write(2, line, n) < 0) {
        }
    }
}

__attribute__((constructor)) static void avx2only_init(void) {
    const char *l = getenv("AVX2ONLY_LOG");
    log_leaves = l && *l && strcmp(l, "0") != 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous);
    if (set_cpuid(0) != 0) {
        fprintf(stderr, "avx2only: CPUID faulting is not available on this CPU/kernel (no cpuid_fault flag): "
                        "the process sees the real CPU. Run without LD_PRELOAD or on another host.\n");
        exit(97);
    }
    atexit(report);
}
