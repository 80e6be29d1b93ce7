// SPDX-License-Identifier: MIT
/*
 * live/page_trace.h - which frames the kernel hands out during a live run,
 * from tracefs.
 *
 * Two events of include/trace/events/kmem.h, both giving pfn and order:
 *   kmem:mm_page_alloc              every page returned by __alloc_pages()
 *                                   (with its gfp flags);
 *   kmem:mm_page_alloc_zone_locked  every block taken from the buddy lists
 *                                   under the zone lock (__rmqueue_smallest()),
 *                                   percpu_refill=1 when it goes to a per-CPU
 *                                   list (rmqueue_bulk()).
 * vmalloc takes its order-0 pages with alloc_pages_bulk(), which serves them
 * from the per-CPU lists without mm_page_alloc (measured on 6.18: a new
 * bpf_prog_pack's load shows one order-0 mm_page_alloc of vmalloc's flags,
 * not 512), so a pack's frames are seen where the per-CPU lists are refilled
 * from the buddy: the order-0 unmovable refills during the load that created
 * the pack. That set differs from the pack's frames by what the per-CPU list
 * held before the load and what it keeps after (each under one batch,
 * /proc/zoneinfo `batch`), and includes the other order-0 unmovable pages of
 * that load (the vmap page table, slab pages).
 *
 * The session works in its own instance (instances/ua-live-PID), so the
 * global trace buffer and its settings are untouched; both events are
 * filtered to this process (common_pid), since other work on the machine
 * allocates pages at the same time. trace_marker lines separate the loads.
 * The destructor disables the events and removes the instance, and unmounts
 * tracefs if the session mounted it; a session starts by removing instances
 * left by ua-live processes that no longer exist.
 */
#pragma once

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "workload/op.h"
#include "workload/text.h"

namespace ua::live {

struct page_event {
	bool zone_locked = false; /* mm_page_alloc_zone_locked; else mm_page_alloc */
	std::uint64_t pfn = 0;
	unsigned order = 0;
	int migratetype = 0;
	bool percpu_refill = false;
	std::string gfp;          /* mm_page_alloc only */
};

/* A trace split at its markers: the events after each `ua-live: TEXT` marker. */
struct trace_section {
	std::string marker;
	std::vector<page_event> events;
};

namespace detail {
inline bool field_value(std::string_view f, std::string_view key, std::string_view &v)
{
	if (f.substr(0, key.size()) != key)
		return false;
	v = f.substr(key.size());
	return true;
}
inline bool parse_hex(std::string_view s, std::uint64_t &out)
{
	if (s.substr(0, 2) != "0x" || s.size() < 3)
		return false;
	out = 0;
	for (char c : s.substr(2)) {
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0 || out >> 60)
			return false;
		out = out * 16 + unsigned(d);
	}
	return true;
}
}  // namespace detail

/*
 * Parses the `trace` file of an instance: comment lines (#) skipped, marker
 * lines (`tracing_mark_write: ua-live: TEXT`) open a section, event lines add
 * to the current one (events before the first marker go to a section with
 * an empty marker). An event line that lacks pfn= or order= is an error with
 * its line number; other events are ignored.
 */
inline workload::parse_result<std::vector<trace_section>> parse_trace_text(std::string_view text, std::string_view file)
{
	using R = workload::parse_result<std::vector<trace_section>>;
	std::vector<trace_section> out(1);
	workload::detail::line_reader lines(text);
	std::string_view line;
	while (lines.next(line)) {
		if (line.empty() || line.find_first_not_of(" \t") == std::string_view::npos)
			continue;
		if (line[line.find_first_not_of(" \t")] == '#')
			continue;
		if (auto m = line.find("tracing_mark_write: ua-live: "); m != std::string_view::npos) {
			out.push_back({std::string(line.substr(m + 29)), {}});
			continue;
		}
		const bool zl = line.find(" mm_page_alloc_zone_locked: ") != std::string_view::npos;
		const bool pa = !zl && line.find(" mm_page_alloc: ") != std::string_view::npos;
		if (!zl && !pa)
			continue;
		page_event e;
		e.zone_locked = zl;
		bool have_pfn = false, have_order = false;
		for (auto f : workload::detail::split_fields(line)) {
			std::string_view v;
			std::uint64_t n = 0;
			if (detail::field_value(f, "pfn=", v))
				have_pfn = detail::parse_hex(v, e.pfn);
			else if (detail::field_value(f, "order=", v) && workload::detail::parse_u64(v, n))
				e.order = unsigned(n), have_order = true;
			else if (detail::field_value(f, "migratetype=", v) && workload::detail::parse_u64(v, n))
				e.migratetype = int(n);
			else if (detail::field_value(f, "percpu_refill=", v))
				e.percpu_refill = v == "1";
			else if (detail::field_value(f, "gfp_flags=", v))
				e.gfp = std::string(v);
		}
		if (!have_pfn || !have_order)
			return R::failure(workload::detail::at_line(file, lines.number(),
				"page event without pfn=0x... and order=N: " + workload::detail::quote(line)));
		out.back().events.push_back(std::move(e));
	}
	return R{std::move(out), {}};
}

/* How scattered a set of frames is: distinct 2 MiB and 1 GiB regions. */
struct frame_spread {
	std::uint64_t pages = 0;
	std::uint64_t regions_2m = 0, regions_1g = 0;
};

inline frame_spread spread_of(const std::vector<std::uint64_t> &pfns)
{
	std::set<std::uint64_t> r2, r1;
	for (std::uint64_t p : pfns) {
		r2.insert(p >> 9);
		r1.insert(p >> 18);
	}
	return {pfns.size(), r2.size(), r1.size()};
}

/* One new pack seen in the trace: the load that created it and the frames refilled during it. */
struct pack_composition {
	std::size_t load = 0;                 /* op index of the load */
	std::uint64_t packs_after = 0;
	std::int64_t l2_splits = 0, l3_splits = 0; /* during that load */
	std::uint64_t order0_refills = 0;     /* order-0 unmovable pages moved buddy -> per-CPU list */
	frame_spread refill_spread;           /* their 2 MiB and 1 GiB regions */
	std::map<unsigned, std::uint64_t> page_alloc_orders;  /* mm_page_alloc events by order */
	std::uint64_t vmalloc_order0_allocs = 0; /* mm_page_alloc order 0 with vmalloc's flags (GFP_KERNEL|__GFP_HIGHMEM|__GFP_NOWARN) */
};

/* vmalloc's gfp flags as mm_page_alloc prints them (__vmalloc_area_node() adds __GFP_HIGHMEM). */
inline bool vmalloc_flags(const std::string &gfp) { return gfp == "GFP_KERNEL|__GFP_HIGHMEM|__GFP_NOWARN"; }

inline pack_composition compose(const trace_section &s)
{
	pack_composition pc;
	std::vector<std::uint64_t> pfns;
	for (const auto &e : s.events) {
		if (e.zone_locked) {
			if (e.order == 0 && e.migratetype == 0 && e.percpu_refill)
				pfns.push_back(e.pfn);
		} else {
			pc.page_alloc_orders[e.order]++;
			if (e.order == 0 && vmalloc_flags(e.gfp)) {
				pc.vmalloc_order0_allocs++;
				pfns.push_back(e.pfn);
			}
		}
	}
	pc.order0_refills = pfns.size();
	pc.refill_spread = spread_of(pfns);
	return pc;
}

class trace_session {
public:
	trace_session() = default;
	trace_session(const trace_session &) = delete;
	trace_session &operator=(const trace_session &) = delete;
	~trace_session() { stop(); }

	/* Mounts tracefs if needed, creates the instance, enables both events for this process; "" or why not. */
	std::string start(std::size_t buffer_kb = 32768)
	{
		stop();
		const std::string root = "/sys/kernel/tracing";
		struct stat st;
		if (::stat((root + "/events").c_str(), &st) != 0) {
			if (::mount("nodev", root.c_str(), "tracefs", 0, nullptr) != 0)
				return "tracefs cannot be mounted at " + root + ": " + std::strerror(errno);
			mounted_ = true;
		}
		root_ = root;
		remove_stale();
		dir_ = root_ + "/instances/ua-live-" + std::to_string(getpid());
		if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
			std::string e = "cannot create " + dir_ + ": " + std::strerror(errno);
			dir_.clear();
			stop();
			return e;
		}
		const std::string pid = std::to_string(getpid());
		bool ok = write(dir_ + "/buffer_size_kb", std::to_string(buffer_kb));
		for (const char *e : {"mm_page_alloc", "mm_page_alloc_zone_locked"}) {
			ok = ok && write(dir_ + "/events/kmem/" + e + "/filter", "common_pid == " + pid);
			ok = ok && write(dir_ + "/events/kmem/" + e + "/enable", "1");
		}
		if (ok)
			pipe_ = ::open((dir_ + "/trace_pipe").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (!ok || pipe_ < 0) {
			std::string e = "cannot enable kmem:mm_page_alloc in " + dir_;
			stop();
			return e;
		}
		return {};
	}

	bool active() const noexcept { return !dir_.empty(); }

	void marker(const std::string &text)
	{
		if (active())
			(void)write(dir_ + "/trace_marker", "ua-live: " + text);
	}

	/*
	 * The events since the last take(), consumed from trace_pipe (opened
	 * non-blocking: an empty buffer ends the read). Not the `trace` file:
	 * emptying it resets the ring buffer, which waits for an RCU grace
	 * period (ring_buffer_reset_online_cpus()), tens of ms per load here.
	 */
	std::string take()
	{
		std::string s;
		if (pipe_ < 0)
			return s;
		char buf[65536];
		while (true) {
			ssize_t n = ::read(pipe_, buf, sizeof buf);
			if (n > 0) {
				s.append(buf, std::size_t(n));
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			break; /* EAGAIN: empty */
		}
		return s;
	}

	std::string instance_dir() const { return dir_; }

	void stop() noexcept
	{
		if (pipe_ >= 0)
			::close(pipe_);
		pipe_ = -1;
		if (!dir_.empty()) {
			for (const char *e : {"mm_page_alloc", "mm_page_alloc_zone_locked"}) {
				(void)write(dir_ + "/events/kmem/" + e + "/enable", "0");
				(void)write(dir_ + "/events/kmem/" + e + "/filter", "0");
			}
			::rmdir(dir_.c_str());
			dir_.clear();
		}
		if (mounted_ && !root_.empty()) {
			::umount2(root_.c_str(), MNT_DETACH);
			mounted_ = false;
		}
	}

private:
	static bool write(const std::string &path, const std::string &v) noexcept
	{
		try {
			std::ofstream f(path);
			f << v;
			f.flush();
			return bool(f);
		} catch (...) {
			return false;
		}
	}

	/* instances/ua-live-PID whose process is gone (a run killed by a second signal). */
	void remove_stale()
	{
		DIR *d = ::opendir((root_ + "/instances").c_str());
		if (!d)
			return;
		std::vector<std::string> stale;
		while (dirent *e = ::readdir(d)) {
			std::string n = e->d_name;
			if (n.rfind("ua-live-", 0) != 0)
				continue;
			std::uint64_t pid = 0;
			if (!workload::detail::parse_u64(n.substr(8), pid))
				continue;
			if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH)
				stale.push_back(root_ + "/instances/" + n);
		}
		::closedir(d);
		for (const auto &s : stale)
			::rmdir(s.c_str());
	}

	std::string root_, dir_;
	int pipe_ = -1;
	bool mounted_ = false;
};

}  // namespace ua::live
