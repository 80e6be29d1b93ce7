// SPDX-License-Identifier: MIT
/*
 * Tests for mapping/kernel_direct_map.h: the reader on crafted files, and the
 * running kernel's figures (only what the kernel guarantees: present, and
 * counters that never decrease).
 */
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <unmapped_alloc/mapping/kernel_direct_map.h>

using namespace ua;

namespace {

/* A temporary file holding text; removed by the destructor. */
struct temp_file {
	std::string path;
	explicit temp_file(const char *text)
	{
		char name[] = "/tmp/ua-kdm-XXXXXX";
		int fd = ::mkstemp(name);
		REQUIRE(fd >= 0);
		path = name;
		std::FILE *f = ::fdopen(fd, "w");
		REQUIRE(f);
		std::fputs(text, f);
		std::fclose(f);
	}
	~temp_file() { ::unlink(path.c_str()); }
};

}  // namespace

TEST_CASE("read_proc_figure: vmstat and meminfo lines; a key is matched whole; absence is -ENOENT")
{
	temp_file vm("nr_free_pages 12\ndirect_map_level2_splits 622\ndirect_map_level2_splits_x 9\n");
	temp_file mi("MemTotal:       24683792 kB\nDirectMap4k:     1294336 kB\nDirectMap4kX:  5 kB\nbad:\n");
	std::uint64_t v = 0;
	CHECK(read_proc_figure(vm.path.c_str(), "direct_map_level2_splits", &v) == 0);
	CHECK(v == 622);
	CHECK(read_proc_figure(vm.path.c_str(), "direct_map_level2", &v) == -ENOENT);
	CHECK(read_proc_figure(mi.path.c_str(), "DirectMap4k", &v) == 0);
	CHECK(v == 1294336);
	CHECK(read_proc_figure(mi.path.c_str(), "bad", &v) == -EINVAL); /* the key without a number */
	CHECK(read_proc_figure(mi.path.c_str(), "DirectMap2M", &v) == -ENOENT);
	CHECK(read_proc_figure("/nonexistent/ua-kdm", "x", &v) < 0);
}

TEST_CASE("read_kernel_direct_map: the running kernel's figures, counters that never decrease")
{
	backend_stats a, b;
	std::string why = read_kernel_direct_map(&a);
	if (!why.empty()) {
		MESSAGE("kernel direct-map figures unavailable: " << why);
		return;
	}
	CHECK(a.directmap_4k_kb + a.directmap_2m_kb + a.directmap_1g_kb > 0);
	REQUIRE(read_kernel_direct_map(&b) == "");
	CHECK(b.direct_map_level2_splits >= a.direct_map_level2_splits);
	CHECK(b.direct_map_level3_splits >= a.direct_map_level3_splits);
	CHECK(b.direct_map_level2_collapses >= a.direct_map_level2_collapses);
	CHECK(b.direct_map_level3_collapses >= a.direct_map_level3_collapses);
}
