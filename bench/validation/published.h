// SPDX-License-Identifier: MIT
/*
 * validation/published.h - the published concurrent-sockex1 experiment,
 * every figure of it.
 *
 * Source: Aaron Lu, "Re: [PATCH bpf-next v1 RESEND 1/5] vmalloc: introduce
 * vmalloc_exec, vfree_exec, and vcopy_exec", bpf@vger.kernel.org,
 * 7 Nov 2022, Message-ID <Y2ioTodn+mBXdIqp@ziqianlu-desk2>
 * (https://lore.kernel.org/bpf/Y2ioTodn+mBXdIqp@ziqianlu-desk2/).
 *
 * The experiment as the mail states it: an 8 GiB x86-64 VM (QEMU i440FX,
 * the machine named in the same author's call trace of 8 Nov 2022,
 * <Y2pNyKmMnOEeongp@ziqianlu-desk2>); samples/bpf/sockex1 run as 512, 1024
 * and 2048 instances concurrently; `grep Direct /proc/meminfo` right after
 * boot and after each step. The steps follow each other on one boot ("Another
 * PUD mapping ... spliited. At the end, 2 PUD mappings survived"), so each
 * figure is cumulative since boot. Twice per kernel: right after boot
 * ("fresh"), and after first consuming all memory to page cache by reading
 * sparse files ("aged"; each on its own boot, with its own boot figures).
 *
 * What the mail says besides the figures (used by the simulation, listed in
 * docs/validation.md):
 *   - v5.17 (no bpf_prog_pack): "this prog would cause 3 pages to change
 *     protection to RO+X from RW+NX";
 *   - v6.1-rc3 (bpf_prog_pack): "the direct map number doesn't change" at
 *     512/1024/2048; a 5120-instance run "would consume all available
 *     memory when it runs about 4000 instances"; aged: "There is no
 *     difference" (no figures given: each aged v6.1 cell is a growth of 0,
 *     with no absolute values).
 */
#pragma once

#include <cstdint>
#include <string_view>

namespace ua::validation {

inline constexpr std::string_view published_message_id = "Y2ioTodn+mBXdIqp@ziqianlu-desk2";
inline constexpr std::uint64_t published_machine_gib = 8;
inline constexpr unsigned published_pages_per_instance = 3; /* v5.17, "3 pages to change protection" */
inline constexpr unsigned published_instances_to_fill = 4000; /* v6.1-rc3: memory full at about 4000 */

/* /proc/meminfo DirectMap4k/2M/1G, kB. */
struct directmap_kb {
	std::int64_t dm_4k = 0, dm_2m = 0, dm_1g = 0;
};

/* One published cell: kernel, ageing, instances run so far (0: right after boot). */
struct published_cell {
	std::string_view kernel; /* "5.17" | "6.1-rc3" */
	bool aged = false;
	unsigned instances = 0;
	bool has_figures = true; /* false: the mail gives "no difference" only, no values */
	directmap_kb dm;
};

inline constexpr published_cell published_cells[] = {
	/* v5.17, fresh */
	{"5.17", false, 0, true, {87900, 5154816, 5242880}},
	{"5.17", false, 512, true, {462684, 4780032, 5242880}},
	{"5.17", false, 1024, true, {884572, 6455296, 3145728}},
	{"5.17", false, 2048, true, {1654620, 6733824, 2097152}},
	/* v6.1-rc3, fresh: the same figures at boot and after 512/1024/2048 */
	{"6.1-rc3", false, 0, true, {22364, 3123200, 7340032}},
	{"6.1-rc3", false, 512, true, {22364, 3123200, 7340032}},
	{"6.1-rc3", false, 1024, true, {22364, 3123200, 7340032}},
	{"6.1-rc3", false, 2048, true, {22364, 3123200, 7340032}},
	/* v5.17, aged (page cache filled memory first) */
	{"5.17", true, 0, true, {94044, 4100096, 6291456}},
	{"5.17", true, 512, true, {538460, 7849984, 2097152}},
	{"5.17", true, 1024, true, {1083228, 7305216, 2097152}},
	{"5.17", true, 2048, true, {2340700, 6047744, 2097152}},
	/* v6.1-rc3, aged: "There is no difference" - growth 0, values not given */
	{"6.1-rc3", true, 0, false, {}},
	{"6.1-rc3", true, 512, false, {}},
	{"6.1-rc3", true, 1024, false, {}},
	{"6.1-rc3", true, 2048, false, {}},
};

/* The boot cell of the series (kernel, aged) that c belongs to. */
constexpr const published_cell *published_boot(std::string_view kernel, bool aged) noexcept
{
	for (const published_cell &c : published_cells)
		if (c.kernel == kernel && c.aged == aged && c.instances == 0)
			return &c;
	return nullptr;
}

/*
 * Growth since boot of a published cell: DirectMap4k in kB and 1 GiB pages
 * split (DirectMap1G's fall / 1 GiB). A series without figures grew by 0.
 */
struct published_growth {
	std::int64_t dm_4k_kb = 0;
	std::int64_t splits_1g = 0;
};

constexpr published_growth growth_of(const published_cell &c) noexcept
{
	const published_cell *b = published_boot(c.kernel, c.aged);
	if (!c.has_figures || !b || !b->has_figures)
		return {};
	return {c.dm.dm_4k - b->dm.dm_4k, (b->dm.dm_1g - c.dm.dm_1g) / (std::int64_t{1} << 20)};
}

/* The three DirectMap figures of a boot cover the same total at every step (no page is lost, only split). */
static_assert(87900 + 5154816 + 5242880 == 1654620 + 6733824 + 2097152);
static_assert(94044 + 4100096 + 6291456 == 2340700 + 6047744 + 2097152);
static_assert(growth_of(published_cells[1]).dm_4k_kb == 374784 && growth_of(published_cells[3]).splits_1g == 3);
static_assert(growth_of(published_cells[9]).splits_1g == 4 && growth_of(published_cells[14]).dm_4k_kb == 0);

}  // namespace ua::validation
