// SPDX-License-Identifier: MIT
/* Tests for bench/validation/experiments.h: the workload names ua-live writes, as the simulation replays them. */
#include <doctest/doctest.h>

#include "validation/experiments.h"

using namespace ua::validation;

TEST_CASE("ua-live's fill names give the same op sequences")
{
	std::string err;
	auto w = live_workload_of("bpf-fill:2:4096", err);
	CHECK(err.empty());
	CHECK(w.ops.size() == 2 * 2 * 512);
	CHECK(w.ops[0].size == 4096);
	auto d = live_workload_of("bpf-fill:1", err); /* the default size */
	CHECK(err.empty());
	CHECK(d.ops.size() == 2 * 512);
	auto s = live_workload_of("secretmem-fill:4", err);
	CHECK(err.empty());
	CHECK(s.ops.size() == 2 * 4 * 256);
	CHECK(is_bpf_workload("bpf-fill:1:4096"));
	CHECK_FALSE(is_bpf_workload("secretmem-fill:4"));
}

TEST_CASE("other names are an error and an empty sequence")
{
	for (const char *n : {"bpf-churn:1", "bpf-fill:", "bpf-fill:1:100", "bpf-fill:1:4096:9", "secretmem-fill:x",
			      "secretmem-fill:4:1", "sockex1:512"}) {
		CAPTURE(n);
		std::string err;
		auto w = live_workload_of(n, err);
		CHECK_FALSE(err.empty());
		CHECK(w.ops.empty());
	}
}
