// SPDX-License-Identifier: MIT
/*
 * module_churn.h - module load/unload churn from a real listing.
 *
 * Since Linux 6.4 a module is not one allocation but one per memory type
 * (include/linux/module.h, enum mod_mem_type): MOD_TEXT, MOD_DATA,
 * MOD_RODATA, MOD_RO_AFTER_INIT, then MOD_INIT_TEXT, MOD_INIT_DATA,
 * MOD_INIT_RODATA. move_module() allocates them in that order, each
 * page-aligned, skipping empty ones; do_init_module() frees the init ones
 * once the module's init function has run and zeroes their sizes, so the size
 * lsmod shows is the sum of the four core regions.
 *
 * A listing gives only that sum, so it is split by a fixed rule. With
 * P = ceil(size / 4096) pages (old kernels list sizes that are not page
 * multiples; those are rounded up):
 *   ro_after_init  1 page if P >= 4, else 0;
 *   and with R = P - ro_after_init pages left:
 *   R >= 3:  rodata = max(1, round(25% of R)), data = max(1, round(15% of R)),
 *            text = the rest (about 60%, never below 1 page);
 *   R == 2:  text 1, data 1;   R == 1: text 1.
 *   init     max(1, ceil(init_percent% of P)) pages, one region standing for
 *            .init.text/.init.data/.init.rodata together; none if init_percent
 *            is 0.
 * So text + data + rodata + ro_after_init == P pages == the listed size when
 * it is a page multiple (always, on kernels with strict module RWX).
 *
 * Sequence: every module is loaded in load order (oldest first, as
 * listing.h returns it): text, data, rodata, ro_after_init, init are
 * allocated in the kernel's order, then the init region is freed. Then
 * `rounds` rounds: each picks `batch` distinct loaded modules uniformly at
 * random (seeded), unloads them one after the other (free_module() frees the
 * core regions in type order), then loads them again in the reverse order.
 * Holders are not tracked: a module may be unloaded while listed as used,
 * which only matters for realism, not for the allocator. Every region is an
 * allocation aligned to 4096; IDs are never reused; tags are `NAME.text` etc.
 * Memory kinds (op.h): text and init module_text, rodata and ro_after_init
 * ro, data data.
 * With unload_all, every module is unloaded at the end, newest first.
 */
#pragma once

#include "workload/listing.h"
#include "workload/op.h"
#include "workload/random.h"

#include <unmapped_alloc/config.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ua::workload {

/* Bytes per region; each a multiple of page_size. */
struct module_layout {
	std::size_t text = 0, data = 0, rodata = 0, ro_after_init = 0, init = 0;

	constexpr std::size_t core() const noexcept { return text + data + rodata + ro_after_init; }
};

inline constexpr unsigned module_init_percent = 10;

/* The split rule above. */
constexpr module_layout split_module(std::size_t listed_size, unsigned init_percent = module_init_percent) noexcept
{
	const std::size_t pages = (listed_size + page_size - 1) / page_size;
	std::size_t ro_after_init = pages >= 4 ? 1 : 0;
	std::size_t r = pages - ro_after_init;
	std::size_t text = r, data = 0, rodata = 0;
	if (r >= 3) {
		rodata = (r * 25 + 50) / 100;
		data = (r * 15 + 50) / 100;
		rodata = rodata ? rodata : 1;
		data = data ? data : 1;
		text = r - rodata - data;
	} else if (r == 2) {
		text = 1;
		data = 1;
	}
	std::size_t init = 0;
	if (init_percent != 0 && pages != 0) {
		init = (pages * init_percent + 99) / 100;
		init = init ? init : 1;
	}
	return module_layout{text * page_size, data * page_size, rodata * page_size, ro_after_init * page_size,
			     init * page_size};
}

static_assert(split_module(12288).core() == 12288 && split_module(12288).ro_after_init == 0);
static_assert(split_module(16384).core() == 16384 && split_module(16384).ro_after_init == page_size);
static_assert(split_module(5000).core() == 2 * page_size);
static_assert(split_module(1146880).core() == 1146880 && split_module(1146880).text >= 1146880 / 2);

struct module_churn_params {
	std::uint64_t seed = 1;
	std::size_t rounds = 100;          /* unload/reload rounds after the initial load */
	std::size_t batch = 4;             /* modules unloaded and reloaded per round */
	unsigned init_percent = module_init_percent;
	bool unload_all = false;           /* unload everything at the end */
};

namespace detail {
struct loaded_module {
	std::array<std::uint64_t, 4> ids{};  /* text, data, rodata, ro_after_init; 0 = absent */
};

class module_loader {
public:
	explicit module_loader(std::vector<op> &ops, unsigned init_percent) : ops_(ops), init_percent_(init_percent) {}

	loaded_module load(const module_entry &m)
	{
		module_layout l = split_module(m.size, init_percent_);
		const std::size_t sizes[4] = {l.text, l.data, l.rodata, l.ro_after_init};
		static constexpr const char *kinds[4] = {".text", ".data", ".rodata", ".ro_after_init"};
		static constexpr memory_kind mems[4] = {memory_kind::module_text, memory_kind::data, memory_kind::ro,
							memory_kind::ro};
		loaded_module lm;
		for (int i = 0; i < 4; i++)
			if (sizes[i])
				lm.ids[i] = alloc(sizes[i], m.name + kinds[i], mems[i]);
		if (l.init) {
			std::uint64_t init = alloc(l.init, m.name + ".init", memory_kind::module_text);
			ops_.push_back(op::make_free(init));
		}
		return lm;
	}
	void unload(const loaded_module &lm)
	{
		for (std::uint64_t id : lm.ids)
			if (id)
				ops_.push_back(op::make_free(id));
	}

private:
	std::uint64_t alloc(std::size_t size, std::string tag, memory_kind mem)
	{
		ops_.push_back(op::make_alloc(next_id_, size, page_size, std::move(tag)).of(mem));
		return next_id_++;
	}

	std::vector<op> &ops_;
	unsigned init_percent_;
	std::uint64_t next_id_ = 1;
};
}  // namespace detail

inline workload generate_module_churn(const module_listing &listing, const module_churn_params &p,
				      std::string name = "module_churn")
{
	workload w{std::move(name), {}};
	rng_t rng(p.seed);
	detail::module_loader loader(w.ops, p.init_percent);
	const auto &mods = listing.modules;
	std::vector<detail::loaded_module> loaded;
	loaded.reserve(mods.size());
	for (const auto &m : mods)
		loaded.push_back(loader.load(m));

	const std::size_t batch = std::min(p.batch, mods.size());
	std::vector<std::size_t> pick(mods.size());
	for (std::size_t round = 0; round < p.rounds && batch; round++) {
		/* A partial Fisher-Yates: the first `batch` entries are distinct uniform picks. */
		for (std::size_t i = 0; i < pick.size(); i++)
			pick[i] = i;
		for (std::size_t i = 0; i < batch; i++)
			std::swap(pick[i], pick[i + std::size_t(draw_below(rng, pick.size() - i))]);
		for (std::size_t i = 0; i < batch; i++)
			loader.unload(loaded[pick[i]]);
		for (std::size_t i = batch; i-- > 0;)
			loaded[pick[i]] = loader.load(mods[pick[i]]);
	}
	if (p.unload_all)
		for (std::size_t i = loaded.size(); i-- > 0;)
			loader.unload(loaded[i]);
	return w;
}

}  // namespace ua::workload
