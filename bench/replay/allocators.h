// SPDX-License-Identifier: MIT
/*
 * replay/allocators.h - the one registry of the allocators the replay
 * compares: the library's cache and every peer (bench/peers/).
 *
 * One row per allocator: its name (the --allocator value and the label in
 * every table, plot and JSON object), its colour in the plots, the memory
 * kinds it serves (workload/op.h memory_kind: a run of a workload of another
 * kind is "not applicable"), the kernel release it follows (a named
 * release, selected with --kernel or NAME@X.Y; a proposal that was never
 * merged and is the same at every release; the library; or the jemalloc
 * baseline), and how to build it over each backend (its runner: construct
 * the peer with the config for the workload's memory kind and release,
 * replay the ops). Nothing else in bench/replay spells an allocator's name:
 * options, run_case, the goals, the plots and the report look it up here.
 *
 * Adding an allocator is one runner below and one row in `registry`;
 * tests/replay checks every row is complete and every name unique.
 */
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <unmapped_alloc/phys.h>
#include <unmapped_alloc/sim.h>

#include "kernel_release.h"
#include "peers/bpf_prog_pack.h"
#include "peers/execmem.h"
#include "peers/freetype_unmapped.h"
#include "peers/gfp_unmapped.h"
#include "peers/guest_memfd.h"
#include "peers/naive.h"
#ifdef UA_REPLAY_JEMALLOC
#include "peers/jemalloc_peer.h"
#endif
#include "replay_ops.h"
#include "unmapped_peer.h"

namespace ua::replay {

/* What one run gives an allocator's runner. */
struct run_context {
	const std::vector<workload::op> &ops;
	memory_kind mem;            /* the workload's memory kind */
	std::string_view case_kind; /* the workload spec's kind (vm-host-2m: 2 MiB folios) */
	replay_settings settings;
	linux_version release;      /* the release a release-following peer follows */
};

template <mapping_backend B>
using allocator_runner = void (*)(machine<B> &, const run_context &, run_result &);

/* The release an allocator follows. */
enum class follows : std::uint8_t {
	library,  /* the library itself */
	release,  /* a kernel release, chosen per run (--kernel, NAME@X.Y) */
	proposal, /* a series never merged: the same at every release */
	baseline, /* not a kernel design (jemalloc) */
};

constexpr unsigned kind_bit(memory_kind k) noexcept { return 1u << unsigned(k); }
inline constexpr unsigned any_kind = (1u << workload::nr_memory_kinds) - 1;
inline constexpr unsigned text_kinds = kind_bit(memory_kind::unspecified) | kind_bit(memory_kind::bpf_text) |
				       kind_bit(memory_kind::module_text);
inline constexpr unsigned bpf_kinds = kind_bit(memory_kind::unspecified) | kind_bit(memory_kind::bpf_text);
inline constexpr unsigned page_kinds = kind_bit(memory_kind::secret) | kind_bit(memory_kind::guest);

namespace runners {

/* Replays on a built peer; a release that has no such design is not run (the note says which). */
template <mapping_backend B, class Peer>
void replay_peer(machine<B> &m, Peer &p, const run_context &c, run_result &r)
{
	if constexpr (requires { p.supported(); }) {
		if (!p.supported()) {
			r.note = std::string(Peer::name) + " is not in Linux " + c.release.str();
			return;
		}
	}
	replay_ops(m, p, c.ops, c.settings, r);
}

template <mapping_backend B>
void unmapped(machine<B> &m, const run_context &c, run_result &r)
{
	unmapped_peer<B> p(m, cache_config_for(c.mem));
	r.spare_chunks = p.config().spare_chunks;
	replay_ops(m, p, c.ops, c.settings, r);
	r.peak_chunks = std::max<std::uint64_t>(r.peak_chunks, p.cache_figures().peak_chunks);
}

/* secretmem, or module_alloc/bpf_jit_alloc_exec + set_memory_rox (peers/naive.h) */
template <mapping_backend B>
void naive(machine<B> &m, const run_context &c, run_result &r)
{
	peers::naive_peer<B> p(m, {secret_like(c.mem) ? peers::naive_use::secretmem : peers::naive_use::vmalloc_text,
				   c.release});
	replay_peer(m, p, c, r);
}

template <mapping_backend B>
void gfp_unmapped(machine<B> &m, const run_context &c, run_result &r)
{
	peers::gfp_unmapped_peer<B> p(
		m, {secret_like(c.mem) ? peers::gfp_unmapped_use::pages : peers::gfp_unmapped_use::module_alloc});
	replay_peer(m, p, c, r);
}

template <mapping_backend B>
void bpf_prog_pack(machine<B> &m, const run_context &c, run_result &r)
{
	peers::bpf_prog_pack_peer<B> p(m, {c.release, peers::pack_source::page_allocator});
	replay_peer(m, p, c, r);
}

/*
 * bpf_prog_pack on freetype-unmapped: the packs as release K lays them out,
 * their 512 order-0 pages __GFP_UNMAPPED pages of the 2026 freetype pool
 * (RFC v1/v2, peers/freetype_pool.h): that allocator is page-granular, so
 * BPF programs still go through bpf_prog_pack, whose pack pages it would
 * supply. No kernel ships the composition.
 */
template <mapping_backend B>
void bpf_prog_pack_freetype(machine<B> &m, const run_context &c, run_result &r)
{
	peers::bpf_prog_pack_peer<B> p(m, {c.release, peers::pack_source::freetype_unmapped});
	replay_peer(m, p, c, r);
}

template <mapping_backend B>
void execmem(machine<B> &m, const run_context &c, run_result &r)
{
	peers::execmem_peer<B> p(m, {c.release});
	replay_peer(m, p, c, r);
}

/* Pages for secrets and guest memory; vmalloc'ed text made ROX for code. */
template <mapping_backend B>
void freetype_unmapped(machine<B> &m, const run_context &c, run_result &r)
{
	const bool pages = secret_like(c.mem);
	peers::freetype_unmapped_peer<B> p(
		m, {pages ? peers::freetype_use::pages : peers::freetype_use::vmalloc, pages ? prot::rw : prot::rx});
	replay_peer(m, p, c, r);
}

template <mapping_backend B>
void guest_memfd(machine<B> &m, const run_context &c, run_result &r)
{
	peers::guest_memfd_peer<B> p(m, {c.case_kind == "vm-host-2m" ? chunk_order : 0u});
	replay_peer(m, p, c, r);
}

template <mapping_backend B>
void jemalloc(machine<B> &m, const run_context &c, run_result &r)
{
#ifdef UA_REPLAY_JEMALLOC
	peers::jemalloc_peer<B> p(m, {peers::dm_action::invalid, secret_like(c.mem) ? prot::rw : prot::rx});
	if (!p.ok()) {
		r.note = "jemalloc arena could not be created";
		return;
	}
	replay_peer(m, p, c, r);
#else
	(void)m, (void)c;
	r.note = "built without jemalloc";
#endif
}

}  // namespace runners

struct allocator_info {
	const char *name;
	const char *colour; /* in the plots */
	unsigned kinds;     /* kind_bit()s of the memory kinds it serves */
	follows rule;
	const char *serves; /* the kinds in words, for the "not applicable" note */
	allocator_runner<sim_direct_map> run_sim;
	allocator_runner<linux_backend> run_real;

	template <mapping_backend B>
	allocator_runner<B> runner() const noexcept
	{
		if constexpr (std::is_same_v<B, linux_backend>)
			return run_real;
		else
			return run_sim;
	}
	bool applies_to(memory_kind k) const noexcept { return (kinds & kind_bit(k)) != 0; }
};

#define UA_REPLAY_RUNNERS(f) &runners::f<sim_direct_map>, &runners::f<linux_backend>

/* The registry, in the order of the tables: the library first, then the kernel designs, then the baseline. */
inline constexpr allocator_info registry[] = {
	{"unmapped", "#1b7837", any_kind, follows::library, "every kind", UA_REPLAY_RUNNERS(unmapped)},
	{"naive", "#d7301f", any_kind, follows::release, "every kind", UA_REPLAY_RUNNERS(naive)},
	{"gfp-unmapped", "#7570b3", any_kind, follows::proposal, "every kind", UA_REPLAY_RUNNERS(gfp_unmapped)},
	{"bpf-prog-pack", "#e6ab02", bpf_kinds, follows::release, "BPF programs (64 B alignment) only",
	 UA_REPLAY_RUNNERS(bpf_prog_pack)},
	{"bpf-prog-pack+freetype", "#66a61e", bpf_kinds, follows::release, "BPF programs (64 B alignment) only",
	 UA_REPLAY_RUNNERS(bpf_prog_pack_freetype)},
	{"execmem", "#1f78b4", text_kinds, follows::release, "kernel text (BPF and modules) only",
	 UA_REPLAY_RUNNERS(execmem)},
	{"freetype-unmapped", "#a6761d", any_kind, follows::proposal, "every kind", UA_REPLAY_RUNNERS(freetype_unmapped)},
	{"guest-memfd", "#e7298a", kind_bit(memory_kind::guest), follows::proposal, "guest memory only",
	 UA_REPLAY_RUNNERS(guest_memfd)},
	{"jemalloc", "#666666", any_kind, follows::baseline, "every kind", UA_REPLAY_RUNNERS(jemalloc)},
};

#undef UA_REPLAY_RUNNERS

inline constexpr std::size_t nr_allocators = std::size(registry);

/* The row named `name` (without any "@release"), or nullptr. */
inline const allocator_info *find_allocator(std::string_view name) noexcept
{
	if (auto at = name.find('@'); at != std::string_view::npos)
		name = name.substr(0, at);
	for (const allocator_info &a : registry)
		if (name == a.name)
			return &a;
	return nullptr;
}

/* The library's own row: the design every goal is about. */
inline const allocator_info &library_allocator() noexcept { return registry[0]; }
inline bool is_library(std::string_view name) { return find_allocator(name) == &library_allocator(); }

/* "unmapped, naive, ... or jemalloc", for messages. */
inline std::string allocator_list(const char *last_sep = " or ")
{
	std::string s;
	for (std::size_t i = 0; i < nr_allocators; i++)
		s += (i == 0 ? "" : i + 1 == nr_allocators ? last_sep : ", ") + std::string(registry[i].name);
	return s;
}

/* Plot colour of a run's allocator label ("execmem@6.13-rc" has execmem's). */
inline const char *colour_of(std::string_view name) noexcept
{
	const allocator_info *a = find_allocator(name);
	return a ? a->colour : "#999999";
}

/* Whether an allocator can serve a kind at all (bpf_prog_pack gives 64 B alignment and serves BPF only). */
inline bool applicable(std::string_view name, memory_kind k) noexcept
{
	const allocator_info *a = find_allocator(name);
	return a && a->applies_to(k);
}

static_assert(registry[0].rule == follows::library, "the library's row comes first");

}  // namespace ua::replay
