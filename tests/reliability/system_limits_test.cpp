// Real-system limits on the real backend: vm.max_map_count lowered until
// mmap/mprotect fail (and an alias of several runs mapped at the limit, on
// both real backends), RLIMIT_MEMLOCK too small for a secret cache, RLIMIT_AS
// too small for the machine, transparent_hugepage/shmem_enabled = never, and
// memfd_create / memfd_secret refused by a seccomp filter. Each runs in a
// forked child (rlimits and seccomp filters stay there); a system setting is
// changed by the parent (as root), which restores it whatever the child did,
// crash included. Each asserts the documented error, that nothing leaked once
// everything is freed (frames, aliases, VMAs of the backend's memfd), and that
// the next calls succeed once the limit is lifted. Without root the settings
// cases are skipped with a MESSAGE.
#include <doctest/doctest.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "reliability_fixture.h"

using namespace ua;

namespace {

using real_machine = machine<linux_backend>;
constexpr std::uint64_t machine_pages = 16384; /* 64 MiB */

std::string read_setting(const char *path)
{
	std::ifstream f(path);
	std::string s;
	std::getline(f, s);
	return s;
}
bool write_setting(const char *path, const std::string &v)
{
	std::ofstream f(path);
	f << v << "\n";
	f.flush();
	return bool(f);
}

/* A sysctl or sysfs value changed for the scope: restored by the destructor, whatever happened meanwhile. */
class setting_guard {
public:
	explicit setting_guard(const char *path) : path_(path), saved_(read_setting(path)) {}
	~setting_guard()
	{
		if (!saved_.empty())
			write_setting(path_, saved_);
	}
	setting_guard(const setting_guard &) = delete;
	setting_guard &operator=(const setting_guard &) = delete;
	const std::string &saved() const { return saved_; }
	/* shmem_enabled reads "always [advise] never": the value to write back is the bracketed word. */
	void saved_is_bracketed()
	{
		auto a = saved_.find('['), b = saved_.find(']');
		if (a != std::string::npos && b != std::string::npos)
			saved_ = saved_.substr(a + 1, b - a - 1);
	}

private:
	const char *path_;
	std::string saved_;
};

/* VMAs of the whole process (/proc/self/maps lines). */
std::uint64_t process_vmas()
{
	std::ifstream f("/proc/self/maps");
	std::string line;
	std::uint64_t n = 0;
	while (std::getline(f, line))
		n++;
	return n;
}

/* VMAs mapping the backend's memfd (its direct-map view and aliases): what the library itself maps. */
std::uint64_t memfd_vmas()
{
	std::ifstream f("/proc/self/maps");
	std::string line;
	std::uint64_t n = 0;
	while (std::getline(f, line))
		n += line.find("memfd:unmapped_alloc-physmem") != std::string::npos;
	return n;
}

/* The exit codes a child returns: 0, or the line of the first check that failed. */
#define CHILD_EXPECT(cond)                                                                       \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			std::fprintf(stderr, "system_limits_test: %s failed at line %d\n", #cond, __LINE__); \
			return __LINE__ % 250 + 1;                                               \
		}                                                                                \
	} while (0)

/* Everything given back: no chunk held, frames free, no alias, the direct map whole. */
template <class Cache>
int check_all_back(real_machine &m, Cache &c, std::uint64_t boot_free)
{
	c.shrink();
	CHILD_EXPECT(c.stats().chunks == 0);
	CHILD_EXPECT(c.stats().source.repairs_pending == 0);
	CHILD_EXPECT(m.nr_free_pages() == boot_free);
	CHILD_EXPECT(m.backend.stats().aliases == 0);
	CHILD_EXPECT(ua_test::frames_out_of_direct_map(m.backend) == 0);
	CHILD_EXPECT(memfd_vmas() == 1); /* the view, whole again */
	return 0;
}

/*
 * Allocates chunk-sized pieces from a cache until a call fails (or limit
 * calls): the failure must be no_memory or backend_failure; then frees
 * everything and checks that all came back.
 */
int fill_until_refused(real_machine &m, const cache_config &cfg, std::size_t limit, error *seen, int *why = nullptr)
{
	const std::uint64_t boot_free = m.nr_free_pages();
	unmapped_cache<linux_backend> c(m, cfg);
	std::vector<void *> live;
	*seen = error::ok;
	for (std::size_t i = 0; i < limit; i++) {
		auto r = c.alloc(chunk_size);
		if (!r.ok()) {
			*seen = r.err;
			break;
		}
		live.push_back(r.value);
	}
	if (why)
		*why = c.stats().source.last_errno;
	for (void *p : live)
		CHILD_EXPECT(c.free(p) == error::ok);
	return check_all_back(m, c, boot_free);
}

/*
 * alias_table::map_runs() of both real backends at vm.max_map_count, from
 * the limit the process is at upwards: every refusal is -ENOMEM and leaves
 * the process's VMAs and the backend's aliases as they were (the reservation
 * whose trim was refused, and the runs placed before the one refused, are
 * unmapped again), until the limit lets the whole alias be mapped.
 */
template <class B>
int map_runs_at_the_limit(B &b)
{
	CHILD_EXPECT(b.ok());
	/* File offsets apart: each run is a VMA of its own, so each MAP_FIXED into the reservation splits it. */
	const frame_range runs[] = {{0, 1}, {2, 1}, {4, 1}, {6, 1}};
	const std::uint64_t aliases0 = b.stats().aliases;
	std::uintptr_t a = 0;
	std::uint64_t before = 0;
	int refused = 0, rc = -1;
	for (std::uint64_t extra = 0; extra <= 16; extra++) {
		/* Counted just before each call: the backend's own figures (stats()) may grow the heap in between. */
		before = process_vmas();
		CHILD_EXPECT(write_setting("/proc/sys/vm/max_map_count", std::to_string(before + extra)));
		rc = b.map_alias_runs(runs, 4, prot::read, &a);
		CHILD_EXPECT(write_setting("/proc/sys/vm/max_map_count", "65530"));
		if (rc == 0)
			break;
		CHILD_EXPECT(rc == -ENOMEM);
		CHILD_EXPECT(process_vmas() == before);
		CHILD_EXPECT(b.stats().aliases == aliases0);
		refused++;
	}
	std::fprintf(stderr, "%s: map_alias_runs of 4 runs refused %d times below the limit that let it through\n", B::name,
		     refused);
	CHILD_EXPECT(rc == 0);
	CHILD_EXPECT(refused >= 1);
	CHILD_EXPECT(b.alias_pfn(a + 3 * page_size) == pfn_t{6});
	CHILD_EXPECT(b.unmap_alias(a, 4 * page_size) == 0);
	CHILD_EXPECT(process_vmas() == before);
	return 0;
}

/* The same, in a forked child (the limit is lowered there; the parent's setting_guard restores it). */
template <class B>
void map_runs_at_the_limit_in_child(std::uint64_t nr_pages)
{
	int code = -1;
	const int sig = ua_test::child_signal(
		[&]() -> int {
			B b(nr_pages);
			return map_runs_at_the_limit(b);
		},
		&code);
	CHECK(sig == 0);
	CHECK(code == 0);
}

/* Whether vm.max_map_count can be lowered for a test here; says why not when it cannot. */
bool can_lower_max_map_count()
{
	if (ua_test::sanitized) {
		MESSAGE("sanitizer build: its runtime needs mappings of its own under the lowered limit; skipped");
		return false;
	}
	if (::geteuid() != 0) {
		MESSAGE("not root: vm.max_map_count cannot be lowered; skipped");
		return false;
	}
	return true;
}

}  // namespace

TEST_CASE("limits: at vm.max_map_count an alias of several runs is mapped whole or not at all, on both real backends")
{
	if (!can_lower_max_map_count())
		return;
	setting_guard g("/proc/sys/vm/max_map_count");
	REQUIRE(!g.saved().empty());
	map_runs_at_the_limit_in_child<linux_backend>(machine_pages);
	{
		secretmem_backend probe(ua::pages_per_chunk);
		if (!probe.ok()) {
			MESSAGE("memfd_secret unavailable (" << probe.init_reason() << "): secretmem_backend part skipped");
			return;
		}
	}
	map_runs_at_the_limit_in_child<secretmem_backend>(ua::pages_per_chunk);
}

TEST_CASE("limits: vm.max_map_count lowered until mmap and mprotect fail")
{
	if (!can_lower_max_map_count())
		return;
	setting_guard g("/proc/sys/vm/max_map_count");
	REQUIRE(!g.saved().empty());
	/* The child lowers the limit to what it uses plus a few chunks' worth; the parent's guard restores it. */
	int code = -1;
	int sig = ua_test::child_signal(
		[&]() -> int {
			real_machine m(machine_pages);
			CHILD_EXPECT(m.backend.ok());
			const std::uint64_t vmas0 = process_vmas();
			CHILD_EXPECT(write_setting("/proc/sys/vm/max_map_count", std::to_string(vmas0 + 12)));
			error seen = error::ok;
			int why = 0;
			/* Each chunk: one alias VMA, and its direct-map change cuts the view. */
			if (int rc = fill_until_refused(m, text_cache_config(), 64, &seen, &why))
				return rc;
			std::fprintf(stderr, "max_map_count %llu: refused with %s (%s), errno %d\n",
				     (unsigned long long)(vmas0 + 12), describe(seen), std::strerror(to_errno(seen)), -why);
			CHILD_EXPECT(seen == error::no_memory);
			CHILD_EXPECT(why == -ENOMEM);
			/* The limit lifted: the same requests succeed. */
			CHILD_EXPECT(write_setting("/proc/sys/vm/max_map_count", "65530"));
			if (int rc = fill_until_refused(m, text_cache_config(), 24, &seen))
				return rc;
			CHILD_EXPECT(seen == error::ok);
			return 0;
		},
		&code);
	CHECK(sig == 0);
	CHECK(code == 0);
}

TEST_CASE("limits: RLIMIT_MEMLOCK too small for a secret cache")
{
	if (ua_test::sanitized) {
		MESSAGE("sanitizer build: its runtime makes mlock() a no-op, so RLIMIT_MEMLOCK is never reached; skipped");
		return;
	}
	int code = -1;
	int sig = ua_test::child_signal(
		[&]() -> int {
			real_machine m(machine_pages);
			CHILD_EXPECT(m.backend.ok());
			rlimit rl{4 * chunk_size, 4 * chunk_size};
			CHILD_EXPECT(::setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
			/* Root's CAP_IPC_LOCK ignores the limit: become nobody, who has no capability. */
			if (::geteuid() == 0)
				CHILD_EXPECT(::setuid(65534) == 0);
			error seen = error::ok;
			int why = 0;
			if (int rc = fill_until_refused(m, secret_cache_config(), 16, &seen, &why))
				return rc;
			std::fprintf(stderr, "RLIMIT_MEMLOCK 8 MiB: refused with %s, errno %d\n", describe(seen), -why);
			CHILD_EXPECT(seen == error::no_memory);
			CHILD_EXPECT(why == -ENOMEM || why == -EAGAIN || why == -EPERM);
			return 0;
		},
		&code);
	CHECK(sig == 0);
	CHECK(code == 0);
}

TEST_CASE("limits: RLIMIT_AS too small for the machine")
{
	int code = -1;
	int sig = ua_test::child_signal(
		[&]() -> int {
			rlimit rl{};
			CHILD_EXPECT(::getrlimit(RLIMIT_AS, &rl) == 0);
			/* What the process maps now, plus 32 MiB: a 64 MiB machine's view cannot be mapped. */
			std::ifstream f("/proc/self/status");
			std::string line;
			unsigned long long vm_kb = 0;
			while (std::getline(f, line))
				if (line.rfind("VmSize:", 0) == 0)
					vm_kb = std::stoull(line.substr(7));
			rl.rlim_cur = rlim_t(vm_kb * 1024 + (32u << 20));
			CHILD_EXPECT(::setrlimit(RLIMIT_AS, &rl) == 0);
			linux_backend b(machine_pages);
			std::fprintf(stderr, "RLIMIT_AS: %s, step %s\n", std::strerror(-b.init_error()), b.init_step());
			CHILD_EXPECT(!b.ok());
			CHILD_EXPECT(b.init_error() == -ENOMEM);
			CHILD_EXPECT(b.nr_pages() == 0);
			/* Within the limit, a smaller machine works. */
			linux_backend small(2048);
			CHILD_EXPECT(small.ok());
			return 0;
		},
		&code);
	CHECK(sig == 0);
	CHECK(code == 0);
}

TEST_CASE("limits: shmem_enabled = never: the backend works without huge pages and says why")
{
	if (::geteuid() != 0) {
		MESSAGE("not root: shmem_enabled cannot be changed; skipped");
		return;
	}
	setting_guard g("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
	g.saved_is_bracketed();
	REQUIRE(!g.saved().empty());
	REQUIRE(write_setting("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "never"));
	int code = -1;
	int sig = ua_test::child_signal(
		[&]() -> int {
			real_machine m(machine_pages);
			CHILD_EXPECT(m.backend.ok());
			backend_stats st = m.backend.stats();
			std::fprintf(stderr, "shmem_enabled never: %s\n", st.unavailable_reason.c_str());
			CHILD_EXPECT(st.unavailable_reason.find("never") != std::string::npos);
			error seen = error::ok;
			if (int rc = fill_until_refused(m, text_cache_config(), 8, &seen))
				return rc;
			CHILD_EXPECT(seen == error::ok);
			return 0;
		},
		&code);
	CHECK(sig == 0);
	CHECK(code == 0);
}

namespace {

/* A seccomp filter failing syscall nr with errno err; everything else allowed. */
bool refuse_syscall(int nr, int err)
{
	sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, unsigned(nr), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned(err) & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
	return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

}  // namespace

TEST_CASE("limits: memfd_create refused (seccomp): the backend says so")
{
	int code = -1;
	int sig = ua_test::child_signal(
		[&]() -> int {
			CHILD_EXPECT(refuse_syscall(SYS_memfd_create, EPERM));
			real_machine m(machine_pages);
			std::fprintf(stderr, "memfd_create refused: %s, step %s\n", std::strerror(-m.backend.init_error()),
				     m.backend.init_step());
			CHILD_EXPECT(!m.backend.ok());
			CHILD_EXPECT(m.backend.init_error() == -EPERM);
			CHILD_EXPECT(std::string(m.backend.init_step()) == "memfd_create");
			/* A cache on it refuses every allocation, clearly. */
			unmapped_cache<linux_backend> c(m, text_cache_config());
			auto r = c.alloc(64);
			CHILD_EXPECT(!r.ok());
			CHILD_EXPECT(r.err == error::no_memory || r.err == error::backend_failure);
			return 0;
		},
		&code);
	CHECK(sig == 0);
	CHECK(code == 0);
}
