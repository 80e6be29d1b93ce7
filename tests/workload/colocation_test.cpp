// Tests for colocation.h: guest memory, BPF, modules and secrets on one host.
#include "workload/colocation.h"

#include <doctest/doctest.h>

#include "support.h"

using namespace ua::workload;
using ua::chunk_size;
using ua::page_size;

namespace {
module_listing listing()
{
	auto r = parse_modules("Module Size Used by\nusb_storage 81920 0\nnf_conntrack 180224 0\ni915 2809856 0\n", "l");
	REQUIRE(r.ok());
	return r.value;
}
}  // namespace

TEST_CASE("colocation: every memory kind on one clock, valid and deterministic")
{
	colocation_params p;
	p.days = 0.25;
	p.vm.host_gib = 64;
	p.fleet.endpoints = 100;
	workload a = generate_colocation(listing(), p);
	CHECK(a.ops == generate_colocation(listing(), p).ops);
	p.seed = 2;
	CHECK_FALSE(a.ops == generate_colocation(listing(), p).ops);
	auto st = test::walk(vector_stream(a), [](const op &, const op_checker &) {});
	for (memory_kind k : {memory_kind::guest, memory_kind::bpf_text, memory_kind::module_text, memory_kind::ro,
			      memory_kind::data, memory_kind::secret})
		CHECK(st.peak_bytes_by_kind[std::size_t(k)] > 0);
	CHECK(st.peak_bytes_by_kind[std::size_t(memory_kind::unspecified)] == 0);
	/* Guest memory within the VM part's admission limit. */
	CHECK(st.peak_bytes_by_kind[std::size_t(memory_kind::guest)] <= std::size_t(p.vm.admit_limit * 64 * double(gib)));
	CHECK(a.name == "colocation");
}
