// SPDX-License-Identifier: MIT
/*
 * live/bpf_prog.h - real BPF programs whose JIT images have a wanted size,
 * loaded with the raw bpf(2) system call.
 *
 * Why bpf(2) and not libbpf: the programs are synthesised instruction
 * arrays, not ELF objects, so libbpf's work (ELF parsing, relocations, BTF,
 * CO-RE, skeletons) has nothing to do here; the two commands needed,
 * BPF_PROG_LOAD and BPF_OBJ_GET_INFO_BY_FD, are a union bpf_attr each
 * (include/uapi/linux/bpf.h, from Debian's linux-libc-dev, which libc6-dev
 * already brings). No package is added, and every errno reaches the caller
 * unchanged, which the graceful-absence paths need.
 *
 * The program: a socket filter (BPF_PROG_TYPE_SOCKET_FILTER: loads as root
 * and needs no attach point): `r0 = 0`, straight-line arithmetic on r0, then
 * `exit`. The x86-64 JIT (arch/x86/net/bpf_jit_comp.c, emit_mov_imm32() and
 * the BPF_ALU|BPF_ADD|BPF_K case of do_jit()) emits
 *   r0 = 0       xor eax, eax        2 bytes
 *   w0 += 1      add eax, imm8       3 bytes
 *   r0 = 1000    mov eax, imm32      5 bytes
 * so any body length of 2 bytes or more is a sum of those. The prologue and
 * epilogue (endbr, the patchable nop, the frame; their length depends on the
 * kernel's configuration) are measured once: calibrate() loads the minimal
 * program and keeps its jited_prog_len as the fixed part. Each load then
 * reads jited_prog_len back from bpf_prog_info, so the achieved size is a
 * measurement, never an assumption (the caller records achieved - wanted).
 *
 * The image as the kernel allocates it: the x86 JIT asks
 * bpf_jit_binary_pack_alloc() for roundup(proglen, 4) (the alignment of its
 * exception table, empty here), which takes round_up(size + 8 + 16, 64)
 * bytes of a bpf_prog_pack (workload/bpftool.h, bpf_pack_alloc_size()). So
 * an op of S bytes as allocated (a multiple of 64 up to a pack) is replayed
 * as an image of S - 24 bytes, the largest image in that allocation class.
 *
 * Errors are the errno of the failing call, negated; nothing throws. A
 * bpf_program owns its fd and closes it on destruction: closing the last
 * reference frees the program, and its JIT image returns to its pack
 * (bpf_prog_pack_free(), which frees the pack when it is empty).
 */
#pragma once

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "workload/bpftool.h"

namespace ua::live {

inline long sys_bpf(int cmd, union bpf_attr *attr, unsigned size) noexcept
{
	return syscall(__NR_bpf, cmd, attr, size);
}

/* Bytes of JIT image that an op of `size` bytes as allocated is replayed with. */
constexpr std::size_t image_for_alloc(std::size_t size) noexcept
{
	const std::size_t s = ua::align_up(size, workload::bpf_prog_chunk_size);
	return s - workload::bpf_binary_header_size - 16;
}
static_assert(image_for_alloc(320) == 296 && workload::bpf_pack_alloc_size(image_for_alloc(320)) == 320);
static_assert(workload::bpf_pack_alloc_size(image_for_alloc(4096)) == 4096);
static_assert(workload::bpf_pack_alloc_size(image_for_alloc(273)) == 320);

namespace detail {

inline bpf_insn insn(std::uint8_t code, std::int32_t imm) noexcept
{
	bpf_insn i{};
	i.code = code;
	i.dst_reg = BPF_REG_0;
	i.src_reg = 0;
	i.off = 0;
	i.imm = imm;
	return i;
}
inline bpf_insn mov_r0(std::int32_t imm) noexcept { return insn(BPF_ALU64 | BPF_MOV | BPF_K, imm); }
inline bpf_insn add_w0(std::int32_t imm) noexcept { return insn(BPF_ALU | BPF_ADD | BPF_K, imm); }
inline bpf_insn exit_insn() noexcept { return insn(BPF_JMP | BPF_EXIT, 0); }

}  // namespace detail

/*
 * The instructions of a program whose body JITs to `body` bytes (2, 3 and 5
 * byte instructions; body 1 cannot be made and becomes 2). May throw
 * std::bad_alloc like any vector: called outside noexcept paths only.
 */
inline std::vector<bpf_insn> program_insns(std::size_t body)
{
	std::vector<bpf_insn> v;
	if (body == 1)
		body = 2;
	std::size_t fives = body / 5, threes = 0, twos = 0;
	switch (body % 5) {
	case 1: /* 5 + 1 = 3 + 3 */
		fives--, threes = 2;
		break;
	case 2: twos = 1; break;
	case 3: threes = 1; break;
	case 4: twos = 2; break;
	default: break;
	}
	v.reserve(fives + threes + twos + 2);
	/* r0 is written first, so `w0 += 1` always reads an initialised register. */
	v.push_back(detail::mov_r0(0));
	for (std::size_t i = 0; i < twos; i++)
		v.push_back(detail::mov_r0(0));
	for (std::size_t i = 0; i < fives; i++)
		v.push_back(detail::mov_r0(1000));
	for (std::size_t i = 0; i < threes; i++)
		v.push_back(detail::add_w0(1));
	v.push_back(detail::exit_insn());
	return v;
}

/* A loaded program: its fd, its JIT image length as the kernel reports it. */
class bpf_program {
public:
	bpf_program() noexcept = default;
	bpf_program(const bpf_program &) = delete;
	bpf_program &operator=(const bpf_program &) = delete;
	bpf_program(bpf_program &&o) noexcept : fd_(std::exchange(o.fd_, -1)), jited_(o.jited_), id_(o.id_) {}
	bpf_program &operator=(bpf_program &&o) noexcept
	{
		if (this != &o) {
			close();
			fd_ = std::exchange(o.fd_, -1);
			jited_ = o.jited_;
			id_ = o.id_;
		}
		return *this;
	}
	~bpf_program() { close(); }

	/* Loads insns; 0 or -errno. On success reads the program's info. */
	int load(const std::vector<bpf_insn> &insns) noexcept
	{
		close();
		static const char license[] = "GPL";
		union bpf_attr a;
		std::memset(&a, 0, sizeof a);
		a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
		a.insn_cnt = std::uint32_t(insns.size());
		a.insns = reinterpret_cast<std::uintptr_t>(insns.data());
		a.license = reinterpret_cast<std::uintptr_t>(license);
		std::memcpy(a.prog_name, "ua_live", 8);
		long fd = sys_bpf(BPF_PROG_LOAD, &a, sizeof a);
		if (fd < 0)
			return -errno;
		fd_ = int(fd);
		bpf_prog_info info;
		std::memset(&info, 0, sizeof info);
		std::memset(&a, 0, sizeof a);
		a.info.bpf_fd = std::uint32_t(fd_);
		a.info.info_len = sizeof info;
		a.info.info = reinterpret_cast<std::uintptr_t>(&info);
		if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof a) < 0) {
			int e = -errno;
			close();
			return e;
		}
		jited_ = info.jited_prog_len;
		id_ = info.id;
		return 0;
	}

	void close() noexcept
	{
		if (fd_ >= 0)
			::close(fd_);
		fd_ = -1;
	}

	bool loaded() const noexcept { return fd_ >= 0; }
	int fd() const noexcept { return fd_; }
	std::uint32_t jited_len() const noexcept { return jited_; }
	std::uint32_t id() const noexcept { return id_; }

private:
	int fd_ = -1;
	std::uint32_t jited_ = 0;
	std::uint32_t id_ = 0;
};

/*
 * Makes programs of a wanted JIT image size. calibrate() measures the
 * fixed part (prologue + `r0 = 0; exit`); make() then builds and loads one
 * program. A wanted size below the minimal image gets the minimal image
 * (the error is the caller's to record).
 */
class program_maker {
public:
	/* 0, or -errno of the minimal program's load (`r0 = 0; exit`) (EPERM: not allowed; ENOSYS, EINVAL: no BPF). */
	int calibrate() noexcept
	{
		bpf_program p;
		std::vector<bpf_insn> base;
		try {
			base = program_insns(0);
		} catch (...) {
			return -ENOMEM;
		}
		if (int e = p.load(base); e != 0)
			return e;
		if (p.jited_len() == 0)
			return -ENOEXEC; /* loaded but not JIT-compiled: bpf_jit_enable is 0 */
		fixed_ = p.jited_len();
		return 0;
	}

	std::size_t minimal_image() const noexcept { return fixed_; }
	bool calibrated() const noexcept { return fixed_ != 0; }

	/* Loads a program of about `image` bytes of JIT image into p; 0 or -errno. */
	int make(std::size_t image, bpf_program &p) noexcept
	{
		if (!calibrated())
			return -EINVAL;
		std::size_t body = image > fixed_ ? image - fixed_ : 0;
		try {
			return p.load(program_insns(body));
		} catch (...) {
			return -ENOMEM;
		}
	}

private:
	std::size_t fixed_ = 0;
};

/*
 * Programs loaded on the machine whose name is `name` (every process's),
 * walked with BPF_PROG_GET_NEXT_ID; -errno when the walk cannot start.
 * Tests use it to check that a run closed every program it loaded.
 */
inline long count_programs_named(const char *name) noexcept
{
	long n = 0;
	std::uint32_t id = 0;
	while (true) {
		union bpf_attr a;
		std::memset(&a, 0, sizeof a);
		a.start_id = id;
		if (sys_bpf(BPF_PROG_GET_NEXT_ID, &a, sizeof a) < 0)
			return errno == ENOENT ? n : -errno;
		id = a.next_id;
		std::memset(&a, 0, sizeof a);
		a.prog_id = id;
		long fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a, sizeof a);
		if (fd < 0)
			continue; /* gone meanwhile */
		bpf_prog_info info;
		std::memset(&info, 0, sizeof info);
		std::memset(&a, 0, sizeof a);
		a.info.bpf_fd = std::uint32_t(fd);
		a.info.info_len = sizeof info;
		a.info.info = reinterpret_cast<std::uintptr_t>(&info);
		if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof a) == 0 && std::strncmp(info.name, name, sizeof info.name) == 0)
			n++;
		::close(int(fd));
	}
}

/* The stated tolerance of jited_prog_len against the wanted image: exact, for images of at least the minimal one. */
inline constexpr std::int64_t jited_tolerance = 0;

}  // namespace ua::live
