// SPDX-License-Identifier: MIT
/*
 * sim_bench - what the simulated page allocator (phys/page_alloc.h) costs:
 * for x86-64 VMs of each size given in GiB (default 8 64 1024), the time to
 * boot it (memory map, zones, memblock_free_all()), to age it
 * (page_allocator::age() with the replay's defaults), to copy the aged
 * allocator (what each replay run does) and the resident memory each step
 * adds, per simulated GiB. Goals (docs/page_alloc.md): at most 4 MiB per
 * simulated GiB, an aged 1 TiB machine in under 60 s.
 *
 *   sim_bench [GIB...]
 */
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include <time.h>
#include <unistd.h>

#include <unmapped_alloc/phys.h>

namespace {

double rss_mib()
{
	long pages = 0, resident = 0;
	if (FILE *f = std::fopen("/proc/self/statm", "r")) {
		if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		std::fclose(f);
	}
	return double(resident) * double(sysconf(_SC_PAGESIZE)) / double(1 << 20);
}

/* Wall time and this process's CPU time: on a shared machine the second is what the model costs. */
struct stopwatch {
	std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
	double cpu = cpu_now();
	static double cpu_now()
	{
		timespec ts{};
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
		return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
	}
	double wall_s() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count(); }
	double cpu_s() const { return cpu_now() - cpu; }
};

}  // namespace

int main(int argc, char **argv)
{
	std::vector<double> sizes;
	for (int i = 1; i < argc; i++)
		sizes.push_back(std::atof(argv[i]));
	if (sizes.empty())
		sizes = {8, 64, 1024};
	std::printf("%6s %15s %15s %15s %9s %9s %9s %7s\n", "GiB", "boot s cpu/wall", "age s cpu/wall",
		    "copy s cpu/wall", "boot MiB", "aged MiB", "copy MiB", "used %");
	std::printf("%6s %15s %15s %15s %9s %9s %9s %7s\n", "", "", "", "", "per GiB", "per GiB", "per GiB", "");
	for (double gib : sizes) {
		const auto ram = std::uint64_t(gib * 262144);
		auto mm = ua::memory_map::x86_vm(ram);
		if (!mm.ok()) {
			std::fprintf(stderr, "sim_bench: no x86 memory map of %g GiB\n", gib);
			return 2;
		}
		ua::page_alloc_config cfg;
		cfg.min_free_kbytes = ua::min_free_kbytes_auto;
		const double rss0 = rss_mib();
		stopwatch t_boot;
		auto pa = std::make_unique<ua::page_allocator>(mm.value, cfg);
		const double boot_cpu = t_boot.cpu_s(), boot_wall = t_boot.wall_s();
		const double rss_boot = rss_mib();
		stopwatch t_age;
		auto rep = pa->age({});
		const double age_cpu = t_age.cpu_s(), age_wall = t_age.wall_s();
		if (!rep.ok()) {
			std::fprintf(stderr, "sim_bench: ageing failed\n");
			return 1;
		}
		const double rss_aged = rss_mib();
		stopwatch t_copy;
		auto copy = std::make_unique<ua::page_allocator>(*pa);
		const double copy_cpu = t_copy.cpu_s(), copy_wall = t_copy.wall_s();
		const double rss_copy = rss_mib();
		const double used = 100.0 * double(pa->nr_pages() - pa->nr_free_pages()) / double(pa->nr_pages());
		std::printf("%6g %7.2f/%7.2f %7.2f/%7.2f %7.2f/%7.2f %9.3f %9.3f %9.3f %7.1f\n", gib, boot_cpu, boot_wall,
			    age_cpu, age_wall, copy_cpu, copy_wall, (rss_boot - rss0) / gib, (rss_aged - rss0) / gib,
			    (rss_copy - rss_aged) / gib, used);
		std::fflush(stdout);
	}
	return 0;
}
