// Tests for workload/listing.h: lsmod and /proc/modules readers.
#include "workload/listing.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
using namespace ua::workload;

namespace {

std::string fixture(const char *name) { return std::string(UA_FIXTURES) + "/" + name; }

/* A second, simpler reading of a listing: name and size of every data line, in file order. */
std::vector<std::pair<std::string, std::size_t>> naive_read(const std::string &path)
{
	std::ifstream in(path);
	std::string line;
	std::vector<std::pair<std::string, std::size_t>> out;
	while (std::getline(in, line)) {
		std::istringstream ss(line);
		std::string name, size;
		if (!(ss >> name >> size) || name == "Module")
			continue;
		out.emplace_back(name, std::stoull(size));
	}
	return out;
}

/* Checks a parsed listing against the naive reading: same modules, reversed (load order). */
void check_against_naive(const module_listing &l, const std::string &path)
{
	auto naive = naive_read(path);
	REQUIRE(l.modules.size() == naive.size());
	for (std::size_t i = 0; i < naive.size(); i++) {
		const auto &m = l.modules[naive.size() - 1 - i];
		CHECK(m.name == naive[i].first);
		CHECK(m.size == naive[i].second);
	}
	for (std::size_t i = 1; i < l.modules.size(); i++)
		CHECK(l.modules[i].line < l.modules[i - 1].line);  /* oldest (bottom) first */
}

void check_error(const char *name, std::size_t line, const char *words)
{
	auto r = read_modules(fixture(name));
	CAPTURE(name);
	CAPTURE(r.error);
	REQUIRE_FALSE(r.ok());
	CHECK(r.value.modules.empty());
	const std::string where = fixture(name) + ":" + std::to_string(line) + ": ";
	CHECK(r.error.rfind(where, 0) == 0);
	CHECK(r.error.find(words) != std::string::npos);
}

}  // namespace

TEST_CASE("real listings: every file reads, with the module counts of SOURCES.md")
{
	const fs::path dir = UA_SHARED_WORKLOADS;
	if (!fs::is_directory(dir)) {
		MESSAGE("skipping: " << dir.string() << " not present");
		return;
	}
	const std::map<std::string, std::pair<std::size_t, listing_format>> expected = {
		{"lsmod_slackware_hp_omen16_laptop_kernel6x.txt", {229, listing_format::lsmod}},
		{"lsmod_chromeos_nissa_n100_chromebook.txt", {89, listing_format::lsmod}},
		{"lsmod_ubuntu2404_rdma_nfs_server_xeon_cxl.txt", {101, listing_format::lsmod}},
		{"proc_modules_debian_qemu_kvm_guest.txt", {69, listing_format::proc_modules}},
		{"proc_modules_openshift_coreos_master_hyperv_vm_2019.txt", {81, listing_format::proc_modules}},
	};
	std::size_t seen = 0;
	for (const auto &ent : fs::directory_iterator(dir)) {
		const std::string file = ent.path().filename().string();
		if (file.rfind("lsmod_", 0) != 0 && file.rfind("proc_modules_", 0) != 0)
			continue;
		CAPTURE(file);
		auto r = read_modules(ent.path().string());
		INFO(r.error);
		REQUIRE(r.ok());
		check_against_naive(r.value, ent.path().string());
		for (const auto &m : r.value.modules)
			CHECK(m.size % 4096 == 0);  /* all these kernels page-align module memory */
		auto it = expected.find(file);
		if (it != expected.end()) {
			seen++;
			CHECK(r.value.modules.size() == it->second.first);
			CHECK(r.value.format == it->second.second);
		}
	}
	CHECK(seen == expected.size());
}

TEST_CASE("real listings: load order is the listing read bottom-up")
{
	const fs::path file = fs::path(UA_SHARED_WORKLOADS) / "lsmod_slackware_hp_omen16_laptop_kernel6x.txt";
	if (!fs::exists(file)) {
		MESSAGE("skipping: " << file.string() << " not present");
		return;
	}
	auto r = read_modules(file.string());
	REQUIRE(r.ok());
	/* The file's last line is xhci_hcd, its first data line snd_seq_dummy. */
	CHECK(r.value.modules.front().name == "xhci_hcd");
	CHECK(r.value.modules.back().name == "snd_seq_dummy");
}

TEST_CASE("lsmod fixtures: trailing blanks, blank lines, CRLF, busybox header, old sizes")
{
	auto small = read_modules(fixture("lsmod_small.txt"));
	INFO(small.error);
	REQUIRE(small.ok());
	CHECK(small.value.format == listing_format::lsmod);
	check_against_naive(small.value, fixture("lsmod_small.txt"));
	REQUIRE(small.value.modules.size() == 7);
	CHECK(small.value.modules.front().name == "irqbypass");
	CHECK(small.value.modules.back().name == "snd_seq_dummy");
	CHECK(small.value.modules[1].size == 1146880);

	auto crlf = read_modules(fixture("lsmod_crlf.txt"));
	INFO(crlf.error);
	REQUIRE(crlf.ok());
	REQUIRE(crlf.value.modules.size() == 3);
	CHECK(crlf.value.modules[0].name == "loop");
	CHECK(crlf.value.modules[0].size == 40960);
	CHECK(crlf.value.modules[2].name == "fuse");

	auto old = read_modules(fixture("lsmod_busybox_old.txt"));
	INFO(old.error);
	REQUIRE(old.ok());
	REQUIRE(old.value.modules.size() == 4);
	CHECK(old.value.modules[0].name == "mac80211");
	CHECK(old.value.modules[0].size == 234219);  /* not a page multiple: kept as listed */
	CHECK(old.value.modules[1].name == "nvidia");
}

TEST_CASE("/proc/modules fixtures: addresses, taint flags, states, no-unload kernels")
{
	auto t = read_modules(fixture("proc_modules_taint.txt"));
	INFO(t.error);
	REQUIRE(t.ok());
	CHECK(t.value.format == listing_format::proc_modules);
	check_against_naive(t.value, fixture("proc_modules_taint.txt"));
	REQUIRE(t.value.modules.size() == 6);
	CHECK(t.value.modules[0].name == "video");
	CHECK(t.value.modules[1].name == "vboxdrv");
	CHECK(t.value.modules[2].size == 62820352);

	auto old = read_modules(fixture("proc_modules_old.txt"));
	INFO(old.error);
	REQUIRE(old.ok());
	REQUIRE(old.value.modules.size() == 3);
	CHECK(old.value.modules[0].name == "mbcache");
	CHECK(old.value.modules[0].size == 8193);
}

TEST_CASE("malformed listings are rejected with file and line")
{
	check_error("lsmod_prompt.txt", 1, "neither an lsmod header");
	check_error("lsmod_bad_size.txt", 4, "is not a number");
	check_error("lsmod_duplicate.txt", 4, "listed twice (first on line 2)");
	check_error("lsmod_zero_size.txt", 3, "size 0");
	check_error("lsmod_missing_field.txt", 3, "got 1 field(s)");
	check_error("lsmod_header_only.txt", 2, "no module listed");
	check_error("proc_modules_bad_state.txt", 2, "state `Dead`");
	check_error("proc_modules_extra_field.txt", 2, "unexpected extra field `junk`");
	check_error("proc_modules_mixed.txt", 2, "got 3 field(s)");
}

TEST_CASE("parse_modules on text: prompt lines, empty input, missing file")
{
	auto prompt = parse_modules("$ cat /proc/modules\nfuse 212992 5 - Live 0x0\n", "mine");
	REQUIRE_FALSE(prompt.ok());
	CHECK(prompt.error.rfind("mine:1: ", 0) == 0);

	auto root_prompt = parse_modules("root@host:~# cat /proc/modules\nfuse 212992 5 - Live 0x0\n", "mine");
	REQUIRE_FALSE(root_prompt.ok());
	CHECK(root_prompt.error.rfind("mine:1: ", 0) == 0);

	auto empty = parse_modules("", "empty");
	REQUIRE_FALSE(empty.ok());
	CHECK(empty.error.find("no module listed") != std::string::npos);

	auto missing = read_modules(fixture("no_such_file.txt"));
	REQUIRE_FALSE(missing.ok());
	CHECK(missing.error.find("cannot open") != std::string::npos);

	auto ok = parse_modules("fuse 212992 5 - Live 0x0\nloop 40960 2 fuse, Live 0x0\n", "mine");
	INFO(ok.error);
	REQUIRE(ok.ok());
	REQUIRE(ok.value.modules.size() == 2);
	CHECK(ok.value.modules[0].name == "loop");
	CHECK(ok.value.modules[0].line == 2);
}

TEST_CASE("this machine's /proc/modules reads when present")
{
	if (!fs::exists("/proc/modules")) {
		MESSAGE("skipping: no /proc/modules here");
		return;
	}
	auto r = read_modules("/proc/modules");
	if (!r.ok() && r.error.find("no module listed") != std::string::npos) {
		MESSAGE("skipping: /proc/modules is empty (no modules loaded)");
		return;
	}
	INFO(r.error);
	CHECK(r.ok());
	CHECK(r.value.format == listing_format::proc_modules);
}
