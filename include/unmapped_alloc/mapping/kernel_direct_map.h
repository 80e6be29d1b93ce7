// SPDX-License-Identifier: MIT
/*
 * mapping/kernel_direct_map.h - the running kernel's own direct-map figures.
 *
 *   /proc/vmstat   direct_map_level2_splits, direct_map_level3_splits,
 *                  direct_map_level2_collapses, direct_map_level3_collapses
 *                  (arch/x86/mm/pat/set_memory.c: split_page_count() and
 *                  collapse_page_count(), one event per 2 MiB (level 2) or
 *                  1 GiB (level 3) page split or re-formed)
 *   /proc/meminfo  DirectMap4k/2M/1G, kB mapped at each level (DirectMap1G
 *                  is printed only where the CPU has 1 GiB pages: absent
 *                  reads as 0)
 *
 * System-wide figures: everything the machine does moves them, so users
 * compare two readings. A backend whose direct map is the kernel's
 * (secretmem_backend.h) reports these; nothing here throws.
 */
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "../error.h"
#include "smaps.h"
#include "types.h"

namespace ua {

/* Reads one "key value" (or "Key: value kB") figure of a /proc file: 0 or -errno (-ENOENT: no such key). */
inline int read_proc_figure(const char *path, const char *key, std::uint64_t *value) noexcept
{
	UA_TRY {
		std::string text;
		if (int rc = smaps::read_proc_file(path, &text); rc != 0)
			return rc;
		const std::size_t klen = std::strlen(key);
		for (std::size_t pos = 0; pos < text.size();) {
			std::size_t nl = text.find('\n', pos);
			if (nl == std::string::npos)
				nl = text.size();
			if (text.compare(pos, klen, key) == 0 && pos + klen < nl &&
			    (text[pos + klen] == ' ' || text[pos + klen] == ':')) {
				std::size_t p = text.find_first_of("0123456789", pos + klen);
				if (p == std::string::npos || p >= nl)
					return -EINVAL;
				*value = std::strtoull(text.c_str() + p, nullptr, 10);
				return 0;
			}
			pos = nl + 1;
		}
		return -ENOENT;
	} UA_CATCH_ALL {
		return -ENOMEM;
	}
}

/* Fills s's DirectMap and split/collapse figures from the kernel; "" or the first figure that could not be read. */
inline std::string read_kernel_direct_map(backend_stats *s) noexcept
{
	struct figure {
		const char *path, *key;
		std::uint64_t *out;
	} figures[] = {
		{"/proc/meminfo", "DirectMap4k", &s->directmap_4k_kb},
		{"/proc/meminfo", "DirectMap2M", &s->directmap_2m_kb},
		{"/proc/meminfo", "DirectMap1G", &s->directmap_1g_kb},
		{"/proc/vmstat", "direct_map_level2_splits", &s->direct_map_level2_splits},
		{"/proc/vmstat", "direct_map_level3_splits", &s->direct_map_level3_splits},
		{"/proc/vmstat", "direct_map_level2_collapses", &s->direct_map_level2_collapses},
		{"/proc/vmstat", "direct_map_level3_collapses", &s->direct_map_level3_collapses},
	};
	UA_TRY {
		for (const figure &f : figures) {
			int rc = read_proc_figure(f.path, f.key, f.out);
			if (rc == -ENOENT && std::strcmp(f.key, "DirectMap1G") == 0) {
				*f.out = 0;
				continue;
			}
			if (rc != 0)
				return std::string("cannot read ") + f.key + " from " + f.path + ": " + std::strerror(-rc);
		}
		return {};
	} UA_CATCH_ALL {
		return "out of memory";
	}
}

}  // namespace ua
