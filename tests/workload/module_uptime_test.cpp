// Tests for module_uptime.h: a real module listing through weeks of uptime.
#include "workload/module_uptime.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <unordered_map>

#include "support.h"

using namespace ua::workload;
using ua::page_size;

namespace {
/* A listing with a module of every on-demand class and some of none. */
module_listing listing()
{
	auto r = parse_modules("Module Size Used by\n"
			       "usb_storage 81920 1 uas\nuas 32768 0\nxt_conntrack 16384 1\nnf_conntrack 180224 1 xt_conntrack\n"
			       "kvm_intel 380928 0\nkvm 1146880 1 kvm_intel\nvfat 20480 1\nfat 86016 1 vfat\n"
			       "i915 2809856 0\ne1000e 290816 0\nsnd_hda_intel 61440 0\n",
			       "test-listing");
	REQUIRE(r.ok());
	return r.value;
}

}  // namespace

TEST_CASE("module classes: names by prefix")
{
	CHECK(module_classes[module_class_of("usb_storage")].name == std::string("usb"));
	CHECK(module_classes[module_class_of("nft_compat")].name == std::string("netfilter"));
	CHECK(module_classes[module_class_of("kvm_amd")].name == std::string("kvm"));
	CHECK(module_classes[module_class_of("vfat")].name == std::string("fs"));
	CHECK(module_class_of("i915") == module_classes.size());
	CHECK(module_class_of("e1000e") == module_classes.size());
}

TEST_CASE("module uptime: boot loads the modules of no class, episodes load and unload the others")
{
	module_listing l = listing();
	module_uptime_params p;
	p.days = 60;
	std::map<std::string, std::size_t> loads, unloads; /* module -> count of its .text loads / frees */
	std::unordered_map<std::uint64_t, std::string> text_of;
	std::size_t boot_modules = 0;
	test::walk(module_uptime_stream(l, p), [&](const op &o, const op_checker &) {
		if (o.k == op::alloc) {
			CHECK(o.align == page_size);
			const std::string &t = o.tag;
			const std::string suffix = t.substr(t.find('.'));
			const memory_kind want = suffix == ".text" || suffix == ".init" ? memory_kind::module_text
						 : suffix == ".data"                      ? memory_kind::data
											  : memory_kind::ro;
			CHECK(o.mem == want);
			if (suffix == ".text") {
				const std::string name = t.substr(0, t.find('.'));
				loads[name]++;
				text_of[o.id] = name;
				boot_modules += o.t_ns == 0;
			}
		} else if (text_of.count(o.id)) {
			unloads[text_of[o.id]]++;
		}
	});
	CHECK(boot_modules == 3); /* i915, e1000e, snd_hda_intel */
	CHECK(loads["i915"] == 1);
	CHECK(unloads["i915"] == 0);
	/* netfilter: 0.5 episodes a day, always unloaded: about 30 loads in 60 days */
	CHECK(loads["nf_conntrack"] > 10);
	CHECK(loads["nf_conntrack"] < 60);
	CHECK(unloads["nf_conntrack"] + 1 >= loads["nf_conntrack"]);
	/* usb: 3 a day, half of them unload the class after an hour: many loads, never two at once */
	CHECK(loads["usb_storage"] > 20);
	CHECK(loads["usb_storage"] - unloads["usb_storage"] <= 1);
	CHECK(loads["kvm"] > 5);
	CHECK(loads["vfat"] > 5);
}

