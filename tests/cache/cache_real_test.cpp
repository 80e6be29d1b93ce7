// Real-backend behaviour of the caches, checked with the kernel's own figures
// and, where an access may fault, in a forked child.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <unmapped_alloc/mapping/smaps.h>

#include "cache_fixture.h"
#include "child.h"
#include "workload/bpf_size_mix.h"

using namespace ua;
using real = ua::linux_backend;

namespace {

using ua_test::child_signal;

/* The VmFlags line of the VMA containing addr in /proc/self/smaps ("" if none). */
std::string vm_flags(const void *addr)
{
	std::string text;
	if (smaps::read_proc_file("/proc/self/smaps", &text) != 0)
		return {};
	auto a = reinterpret_cast<std::uintptr_t>(addr);
	std::size_t pos = 0;
	bool inside = false;
	while (pos < text.size()) {
		std::size_t nl = text.find('\n', pos);
		std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
		pos = nl == std::string::npos ? text.size() : nl + 1;
		std::size_t dash = line.find('-'), sp = line.find(' ');
		if (dash != std::string::npos && sp != std::string::npos && dash < sp && line.find(':') > sp) {
			std::uintptr_t start = std::stoull(line.substr(0, dash), nullptr, 16);
			std::uintptr_t end = std::stoull(line.substr(dash + 1, sp - dash - 1), nullptr, 16);
			inside = start <= a && a < end;
		} else if (inside && line.rfind("VmFlags:", 0) == 0) {
			return line;
		}
	}
	return {};
}

bool has_flag(const std::string &flags, const char *f)
{
	return flags.find(std::string(" ") + f) != std::string::npos;
}

bool huge_pages_available(const ua::machine<real> &m)
{
	auto s = m.backend.stats();
	if (!s.directmap_available)
		MESSAGE("huge-page figures unavailable: " << s.unavailable_reason);
	return s.directmap_available;
}

}  // namespace

TEST_CASE("real cache: a chunk removed from the direct map faults there, its alias works")
{
	auto m = ua_test::real_machine::make();
	unmapped_cache<real> c(*m, text_cache_config());
	auto r = c.alloc(64);
	REQUIRE(r.ok());
	auto fr = m->backend.alias_frames(reinterpret_cast<std::uintptr_t>(r.value));
	REQUIRE(fr.has_value());
	volatile unsigned char *dm = reinterpret_cast<volatile unsigned char *>(m->backend.direct_map_address(fr->pfn));
	CHECK(child_signal([&] { (void)*dm; }) == SIGSEGV);
	/* The executable alias reads fine (trap bytes). */
	CHECK(child_signal([&] { (void)*static_cast<volatile unsigned char *>(r.value); }) == 0);
	/* ...and is never writable. */
	CHECK(child_signal([&] { *static_cast<volatile unsigned char *>(r.value) = 1; }) == SIGSEGV);
}

TEST_CASE("real cache: code installed through unmapped_write runs through the executable alias")
{
	auto m = ua_test::real_machine::make();
	unmapped_cache<real> c(*m, text_cache_config());
	auto r = unmapped_alloc(c, 16, 16);
	REQUIRE(r.ok());
	const unsigned char ret42[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3}; /* mov eax, 42; ret */
	REQUIRE(unmapped_write(c, r.value, ret42, sizeof ret42) == error::ok);
	auto fn = reinterpret_cast<int (*)()>(r.value);
	CHECK(fn() == 42);
	CHECK(smaps::find_wx_mapping() == "");
	REQUIRE(unmapped_free(c, r.value) == error::ok);
}

TEST_CASE("real cache: ro data is read-only in the direct map and through its alias")
{
	auto m = ua_test::real_machine::make();
	unmapped_cache<real> c(*m, ro_cache_config());
	auto r = c.alloc(100);
	REQUIRE(r.ok());
	const char msg[] = "read-only table";
	REQUIRE(c.write(r.value, msg, sizeof msg) == error::ok);
	CHECK(std::memcmp(r.value, msg, sizeof msg) == 0);
	auto fr = m->backend.alias_frames(reinterpret_cast<std::uintptr_t>(r.value));
	REQUIRE(fr.has_value());
	CHECK(m->backend.direct_map_state(fr->pfn) == dm_state::ro);
	auto *dm = reinterpret_cast<volatile char *>(m->backend.direct_map_address(fr->pfn));
	CHECK(child_signal([&] { (void)*dm; }) == 0);
	CHECK(child_signal([&] { *dm = 1; }) == SIGSEGV);
	CHECK(child_signal([&] { *static_cast<volatile char *>(r.value) = 1; }) == SIGSEGV);
}

TEST_CASE("real cache: secrets are locked, kept out of core dumps and absent in a forked child")
{
	auto m = ua_test::real_machine::make();
	unmapped_cache<real> c(*m, secret_cache_config());
	auto r = c.alloc(32);
	REQUIRE(r.ok());
	std::memcpy(r.value, "0123456789abcdef0123456789abcdef", 32);
	std::string flags = vm_flags(r.value);
	INFO("VmFlags of the secret alias: " << flags);
	if (ua_test::sanitized)
		MESSAGE("sanitizer build: mlock() is intercepted as a no-op, VM_LOCKED not checked");
	else
		CHECK(has_flag(flags, "lo")); /* VM_LOCKED */
	CHECK(has_flag(flags, "dd")); /* VM_DONTDUMP */
	CHECK(has_flag(flags, "dc")); /* VM_DONTCOPY: not inherited by fork */
	if (ua_test::tsan)
		MESSAGE("ThreadSanitizer build: fork() ignores MADV_DONTFORK here, the child check is skipped");
	else
		CHECK(child_signal([&] { (void)*static_cast<volatile char *>(r.value); }) == SIGSEGV);
	/* The secret's frames are gone from the direct map too. */
	auto fr = m->backend.alias_frames(reinterpret_cast<std::uintptr_t>(r.value));
	REQUIRE(fr.has_value());
	auto *dm = reinterpret_cast<volatile char *>(m->backend.direct_map_address(fr->pfn));
	CHECK(child_signal([&] { (void)*dm; }) == SIGSEGV);
	REQUIRE(c.free(r.value) == error::ok);
}

TEST_CASE("real cache: a secret run given back reaches the direct map zeroed")
{
	auto m = ua_test::real_machine::make();
	cache_config cfg = secret_cache_config();
	chunk_source<real> src(*m, cfg);
	auto r = src.acquire(1);
	REQUIRE(r.ok());
	chunk_run run = r.value;
	std::memset(reinterpret_cast<void *>(run.alias), 0x5a, run.bytes()); /* what a user left there */
	REQUIRE(src.release(run) == error::ok);
	REQUIRE(m->backend.direct_map_state(run.pfn) == dm_state::rw);
	const volatile std::byte *dm = m->backend.direct_map_address(run.pfn);
	bool zero = true;
	for (std::size_t i = 0; i < run.bytes(); i++)
		zero &= dm[i] == std::byte{0};
	CHECK(zero);
}

TEST_CASE("real cache: long churn in text and secret caches splits no huge page; the direct map is whole after")
{
	auto m = ua_test::real_machine::make();
	if (!huge_pages_available(*m))
		return;
	const auto boot = m->backend.stats();
	REQUIRE(boot.kernel_figures);
	{
		unmapped_cache<real> text(*m, text_cache_config());
		unmapped_cache<real> secret(*m, secret_cache_config());
		std::mt19937_64 rng(5);
		std::vector<void *> live_text, live_secret;
		for (int i = 0; i < 40000; i++) {
			bool t = rng() & 1;
			auto &c = t ? text : secret;
			auto &v = t ? live_text : live_secret;
			if (v.size() < 400 && (v.empty() || rng() % 2)) {
				auto r = c.alloc(t ? workload::bpf_size(rng) : 32 + rng() % 4096);
				REQUIRE(r.ok());
				v.push_back(r.value);
			} else {
				std::size_t k = rng() % v.size();
				REQUIRE(c.free(v[k]) == error::ok);
				v[k] = v.back();
				v.pop_back();
			}
		}
		auto mid = m->backend.stats();
		CHECK(mid.pmd_mapped_kb == boot.pmd_mapped_kb); /* the kernel's own figure: no 2 MiB mapping lost */
		CHECK(mid.direct_map_level2_splits == 0);
		CHECK(smaps::find_wx_mapping() == "");
		for (void *p : live_text)
			REQUIRE(text.free(p) == error::ok);
		for (void *p : live_secret)
			REQUIRE(secret.free(p) == error::ok);
		CHECK(shrinker_registry::global().shrink_all() >= 1);
		CHECK(text.stats().chunks == 0);
		CHECK(secret.stats().chunks == 0);
	}
	auto end = m->backend.stats();
	CHECK(end.pmd_mapped_kb == boot.pmd_mapped_kb);
	CHECK(end.directmap_4k_kb == boot.directmap_4k_kb);
	CHECK(end.direct_map_level2_splits == 0);
}
