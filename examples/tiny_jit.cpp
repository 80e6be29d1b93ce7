// SPDX-License-Identifier: MIT
/*
 * tiny_jit - a tiny JIT that emits x86-64 code for small functions into a
 * text cache and calls them.
 *
 * Each function is f(x) = x * a + b, compiled to
 *     mov  eax, edi        89 f8
 *     imul eax, eax, a     69 c0 <a:imm32>
 *     add  eax, b          05 <b:imm32>
 *     ret                  c3
 * The code is installed with unmapped_write() (never through a writable
 * alias of the executable address), run through the read+execute alias,
 * then freed after an RCU grace period as a JIT would free code other
 * threads might still be running. Exits non-zero if any result is wrong.
 */
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <unmapped_alloc/unmapped_alloc.h>

namespace {

std::vector<unsigned char> compile_affine(std::int32_t a, std::int32_t b)
{
	std::vector<unsigned char> code = {0x89, 0xf8, 0x69, 0xc0, 0, 0, 0, 0, 0x05, 0, 0, 0, 0, 0xc3};
	std::memcpy(&code[4], &a, 4);
	std::memcpy(&code[9], &b, 4);
	return code;
}

}  // namespace

int main()
{
	/* 64 MiB of real memory: a memfd with a huge-page direct-map view. */
	ua::machine<ua::linux_backend> m(16384);
	if (!m.backend.ok()) {
		std::fprintf(stderr, "tiny_jit: cannot create the memory backend: %s\n", std::strerror(-m.backend.init_error()));
		return 1;
	}
	ua::unmapped_cache<ua::linux_backend> text(m, ua::text_cache_config("jit"));

	struct fn {
		std::int32_t a, b;
		void *code;
	};
	std::vector<fn> fns;
	for (std::int32_t i = 1; i <= 100; i++) {
		auto code = compile_affine(i, 1000 - i);
		auto r = ua::unmapped_alloc(text, code.size(), 16);
		if (!r.ok()) {
			std::fprintf(stderr, "tiny_jit: unmapped_alloc: %s\n", ua::describe(r.err));
			return 1;
		}
		if (ua::error e = ua::unmapped_write(text, r.value, code.data(), code.size()); e != ua::error::ok) {
			std::fprintf(stderr, "tiny_jit: unmapped_write: %s\n", ua::describe(e));
			return 1;
		}
		fns.push_back({i, 1000 - i, r.value});
	}
	int wrong = 0;
	for (const fn &f : fns) {
		auto call = reinterpret_cast<int (*)(int)>(f.code);
		for (int x : {0, 1, 7, -3}) {
			int got = call(x), want = x * f.a + f.b;
			if (got != want) {
				std::fprintf(stderr, "tiny_jit: f(%d) = %d, want %d\n", x, got, want);
				wrong++;
			}
		}
	}
	std::printf("tiny_jit: %zu functions compiled and called, %d wrong results\n", fns.size(), wrong);
	std::printf("tiny_jit: f_7(5) = %d at %p (read+execute alias)\n", reinterpret_cast<int (*)(int)>(fns[6].code)(5), fns[6].code);
	for (const fn &f : fns)
		if (ua::unmapped_free_deferred(text, f.code) != ua::error::ok)
			wrong++;
	ua::rcu::barrier();
	ua::cache_stats_print(stdout, text);
	return wrong ? 1 : 0;
}
