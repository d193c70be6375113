/*
 * regs: registers that must come back exactly.
 *
 *   regs OUTFILE [sse|avx|avx512]
 *
 * wl_regs_spin() (assembly below) loads known values into the general
 * registers rax, rbx, rcx, rbp, rsi, rdi, r8-r15, into the vector registers
 * (sse: xmm0-15; avx: all of ymm0-15; avx512: all of zmm0-31 and k0-k7), into
 * MXCSR (round toward zero, FTZ, DAZ) and the x87 control word (double
 * precision, round toward zero), then spins, touching only the memory flag
 * that the SIGUSR2 handler sets (rdx points to it). So the dump catches the
 * process in user space with all of these live. Once the flag is set it
 * stores every register, and main compares them with what was loaded and
 * names each one that differs. A signal handler in between is fine: the
 * kernel saves and restores the whole register state around it.
 *
 * The values depend on the pid and the start time, so an image of another
 * run cannot pass by chance. The level defaults to the best the CPU has.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wl.h"

enum level { LEVEL_SSE, LEVEL_AVX, LEVEL_AVX512 };

static const char *const gpr_names[] = {"rax", "rbx", "rcx", "rbp", "rsi", "rdi", "r8",
					"r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
#define NGPR 14

struct regs_block {
	uint8_t vec[32][64]; /* xmm/ymm/zmm i, low bytes first */
	uint64_t k[8];
	uint64_t gpr[NGPR]; /* in the order of gpr_names */
	uint32_t mxcsr;
	uint16_t fcw;
};

/* Offsets of struct regs_block for the assembly, checked at compile time. */
#define OFF_K "2048"
#define OFF_GPR "2112"
#define OFF_MXCSR "2224"
#define OFF_FCW "2228"
_Static_assert(offsetof(struct regs_block, k) == 2048, "k");
_Static_assert(offsetof(struct regs_block, gpr) == 2112, "gpr");
_Static_assert(offsetof(struct regs_block, mxcsr) == 2224, "mxcsr");
_Static_assert(offsetof(struct regs_block, fcw) == 2228, "fcw");

void wl_regs_spin(const struct regs_block *in, struct regs_block *out, volatile sig_atomic_t *flag,
		  long level);

/* One instruction per line: */
/* clang-format off */
#define V16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define V32(M) V16(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) \
		M(28) M(29) M(30) M(31)
#define K8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

#define LOAD_XMM(i) "movdqu " #i "*64(%rdi), %xmm" #i "\n\t"
#define LOAD_YMM(i) "vmovdqu " #i "*64(%rdi), %ymm" #i "\n\t"
#define LOAD_ZMM(i) "vmovdqu64 " #i "*64(%rdi), %zmm" #i "\n\t"
#define LOAD_K(i) "kmovq " OFF_K "+" #i "*8(%rdi), %k" #i "\n\t"
#define STORE_XMM(i) "movdqu %xmm" #i ", " #i "*64(%rax)\n\t"
#define STORE_YMM(i) "vmovdqu %ymm" #i ", " #i "*64(%rax)\n\t"
#define STORE_ZMM(i) "vmovdqu64 %zmm" #i ", " #i "*64(%rax)\n\t"
#define STORE_K(i) "kmovq %k" #i ", " OFF_K "+" #i "*8(%rax)\n\t"

/*
 * rdi = in, rsi = out, rdx = flag, rcx = level. Stack slots: 0 out, 8 level,
 * 16 scratch. rdx is the only general register (besides rsp) not checked.
 */
__asm__(".text\n\t"
	".p2align 4\n\t"
	".globl wl_regs_spin\n\t"
	".hidden wl_regs_spin\n\t"
	".type wl_regs_spin, @function\n"
	"wl_regs_spin:\n\t"
	"push %rbx\n\t"
	"push %rbp\n\t"
	"push %r12\n\t"
	"push %r13\n\t"
	"push %r14\n\t"
	"push %r15\n\t"
	"sub $24, %rsp\n\t"
	"mov %rsi, 0(%rsp)\n\t"
	"mov %rcx, 8(%rsp)\n\t"
	"ldmxcsr " OFF_MXCSR "(%rdi)\n\t"
	"fldcw " OFF_FCW "(%rdi)\n\t"
	"cmp $2, %rcx\n\t"
	"je 2f\n\t"
	"cmp $1, %rcx\n\t"
	"je 1f\n\t"
	V16(LOAD_XMM)
	"jmp 3f\n"
	"1:\n\t"
	V16(LOAD_YMM)
	"jmp 3f\n"
	"2:\n\t"
	V32(LOAD_ZMM)
	K8(LOAD_K)
	"3:\n\t"
	"mov " OFF_GPR "+0(%rdi), %rax\n\t"
	"mov " OFF_GPR "+8(%rdi), %rbx\n\t"
	"mov " OFF_GPR "+16(%rdi), %rcx\n\t"
	"mov " OFF_GPR "+24(%rdi), %rbp\n\t"
	"mov " OFF_GPR "+32(%rdi), %rsi\n\t"
	"mov " OFF_GPR "+48(%rdi), %r8\n\t"
	"mov " OFF_GPR "+56(%rdi), %r9\n\t"
	"mov " OFF_GPR "+64(%rdi), %r10\n\t"
	"mov " OFF_GPR "+72(%rdi), %r11\n\t"
	"mov " OFF_GPR "+80(%rdi), %r12\n\t"
	"mov " OFF_GPR "+88(%rdi), %r13\n\t"
	"mov " OFF_GPR "+96(%rdi), %r14\n\t"
	"mov " OFF_GPR "+104(%rdi), %r15\n\t"
	"mov " OFF_GPR "+40(%rdi), %rdi\n"
	"4:\n\t"
	"pause\n\t"
	"cmpl $0, (%rdx)\n\t"
	"je 4b\n\t"
	"mov %rax, 16(%rsp)\n\t"
	"mov 0(%rsp), %rax\n\t"
	"mov %rbx, " OFF_GPR "+8(%rax)\n\t"
	"mov %rcx, " OFF_GPR "+16(%rax)\n\t"
	"mov %rbp, " OFF_GPR "+24(%rax)\n\t"
	"mov %rsi, " OFF_GPR "+32(%rax)\n\t"
	"mov %rdi, " OFF_GPR "+40(%rax)\n\t"
	"mov %r8, " OFF_GPR "+48(%rax)\n\t"
	"mov %r9, " OFF_GPR "+56(%rax)\n\t"
	"mov %r10, " OFF_GPR "+64(%rax)\n\t"
	"mov %r11, " OFF_GPR "+72(%rax)\n\t"
	"mov %r12, " OFF_GPR "+80(%rax)\n\t"
	"mov %r13, " OFF_GPR "+88(%rax)\n\t"
	"mov %r14, " OFF_GPR "+96(%rax)\n\t"
	"mov %r15, " OFF_GPR "+104(%rax)\n\t"
	"mov 16(%rsp), %rdx\n\t"
	"mov %rdx, " OFF_GPR "+0(%rax)\n\t"
	"stmxcsr " OFF_MXCSR "(%rax)\n\t"
	"fnstcw " OFF_FCW "(%rax)\n\t"
	"mov 8(%rsp), %rcx\n\t"
	"cmp $2, %rcx\n\t"
	"je 6f\n\t"
	"cmp $1, %rcx\n\t"
	"je 5f\n\t"
	V16(STORE_XMM)
	"jmp 7f\n"
	"5:\n\t"
	V16(STORE_YMM)
	"vzeroupper\n\t"
	"jmp 7f\n"
	"6:\n\t"
	V32(STORE_ZMM)
	K8(STORE_K)
	"vzeroupper\n"
	"7:\n\t"
	"movl $0x1f80, 16(%rsp)\n\t"
	"ldmxcsr 16(%rsp)\n\t"
	"movw $0x37f, 16(%rsp)\n\t"
	"fldcw 16(%rsp)\n\t"
	"add $24, %rsp\n\t"
	"pop %r15\n\t"
	"pop %r14\n\t"
	"pop %r13\n\t"
	"pop %r12\n\t"
	"pop %rbp\n\t"
	"pop %rbx\n\t"
	"ret\n\t"
	".size wl_regs_spin, .-wl_regs_spin\n\t");
/* clang-format on */

static struct regs_block in, out;

static enum level best_level(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
		return LEVEL_AVX512;
	if (__builtin_cpu_supports("avx"))
		return LEVEL_AVX;
	return LEVEL_SSE;
}

static enum level parse_level(const char *arg, enum level best)
{
	enum level want;

	if (!strcmp(arg, "sse"))
		want = LEVEL_SSE;
	else if (!strcmp(arg, "avx"))
		want = LEVEL_AVX;
	else if (!strcmp(arg, "avx512"))
		want = LEVEL_AVX512;
	else
		wl_setup_fail("unknown level '%s' (sse, avx or avx512)", arg);
	if (want > best)
		wl_unsupported("this CPU has no %s", arg);
	return want;
}

static void compare(enum level level)
{
	static const char *const vec_names[] = {"xmm", "ymm", "zmm"};
	size_t width = level == LEVEL_SSE ? 16 : level == LEVEL_AVX ? 32 : 64;
	int nvec = level == LEVEL_AVX512 ? 32 : 16;

	for (int i = 0; i < NGPR; i++)
		wl_expect(out.gpr[i] == in.gpr[i], "%s is %#" PRIx64 ", expected %#" PRIx64,
			  gpr_names[i], out.gpr[i], in.gpr[i]);
	for (int i = 0; i < nvec; i++) {
		for (size_t lane = 0; lane < width; lane += 16) {
			uint64_t got[2], want[2];

			if (!memcmp(out.vec[i] + lane, in.vec[i] + lane, 16))
				continue;
			memcpy(got, out.vec[i] + lane, 16);
			memcpy(want, in.vec[i] + lane, 16);
			wl_expect(false,
				  "%s%d bytes %zu-%zu are %016" PRIx64 "%016" PRIx64
				  ", expected %016" PRIx64 "%016" PRIx64,
				  vec_names[level], i, lane, lane + 15, got[1], got[0], want[1],
				  want[0]);
		}
	}
	if (level == LEVEL_AVX512)
		for (int i = 0; i < 8; i++)
			wl_expect(out.k[i] == in.k[i], "k%d is %#" PRIx64 ", expected %#" PRIx64, i,
				  out.k[i], in.k[i]);
	wl_expect(out.mxcsr == in.mxcsr, "mxcsr is %#x, expected %#x", out.mxcsr, in.mxcsr);
	wl_expect(out.fcw == in.fcw, "x87 control word is %#x, expected %#x", out.fcw, in.fcw);
}

int main(int argc, char **argv)
{
	static const char *const level_names[] = {"sse", "avx", "avx512"};
	enum level level;
	uint64_t seed;

	wl_start(argc, argv, 0, "[sse|avx|avx512]");
	level = best_level();
	if (argc > 2)
		level = parse_level(argv[2], level);

	seed = ((uint64_t)getpid() << 32) ^ wl_now_ns(CLOCK_REALTIME);
	wl_fill(in.vec, sizeof(in.vec), seed);
	for (int i = 0; i < 8; i++)
		in.k[i] = wl_word(seed ^ 0x6b, i);
	for (int i = 0; i < NGPR; i++)
		in.gpr[i] = wl_word(seed ^ 0x69, i);
	in.mxcsr = 0x1f80 | 0x6000 | 0x8000 | 0x0040; /* masked, toward zero, FTZ, DAZ */
	in.fcw = 0x0e7f;			      /* masked, double precision, toward zero */
	memset(&out, 0, sizeof(out));

	wl_say("level %s", level_names[level]);
	wl_ready();
	wl_regs_spin(&in, &out, &wl_check_requested, level);

	wl_check_fds();
	compare(level);
	wl_finish();
}
