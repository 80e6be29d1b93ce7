// SPDX-License-Identifier: MIT
/*
 * The caches' secret paths over mapping/secretmem_backend.h: the secret cache
 * whose chunks are memfd_secret pages, out of the running kernel's direct
 * map. The same behaviours tests/cache/ checks on the simulated and the real
 * backend (acquire and release undo each other, secrets zeroed and secured,
 * churn within the live set, ENOMEM apart from EINVAL, standard containers),
 * plus what only this memory has: the pages the kernel took out stay with
 * the cache and are reused. Skipped with the reason where memfd_secret is
 * unavailable. Machines of 16-64 MiB: what the kernel splits for them stays
 * split until reboot (docs/live.md).
 *
 * memfd_secret(2) refused: in a forked child, a seccomp filter makes it fail
 * with ENOSYS, EPERM or EMFILE (a kernel without it, a sandbox, the fd
 * table), and RLIMIT_NOFILE at the fds already open gives the kernel's own
 * EMFILE. The backend and a secret cache on it must say so, and leave no fd,
 * mapping or frame behind. These run wherever seccomp filters may be set
 * (no privilege: PR_SET_NO_NEW_PRIVS), memfd_secret available or not.
 */
#include <doctest/doctest.h>

#include "child.h"

#include <support/sanitizers.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstddef>
#include <cstdio>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <unmapped_alloc/unmapped_alloc.h>

using namespace ua;
using secret_machine = machine<secretmem_backend>;
using ua_test::child_signal;

namespace {

bool secretmem_here()
{
	std::string why = secretmem_backend::unavailable_reason();
	if (!why.empty())
		MESSAGE("memfd_secret unavailable, case skipped: " << why);
	return why.empty();
}

/* A machine whose memory is one memfd_secret file of `pages` frames (64 MiB by default). */
std::unique_ptr<secret_machine> make_machine(std::uint64_t pages = 16384)
{
	auto m = std::make_unique<secret_machine>(pages);
	REQUIRE_MESSAGE(m->backend.ok(), m->backend.init_reason());
	return m;
}

/* A seccomp filter failing memfd_secret(2) with errno err for this process (a child: a filter is never undone). */
bool refuse_memfd_secret(int err)
{
	sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, unsigned(__NR_memfd_secret), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned(err) & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
	return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/*
 * This process's open fds and mappings, read through a directory stream and
 * an fd opened once, up front: the count must work when no fd is left to open.
 */
class proc_counts {
public:
	proc_counts() : dir_(::opendir("/proc/self/fd")), maps_(::open("/proc/self/maps", O_RDONLY | O_CLOEXEC)) {}
	~proc_counts()
	{
		if (dir_)
			::closedir(dir_);
		if (maps_ >= 0)
			::close(maps_);
	}
	proc_counts(const proc_counts &) = delete;
	proc_counts &operator=(const proc_counts &) = delete;

	long fds()
	{
		if (!dir_)
			return -1;
		::rewinddir(dir_);
		long n = 0;
		while (const dirent *e = ::readdir(dir_))
			n += e->d_name[0] != '.';
		return n;
	}
	long vmas()
	{
		static char buf[65536]; /* no allocation: the heap must not grow a mapping while they are counted */
		if (maps_ < 0 || ::lseek(maps_, 0, SEEK_SET) != 0)
			return -1;
		long n = 0;
		for (ssize_t k; (k = ::read(maps_, buf, sizeof buf)) > 0;)
			n += std::count(buf, buf + k, '\n');
		return n;
	}

private:
	DIR *dir_;
	int maps_;
};

/* In a child: 0, or the line of the first check that failed (as its exit code). */
#define CHILD_EXPECT(cond)                                                                              \
	do {                                                                                            \
		if (!(cond)) {                                                                          \
			std::fprintf(stderr, "secretmem_cache_test: %s failed at line %d\n", #cond, __LINE__); \
			return __LINE__ % 250 + 1;                                                      \
		}                                                                                       \
	} while (0)

/*
 * With memfd_secret failing with errno err: the backend reports it (ok()
 * false, init_error() -err, the reason naming memfd_secret, no frames), a
 * secret cache on the machine refuses every allocation with a clear error,
 * nothing is held once they are gone.
 */
int refused_round(int err)
{
	const std::string why = secretmem_backend::unavailable_reason();
	CHILD_EXPECT(!why.empty());
	CHILD_EXPECT(why.find(err == ENOSYS ? "ENOSYS" : std::strerror(err)) != std::string::npos);
	{
		secretmem_backend b(2 * pages_per_chunk);
		CHILD_EXPECT(!b.ok());
		CHILD_EXPECT(b.init_error() == -err);
		CHILD_EXPECT(b.init_reason().rfind("memfd_secret: ", 0) == 0);
		CHILD_EXPECT(b.nr_pages() == 0);
		CHILD_EXPECT(b.set_direct_map_invalid({0, 1}) == -EINVAL);
		std::uintptr_t a = 0;
		CHILD_EXPECT(b.map_alias({0, 1}, prot::rw, &a) == -EINVAL);
		CHILD_EXPECT(b.stats().unavailable_reason.find(b.init_reason()) != std::string::npos);
	}
	{
		secret_machine m(16384);
		CHILD_EXPECT(!m.backend.ok());
		CHILD_EXPECT(m.backend.init_error() == -err);
		const std::uint64_t free0 = m.nr_free_pages();
		unmapped_cache<secretmem_backend> c(m, secret_cache_config());
		for (std::size_t size : {std::size_t{64}, std::size_t{4096}, chunk_size, 3 * chunk_size}) {
			auto r = c.alloc(size);
			CHILD_EXPECT(!r.ok());
			CHILD_EXPECT(r.err == error::no_memory || r.err == error::backend_failure);
			CHILD_EXPECT(r.value == nullptr);
		}
		CHILD_EXPECT(c.stats().source.last_errno != 0); /* the failed step is kept, with its errno */
		CHILD_EXPECT(std::strlen(c.stats().source.last_step) != 0);
		c.shrink();
		CHILD_EXPECT(c.stats().chunks == 0);
		CHILD_EXPECT(c.stats().source.repairs_pending == 0);
		CHILD_EXPECT(m.nr_free_pages() == free0);
		CHILD_EXPECT(m.backend.stats().aliases == 0);
	}
	return 0;
}

/*
 * refused_round() once (the process's one-time state: heap, the shrinker
 * registry), then three more times: no fd and no mapping more after them.
 */
int check_refused(int err, proc_counts &pc)
{
	if (int rc = refused_round(err))
		return rc;
	const long fds0 = pc.fds(), vmas0 = pc.vmas();
	CHILD_EXPECT(fds0 > 0 && vmas0 > 0);
	for (int i = 0; i < 3; i++)
		if (int rc = refused_round(err))
			return rc;
	CHILD_EXPECT(pc.fds() == fds0);
	if (!ua_test::tsan) /* TSan's runtime maps shadow memory as the rounds allocate */
		CHILD_EXPECT(pc.vmas() == vmas0);
	return 0;
}

}  // namespace

TEST_CASE("secretmem: memfd_secret refused (ENOSYS, EPERM, EMFILE by seccomp): backend and cache say so, nothing leaks")
{
	for (int err : {ENOSYS, EPERM, EMFILE}) {
		CAPTURE(err);
		int code = -1;
		int sig = child_signal(
			[&]() -> int {
				proc_counts pc;
				CHILD_EXPECT(refuse_memfd_secret(err));
				return check_refused(err, pc);
			},
			&code);
		CHECK(sig == 0);
		CHECK(code == 0);
	}
}

TEST_CASE("secretmem: memfd_secret at RLIMIT_NOFILE fails with the kernel's own EMFILE; nothing leaks")
{
	if (!secretmem_here())
		return;
	int code = -1;
	int sig = child_signal(
		[&]() -> int {
			proc_counts pc;
			/* The limit just above the highest fd open now, and every free slot below it taken: no fd left. */
			int top = 0;
			for (int fd = 0; fd < 4096; fd++)
				if (::fcntl(fd, F_GETFD) != -1)
					top = fd;
			rlimit rl{rlim_t(top + 1), rlim_t(top + 1)};
			CHILD_EXPECT(::setrlimit(RLIMIT_NOFILE, &rl) == 0);
			std::vector<int> fillers;
			fillers.reserve(4096);
			for (int fd; (fd = ::dup(0)) >= 0;)
				fillers.push_back(fd);
			CHILD_EXPECT(errno == EMFILE);
			CHILD_EXPECT(int(::syscall(__NR_memfd_secret, 0u)) == -1 && errno == EMFILE);
			return check_refused(EMFILE, pc);
		},
		&code);
	CHECK(sig == 0);
	CHECK(code == 0);
}

TEST_CASE("secretmem cache: acquire and release undo each other; the released run is zeroed and kept by the kernel")
{
	if (!secretmem_here())
		return;
	auto m = make_machine();
	const std::uint64_t free_before = m->nr_free_pages();
	cache_config cfg = secret_cache_config();
	chunk_source<secretmem_backend> src(*m, cfg);
	auto r = src.acquire(1);
	REQUIRE(r.ok());
	chunk_run run = r.value;
	CHECK(m->backend.direct_map_state(run.pfn) == dm_state::invalid);
	CHECK(m->backend.alias_secured(run.alias));
	CHECK(m->backend.resident_pages() == long(pages_per_chunk));
	std::memset(reinterpret_cast<void *>(run.alias), 0x5a, run.bytes()); /* what a user left there */
	REQUIRE(src.release(run) == error::ok);
	CHECK(m->backend.direct_map_state(run.pfn) == dm_state::rw);
	CHECK(m->backend.stats().aliases == 0);
	CHECK(m->nr_free_pages() == free_before);
	const std::byte *v = m->backend.view_address(run.pfn);
	CHECK(std::all_of(v, v + run.bytes(), [](std::byte b) { return b == std::byte{0}; }));
	/* The kernel keeps the pages out of its direct map; the next acquire of them faults nothing new. */
	CHECK(m->backend.resident_pages() == long(pages_per_chunk));
	auto again = src.acquire(1);
	REQUIRE(again.ok());
	CHECK(again.value.pfn == run.pfn);
	CHECK(m->backend.resident_pages() == long(pages_per_chunk));
	REQUIRE(src.release(again.value) == error::ok);
}

TEST_CASE("secretmem cache: secrets are zeroed when freed, locked, out of core dumps and absent in a child")
{
	if (!secretmem_here())
		return;
	auto m = make_machine();
	unmapped_cache<secretmem_backend> c(*m, secret_cache_config());
	auto r = c.alloc(128, 1, ua_zero);
	auto keep = c.alloc(64);
	REQUIRE((r.ok() && keep.ok()));
	auto a = reinterpret_cast<std::uintptr_t>(r.value);
	CHECK(m->backend.alias_prot(a) == prot::rw);
	CHECK(m->backend.alias_secured(a));
	auto fr = m->backend.alias_frames(a);
	REQUIRE(fr.has_value());
	CHECK(m->backend.direct_map_state(fr->pfn) == dm_state::invalid);
	const unsigned char *z = static_cast<const unsigned char *>(r.value);
	CHECK(std::all_of(z, z + 128, [](unsigned char b) { return b == 0; }));
	std::memset(r.value, 0x5a, 128);
	CHECK(child_signal([&] { (void)*static_cast<volatile char *>(r.value); }) == SIGSEGV);
	REQUIRE(c.free(r.value) == error::ok);
	unsigned char after[128];
	std::memcpy(after, r.value, 128);
	CHECK(std::count(after, after + 128, 0) == 128);
	REQUIRE(c.free(keep.value) == error::ok);
}

TEST_CASE("secretmem cache: churn of 16-4096 B secrets keeps its pages: the kernel's residency follows the peak, not the steps")
{
	if (!secretmem_here())
		return;
	auto m = make_machine();
	cache_config cfg = secret_cache_config();
	cfg.nr_shards = 1;
	unmapped_cache<secretmem_backend> c(*m, cfg);
	std::mt19937_64 rng(16);
	std::uniform_int_distribution<std::size_t> size(16, 4096);
	std::vector<void *> live;
	std::size_t live_bytes = 0;
	while (live_bytes < (std::size_t(2) << 20)) { /* a 2 MiB live set */
		std::size_t s = size(rng);
		auto r = c.alloc(s);
		REQUIRE(r.ok());
		std::memset(r.value, 0x33, s);
		live.push_back(r.value);
		live_bytes += s;
	}
	const long long warm = m->backend.resident_pages();
	for (int step = 0; step < 20000; step++) {
		std::size_t i = rng() % live.size();
		REQUIRE(c.free(live[i]) == error::ok);
		std::size_t s = size(rng);
		auto r = c.alloc(s);
		REQUIRE(r.ok());
		std::memset(r.value, 0x44, s);
		live[i] = r.value;
	}
	const auto st = c.stats();
	const long long resident = m->backend.resident_pages();
	INFO("resident pages " << resident << " after warm-up " << warm << ", peak chunks " << st.peak_chunks);
	/* Every page the kernel took out is one of the chunks the cache held at its peak: none beyond. */
	CHECK(resident <= (long long)(st.peak_chunks * pages_per_chunk));
	CHECK(resident >= warm);
	CHECK(st.peak_chunks <= 3); /* 2 MiB of secrets, within a chunk of their live set */
	CHECK(c.check_consistency() == "");
	for (void *p : live)
		REQUIRE(c.free(p) == error::ok);
	c.shrink();
	CHECK(c.stats().chunks == 0);
	CHECK(m->backend.resident_pages() == resident); /* still the kernel's until the file goes */
}

TEST_CASE("secretmem cache: ENOMEM is told apart from EINVAL and nothing leaks")
{
	if (!secretmem_here())
		return;
	auto m = make_machine(2048); /* 8 MiB: 4 chunks at most, all faulted in */
	const std::uint64_t free_before = m->nr_free_pages();
	cache_config cfg = secret_cache_config();
	cfg.nr_shards = 1;
	{
		unmapped_cache<secretmem_backend> c(*m, cfg);
		std::vector<void *> v;
		result<void *> r;
		while ((r = c.alloc(chunk_size)).ok())
			v.push_back(r.value);
		CHECK(r.err == error::no_memory);
		CHECK(!v.empty());
		CHECK(c.alloc(0).err == error::zero_size);
		CHECK(c.alloc(64, 3).err == error::bad_alignment);
		for (void *p : v)
			REQUIRE(c.free(p) == error::ok);
		c.shrink();
		CHECK(c.stats().chunks == 0);
	}
	CHECK(m->nr_free_pages() == free_before);
	CHECK(m->backend.stats().aliases == 0);
}

TEST_CASE("secretmem cache: text and ro caches cannot use this memory; their allocations fail cleanly")
{
	if (!secretmem_here())
		return;
	auto m = make_machine(4096);
	const std::uint64_t free_before = m->nr_free_pages();
	unmapped_cache<secretmem_backend> text(*m, text_cache_config()); /* needs an rx alias: refused */
	unmapped_cache<secretmem_backend> ro(*m, ro_cache_config());     /* needs a read-only direct map: refused */
	CHECK(text.alloc(64).err == error::backend_failure);
	CHECK(ro.alloc(64).err == error::backend_failure);
	CHECK(text.stats().chunks == 0);
	CHECK(ro.stats().chunks == 0);
	CHECK(m->nr_free_pages() == free_before);
	CHECK(m->backend.stats().aliases == 0);
	CHECK(m->backend.direct_map_state(0) == dm_state::rw);
}

TEST_CASE("secretmem cache: secret_allocator keeps vector and string contents in memfd_secret memory")
{
	if (!secretmem_here())
		return;
	auto m = make_machine(4096);
	unmapped_cache<secretmem_backend> secrets(*m, secret_cache_config());
	secret_allocator<std::byte, secretmem_backend> alloc(secrets);
	{
		std::vector<std::byte, secret_allocator<std::byte, secretmem_backend>> key(alloc);
		key.resize(48, std::byte{7});
		CHECK(secrets.contains(key.data()));
		using sstring = std::basic_string<char, std::char_traits<char>, secret_allocator<char, secretmem_backend>>;
		sstring pass{secret_allocator<char, secretmem_backend>(secrets)};
		pass.assign(200, 'p');
		CHECK(secrets.contains(pass.data()));
		CHECK(secrets.stats().live_count == 2);
	}
	CHECK(secrets.stats().live_count == 0);
}
