// SPDX-License-Identifier: MIT
/*
 * The whole public API builds and runs with -fno-exceptions: every umbrella
 * header (the API, the caches, the real backends, the simulation), with a
 * cache on the simulated and on the real backend, and the C++ allocator for
 * secrets. The library catches what the standard library may throw only
 * through UA_TRY / UA_CATCH_ALL (error.h), which build to nothing here.
 * A plain program (no doctest, which wants exceptions): exit status 0 when
 * every check holds, else the number of the first that failed.
 */
#include <unmapped_alloc/unmapped_alloc.h>
#include <unmapped_alloc/arena.h>
#include <unmapped_alloc/cache.h>
#include <unmapped_alloc/ds.h>
#include <unmapped_alloc/mapping.h>
#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

#include <vector>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "this test must be built with -fno-exceptions"
#endif

template <class Backend>
int use(ua::machine<Backend> &m, int base)
{
	using namespace ua;
	unmapped_cache<Backend> text(m, text_cache_config()), secret(m, secret_cache_config());
	auto p = unmapped_alloc(text, 100);
	if (!p.ok())
		return base + 1;
	unsigned char code[4] = {0x90, 0x90, 0x90, 0xc3};
	if (unmapped_write(text, p.value, code, sizeof code) != error::ok)
		return base + 2;
	if (text.find_allocation(p.value).err != error::ok)
		return base + 3;
	if (unmapped_free_deferred(text, p.value) != error::ok)
		return base + 4;
	auto big = unmapped_alloc(secret, 3 << 20);
	if (!big.ok() || unmapped_free(secret, big.value) != error::ok)
		return base + 5;
	if (unmapped_free(text, reinterpret_cast<void *>(64)) != error::foreign_pointer)
		return base + 6;
	text.shrink();
	return 0;
}

int main()
{
	using namespace ua;
	{
		machine<sim_direct_map> m(std::uint64_t{1} << 18); /* 1 GiB */
		if (int rc = use(m, 10))
			return rc;
	}
	{
		machine<linux_backend> m(8192); /* 32 MiB */
		if (!m.backend.ok())
			return 20;
		if (int rc = use(m, 20))
			return rc;
		unmapped_cache<linux_backend> c(m, secret_cache_config());
		std::vector<int, secret_allocator<int, linux_backend>> v{secret_allocator<int, linux_backend>(c)};
		for (int i = 0; i < 1000; i++)
			v.push_back(i);
		if (v[999] != 999)
			return 30;
	}
	return 0;
}
