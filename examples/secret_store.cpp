// SPDX-License-Identifier: MIT
/*
 * secret_store - keys kept in secret memory, shown absent from the direct map.
 *
 * Keys live in std::vector<std::byte, secret_allocator<...>>, so their bytes
 * are in a secret cache: removed from the direct map, locked, excluded from
 * core dumps and not inherited by fork, zeroed when freed. The program then
 * looks for each key where the kernel would see it, through the direct map,
 * in a forked child: the access faults. Exits non-zero if a key is readable
 * there or if a forked child can read the key's own address.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <unmapped_alloc/unmapped_alloc.h>

namespace {

using backend = ua::linux_backend;
using secret_bytes = std::vector<std::byte, ua::secret_allocator<std::byte, backend>>;

/* True when reading addr in a forked child kills it with SIGSEGV. */
bool faults_in_child(const volatile std::byte *addr)
{
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL); /* a sanitizer's handler must not turn the fault into an exit */
		(void)*addr;
		_exit(0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

/* Under ThreadSanitizer (clang 14) fork() does not honour MADV_DONTFORK, so that check means nothing there. */
#if defined(__SANITIZE_THREAD__)
constexpr bool fork_check_meaningful = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool fork_check_meaningful = false;
#else
constexpr bool fork_check_meaningful = true;
#endif
#else
constexpr bool fork_check_meaningful = true;
#endif

}  // namespace

int main()
{
	ua::machine<backend> m(16384);
	if (!m.backend.ok()) {
		std::fprintf(stderr, "secret_store: cannot create the memory backend: %s\n", std::strerror(-m.backend.init_error()));
		return 1;
	}
	ua::unmapped_cache<backend> secrets(m, ua::secret_cache_config("keys"));
	ua::secret_allocator<std::byte, backend> alloc(secrets);

	std::map<std::string, secret_bytes> store;
	for (const char *name : {"disk", "tls", "ssh"}) {
		secret_bytes key(32, std::byte{0}, alloc);
		for (std::size_t i = 0; i < key.size(); i++)
			key[i] = std::byte((i * 37 + std::strlen(name)) & 0xff);
		store.emplace(name, std::move(key));
	}
	int failures = 0;
	for (auto &[name, key] : store) {
		auto addr = reinterpret_cast<std::uintptr_t>(key.data());
		auto frames = m.backend.alias_frames(addr);
		if (!frames) {
			std::fprintf(stderr, "secret_store: key %s is not in the secret cache\n", name.c_str());
			failures++;
			continue;
		}
		/* Secret aliases are whole chunks: the key's offset in its chunk is its offset in the frames. */
		const std::byte *dm = m.backend.direct_map_address(frames->pfn) + (addr & (ua::chunk_size - 1));
		std::fflush(stdout); /* a forked child must not inherit unwritten output */
		bool dm_faults = faults_in_child(dm);
		bool fork_faults = fork_check_meaningful ? faults_in_child(key.data()) : true;
		std::printf("secret_store: key %-4s at %p: direct map %s, forked child %s\n", name.c_str(), (void *)key.data(),
			    dm_faults ? "faults (removed)" : "READABLE",
			    !fork_check_meaningful ? "not checked (ThreadSanitizer build)"
			    : fork_faults	   ? "faults (not inherited)"
						   : "READABLE");
		failures += !dm_faults + !fork_faults;
	}
	store.clear();
	ua::cache_stats_print(stdout, secrets);
	return failures ? 1 : 0;
}
