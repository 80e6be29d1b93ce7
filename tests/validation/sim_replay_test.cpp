// SPDX-License-Identifier: MIT
/* Tests for bench/validation/sim_replay.h. */
#include <doctest/doctest.h>

#include "live/live_workloads.h"
#include "peers/naive.h"
#include "validation/sim_replay.h"

#include "validation_fixture.h"

using namespace ua;
using namespace ua::validation;
using ua_test::small_machine;

TEST_CASE("a run's delta is the counters after minus before, and a level-2 split is 2 MiB more 4 KiB-mapped")
{
	sim_machine_build b = small_machine();
	sim_machine &m = *b.m;
	peers::naive_peer<sim_direct_map> secret(m, {peers::naive_use::secretmem, peers::v6_18});
	const std::uint64_t free0 = m.nr_free_pages();
	sim_run r = replay_on(m, secret, live::secretmem_fill(8));
	CHECK(r.ops_done == 2 * 8 * 256);
	CHECK(r.failed_allocs == 0);
	CHECK(r.d.level2_splits == std::int64_t(r.after.direct_map_level2_splits) -
					   std::int64_t(r.before.direct_map_level2_splits));
	CHECK(r.d.level2_splits >= 4); /* 8 MiB of single pages touch at least four 2 MiB pages */
	CHECK(r.d.level2_collapses == 0);
	CHECK(r.d.dm_4k_kb == r.d.level2_splits * 2048);
	CHECK(m.nr_free_pages() == free0); /* everything went back */
	/* the same pages again: already split, nothing new */
	sim_run again = replay_on(m, secret, live::secretmem_fill(8));
	CHECK(again.d.level2_splits == 0);
}

TEST_CASE("ops_limit replays the first ops, then frees what is live")
{
	sim_machine_build b = small_machine();
	sim_machine &m = *b.m;
	peers::naive_peer<sim_direct_map> secret(m, {peers::naive_use::secretmem, peers::v6_18});
	const std::uint64_t free0 = m.nr_free_pages();
	replay_options o;
	o.ops_limit = 100;
	sim_run r = replay_on(m, secret, live::secretmem_fill(4), o);
	CHECK(r.ops_done == 100);
	CHECK(secret.stats().live_count == 0);
	CHECK(m.nr_free_pages() == free0);
}

TEST_CASE("footprints and copies are taken per alloc op and given back")
{
	sim_machine_build b = small_machine();
	sim_machine &m = *b.m;
	peers::naive_peer<sim_direct_map> text(m, {peers::naive_use::vmalloc_text, peers::v5_17});
	workload::workload w{"t", {}};
	for (std::uint64_t id = 1; id <= 4; id++)
		w.ops.push_back(workload::op::make_alloc(id, page_size, page_size).with_footprint(64 * page_size));
	/* a probe between the allocs and the frees: text pages and footprints are both held */
	const std::uint64_t free0 = m.nr_free_pages();
	replay_options o;
	o.copies = 3;
	o.ops_limit = 4;
	struct probe_peer {
		peers::naive_peer<sim_direct_map> &p;
		std::size_t allocs = 0;
		result<std::uintptr_t> alloc(std::size_t s, std::size_t a) { return allocs++, p.alloc(s, a); }
		error free(std::uintptr_t x) { return p.free(x); }
	} probe{text};
	sim_run r = replay_on(m, probe, w, o);
	CHECK(probe.allocs == 12);
	CHECK(r.failed_allocs == 0);
	CHECK(r.failed_footprints == 0);
	CHECK(m.nr_free_pages() == free0);
	CHECK(text.stats().live_count == 0);

	o.footprints = false;
	probe.allocs = 0;
	(void)replay_on(m, probe, w, o);
	CHECK(probe.allocs == 12);
	CHECK(m.nr_free_pages() == free0);
}
