// SPDX-License-Identifier: MIT
/*
 * mapping/smaps.h - the kernel's own view of this process's mappings.
 *
 * The real backend (linux_backend.h) reports figures the kernel computed, not
 * figures it modelled: how much of its direct-map view is mapped by PMDs, how
 * many VMAs the process has, how many page-table pages it uses. They come from
 * three procfs files, read here:
 *
 *   /proc/self/maps    one line per VMA: "start-end perms offset dev inode path"
 *                      (fs/proc/task_mmu.c, show_map_vma()); the VMA count is
 *                      bounded by vm.max_map_count, and every mprotect() that
 *                      covers part of a VMA splits it.
 *   /proc/self/smaps   the same lines, each followed by "Key: value kB" lines;
 *                      ShmemPmdMapped is the shmem memory mapped by PMD entries
 *                      in that VMA (smaps_pmd_entry() counts a present PMD even
 *                      when its protection is PROT_NONE).
 *   /proc/self/status  VmPTE: the page-table pages of the whole process, in kB.
 *
 * The files are read with plain read(2) into a string: procfs reports size 0,
 * so the buffer grows until end of file. Every function is noexcept and returns
 * 0 or a negative errno (-ENOMEM when the buffer cannot grow); nothing throws.
 *
 * find_wx_mapping() is the W^X check tests run after creating aliases: it walks
 * /proc/self/maps and returns the first line that is writable and executable,
 * or "" (the check_consistency() convention of check.h).
 */
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "../error.h"
#include "text_lines.h"

namespace ua::smaps {

/* One VMA as /proc/self/maps prints it. */
struct vma {
	std::uintptr_t start = 0;
	std::uintptr_t end = 0;
	char perms[5] = {}; /* "rwxp" / "r--s" ... */
	std::string_view path; /* points into the text that was parsed */

	bool readable() const noexcept { return perms[0] == 'r'; }
	bool writable() const noexcept { return perms[1] == 'w'; }
	bool executable() const noexcept { return perms[2] == 'x'; }
	bool shared() const noexcept { return perms[3] == 's'; }
};

/* Reads a whole procfs file (size reported as 0) into *out. */
inline int read_proc_file(const char *path, std::string *out) noexcept
{
	int fd = ::open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = 0;
	UA_TRY {
		out->clear();
		std::size_t len = 0;
		out->resize(16384);
		for (;;) {
			if (out->size() - len < 4096)
				out->resize(out->size() * 2);
			ssize_t n = ::read(fd, out->data() + len, out->size() - len);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				err = -errno;
				break;
			}
			if (n == 0)
				break;
			len += std::size_t(n);
		}
		out->resize(len);
	} UA_CATCH_ALL {
		err = -ENOMEM;
	}
	::close(fd);
	return err;
}

namespace detail {

inline std::uint64_t parse_uint(std::string_view s, int base) noexcept
{
	std::uint64_t v = 0;
	for (char c : s) {
		unsigned d;
		if (c >= '0' && c <= '9')
			d = unsigned(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = unsigned(c - 'a' + 10);
		else
			break;
		v = v * unsigned(base) + d;
	}
	return v;
}

inline std::string_view trim(std::string_view s) noexcept
{
	while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
		s.remove_prefix(1);
	while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
		s.remove_suffix(1);
	return s;
}

/* A VMA header line: "start-end perms offset dev inode [path]". */
inline bool parse_vma_line(std::string_view line, vma *v) noexcept
{
	std::size_t dash = line.find('-');
	std::size_t sp = line.find(' ');
	if (dash == std::string_view::npos || sp == std::string_view::npos || dash > sp || sp + 5 > line.size())
		return false;
	v->start = std::uintptr_t(parse_uint(line.substr(0, dash), 16));
	v->end = std::uintptr_t(parse_uint(line.substr(dash + 1, sp - dash - 1), 16));
	std::memcpy(v->perms, line.data() + sp + 1, 4);
	v->perms[4] = '\0';
	/* Skip perms, offset, dev and inode: the path is what follows the 5th field. */
	std::string_view rest = line.substr(sp + 1);
	for (int field = 0; field < 4; field++) {
		std::size_t s = rest.find(' ');
		rest = s == std::string_view::npos ? std::string_view{} : trim(rest.substr(s + 1));
	}
	v->path = rest;
	return true;
}

/* A key line of smaps/status: "Key:   1234 kB". Returns false for anything else. */
inline bool parse_key_line(std::string_view line, std::string_view *key, std::uint64_t *value) noexcept
{
	std::size_t colon = line.find(':');
	if (colon == std::string_view::npos || line.substr(0, colon).find(' ') != std::string_view::npos)
		return false;
	*key = line.substr(0, colon);
	*value = parse_uint(trim(line.substr(colon + 1)), 10);
	return true;
}

}  // namespace detail

/* Calls fn(const vma &) for every VMA of maps/smaps text, in address order. */
template <class Fn>
void for_each_vma(std::string_view text, Fn &&fn) noexcept(noexcept(fn(vma{})))
{
	while (!text.empty()) {
		std::string_view line = next_line(text);
		std::string_view key;
		std::uint64_t value;
		vma v;
		/* smaps key lines end their first token with ':'; VMA lines never do. */
		if (!detail::parse_key_line(line, &key, &value) && detail::parse_vma_line(line, &v))
			fn(v);
	}
}

/* Number of VMAs of this process (the figure vm.max_map_count bounds). */
inline int count_vmas(std::uint64_t *nr) noexcept
{
	std::string text;
	int err = read_proc_file("/proc/self/maps", &text);
	if (err)
		return err;
	std::uint64_t n = 0;
	for_each_vma(text, [&](const vma &) noexcept { n++; });
	*nr = n;
	return 0;
}

/* Totals of the smaps keys over the VMAs that lie inside [start, end). */
struct range_totals {
	std::uint64_t vmas = 0;             /* VMAs inside the range */
	std::uint64_t size_kb = 0;          /* Size */
	std::uint64_t rss_kb = 0;           /* Rss */
	std::uint64_t shmem_pmd_mapped_kb = 0; /* ShmemPmdMapped */
};

inline int read_smaps_range(std::uintptr_t start, std::uintptr_t end, range_totals *out) noexcept
{
	std::string text;
	int err = read_proc_file("/proc/self/smaps", &text);
	if (err)
		return err;
	range_totals t;
	bool inside = false;
	std::string_view rest = text;
	while (!rest.empty()) {
		std::string_view line = next_line(rest);
		std::string_view key;
		std::uint64_t value;
		if (detail::parse_key_line(line, &key, &value)) {
			if (!inside)
				continue;
			if (key == "Size")
				t.size_kb += value;
			else if (key == "Rss")
				t.rss_kb += value;
			else if (key == "ShmemPmdMapped")
				t.shmem_pmd_mapped_kb += value;
			continue;
		}
		vma v;
		if (!detail::parse_vma_line(line, &v))
			continue;
		inside = v.start >= start && v.end <= end;
		if (inside)
			t.vmas++;
	}
	*out = t;
	return 0;
}

/* VmPTE of /proc/self/status: page-table memory of the whole process, in kB. */
inline int read_vm_pte_kb(std::uint64_t *kb) noexcept
{
	std::string text;
	int err = read_proc_file("/proc/self/status", &text);
	if (err)
		return err;
	std::string_view rest = text;
	while (!rest.empty()) {
		std::string_view key;
		std::uint64_t value;
		if (detail::parse_key_line(next_line(rest), &key, &value) && key == "VmPTE") {
			*kb = value;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * W^X check: the first line of /proc/self/maps that is writable and executable
 * at once, or "" when there is none. A file that cannot be read is reported as
 * a violation (the check fails closed).
 */
inline std::string find_wx_mapping() noexcept
{
	UA_TRY {
		std::string text;
		int err = read_proc_file("/proc/self/maps", &text);
		if (err)
			return std::string("cannot read /proc/self/maps: ") + std::strerror(-err);
		std::string found;
		std::string_view rest = text;
		while (!rest.empty() && found.empty()) {
			std::string_view line = next_line(rest);
			vma v;
			if (detail::parse_vma_line(line, &v) && v.writable() && v.executable())
				found = std::string(line);
		}
		return found;
	} UA_CATCH_ALL {
		return "out of memory while checking /proc/self/maps";
	}
}

}  // namespace ua::smaps
