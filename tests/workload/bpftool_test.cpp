// Tests for workload/bpftool.h: `bpftool prog show` reader and program sizes.
#include "workload/bpftool.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace fs = std::filesystem;
using namespace ua::workload;

namespace {

std::string fixture(const char *name) { return std::string(UA_FIXTURES) + "/" + name; }

/* Record headers counted the simple way: lines that start with a digit. */
std::size_t count_headers(const std::string &path)
{
	std::ifstream in(path);
	std::string line;
	std::size_t n = 0;
	while (std::getline(in, line))
		n += !line.empty() && line[0] >= '0' && line[0] <= '9';
	return n;
}

void check_error(const char *name, std::size_t line, const char *words)
{
	auto r = read_bpftool(fixture(name));
	CAPTURE(name);
	CAPTURE(r.error);
	REQUIRE_FALSE(r.ok());
	CHECK(r.value.programs.empty());
	const std::string where = fixture(name) + ":" + std::to_string(line) + ": ";
	CHECK(r.error.rfind(where, 0) == 0);
	CHECK(r.error.find(words) != std::string::npos);
}

}  // namespace

TEST_CASE("allocated size under bpf_prog_pack and before it")
{
	CHECK(bpf_binary_header_size == 8);
	/* round_up(jited + 8 + 16, 64) */
	CHECK(bpf_pack_alloc_size(1) == 64);
	CHECK(bpf_pack_alloc_size(40) == 64);
	CHECK(bpf_pack_alloc_size(41) == 128);
	CHECK(bpf_pack_alloc_size(63) == 128);    /* systemd's sd_fw_* on 6.15 */
	CHECK(bpf_pack_alloc_size(305) == 384);   /* restrict_filesystems */
	for (std::size_t j = 1; j < 70000; j += 37) {
		std::size_t s = bpf_pack_alloc_size(j);
		CHECK(s % 64 == 0);
		CHECK(s >= j + 24);
		CHECK(s < j + 24 + 64);
	}
	/* beyond one pack: its own page-rounded mapping */
	CHECK(bpf_pack_alloc_size(3 << 20) == (std::size_t(3) << 20) + 4096);
	/* before packs: round_up(jited + 8 + 128, PAGE_SIZE) */
	CHECK(bpf_page_alloc_size(63) == 4096);
	CHECK(bpf_page_alloc_size(3960) == 4096);
	CHECK(bpf_page_alloc_size(3961) == 8192);
}

TEST_CASE("real bpftool listings: every file reads, with the program counts of SOURCES.md")
{
	const fs::path dir = UA_SHARED_WORKLOADS;
	if (!fs::is_directory(dir)) {
		MESSAGE("skipping: " << dir.string() << " not present");
		return;
	}
	const std::map<std::string, std::size_t> expected = {
		{"bpftool_nixos_desktop_systemd_martins3_2024.txt", 227},
		{"bpftool_lenovo_laptop_systemd_kernel615_lkml_2025.txt", 27},
	};
	std::size_t seen = 0;
	for (const auto &ent : fs::directory_iterator(dir)) {
		const std::string file = ent.path().filename().string();
		if (file.rfind("bpftool_", 0) != 0)
			continue;
		CAPTURE(file);
		auto r = read_bpftool(ent.path().string());
		INFO(r.error);
		REQUIRE(r.ok());
		CHECK(r.value.programs.size() == count_headers(ent.path().string()));
		for (const auto &p : r.value.programs) {
			CHECK(p.xlated > 0);
			CHECK(p.memlock == 4096);
			CHECK_FALSE(p.type.empty());
		}
		for (std::size_t i = 1; i < r.value.programs.size(); i++)
			CHECK(r.value.programs[i].id > r.value.programs[i - 1].id);
		auto w = bpf_listing_workload(r.value, bpf_alloc_model::pack, file);
		CHECK(validate(w) == "");
		CHECK(w.ops.size() == r.value.programs.size() - r.value.not_jited);
		auto it = expected.find(file);
		if (it != expected.end()) {
			seen++;
			CHECK(r.value.programs.size() == it->second);
			CHECK(r.value.not_jited == 0);
		}
	}
	CHECK(seen == expected.size());
}

TEST_CASE("real bpftool listing: first program of the laptop")
{
	const fs::path file = fs::path(UA_SHARED_WORKLOADS) / "bpftool_lenovo_laptop_systemd_kernel615_lkml_2025.txt";
	if (!fs::exists(file)) {
		MESSAGE("skipping: " << file.string() << " not present");
		return;
	}
	auto r = read_bpftool(file.string());
	REQUIRE(r.ok());
	const auto &p = r.value.programs.front();
	/* 21: lsm  name restrict_filesystems ... xlated 560B  jited 305B  memlock 4096B */
	CHECK(p.id == 21);
	CHECK(p.type == "lsm");
	CHECK(p.name == "restrict_filesystems");
	CHECK(p.xlated == 560);
	CHECK(p.jited == 305);
	CHECK(p.line == 1);
	auto w = bpf_listing_workload(r.value, bpf_alloc_model::pack, "laptop");
	CHECK(w.ops.front() == op::make_alloc(21, 384, 64).of(memory_kind::bpf_text));
	auto wp = bpf_listing_workload(r.value, bpf_alloc_model::page, "laptop");
	CHECK(wp.ops.front() == op::make_alloc(21, 4096, 4096).of(memory_kind::bpf_text));
}

TEST_CASE("bpftool fixture: variations")
{
	auto r = read_bpftool(fixture("bpftool_small.txt"));
	INFO(r.error);
	REQUIRE(r.ok());
	const auto &ps = r.value.programs;
	REQUIRE(ps.size() == 5);
	CHECK(r.value.not_jited == 1);

	CHECK(ps[0].id == 3);
	CHECK(ps[0].type == "cgroup_device");
	CHECK(ps[0].name.empty());  /* no name */
	CHECK(ps[0].jited == 447);

	CHECK(ps[1].id == 7);
	CHECK(ps[1].type == "type 32");
	CHECK(ps[1].name == "future_prog");
	CHECK_FALSE(ps[1].is_jited());
	CHECK(ps[1].xlated == 96);

	CHECK(ps[2].id == 12);
	CHECK(ps[2].line == 8);
	CHECK(ps[2].jited == 2301);
	CHECK(ps[2].memlock == 8192);

	CHECK(ps[3].name == "xdp_lb");
	CHECK(ps[3].jited == 24777);
	CHECK(ps[3].memlock == 0);  /* not printed */

	CHECK(ps[4].jited == 296);

	auto w = bpf_listing_workload(r.value, bpf_alloc_model::pack, "small");
	CHECK(validate(w) == "");
	REQUIRE(w.ops.size() == 4);  /* the interpreted program is skipped */
	CHECK(w.ops[0] == op::make_alloc(3, bpf_pack_alloc_size(447), 64).of(memory_kind::bpf_text));
	CHECK(w.ops[1] == op::make_alloc(12, bpf_pack_alloc_size(2301), 64).of(memory_kind::bpf_text));
	CHECK(w.ops[3] == op::make_alloc(41, 320, 64).of(memory_kind::bpf_text));
	CHECK(w.ops[0].tag == "cgroup_device");
	CHECK(w.ops[3].tag == "tc_ingress");

	auto crlf = read_bpftool(fixture("bpftool_crlf.txt"));
	INFO(crlf.error);
	REQUIRE(crlf.ok());
	REQUIRE(crlf.value.programs.size() == 2);
	CHECK(crlf.value.programs[1].name == "sd_fw_ingress");
	CHECK(crlf.value.programs[1].jited == 63);
	CHECK(crlf.value.programs[1].memlock == 4096);
}

TEST_CASE("malformed bpftool output is rejected with file and line")
{
	check_error("bpftool_prompt.txt", 1, "expected a program record");
	check_error("bpftool_no_xlated.txt", 3, "program 6 has no `xlated` line");
	check_error("bpftool_bad_size.txt", 5, "bad `jited` size `6x3B`");
	check_error("bpftool_orphan_indent.txt", 2, "indented line before any");
	check_error("bpftool_duplicate.txt", 3, "program 5 listed twice (first on line 1)");
	check_error("bpftool_no_tag.txt", 3, "has no `tag`");
	check_error("bpftool_two_xlated.txt", 3, "second `xlated` line");
	check_error("bpftool_json.txt", 1, "expected a program record");
}

TEST_CASE("parse_bpftool on text: last record without sizes, empty input")
{
	auto last = parse_bpftool("5: xdp  tag 6deef7357e7b4530\n\txlated 8B  jited 9B\n9: xdp  tag 6deef7357e7b4530\n",
				  "mine");
	REQUIRE_FALSE(last.ok());
	CHECK(last.error.rfind("mine:3: ", 0) == 0);

	auto empty = parse_bpftool("\n\n", "mine");
	REQUIRE_FALSE(empty.ok());
	CHECK(empty.error.find("no program listed") != std::string::npos);

	auto zero_jit = parse_bpftool("5: xdp  tag 6deef7357e7b4530\n\txlated 8B  jited 0B\n", "mine");
	REQUIRE_FALSE(zero_jit.ok());
	CHECK(zero_jit.error.rfind("mine:2: ", 0) == 0);
}
