// SPDX-License-Identifier: MIT
/*
 * module_uptime.h - a real module listing through weeks of uptime: most
 * modules loaded at boot and kept, some classes loaded on demand and
 * unloaded again.
 *
 * At 0 every module of the listing is loaded in load order (oldest first,
 * as listing.h returns it), except those of an on-demand class
 * (module_classes): USB storage and serial adapters, netfilter, KVM and its
 * helpers, file systems. Each class has episodes, a Poisson process of
 * `per_day` a day: an episode loads the class's modules of the listing that
 * are not loaded (udev or request_module() on demand: a stick plugged in, a
 * firewall started, a VM started, a file system mounted), in load order,
 * and with probability `unload_fraction` unloads every module of the class
 * that is loaded then, newest first, after an exponential hold (mean
 * `hold_h`); an episode that does not unload leaves them loaded for the
 * next one. The kernel never unloads a
 * module by itself (rmmod / modprobe -r only), so an unload stands for a
 * script or an administrator: the iptables service's stop, a hypervisor
 * that needs kvm_intel gone, a suspend hook.
 *
 * A module is its regions as module_churn.h splits it (split_module()),
 * each tagged with its memory kind: text and init -> module_text, rodata
 * and ro_after_init -> ro (set_memory_ro() reaches the direct-map alias),
 * data -> data (stays in the direct map). The init region is freed right
 * after the load, as do_init_module() does. Alignment 4096.
 */
#pragma once

#include "workload/listing.h"
#include "workload/module_churn.h"
#include "workload/op.h"
#include "workload/random.h"
#include "workload/stream.h"
#include "workload/timeline.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ua::workload {

struct module_class {
	const char *name;
	std::array<const char *, 16> prefixes; /* a module is in the class if its name starts with one */
	double per_day;                        /* episodes a day */
	double hold_h;                         /* mean time loaded, when unloaded */
	double unload_fraction;                /* episodes that end with an unload */
};

inline constexpr std::array<module_class, 4> module_classes = {{
	{"usb", {"usb_storage", "uas", "cdc_", "rndis", "ftdi", "cp210x", "pl2303", "usbserial", "uvcvideo"}, 3, 1, 0.5},
	{"netfilter",
	 {"nf_", "nft_", "xt_", "ipt_", "ip6t_", "ip_tables", "ip6_tables", "iptable_", "ip6table_", "x_tables",
	  "nfnetlink", "ebt", "br_netfilter"},
	 0.5, 12, 1},
	{"kvm", {"kvm", "irqbypass", "vhost", "tun", "bridge"}, 1, 4, 0.5},
	{"fs", {"vfat", "fat", "exfat", "isofs", "udf", "ntfs", "nfs", "cifs", "fuse", "squashfs", "hfsplus"}, 2, 2, 0.5},
}};

/* The on-demand class a module belongs to, or module_classes.size(). */
inline std::size_t module_class_of(std::string_view name)
{
	for (std::size_t c = 0; c < module_classes.size(); c++)
		for (const char *p : module_classes[c].prefixes)
			if (p && name.substr(0, std::string_view(p).size()) == p)
				return c;
	return module_classes.size();
}

struct module_uptime_params {
	std::uint64_t seed = 1;
	double days = 14;
	unsigned init_percent = module_init_percent;
	double rate_scale = 1;  /* multiplies every class's episodes a day */
};

class module_uptime_generator {
public:
	module_uptime_generator(module_listing listing, const module_uptime_params &p)
		: mods_(std::move(listing.modules)), p_(p), rng_(p.seed), tl_(seconds_ns(p.days * 86400.0)),
		  loaded_(mods_.size()), members_(module_classes.size())
	{
		for (std::size_t i = 0; i < mods_.size(); i++) {
			const std::size_t c = module_class_of(mods_[i].name);
			if (c < module_classes.size())
				members_[c].push_back(i);
		}
		tl_.schedule(0, event{event::boot, 0});
	}

	bool next(op &o)
	{
		return tl_.next(o, [this](std::int64_t t, const event &e) { handle(t, e); });
	}

	std::size_t loaded_count() const noexcept
	{
		std::size_t n = 0;
		for (const auto &l : loaded_)
			n += l.present;
		return n;
	}

private:
	struct loaded_module {
		bool present = false;
		std::array<std::uint64_t, 4> ids{}; /* text, data, rodata, ro_after_init; 0 = none */
	};
	struct event {
		enum what : std::uint8_t { boot, episode, unload } w;
		std::size_t cls;
	};

	std::int64_t gap(double mean_s) { return std::max<std::int64_t>(1, seconds_ns(draw_exponential(rng_, mean_s))); }

	std::uint64_t alloc(std::size_t bytes, memory_kind k, std::string tag)
	{
		tl_.emit(op::make_alloc(next_id_, bytes, page_size, std::move(tag)).of(k));
		return next_id_++;
	}

	void load(std::size_t i)
	{
		const module_entry &m = mods_[i];
		const module_layout l = split_module(m.size, p_.init_percent);
		const std::size_t sizes[4] = {l.text, l.data, l.rodata, l.ro_after_init};
		static constexpr memory_kind kinds[4] = {memory_kind::module_text, memory_kind::data, memory_kind::ro,
							 memory_kind::ro};
		static constexpr const char *names[4] = {".text", ".data", ".rodata", ".ro_after_init"};
		loaded_module &lm = loaded_[i];
		for (int r = 0; r < 4; r++)
			lm.ids[r] = sizes[r] ? alloc(sizes[r], kinds[r], m.name + names[r]) : 0;
		if (l.init)
			tl_.emit(op::make_free(alloc(l.init, memory_kind::module_text, m.name + ".init")));
		lm.present = true;
	}

	void unload(std::size_t i)
	{
		loaded_module &lm = loaded_[i];
		for (std::uint64_t id : lm.ids)
			if (id)
				tl_.emit(op::make_free(id));
		lm = loaded_module{};
	}

	void schedule_episode(std::int64_t t, std::size_t c)
	{
		const double rate = module_classes[c].per_day * p_.rate_scale;
		if (rate > 0 && !members_[c].empty())
			tl_.schedule(t + gap(86400.0 / rate), event{event::episode, c});
	}

	void handle(std::int64_t t, const event &e)
	{
		if (e.w == event::boot) {
			for (std::size_t i = 0; i < mods_.size(); i++)
				if (module_class_of(mods_[i].name) == module_classes.size())
					load(i);
			for (std::size_t c = 0; c < module_classes.size(); c++)
				schedule_episode(t, c);
		} else if (e.w == event::episode) {
			schedule_episode(t, e.cls);
			for (std::size_t i : members_[e.cls])
				if (!loaded_[i].present)
					load(i);
			const module_class &mc = module_classes[e.cls];
			if (draw_chance(rng_, mc.unload_fraction))
				tl_.schedule(t + gap(mc.hold_h * 3600.0), event{event::unload, e.cls});
		} else {
			const auto &m = members_[e.cls];
			for (std::size_t k = m.size(); k-- > 0;)
				if (loaded_[m[k]].present)
					unload(m[k]);
		}
	}

	std::vector<module_entry> mods_;
	module_uptime_params p_;
	rng_t rng_;
	timeline<event> tl_;
	std::uint64_t next_id_ = 1;
	std::vector<loaded_module> loaded_;
	std::vector<std::vector<std::size_t>> members_; /* per class: indices in mods_, in load order */
};

inline op_stream module_uptime_stream(const module_listing &l, const module_uptime_params &p)
{
	return op_stream("module_uptime", module_uptime_generator(l, p));
}

}  // namespace ua::workload
