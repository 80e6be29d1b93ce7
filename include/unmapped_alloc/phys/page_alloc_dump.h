// SPDX-License-Identifier: MIT
/*
 * phys/page_alloc_dump.h - /proc/buddyinfo and /proc/pagetypeinfo of the
 * simulated machine, in the kernel's formats (mm/vmstat.c frag_show_print(),
 * pagetypeinfo_showfree_print(), pagetypeinfo_showblockcount_print()),
 * with the three modelled migratetypes. Included at the end of page_alloc.h.
 */
#pragma once

#include <cstdio>
#include <string>

#include "page_alloc.h"

namespace ua {

inline std::string page_allocator::buddyinfo() const
{
	std::string out;
	char buf[64];
	for (const zone_t &z : zones_) {
		if (!z.populated())
			continue;
		std::snprintf(buf, sizeof buf, "Node 0, zone %8s ", zone_name(z.type));
		out += buf;
		for (unsigned o = 0; o < nr_page_orders; o++) {
			std::snprintf(buf, sizeof buf, "%6llu ", (unsigned long long)z.nr_free[o]);
			out += buf;
		}
		out += '\n';
	}
	return out;
}

inline std::string page_allocator::pagetypeinfo() const
{
	std::string out;
	char buf[96];
	std::snprintf(buf, sizeof buf, "Page block order: %u\nPages per block:  %llu\n\n", pageblock_order,
		      (unsigned long long)pageblock_nr_pages);
	out += buf;
	std::snprintf(buf, sizeof buf, "%-43s ", "Free pages count per migrate type at order");
	out += buf;
	for (unsigned o = 0; o < nr_page_orders; o++) {
		std::snprintf(buf, sizeof buf, "%6u ", o);
		out += buf;
	}
	out += '\n';
	for (const zone_t &z : zones_) {
		if (!z.populated())
			continue;
		for (unsigned mt = 0; mt < migrate_pcptypes; mt++) {
			std::snprintf(buf, sizeof buf, "Node %4d, zone %8s, type %12s ", 0, zone_name(z.type), migratetype_name(mt));
			out += buf;
			for (unsigned o = 0; o < nr_page_orders; o++) {
				/* the kernel stops counting at 100000 and prints ">100000" */
				const unsigned long long n = z.nr_free_mt[o][mt];
				std::snprintf(buf, sizeof buf, n >= 100000 ? ">%6llu " : "%6llu ", n >= 100000 ? 100000ull : n);
				out += buf;
			}
			out += '\n';
		}
	}
	std::snprintf(buf, sizeof buf, "\n%-23s", "Number of blocks type ");
	out += buf;
	for (unsigned mt = 0; mt < migrate_pcptypes; mt++) {
		std::snprintf(buf, sizeof buf, "%12s ", migratetype_name(mt));
		out += buf;
	}
	out += '\n';
	for (const zone_t &z : zones_) {
		if (!z.populated())
			continue;
		unsigned long long count[migrate_pcptypes] = {};
		for (pfn_t pb = z.start >> pageblock_order; pb < (z.end + pageblock_nr_pages - 1) >> pageblock_order; pb++)
			count[pb_mt_[pb] < migrate_pcptypes ? pb_mt_[pb] : 0]++;
		std::snprintf(buf, sizeof buf, "Node %d, zone %8s ", 0, zone_name(z.type));
		out += buf;
		for (unsigned mt = 0; mt < migrate_pcptypes; mt++) {
			std::snprintf(buf, sizeof buf, "%12llu ", count[mt]);
			out += buf;
		}
		out += '\n';
	}
	return out;
}

}  // namespace ua
